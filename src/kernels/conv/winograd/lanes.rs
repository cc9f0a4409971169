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
#[cfg(target_arch = "x86_64")]
use super::wide_f32;
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
/// (Each round builds a new array from the old one, written out: a loop over the rounds copying
/// the block into a temporary compiled to a 1 KiB `memmove` per round, 1 % of the VGG's step.)
#[inline(always)]
fn transpose<E: Elem>(r: [[E; S]; S]) -> [[E; S]; S] {
    #[inline(always)]
    fn round<E: Elem>(o: [[E; S]; S]) -> [[E; S]; S] {
        let (lo, hi) = (|i: usize| zip_lo(o[i], o[i + 8]), |i: usize| zip_hi(o[i], o[i + 8]));
        [lo(0), hi(0), lo(1), hi(1), lo(2), hi(2), lo(3), hi(3), lo(4), hi(4), lo(5), hi(5), lo(6), hi(6), lo(7), hi(7)]
    }
    round(round(round(round(r))))
}

/// [`transpose`] on AVX-512, loads and stores included: row `l < rows` of the block is
/// `src[base + l·stride ..][..16]` (rows past `rows` are zero), and column `k < cols` of the
/// transpose goes to `dst[offs[k] ..][..16]`. The same four perfect-shuffle rounds, each pair of
/// rows two `vpermt2ps`, all in registers (the generic form, compiled from arrays, keeps the
/// block in memory between rounds and spills value by value).
///
/// # Safety
/// The CPU must support AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_avx512(
    src: &[f32],
    (base, stride, rows): (usize, usize, usize),
    dst: &mut [f32],
    (offs, cols): (&[usize; S], usize),
) {
    use core::arch::x86_64::*;
    assert!(rows <= S && cols <= S && (rows == 0 || base + (rows - 1) * stride + S <= src.len()));
    assert!(offs[..cols].iter().all(|&o| o + S <= dst.len()));
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    // SAFETY: rows `l < rows` are inside `src` (asserted).
    let mut r: [__m512; S] = core::array::from_fn(|l| {
        if l < rows { unsafe { _mm512_loadu_ps(src.as_ptr().add(base + l * stride)) } } else { _mm512_setzero_ps() }
    });
    for _ in 0..4 {
        let o = r;
        r = core::array::from_fn(|k| {
            let i = k / 2;
            _mm512_permutex2var_ps(o[i], if k % 2 == 0 { lo } else { hi }, o[i + S / 2])
        });
    }
    for (k, v) in r.into_iter().enumerate().take(cols) {
        // SAFETY: `offs[k] + 16 ≤ dst.len()` for `k < cols` (asserted).
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(offs[k]), v) };
    }
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
            #[cfg(target_arch = "x86_64")]
            if let Some((src, dst)) = wide_f32(src, dst) {
                let offs = core::array::from_fn(|k| at(ci, pix + k));
                // SAFETY: the CPU has AVX-512 F (`wide_f32`).
                unsafe { transpose_avx512(src, (ci * plane + pix, ch * plane, sn), dst, (&offs, S)) };
                pix += S;
                continue;
            }
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
            #[cfg(target_arch = "x86_64")]
            if let Some((src, y)) = wide_f32(src, y) {
                let offs = core::array::from_fn(|l| (l * f + fi) * plane + pix);
                // SAFETY: the CPU has AVX-512 F (`wide_f32`).
                unsafe { transpose_avx512(src, (pix * S, S, S), y, (&offs, sn)) };
                pix += S;
                continue;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 block transpose (where the CPU has it) gives the generic one's values: a full
    /// block, fewer rows (the rest read as zeros), fewer columns written (the rest of `dst` left
    /// alone), scattered and overlapping-free offsets, NaN and −0 carried as they are.
    #[test]
    fn the_avx512_transpose_is_the_transpose() {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::detected_isa() == crate::kernels::Isa::Avx512 {
            let mut src: Vec<f32> = (0..40 * 20).map(|i| ((i * 7919) % 1000) as f32 - 500.0).collect();
            (src[3], src[45]) = (f32::NAN, -0.0);
            for (base, stride, rows, cols) in
                [(0, 40, 16, 16), (3, 41, 5, 16), (7, 16, 16, 9), (0, 20, 1, 1), (2, 17, 0, 4)]
            {
                let offs: [usize; S] = core::array::from_fn(|k| 5 + 23 * k);
                let mut block = [[0.0f32; S]; S];
                for (l, row) in block.iter_mut().enumerate().take(rows) {
                    row.copy_from_slice(&src[base + l * stride..][..S]);
                }
                let mut want = vec![1.5f32; 5 + 23 * S];
                for (k, col) in transpose(block).iter().enumerate().take(cols) {
                    want[offs[k]..][..S].copy_from_slice(col);
                }
                let mut got = vec![1.5f32; 5 + 23 * S];
                // SAFETY: the CPU has AVX-512 (detected just above).
                unsafe { transpose_avx512(&src, (base, stride, rows), &mut got, (&offs, cols)) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "rows {rows}, columns {cols}");
            }
        }
        // The generic transpose is one: element (i, j) goes to (j, i).
        let block: [[f32; S]; S] = core::array::from_fn(|i| core::array::from_fn(|j| (i * S + j) as f32));
        let t = transpose(block);
        assert!((0..S).all(|i| (0..S).all(|j| t[j][i] == block[i][j])));
    }
}
