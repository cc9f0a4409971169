//! The transforms of the Winograd path with the samples of a block as vector lanes: the block's
//! inputs and output gradients are first gathered so that the `S` samples' values of one channel
//! and position are consecutive (`gather`); a transform then reads whole vectors — one per value
//! of a tile's window — and writes whole vectors of `V` or `Z`, with no shuffle and no tile wasted,
//! whatever the map's size. The outputs are scattered back to the samples' planes.
//!
//! Everything here adds and subtracts (the compiler turns the `[E; S]` arrays into vector
//! registers of the caller's width: [`multiversion!`](crate::kernels::multiversion)); the loads and
//! stores go through raw pointers whose ranges the callers assert once per call.

use super::ops::{add, at, ax, bt, load, store};
use super::{Geo, PTS, S};
use crate::kernels::{Elem, multiversion};

/// `[a0, b0, a1, b1, …]` of the first halves of `a` and `b`.
#[inline(always)]
fn zip_lo<E: Elem>(a: [E; S], b: [E; S]) -> [E; S] {
    [a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7]]
}

/// `[a8, b8, a9, b9, …]` of the second halves of `a` and `b`.
#[inline(always)]
fn zip_hi<E: Elem>(a: [E; S], b: [E; S]) -> [E; S] {
    [a[8], b[8], a[9], b[9], a[10], b[10], a[11], b[11], a[12], b[12], a[13], b[13], a[14], b[14], a[15], b[15]]
}

/// The transpose of a 16 × 16 block: four rounds of the perfect shuffle of row `i` with row
/// `i + 8` (two constant two-source shuffles per pair and round, 64 in all).
#[inline(always)]
fn transpose<E: Elem>(mut r: [[E; S]; S]) -> [[E; S]; S] {
    for _ in 0..4 {
        let old = r;
        for i in 0..S / 2 {
            r[2 * i] = zip_lo(old[i], old[i + S / 2]);
            r[2 * i + 1] = zip_hi(old[i], old[i + S / 2]);
        }
    }
    r
}

multiversion! {
    /// Gathers the samples `src` (`sn ≤ S` of `ch × h × w`) into `dst` (`ch × hp × wp × S`, at least
    /// that long: sample `l` of channel `ci` at row `y + off`, column `x + off` is
    /// `dst[((ci·hp + y + off)·wp + x + off)·S + l]`); the rest of `dst` (the padding, and the lanes
    /// past `sn`) is zero. 16 pixels of 16 samples at a time, transposed in registers.
    pub(super) fn gather<E: Elem>(src: &[E], ch: usize, g: Geo, geo: (usize, usize, usize), dst: &mut [E]) => gather_body
}

#[inline(always)]
fn gather_body<E: Elem, const FMA: bool>(
    src: &[E],
    ch: usize,
    g: Geo,
    (hp, wp, off): (usize, usize, usize),
    dst: &mut [E],
) {
    let plane = g.h * g.w;
    let sn = src.len() / (ch * plane);
    assert!(sn <= S && dst.len() >= ch * hp * wp * S && g.h + off <= hp && g.w + off <= wp);
    dst[..ch * hp * wp * S].fill(E::zero());
    let at = |ci: usize, pix: usize| ((ci * hp + pix / g.w + off) * wp + pix % g.w + off) * S;
    for ci in 0..ch {
        let mut pix = 0;
        while pix + S <= plane {
            let mut rows = [[E::zero(); S]; S];
            for (l, row) in rows.iter_mut().enumerate().take(sn) {
                row.copy_from_slice(&src[(l * ch + ci) * plane + pix..][..S]);
            }
            for (k, col) in transpose(rows).iter().enumerate() {
                dst[at(ci, pix + k)..][..S].copy_from_slice(col);
            }
            pix += S;
        }
        for pix in pix..plane {
            let o = at(ci, pix);
            for l in 0..sn {
                dst[o + l] = src[(l * ch + ci) * plane + pix];
            }
        }
    }
}

multiversion! {
    /// Scatters `yt` (`f × h × w × S`, as `output_tiles` writes it) to the `sn ≤ S` samples `y`
    /// (`sn × f × h × w`): the inverse of [`gather`] without padding.
    pub(super) fn scatter<E: Elem>(yt: &[E], f: usize, g: Geo, y: &mut [E]) => scatter_body
}

#[inline(always)]
fn scatter_body<E: Elem, const FMA: bool>(yt: &[E], f: usize, g: Geo, y: &mut [E]) {
    let plane = g.h * g.w;
    let sn = y.len() / (f * plane);
    assert!(sn <= S && yt.len() >= f * plane * S);
    for fi in 0..f {
        let src = &yt[fi * plane * S..][..plane * S];
        let mut pix = 0;
        while pix + S <= plane {
            let mut cols = [[E::zero(); S]; S];
            for (k, col) in cols.iter_mut().enumerate() {
                col.copy_from_slice(&src[(pix + k) * S..][..S]);
            }
            for (l, row) in transpose(cols).iter().enumerate().take(sn) {
                y[(l * f + fi) * plane + pix..][..S].copy_from_slice(row);
            }
            pix += S;
        }
        for pix in pix..plane {
            for l in 0..sn {
                y[(l * f + fi) * plane + pix] = src[pix * S + l];
            }
        }
    }
}

multiversion! {
    /// `V[p][ci][q·S + l] = (Bᵀ d B)[p]` of the tile at position `pos0 + q` (`q < tp`) of every
    /// channel and lane, from the gathered padded input `xt` (`c × (2·th + 2) × (2·tw + 2) × S`)
    /// into `v` (`16 × c × tp·S`).
    pub(super) fn input_tiles<E: Elem>(xt: &[E], c: usize, g: Geo, span: (usize, usize), v: &mut [E]) => input_body
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // (`b` indexes each row of `e`)
fn input_body<E: Elem, const FMA: bool>(xt: &[E], c: usize, g: Geo, span: (usize, usize), v: &mut [E]) {
    let (pos0, tp) = span;
    let (hp, wp) = (2 * g.th + 2, 2 * g.tw + 2);
    let stride = c * tp * S;
    assert!(xt.len() >= c * hp * wp * S && v.len() >= PTS * stride && pos0 + tp <= g.th * g.tw);
    let (xp, vp) = (xt.as_ptr(), v.as_mut_ptr());
    let row = wp * S;
    for ci in 0..c {
        for q in 0..tp {
            let (ti, tj) = ((pos0 + q) / g.tw, (pos0 + q) % g.tw);
            let w0 = ((ci * hp + 2 * ti) * wp + 2 * tj) * S;
            // SAFETY: the window's rows 2ti..2ti + 4 and columns 2tj..2tj + 4 are inside the
            // padded plane (ti < th, tj < tw), so every read is inside `xt`, as asserted above.
            // (Macros, not closures: a closure would be compiled without the caller's features.)
            macro_rules! rd {
                ($a:expr) => {{
                    let p = xp.add(w0 + $a * row);
                    bt([load(p, 0), load(p, S), load(p, 2 * S), load(p, 3 * S)])
                }};
            }
            let e: [[[E; S]; 4]; 4] = unsafe { [rd!(0), rd!(1), rd!(2), rd!(3)] };
            let at = ci * tp * S + q * S;
            for b in 0..4 {
                let col = bt([e[0][b], e[1][b], e[2][b], e[3][b]]);
                for (i, ci_) in col.into_iter().enumerate() {
                    // SAFETY: point 4i + b < 16, `at + S ≤ stride`: inside `v` (asserted above).
                    unsafe { store(vp, (4 * i + b) * stride + at, ci_) };
                }
            }
        }
    }
}

multiversion! {
    /// `Z[p][fi][q·S + l] = (A dY Aᵀ)[p]` of the tile at position `pos0 + q` of every filter and
    /// lane, from the gathered output gradient `dyt` (`f × 2·th × 2·tw × S`, zero past the map),
    /// into `z` (`16 × f × tp·S`).
    pub(super) fn gradient_tiles<E: Elem>(dyt: &[E], f: usize, g: Geo, span: (usize, usize), z: &mut [E]) => gradient_body
}

#[inline(always)]
fn gradient_body<E: Elem, const FMA: bool>(dyt: &[E], f: usize, g: Geo, span: (usize, usize), z: &mut [E]) {
    let (pos0, tp) = span;
    let (hp, wp) = (2 * g.th, 2 * g.tw);
    let stride = f * tp * S;
    assert!(dyt.len() >= f * hp * wp * S && z.len() >= PTS * stride && pos0 + tp <= g.th * g.tw);
    let (dp, zp) = (dyt.as_ptr(), z.as_mut_ptr());
    for fi in 0..f {
        for q in 0..tp {
            let (ti, tj) = ((pos0 + q) / g.tw, (pos0 + q) % g.tw);
            let w0 = ((fi * hp + 2 * ti) * wp + 2 * tj) * S;
            // SAFETY: rows 2ti, 2ti + 1 and columns 2tj, 2tj + 1 are inside the gathered map.
            let (q0, q1): ([[E; S]; 4], [[E; S]; 4]) = unsafe {
                let r1 = dp.add(w0 + wp * S);
                (ax([load(dp, w0), load(dp, w0 + S)]), ax([load(r1, 0), load(r1, S)]))
            };
            let at = fi * tp * S + q * S;
            for b in 0..4 {
                for (i, col) in ax([q0[b], q1[b]]).into_iter().enumerate() {
                    // SAFETY: inside `z` (asserted above).
                    unsafe { store(zp, (4 * i + b) * stride + at, col) };
                }
            }
        }
    }
}

multiversion! {
    /// `Y = Aᵀ M A (+ bias)` of the tiles at positions `pos0 .. pos0 + tp` from the products `m`
    /// (`16 × f × tp·S`), into `yt` (`f × h × w × S`; [`scatter`] takes it to the samples).
    pub(super) fn output_tiles<E: Elem>(m: &[E], f: usize, g: Geo, span: (usize, usize), bias: Option<&[E]>, yt: &mut [E]) => output_body
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // (`e` indexes each row of `s`)
fn output_body<E: Elem, const FMA: bool>(
    m: &[E],
    f: usize,
    g: Geo,
    span: (usize, usize),
    bias: Option<&[E]>,
    yt: &mut [E],
) {
    let (pos0, tp) = span;
    let (plane, stride) = (g.h * g.w, f * tp * S);
    assert!(m.len() >= PTS * stride && yt.len() >= f * plane * S && pos0 + tp <= g.th * g.tw);
    let mp = m.as_ptr();
    for fi in 0..f {
        let bias = bias.map_or(E::zero(), |b| b[fi]);
        for q in 0..tp {
            let (ti, tj) = ((pos0 + q) / g.tw, (pos0 + q) % g.tw);
            let at = fi * tp * S + q * S;
            // SAFETY: points 0..16 at `at`: inside `m` (asserted above).
            macro_rules! rd {
                ($p:expr) => {{
                    let p = mp.add($p * stride + at);
                    self::at([load(p, 0), load(p, stride), load(p, 2 * stride), load(p, 3 * stride)])
                }};
            }
            let s: [[[E; S]; 2]; 4] = unsafe { [rd!(0), rd!(4), rd!(8), rd!(12)] };
            for e in 0..2 {
                let ox = 2 * tj + e;
                let col = self::at([s[0][e], s[1][e], s[2][e], s[3][e]]);
                for (r, v) in col.into_iter().enumerate() {
                    let oy = 2 * ti + r;
                    if oy < g.h && ox < g.w {
                        yt[(fi * plane + oy * g.w + ox) * S..][..S].copy_from_slice(&add(v, [bias; S]));
                    }
                }
            }
        }
    }
}
