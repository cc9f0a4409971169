//! The transforms of the Winograd path with the tiles of one plane as vector lanes, for maps at
//! least 8 wide: each input plane is first split into its four *phases* (the even and odd rows ×
//! the even and odd columns of the padded plane), rows of `tw`, each phase also kept shifted left
//! by one column. Value `(a, b)` of the window of tile `(ti, tj)` is then value
//! `(ti + ⌊a/2⌋)·tw + tj` of phase `(a mod 2, b mod 2)` shifted by `⌊b/2⌋`: for consecutive tiles,
//! consecutive values of one array, so the transforms add and subtract whole vectors of 16 tiles,
//! with no gather and no tile wasted. (An earlier form kept one extra column of tiles per row
//! instead of the shifted copies, computed and dropped: 1/8 more products on 16-wide maps, 1/4 on
//! 8-wide ones; the VGG's step ran 4 % slower with it.) `lanes.rs` takes narrower maps.

use super::ops::{at, ax, bt, load, store};
use super::rows::{join_plane, split_dy_plane, split_plane};
use super::{Geo, PTS};
use crate::kernels::{Elem, multiversion};

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
    let per = g.per();
    let phases = &mut tmp[..4 * per];
    for (s, ys) in y.chunks_exact_mut(f * g.h * g.w).enumerate() {
        for (fi, plane) in ys.chunks_exact_mut(g.h * g.w).enumerate() {
            let (stride, base) = (tb, fi * PTS * tb + s * per);
            assert!(phases.len() >= 4 * per && m.len() >= 15 * stride + base + per);
            let (mp, ph) = (m.as_ptr(), phases.as_mut_ptr());
            // SAFETY: the reads stay in `m` and the writes in the `4·per` phases (asserted above).
            unsafe { each_group!(per, tile_out(mp, (stride, base), ph, per)) };
            join_plane(phases, g, bias.map_or(E::zero(), |b| b[fi]), plane);
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
