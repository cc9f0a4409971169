//! The transforms of the Winograd path with the tiles of one plane as vector lanes, for maps at
//! least 8 wide: each input plane is first split into its four *phases* (the even and odd rows ×
//! the even and odd columns of the padded plane), rows of `tw`, each phase also kept shifted left
//! by one column. Value `(a, b)` of the window of tile `(ti, tj)` is then value
//! `(ti + ⌊a/2⌋)·tw + tj` of phase `(a mod 2, b mod 2)` shifted by `⌊b/2⌋`: for consecutive tiles,
//! consecutive values of one array, so the transforms add and subtract whole vectors of 16 tiles,
//! with no gather and no tile wasted. (An earlier form kept one extra column of tiles per row
//! instead of the shifted copies, computed and dropped: 1/8 more products on 16-wide maps, 1/4 on
//! 8-wide ones; the VGG's step ran 4 % slower with it.) `lanes.rs` takes narrower maps.

use super::ops::{add, at, ax, bt, load, store};
use super::{Geo, PTS};
use crate::kernels::{Elem, copy_short, multiversion};

/// Tiles per group of the tile transforms (one AVX-512 vector of f32).
const L: usize = 16;

/// Calls `$f::<E, N>(args…, t)` over the groups of `N` consecutive tiles `t..t + N` covering
/// `0..$per`: `N = 16` (or 8, or 4 where fewer tiles), the last group ending at `$per` and
/// overlapping the one before it (recomputing the same values), single tiles only below 4.
macro_rules! each_group {
    ($per:expr, $f:ident($($arg:expr),*)) => {{
        let per: usize = $per;
        macro_rules! by {
            ($n:expr) => {{
                let mut t = 0;
                while t + $n < per {
                    $f::<E, $n>($($arg,)* t);
                    t += $n;
                }
                $f::<E, $n>($($arg,)* per - $n);
            }};
        }
        // 16 tiles a group on AVX-512; on narrower vectors 8 (16 would need the window's 16
        // vectors of each tile twice over, more than AVX2's 16 registers: conv2 ran 1.5× slower).
        if per >= L && crate::kernels::isa() == crate::kernels::Isa::Avx512 {
            by!(L)
        } else if per >= 8 {
            by!(8)
        } else if per >= 4 {
            by!(4)
        } else {
            for t in 0..per {
                $f::<E, 1>($($arg,)* t);
            }
        }
    }};
}

/// `N` consecutive values of `s` from `at`.
#[inline(always)]
fn lanes<E: Elem, const N: usize>(s: &[E], at: usize) -> [E; N] {
    s[at..][..N].try_into().expect("N lanes")
}

/// `first[j] = row[2j]`, `second[j] = row[2j + 1]` (an odd row's last value goes to `first`):
/// 8 and 4 pairs at a time as one load and two constant shuffles.
#[inline(always)]
fn deinterleave<E: Elem>(row: &[E], first: &mut [E], second: &mut [E]) {
    let n = row.len() / 2;
    let mut j = 0;
    while j + 8 <= n {
        let v: [E; 16] = lanes(row, 2 * j);
        first[j..j + 8].copy_from_slice(&[v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14]]);
        second[j..j + 8].copy_from_slice(&[v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15]]);
        j += 8;
    }
    while j + 4 <= n {
        let v: [E; 8] = lanes(row, 2 * j);
        first[j..j + 4].copy_from_slice(&[v[0], v[2], v[4], v[6]]);
        second[j..j + 4].copy_from_slice(&[v[1], v[3], v[5], v[7]]);
        j += 4;
    }
    for j in j..n {
        first[j] = row[2 * j];
        second[j] = row[2 * j + 1];
    }
    if row.len() % 2 == 1 {
        first[n] = row[2 * n];
    }
}

/// One input plane (`h × w`) into its eight phase arrays (`pp` values each, rows of `tw`): phase
/// `(ry, rx)` shifted by `sh`, row `i`, column `j` is the padded plane's value at
/// `(2i + ry, 2(j + sh) + rx)`, in array `(2·ry + rx)·2 + sh`. Every plane writes the same rows;
/// the padding rows, zeroed once by the caller, stay zero, and so do the padding columns (written
/// as zeros on AVX-512, never written by the generic form).
#[inline(always)]
fn split_plane<E: Elem>(plane: &[E], g: Geo, phases: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>()
        && crate::kernels::isa() == crate::kernels::Isa::Avx512
    {
        use crate::kernels::matmul::{as_f32, as_f32_mut};
        // SAFETY: the CPU has AVX-512 F and VL (`isa()` never exceeds the detected ISA).
        return unsafe { split_plane_avx512(as_f32(plane), g, as_f32_mut(phases)) };
    }
    split_plane_generic(plane, g, phases)
}

/// [`split_plane`] on any CPU: a deinterleave of each row into two of its phase rows, and two
/// short copies for the shifted ones.
#[inline(always)]
fn split_plane_generic<E: Elem>(plane: &[E], g: Geo, phases: &mut [E]) {
    let (tw, pp) = (g.tw, g.phase());
    for (y, row) in plane.chunks_exact(g.w).enumerate() {
        let (i, ry) = (y.div_ceil(2), (y + 1) % 2);
        // Column x sits at padded column x + 1: x = 0, 2, … are the odd padded columns.
        let (rx0, rx1) = phases[4 * ry * pp..][..4 * pp].split_at_mut(2 * pp);
        let ((e0, e1), (o0, o1)) = (rx0.split_at_mut(pp), rx1.split_at_mut(pp));
        let r = i * tw;
        deinterleave(row, &mut o0[r..][..tw], &mut e1[r..][..tw]);
        // The unshifted even phase and the shifted odd one, from those two (their first and
        // last values are padding). `copy_short`: a `copy_from_slice` of a few values would be a
        // `memcpy` call.
        copy_short(&mut e0[r + 1..][..tw - 1], &e1[r..][..tw - 1]);
        copy_short(&mut o1[r..][..tw - 1], &o0[r + 1..][..tw - 1]);
    }
}

/// [`split_plane`] on AVX-512: each row's four phase rows `[e0, e1, o0, o1]` (`e0[j] = p[2j]`,
/// `e1[j] = p[2j + 2]`, `o0[j] = p[2j + 1]`, `o1[j] = p[2j + 3]` of the padded row `p`) 8 (then 4)
/// columns at a time from one load of 16 (8) values, as two two-source permutes, `[o0 | o1]` and
/// `[e0 | e1]`, whose second source holds the values either side of the load (`row[2j − 1]`,
/// `row[2j + 16]`, zero outside the row), and four stores; the last `w mod 8` values one by one.
/// (The generic form's short copies, scalar, were three quarters of the input transform's time
/// in the VGG's step.)
///
/// # Safety
/// The CPU must support AVX-512 F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn split_plane_avx512(plane: &[f32], g: Geo, phases: &mut [f32]) {
    use core::arch::x86_64::*;
    let (w, tw, pp) = (g.w, g.tw, g.phase());
    assert!(
        w >= 1 && tw == w.div_ceil(2) && plane.len() == g.h * w && g.th == g.h.div_ceil(2) && pp == (g.th + 1) * tw
    );
    assert!(phases.len() >= 8 * pp);
    // Lanes 16.. of the permutes select the second source: 16 = `row[2j − 1]`, 24 = the value after.
    let (io, ie) = (
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 2, 4, 6, 8, 10, 12, 14, 24),
        _mm512_setr_epi32(16, 1, 3, 5, 7, 9, 11, 13, 1, 3, 5, 7, 9, 11, 13, 15),
    );
    let (io4, ie4) = (
        _mm512_setr_epi32(0, 2, 4, 6, 2, 4, 6, 24, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_setr_epi32(16, 1, 3, 5, 1, 3, 5, 7, 0, 0, 0, 0, 0, 0, 0, 0),
    );
    let high = |v: __m512| _mm512_castpd_ps(_mm512_castpd256_pd512(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))));
    for (y, row) in plane.chunks_exact(w).enumerate() {
        // Row `y` is padded row `y + 1`: phase row `⌈y/2⌉` of the phases `ry = (y + 1) mod 2`.
        let at = |x: usize| if x < w { row[x] } else { 0.0 };
        let sides = |j: usize, after: usize| {
            let before = if j == 0 { 0.0 } else { row[2 * j - 1] };
            _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(before), _mm512_set1_ps(at(after)))
        };
        let base = 4 * ((y + 1) % 2) * pp + y.div_ceil(2) * tw;
        // SAFETY: `base + 3·pp + tw ≤ 4·pp + th·tw + 3·pp + tw = 8·pp` (`⌈y/2⌉ ≤ th`, `pp =
        // (th + 1)·tw`, asserted): every `[e0, e1, o0, o1]` row below is in `phases`.
        let [e0, e1, o0, o1] = [0, 1, 2, 3].map(|k| unsafe { phases.as_mut_ptr().add(base + k * pp) });
        let mut j = 0;
        while 2 * j + 16 <= w {
            // SAFETY: `2j + 16 ≤ w` values of `row`, `j + 8 ≤ tw` of each phase row.
            unsafe {
                let v = _mm512_loadu_ps(row.as_ptr().add(2 * j));
                let c = sides(j, 2 * j + 16);
                let (o, e) = (_mm512_permutex2var_ps(v, io, c), _mm512_permutex2var_ps(v, ie, c));
                _mm256_storeu_ps(o0.add(j), _mm512_castps512_ps256(o));
                _mm256_storeu_ps(o1.add(j), _mm512_castps512_ps256(high(o)));
                _mm256_storeu_ps(e0.add(j), _mm512_castps512_ps256(e));
                _mm256_storeu_ps(e1.add(j), _mm512_castps512_ps256(high(e)));
            }
            j += 8;
        }
        if 2 * j + 8 <= w {
            // SAFETY: `2j + 8 ≤ w` values of `row` (lanes 8.. of `v` are never selected), `j + 4
            // ≤ tw` of each phase row.
            unsafe {
                let v = _mm512_castps256_ps512(_mm256_loadu_ps(row.as_ptr().add(2 * j)));
                let c = sides(j, 2 * j + 8);
                let (o, e) = (_mm512_permutex2var_ps(v, io4, c), _mm512_permutex2var_ps(v, ie4, c));
                _mm_storeu_ps(o0.add(j), _mm512_castps512_ps128(o));
                _mm_storeu_ps(o1.add(j), _mm512_extractf32x4_ps::<1>(o));
                _mm_storeu_ps(e0.add(j), _mm512_castps512_ps128(e));
                _mm_storeu_ps(e1.add(j), _mm512_extractf32x4_ps::<1>(e));
            }
            j += 4;
        }
        for j in j..tw {
            // SAFETY: `j < tw`: in each phase row.
            unsafe {
                *e0.add(j) = if j == 0 { 0.0 } else { row[2 * j - 1] };
                *e1.add(j) = at(2 * j + 1);
                *o0.add(j) = row[2 * j];
                *o1.add(j) = at(2 * j + 2);
            }
        }
    }
}

/// One output-gradient plane (`h × w`) into its four phases (`per` values each, rows of `tw`):
/// phase `(r, e)`, row `i`, column `j` is `dY` at `(2i + r, 2j + e)` (an odd map's last column of
/// the odd phases, zeroed once by the caller, is never written).
#[inline(always)]
fn split_dy_plane<E: Elem>(plane: &[E], g: Geo, phases: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>()
        && crate::kernels::isa() == crate::kernels::Isa::Avx512
    {
        use crate::kernels::matmul::{as_f32, as_f32_mut};
        // SAFETY: the CPU has AVX-512 F and VL (`isa()` never exceeds the detected ISA).
        return unsafe { split_dy_plane_avx512(as_f32(plane), g, as_f32_mut(phases)) };
    }
    split_dy_plane_generic(plane, g, phases)
}

/// [`split_dy_plane`] on any CPU: a deinterleave of each row.
#[inline(always)]
fn split_dy_plane_generic<E: Elem>(plane: &[E], g: Geo, phases: &mut [E]) {
    let (tw, per) = (g.tw, g.per());
    for (y, row) in plane.chunks_exact(g.w).enumerate() {
        let (i, r) = (y / 2, y % 2);
        let (even, odd) = phases[2 * r * per..][..2 * per].split_at_mut(per);
        deinterleave(row, &mut even[i * tw..][..tw], &mut odd[i * tw..][..tw]);
    }
}

/// [`split_dy_plane`] on AVX-512: 16 (then 8) values of a row at a time, one permute putting the
/// even columns in the low half and the odd ones in the high half, two stores; the last
/// `w mod 8` values one by one. (The generic deinterleave, compiled to two loads, extracts and
/// shuffles per 16 values, was most of the gradient transform's time.)
///
/// # Safety
/// The CPU must support AVX-512 F and VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn split_dy_plane_avx512(plane: &[f32], g: Geo, phases: &mut [f32]) {
    use core::arch::x86_64::*;
    let (w, tw, per) = (g.w, g.tw, g.per());
    assert!(w >= 1 && tw == w.div_ceil(2) && plane.len() == g.h * w && per == g.h.div_ceil(2) * tw);
    assert!(phases.len() >= 4 * per);
    let split = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    let split8 = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let high = |v: __m512| _mm512_castpd_ps(_mm512_castpd256_pd512(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))));
    for (y, row) in plane.chunks_exact(w).enumerate() {
        let at = 2 * (y % 2) * per + y / 2 * tw;
        // SAFETY: `at + per + tw ≤ 2·per + (⌈h/2⌉ − 1)·tw + per + tw = 4·per` (asserted `per`):
        // both phase rows are in `phases`.
        let (even, odd) = unsafe { (phases.as_mut_ptr().add(at), phases.as_mut_ptr().add(at + per)) };
        let mut j = 0;
        while 2 * j + 16 <= w {
            // SAFETY: `2j + 16 ≤ w` values of `row`, `j + 8 ≤ tw` of each phase row.
            unsafe {
                let v = _mm512_permutexvar_ps(split, _mm512_loadu_ps(row.as_ptr().add(2 * j)));
                _mm256_storeu_ps(even.add(j), _mm512_castps512_ps256(v));
                _mm256_storeu_ps(odd.add(j), _mm512_castps512_ps256(high(v)));
            }
            j += 8;
        }
        if 2 * j + 8 <= w {
            // SAFETY: `2j + 8 ≤ w` values of `row`, `j + 4 ≤ tw` of each phase row.
            unsafe {
                let v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row.as_ptr().add(2 * j)), split8);
                _mm_storeu_ps(even.add(j), _mm256_castps256_ps128(v));
                _mm_storeu_ps(odd.add(j), _mm256_extractf128_ps::<1>(v));
            }
            j += 4;
        }
        for j in j..tw {
            // SAFETY: `j < tw`: in each phase row.
            unsafe {
                *even.add(j) = row[2 * j];
                if 2 * j + 1 < w {
                    *odd.add(j) = row[2 * j + 1];
                }
            }
        }
    }
}

/// `row[2j] = first[j] + bias`, `row[2j + 1] = second[j] + bias` (an odd row's last value from
/// `first`): 8 and 4 pairs at a time as two loads, a constant shuffle and one store.
#[inline(always)]
fn interleave<E: Elem>(first: &[E], second: &[E], bias: E, row: &mut [E]) {
    let n = row.len() / 2;
    let mut j = 0;
    while j + 8 <= n {
        let (a, b): ([E; 8], [E; 8]) = (lanes(first, j), lanes(second, j));
        let v = [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7]];
        row[2 * j..2 * j + 16].copy_from_slice(&add(v, [bias; 16]));
        j += 8;
    }
    while j + 4 <= n {
        let (a, b): ([E; 4], [E; 4]) = (lanes(first, j), lanes(second, j));
        let v = [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3]];
        row[2 * j..2 * j + 8].copy_from_slice(&add(v, [bias; 8]));
        j += 4;
    }
    for j in j..n {
        row[2 * j] = first[j] + bias;
        row[2 * j + 1] = second[j] + bias;
    }
    if row.len() % 2 == 1 {
        row[2 * n] = first[n] + bias;
    }
}

multiversion! {
    /// `V[p][ci][t] = (Bᵀ d B)[p]` for every channel of the samples `x` (`sn × c × h × w`) and
    /// tile `t` of the block (`tb` tiles); `tmp` holds one channel's phases.
    pub(super) fn input_tiles<E: Elem>(x: &[E], c: usize, g: Geo, tb: usize, v: &mut [E], tmp: &mut [E]) => input_tiles_body
}

#[inline(always)]
fn input_tiles_body<E: Elem, const FMA: bool>(x: &[E], c: usize, g: Geo, tb: usize, v: &mut [E], tmp: &mut [E]) {
    let (tw, per, pp) = (g.tw, g.per(), g.phase());
    let phases = &mut tmp[..8 * pp];
    phases.fill(E::zero());
    for (s, xs) in x.chunks_exact(c * g.h * g.w).enumerate() {
        for (ci, plane) in xs.chunks_exact(g.h * g.w).enumerate() {
            split_plane(plane, g, phases);
            let (stride, base) = (tb, ci * PTS * tb + s * per);
            assert!(phases.len() >= 8 * pp && per + tw == pp && v.len() >= 15 * stride + base + per);
            let (ph, vp) = (phases.as_ptr(), v.as_mut_ptr());
            // SAFETY: the reads stay in the `8·pp` phases and the writes in `v` (asserted above).
            unsafe { each_group!(per, tile_in(ph, (pp, tw), vp, (stride, base))) };
        }
    }
}

/// `N` tiles (from `t`) of one channel's `Bᵀ d B`: window value `(a, b)` of tile `t` is
/// `phases[((2·(a mod 2) + b mod 2)·2 + ⌊b/2⌋)·pp + ⌊a/2⌋·tw + t]`; point `p` goes to
/// `v[p·stride + base + t ..]`. (No closures here: they would be compiled without the caller's
/// target features.)
///
/// # Safety
/// `phases` is valid for reads of `8·pp` values, and `v` for writes at
/// `p·stride + base + t .. + N` for every point `p < 16` (the callers assert both for the whole
/// range of `t`).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (`b` indexes each row of `e`)
unsafe fn tile_in<E: Elem, const N: usize>(
    phases: *const E,
    (pp, tw): (usize, usize),
    v: *mut E,
    (stride, base): (usize, usize),
    t: usize,
) {
    // Row `a` of the window starts at phase (a mod 2, ·), row ⌊a/2⌋ (written out: a loop over the
    // rows lets the compiler gather across them).
    // (b = 0, 1, 2, 3 read arrays rx·2 + sh = 0, 2, 1, 3 of the row's phase pair.)
    let row = |a: usize| phases.wrapping_add(a % 2 * 4 * pp + a / 2 * tw + t);
    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
    // SAFETY: reads up to `4·pp + 3·pp + tw + t + N ≤ 7·pp + tw + per = 8·pp` (`t + N ≤ per`,
    // `per + tw = pp`).
    let e: [[[E; N]; 4]; 4] = unsafe {
        [
            bt([load(r0, 0), load(r0, 2 * pp), load(r0, pp), load(r0, 3 * pp)]),
            bt([load(r1, 0), load(r1, 2 * pp), load(r1, pp), load(r1, 3 * pp)]),
            bt([load(r2, 0), load(r2, 2 * pp), load(r2, pp), load(r2, 3 * pp)]),
            bt([load(r3, 0), load(r3, 2 * pp), load(r3, pp), load(r3, 3 * pp)]),
        ]
    };
    for b in 0..4 {
        let col = bt([e[0][b], e[1][b], e[2][b], e[3][b]]);
        for (i, ci) in col.into_iter().enumerate() {
            // SAFETY: in the range the caller asserted.
            unsafe { store(v, (4 * i + b) * stride + base + t, ci) };
        }
    }
}

multiversion! {
    /// `Z[p][fi][t] = (A dY Aᵀ)[p]` for every filter of the output gradients `dy` (`sn × f × h × w`)
    /// and tile `t`.
    pub(super) fn gradient_tiles<E: Elem>(dy: &[E], f: usize, g: Geo, tb: usize, z: &mut [E], tmp: &mut [E]) => gradient_tiles_body
}

#[inline(always)]
fn gradient_tiles_body<E: Elem, const FMA: bool>(dy: &[E], f: usize, g: Geo, tb: usize, z: &mut [E], tmp: &mut [E]) {
    let per = g.per();
    let phases = &mut tmp[..4 * per];
    phases.fill(E::zero());
    for (s, ds) in dy.chunks_exact(f * g.h * g.w).enumerate() {
        for (fi, plane) in ds.chunks_exact(g.h * g.w).enumerate() {
            split_dy_plane(plane, g, phases);
            let (stride, base) = (tb, fi * PTS * tb + s * per);
            assert!(phases.len() >= 4 * per && z.len() >= 15 * stride + base + per);
            let (ph, zp) = (phases.as_ptr(), z.as_mut_ptr());
            // SAFETY: the reads stay in the `4·per` phases and the writes in `z` (asserted above).
            unsafe { each_group!(per, tile_grad(ph, per, zp, (stride, base))) };
        }
    }
}

/// `N` tiles (from `t`) of one filter's `A dY Aᵀ`; point `p` goes to
/// `z[p·stride + base + t ..]`.
///
/// # Safety
/// `phases` is valid for reads of `4·per` values and `z` for writes at
/// `p·stride + base + t .. + N` for every point `p < 16` (asserted by the caller).
#[inline(always)]
unsafe fn tile_grad<E: Elem, const N: usize>(
    phases: *const E,
    per: usize,
    z: *mut E,
    (stride, base): (usize, usize),
    t: usize,
) {
    let p = phases.wrapping_add(t);
    // SAFETY: `k·per + t + N ≤ 4·per` for `k < 4`.
    let (q0, q1) =
        unsafe { (ax::<E, N>([load(p, 0), load(p, per)]), ax::<E, N>([load(p, 2 * per), load(p, 3 * per)])) };
    for b in 0..4 {
        for (i, col) in ax([q0[b], q1[b]]).into_iter().enumerate() {
            // SAFETY: in the range the caller asserted.
            unsafe { store(z, (4 * i + b) * stride + base + t, col) };
        }
    }
}

multiversion! {
    /// `Y = Aᵀ M A (+ bias)` of every tile from the products `m` (`16 × f × tb`), into the samples
    /// `y` (`sn × f × h × w`); `tmp` holds one filter's four output phases.
    pub(super) fn output_tiles<E: Elem>(m: &[E], f: usize, g: Geo, tb: usize, bias: Option<&[E]>, y: &mut [E], tmp: &mut [E]) => output_tiles_body
}

#[inline(always)]
fn output_tiles_body<E: Elem, const FMA: bool>(
    m: &[E],
    f: usize,
    g: Geo,
    tb: usize,
    bias: Option<&[E]>,
    y: &mut [E],
    tmp: &mut [E],
) {
    let (tw, per) = (g.tw, g.per());
    let phases = &mut tmp[..4 * per];
    for (s, ys) in y.chunks_exact_mut(f * g.h * g.w).enumerate() {
        for (fi, plane) in ys.chunks_exact_mut(g.h * g.w).enumerate() {
            let (stride, base) = (tb, fi * PTS * tb + s * per);
            assert!(phases.len() >= 4 * per && m.len() >= 15 * stride + base + per);
            let (mp, ph) = (m.as_ptr(), phases.as_mut_ptr());
            // SAFETY: the reads stay in `m` and the writes in the `4·per` phases (asserted above).
            unsafe { each_group!(per, tile_out(mp, (stride, base), ph, per)) };
            let bias = bias.map_or(E::zero(), |b| b[fi]);
            for (oy, row) in plane.chunks_exact_mut(g.w).enumerate() {
                let (i, r) = (oy / 2, oy % 2);
                let (even, odd) = (&phases[2 * r * per + i * tw..][..tw], &phases[(2 * r + 1) * per + i * tw..][..tw]);
                interleave(even, odd, bias, row);
            }
        }
    }
}

/// `N` tiles (from `t`) of one filter's `Aᵀ M A`: point `p` is at `m[p·stride + base + t ..]`,
/// output `(r, e)` of the tile goes to `phases[(2r + e)·per + t]`.
///
/// # Safety
/// `m` is valid for reads at `p·stride + base + t .. + N` for every point `p < 16`, and
/// `phases` for writes of `4·per` values (asserted by the caller).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (`e` indexes each row of `s`)
unsafe fn tile_out<E: Elem, const N: usize>(
    m: *const E,
    (stride, base): (usize, usize),
    phases: *mut E,
    per: usize,
    t: usize,
) {
    let p = m.wrapping_add(base + t);
    let ld = |k: usize| p.wrapping_add(k * stride);
    // SAFETY: in the range the caller asserted (written out, as in `tile_in`).
    let s: [[[E; N]; 2]; 4] = unsafe {
        [
            at([load(ld(0), 0), load(ld(1), 0), load(ld(2), 0), load(ld(3), 0)]),
            at([load(ld(4), 0), load(ld(5), 0), load(ld(6), 0), load(ld(7), 0)]),
            at([load(ld(8), 0), load(ld(9), 0), load(ld(10), 0), load(ld(11), 0)]),
            at([load(ld(12), 0), load(ld(13), 0), load(ld(14), 0), load(ld(15), 0)]),
        ]
    };
    for e in 0..2 {
        for (r, v) in at([s[0][e], s[1][e], s[2][e], s[3][e]]).into_iter().enumerate() {
            // SAFETY: `(2r + e)·per + t + N ≤ 4·per`.
            unsafe { store(phases, (2 * r + e) * per + t, v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Array `(2·ry + rx)·2 + sh`, row `i`, column `j` of the phases: the padded plane's value at
    /// `(2i + ry, 2(j + sh) + rx)`, zero in the padding.
    fn phases_by_definition(plane: &[f32], g: Geo) -> Vec<f32> {
        let (pp, mut out) = (g.phase(), vec![0.0; g.tmp()]);
        let padded = |y: usize, x: usize| {
            if (1..=g.h).contains(&y) && (1..=g.w).contains(&x) { plane[(y - 1) * g.w + x - 1] } else { 0.0 }
        };
        for (ry, rx, sh) in (0..8).map(|a| (a / 4, a / 2 % 2, a % 2)) {
            for (i, j) in (0..=g.th).flat_map(|i| (0..g.tw).map(move |j| (i, j))) {
                out[((2 * ry + rx) * 2 + sh) * pp + i * g.tw + j] = padded(2 * i + ry, 2 * (j + sh) + rx);
            }
        }
        out
    }

    /// Both forms of `split_dy_plane` give the output gradient's phases of the definition (phase
    /// `(r, e)`, row `i`, column `j`: `dY` at `(2i + r, 2j + e)`, zero outside), to the bit, for a
    /// second plane into the same scratch, on the sizes of `planes_split_into_their_phases`.
    #[test]
    fn gradient_planes_split_into_their_phases() {
        for (h, w) in [(8, 8), (16, 16), (7, 9), (5, 8), (9, 17), (4, 31), (3, 32), (6, 40), (2, 13), (1, 8)] {
            let geo = Geo { h, w, th: h.div_ceil(2), tw: w.div_ceil(2) };
            let (tw, per) = (geo.tw, geo.per());
            let plane = |k: usize| -> Vec<f32> {
                let mut p: Vec<f32> = (0..h * w).map(|i| ((i * 7919 + k * 31) % 1000) as f32 - 500.0).collect();
                (p[0], p[h * w - 1]) = (f32::NAN, -0.0);
                p
            };
            let (first, second) = (plane(1), plane(2));
            let mut want = vec![0.0f32; 4 * per];
            for (r, e, i, j) in
                (0..4).flat_map(|a| (0..geo.th).flat_map(move |i| (0..tw).map(move |j| (a / 2, a % 2, i, j))))
            {
                let (y, x) = (2 * i + r, 2 * j + e);
                want[(2 * r + e) * per + i * tw + j] = if y < h && x < w { second[y * w + x] } else { 0.0 };
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut generic = vec![0.0f32; 4 * per];
            for p in [&first, &second] {
                split_dy_plane_generic(p, geo, &mut generic);
            }
            assert_eq!(bits(&generic), bits(&want), "generic, {h} × {w}");
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::detected_isa() == crate::kernels::Isa::Avx512 {
                let mut wide = vec![0.0f32; 4 * per];
                for p in [&first, &second] {
                    // SAFETY: the CPU has AVX-512 (detected just above).
                    unsafe { split_dy_plane_avx512(p, geo, &mut wide) };
                }
                assert_eq!(bits(&wide), bits(&want), "AVX-512, {h} × {w}");
            }
        }
    }

    /// Both forms of `split_plane` (the generic one, and AVX-512's where the CPU has it) give the
    /// phases of the definition, to the bit: even and odd sizes, rows of 8, 16 and more (and
    /// their `w mod 8` tails), a second plane into the same scratch (AVX-512 writes the padding
    /// columns: stale values would show), NaN and signed zeros carried as they are.
    #[test]
    fn planes_split_into_their_phases() {
        for (h, w) in [(8, 8), (16, 16), (7, 9), (5, 8), (9, 17), (4, 31), (3, 32), (6, 40), (2, 13)] {
            let geo = Geo { h, w, th: h.div_ceil(2), tw: w.div_ceil(2) };
            let plane = |k: usize| -> Vec<f32> {
                let mut p: Vec<f32> = (0..h * w).map(|i| ((i * 7919 + k * 31) % 1000) as f32 - 500.0).collect();
                (p[0], p[h * w - 1]) = (f32::NAN, -0.0);
                p
            };
            let (first, second) = (plane(1), plane(2));
            let want = phases_by_definition(&second, geo);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut generic = vec![0.0f32; geo.tmp()];
            for p in [&first, &second] {
                split_plane_generic(p, geo, &mut generic);
            }
            assert_eq!(bits(&generic), bits(&want), "generic, {h} × {w}");
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::detected_isa() == crate::kernels::Isa::Avx512 {
                let mut wide = vec![0.0f32; geo.tmp()];
                for p in [&first, &second] {
                    // SAFETY: the CPU has AVX-512 (detected just above).
                    unsafe { split_plane_avx512(p, geo, &mut wide) };
                }
                assert_eq!(bits(&wide), bits(&want), "AVX-512, {h} × {w}");
            }
        }
    }
}
