//! A plane's rows into its phases and back, for the transforms of `phases.rs`: the input's eight
//! phase arrays (even and odd rows × even and odd columns of the padded plane, each also shifted
//! by one column), the output gradient's four, and the output rows from its four. Each has a
//! generic form (deinterleaves and interleaves the compiler vectorises, short copies); the two
//! splits also have, for f32 on AVX-512, a form of explicit permutes. All are tested against the
//! definitions to the bit.

use super::Geo;
use super::ops::add;
#[cfg(target_arch = "x86_64")]
use super::wide_f32;
use crate::kernels::{Elem, copy_short};
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

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
pub(super) fn split_plane<E: Elem>(plane: &[E], g: Geo, phases: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    if let Some((plane, phases)) = wide_f32(plane, phases) {
        // SAFETY: the CPU has AVX-512 F and VL (`wide_f32`).
        return unsafe { split_plane_avx512(plane, g, phases) };
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

/// Lanes 8..16 of `v` in lanes 0..8 (the upper 256 bits, as a 512-bit value: `extractf64x4`,
/// which needs only AVX-512 F).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn high(v: __m512) -> __m512 {
    _mm512_castpd_ps(_mm512_castpd256_pd512(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))))
}

/// One output-gradient plane (`h × w`) into its four phases (`per` values each, rows of `tw`):
/// phase `(r, e)`, row `i`, column `j` is `dY` at `(2i + r, 2j + e)` (an odd map's last column of
/// the odd phases, zeroed once by the caller, is never written).
#[inline(always)]
pub(super) fn split_dy_plane<E: Elem>(plane: &[E], g: Geo, phases: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    if let Some((plane, phases)) = wide_f32(plane, phases) {
        // SAFETY: the CPU has AVX-512 F and VL (`wide_f32`).
        return unsafe { split_dy_plane_avx512(plane, g, phases) };
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
    let (w, tw, per) = (g.w, g.tw, g.per());
    assert!(w >= 1 && tw == w.div_ceil(2) && plane.len() == g.h * w && per == g.h.div_ceil(2) * tw);
    assert!(phases.len() >= 4 * per);
    let split = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    let split8 = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
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

/// Output rows from the four output phases of a filter (`per` values each, rows of `tw`): row
/// `2i + r`, column `2j + e` of `plane` (`h × w`) is phase `(r, e)`'s value `i·tw + j`, plus
/// `bias`, by an interleave of each row's two phase rows. (An AVX-512 form of permutes measured
/// the same: the output transform's time is in its stores to the output.)
#[inline(always)]
pub(super) fn join_plane<E: Elem>(phases: &[E], g: Geo, bias: E, plane: &mut [E]) {
    let (tw, per) = (g.tw, g.per());
    for (oy, row) in plane.chunks_exact_mut(g.w).enumerate() {
        let (i, r) = (oy / 2, oy % 2);
        let (even, odd) = (&phases[2 * r * per + i * tw..][..tw], &phases[(2 * r + 1) * per + i * tw..][..tw]);
        interleave(even, odd, bias, row);
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

    /// `join_plane` gives the rows of the definition (row `2i + r`, column `2j + e`: phase
    /// `(r, e)`'s value `i·tw + j` plus the bias), to the bit, on odd and even sizes.
    #[test]
    fn output_rows_join_from_their_phases() {
        for (h, w) in [(8, 8), (16, 16), (7, 9), (5, 8), (9, 17), (4, 31), (3, 32), (6, 40), (2, 13), (1, 8)] {
            let geo = Geo { h, w, th: h.div_ceil(2), tw: w.div_ceil(2) };
            let (tw, per) = (geo.tw, geo.per());
            let mut phases: Vec<f32> = (0..4 * per).map(|i| ((i * 7919) % 1000) as f32 / 8.0 - 60.0).collect();
            (phases[0], phases[per + 1]) = (f32::NAN, -0.0);
            let bias = 0.375f32;
            let want: Vec<u32> = (0..h * w)
                .map(|k| {
                    let (y, x) = (k / w, k % w);
                    (phases[(2 * (y % 2) + x % 2) * per + y / 2 * tw + x / 2] + bias).to_bits()
                })
                .collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut got = vec![f32::NAN; h * w];
            join_plane(&phases, geo, bias, &mut got);
            assert_eq!(bits(&got), want, "{h} × {w}");
        }
    }
}
