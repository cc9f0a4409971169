//! Register-blocked stride-1 convolution for f32, one definition generic over the SIMD width
//! ([`Simd`]: AVX2 or AVX-512, as [`isa`] says): the forward pass keeps up to `MR` filters × `2L`
//! positions in registers over every input channel and kernel offset, the weight gradient shares
//! each input load between up to `MR` filters, so neither is bound by loads and stores as the
//! full-width `axpy` form is. The weight gradient keeps 16 partial sums per weight at both widths
//! (two AVX2 registers or one AVX-512 register per filter), so both give the same bits.

use super::{ConvDims, compact};
use crate::kernels::copy_short;
use crate::kernels::simd::{Avx2, Avx512, Isa, Simd, isa};

/// Whether [`forward_f32`] and [`weight_grad_f32`] take `d` to the compact tiles (`compact.rs`)
/// on this CPU: the chosen instruction set is AVX-512 and they apply there.
pub(super) fn compact_applies(d: &ConvDims) -> bool {
    isa() == Isa::Avx512 && compact::applies::<Avx512>(d)
}

/// Partial sums per weight in the weight gradient (whatever the width).
const PS: usize = 16;
/// Floats of slack in the scratch buffers, to start their first part on a 64-byte boundary.
pub(super) const ALIGN: usize = 16;
/// The widest forward tile's positions (`2L` on AVX-512): the padding the buffers leave for it.
const P_MAX: usize = 32;

/// `n` rounded up to a multiple of 16.
pub(super) fn round16(n: usize) -> usize {
    n.div_ceil(PS) * PS
}

/// The part of `scratch` (resized to `ALIGN + len`) that starts on a 64-byte boundary, `len` long.
pub(super) fn aligned(scratch: &mut Vec<f32>, len: usize) -> &mut [f32] {
    scratch.resize(ALIGN + len, 0.0);
    let at = scratch.as_ptr().align_offset(4 * ALIGN).min(ALIGN);
    &mut scratch[at..][..len]
}

/// Adds a weight-gradient tile's sums to the 16 partial sums per weight at `vp`: filter `g`,
/// column or offset `j` goes to weight `base + g·gstride + j` (`16/L` vectors each).
///
/// # Safety
/// The token's features, inlined into a function compiled with them; `vp` valid for reads and
/// writes of `(base + (G − 1)·gstride + KX)·16` values (the callers assert it).
#[inline(always)]
pub(super) unsafe fn add_partials<S: Simd, const G: usize, const KX: usize>(
    s: S,
    acc: &[[[S::V; 2]; KX]; G],
    vp: *mut f32,
    (base, gstride): (usize, usize),
) {
    let l = S::LANES;
    for (g, row) in acc.iter().enumerate() {
        for (j, a) in row.iter().enumerate() {
            // SAFETY: below `(base + (G − 1)·gstride + KX)·16` (the caller's contract).
            unsafe {
                let vw = vp.add((base + g * gstride + j) * PS);
                for (v, &av) in a.iter().enumerate().take(PS / l) {
                    s.store(vw.add(v * l), s.add(s.load(vw.add(v * l)), av));
                }
            }
        }
    }
}

/// `acc[w·ow] += Σ` of weight `w`'s 16 partial sums in `vacc` (in lane order).
pub(super) fn fold_partials(vacc: &[f32], acc: &mut [f32], ow: usize) {
    for (wi, lanes) in vacc.chunks_exact(PS).enumerate() {
        acc[wi * ow] += lanes.iter().sum::<f32>();
    }
}

/// Copies input plane `(ni, ci)` into `buf` with `pad` zeros around and a zero tail, so that the
/// kernels may read whole registers past the last output position.
/// (Rows go through `copy_short`: a `memcpy` call per row of 28 floats was 2.5 % of 4a's step;
/// an unpadded plane is one copy.)
#[inline(always)]
pub(super) fn padded(d: &ConvDims, x: &[f32], ni: usize, ci: usize, buf: &mut [f32]) {
    let wp = d.w + 2 * d.pad;
    let src = &x[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
    if d.pad == 0 {
        buf[..src.len()].copy_from_slice(src);
        buf[src.len()..].fill(0.0);
        return;
    }
    buf.fill(0.0);
    for r in 0..d.h {
        copy_short(&mut buf[(r + d.pad) * wp + d.pad..][..d.w], &src[r * d.w..][..d.w]);
    }
}

/// Length of the padded input buffer: the plane, plus what the last register can overrun.
fn xbuf_len(d: &ConvDims) -> usize {
    let (hp, wp) = (d.h + 2 * d.pad, d.w + 2 * d.pad);
    hp * wp + 2 * P_MAX + d.k
}

/// The most scratch [`forward_f32`] resizes to for `d`, at any width (so that a caller can size
/// every thread's buffer up front: a thread that takes no chunk in the first steps must not grow
/// its buffer in a later one).
pub(super) fn forward_scratch_len(d: &ConvDims) -> usize {
    let len = (d.oh() - 1) * (d.w + 2 * d.pad) + d.ow();
    d.f * len.div_ceil(P_MAX) * P_MAX + d.c * (xbuf_len(d) + 2 * P_MAX) + ALIGN
}

/// The scratch [`weight_grad_f32`] resizes to for `d` (see [`forward_scratch_len`]).
pub(super) fn weight_grad_scratch_len(d: &ConvDims) -> usize {
    let full = d.f * round16(d.oh() * (d.w + 2 * d.pad)) + d.c * xbuf_len(d) + d.f * d.c * d.k * d.k * PS + ALIGN;
    // (whatever the chosen instruction set: `pays` bounds the copies, and a later `set_isa` must
    // not make a step allocate)
    if super::shifted::pays(d) { full.max(super::shifted::scratch_len(d)) } else { full }
}

/// Forward pass: all input planes of a sample are padded once, then tiles of up to `MR` filters ×
/// `2L` positions (of the full-width output, `oh × wp`, whose wrap-around columns are dropped)
/// accumulate over every input channel and kernel offset in registers: per step two input
/// loads and one weight broadcast per filter feed `2·MR` FMAs, as in the GEMM micro-kernel.
///
/// # Safety
/// The CPU must support AVX2 and FMA (the caller checked; AVX-512 is used where [`isa`] says).
pub(super) unsafe fn forward_f32(
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(s: Avx2, d: &ConvDims, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32], t: &mut Vec<f32>) {
        forward::<Avx2>(s, d, x, w, b, y, t)
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    unsafe fn avx512(
        s: Avx512,
        d: &ConvDims,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        y: &mut [f32],
        t: &mut Vec<f32>,
    ) {
        forward::<Avx512>(s, d, x, w, b, y, t)
    }
    match isa() {
        // SAFETY: the token proves the features.
        Isa::Avx512 => unsafe { avx512(Avx512::try_new().expect("chosen ISA"), d, x, w, bias, y, scratch) },
        // SAFETY: as above.
        _ => unsafe { avx2(Avx2::try_new().expect("the caller checked AVX2"), d, x, w, bias, y, scratch) },
    }
}

/// [`forward_f32`] at width `S` (inlined into its `#[target_feature]` copies).
#[inline(always)]
fn forward<S: Simd>(
    s: S,
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    if compact::applies::<S>(d) {
        return compact::forward(s, d, x, w, bias, y, scratch);
    }
    let (oh, ow) = (d.oh(), d.ow());
    let wp = d.w + 2 * d.pad;
    let len = (oh - 1) * wp + ow;
    let p = 2 * S::LANES;
    let ys = len.div_ceil(p) * p;
    // each padded plane, plus what the last tile can read past it
    let xl = xbuf_len(d) + 2 * P_MAX;
    let (yfull, xbuf) = aligned(scratch, d.f * ys + d.c * xl).split_at_mut(d.f * ys);
    let plane = d.h * d.w;
    // how far past its first plane a sample's tiles read
    let reach = (d.c - 1) * plane + ys + (d.k - 1) * (wp + 1);
    for ni in 0..d.n {
        // Unpadded planes are read where they are when the last tile's overrun stays inside `x`
        // (it reads the next sample's values into positions that are dropped); otherwise copied.
        let at_x = ni * d.c * plane;
        let (planes, stride): (&[f32], usize) = if d.pad == 0 && at_x + reach <= x.len() {
            (&x[at_x..], plane)
        } else {
            for ci in 0..d.c {
                padded(d, x, ni, ci, &mut xbuf[ci * xl..][..xl]);
            }
            (&*xbuf, xl)
        };
        let mut f0 = 0;
        while f0 < d.f {
            let g = (d.f - f0).min(S::MR);
            let a = (d, f0, len, stride, planes, w, bias, &mut *yfull, ys);
            // SAFETY: the token's features (this is inlined into their function); `fw_tile`
            // asserts its bounds.
            unsafe {
                match g {
                    8 if S::MR >= 8 => fw_tile::<S, 8>(s, a),
                    7 if S::MR >= 7 => fw_tile::<S, 7>(s, a),
                    1 => fw_tile::<S, 1>(s, a),
                    2 => fw_tile::<S, 2>(s, a),
                    3 => fw_tile::<S, 3>(s, a),
                    4 => fw_tile::<S, 4>(s, a),
                    5 => fw_tile::<S, 5>(s, a),
                    _ => fw_tile::<S, 6>(s, a),
                }
            }
            f0 += g;
        }
        for fi in 0..d.f {
            let yp = &mut y[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                copy_short(&mut yp[oy * ow..][..ow], &yfull[fi * ys + oy * wp..][..ow]);
            }
        }
    }
}

/// The arguments of [`fw_tile`]: dims, first filter, positions, padded plane length, padded
/// planes, weights, bias, full-width output and its plane stride.
type FwArgs<'a> = (&'a ConvDims, usize, usize, usize, &'a [f32], &'a [f32], Option<&'a [f32]>, &'a mut [f32], usize);

/// Filters `f0..f0+G` over every input channel: `G × 2L` accumulators per tile of positions.
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
unsafe fn fw_tile<S: Simd, const G: usize>(s: S, (d, f0, len, xl, xbuf, w, bias, yfull, ys): FwArgs) {
    let (k, wp, l) = (d.k, d.w + 2 * d.pad, S::LANES);
    let kk = k * k;
    let wrow: [usize; G] = core::array::from_fn(|g| (f0 + g) * d.c * kk);
    assert!(wrow[G - 1] + d.c * kk <= w.len() && (f0 + G) * ys <= yfull.len());
    // the last tile starts below `ys` and reads 2L values at offsets up to (k−1)·(wp+1)
    assert!(k >= 1 && (d.c - 1) * xl + ys + (k - 1) * (wp + 1) <= xbuf.len() && ys % (2 * l) == 0);
    let b: [f32; G] = core::array::from_fn(|g| bias.map_or(0.0, |b| b[f0 + g]));
    let (xp, yp) = (xbuf.as_ptr(), yfull.as_mut_ptr());
    // SAFETY: the asserts above bound every offset below.
    unsafe {
        let mut pos = 0;
        while pos < len {
            // a last tile of at most `L` positions takes one vector per filter, not two
            if len - pos <= l {
                fw_positions::<S, G, 1>(s, d, pos, xl, xp, w.as_ptr(), &wrow, &b, yp.add(f0 * ys), ys);
            } else {
                fw_positions::<S, G, 2>(s, d, pos, xl, xp, w.as_ptr(), &wrow, &b, yp.add(f0 * ys), ys);
            }
            pos += 2 * l;
        }
    }
}

/// One tile of [`fw_tile`]: `NV` vectors of positions from `pos`, for `G` filters.
///
/// # Safety
/// As [`fw_tile`], which bounds every offset (`pos + NV·L ≤ ys`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn fw_positions<S: Simd, const G: usize, const NV: usize>(
    s: S,
    d: &ConvDims,
    pos: usize,
    xl: usize,
    xp: *const f32,
    wp0: *const f32,
    wrow: &[usize; G],
    b: &[f32; G],
    yp: *mut f32,
    ys: usize,
) {
    let (k, wp, l) = (d.k, d.w + 2 * d.pad, S::LANES);
    let kk = k * k;
    // SAFETY: the caller's bounds.
    unsafe {
        let mut acc: [[S::V; NV]; G] = core::array::from_fn(|g| [s.splat(b[g]); NV]);
        for ci in 0..d.c {
            let xc = xp.add(ci * xl + pos);
            let wc = wp0.add(ci * kk);
            for ky in 0..k {
                for kx in 0..k {
                    let off = ky * wp + kx;
                    let xv: [S::V; NV] = core::array::from_fn(|v| s.load(xc.add(off + v * l)));
                    let t = ky * k + kx;
                    for g in 0..G {
                        let wv = s.splat(*wc.add(wrow[g] + t));
                        for v in 0..NV {
                            acc[g][v] = s.fmadd(wv, xv[v], acc[g][v]);
                        }
                    }
                }
            }
        }
        for (g, a) in acc.iter().enumerate() {
            for (v, &av) in a.iter().enumerate() {
                s.store(yp.add(g * ys + pos + v * l), av);
            }
        }
    }
}

/// Weight gradient only (no input gradient): `acc[((f·c + ci)·k·k + ky·k + kx)·ow] += dW`.
///
/// Both widths keep 16 partial sums per weight (two AVX2 registers or one AVX-512 register per
/// filter), so they give the same bits. On this project's Zen 4 the AVX-512 instance took 45 %
/// longer than the AVX2 one while dY's rows were left unaligned (its 64-byte loads then always
/// straddled a cache line); with the rows on 64-byte boundaries it is 3–4 % faster (4a 0.971, 4b
/// 0.956, paired).
///
/// # Safety
/// The CPU must support AVX2 and FMA (the caller checked; AVX-512 is used where [`isa`] says).
pub(super) unsafe fn weight_grad_f32(d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(s: Avx2, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], t: &mut Vec<f32>) {
        weight_grad::<Avx2>(s, d, x, dy, acc, t)
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    unsafe fn avx512(s: Avx512, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], t: &mut Vec<f32>) {
        weight_grad::<Avx512>(s, d, x, dy, acc, t)
    }
    match isa() {
        // SAFETY: the token proves the features.
        Isa::Avx512 => unsafe { avx512(Avx512::try_new().expect("chosen ISA"), d, x, dy, acc, scratch) },
        // SAFETY: as above.
        _ => unsafe { avx2(Avx2::try_new().expect("the caller checked AVX2"), d, x, dy, acc, scratch) },
    }
}

/// [`weight_grad_f32`] at width `S` (inlined into its `#[target_feature]` copies).
#[inline(always)]
fn weight_grad<S: Simd>(s: S, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    d.check_lens(x.len(), acc.len().min(d.f * d.c * d.k * d.k), dy.len());
    if compact::applies::<S>(d) {
        return compact::weight_grad(s, d, x, dy, acc, scratch);
    }
    let (oh, ow, k) = (d.oh(), d.ow(), d.k);
    let kk = k * k;
    let wp = d.w + 2 * d.pad;
    let len = (oh - 1) * wp + ow;
    let ys = round16(oh * wp);
    let xl = xbuf_len(d);
    // dY on full-width rows, the padded input planes, and 16 partial sums per weight (summed
    // once, at the end)
    let vl = d.f * d.c * kk * PS;
    // dY's rows start on 64-byte boundaries (`ys` is a multiple of 16 floats), so that its loads
    // never straddle a cache line: the buffer's start is aligned inside the vector.
    let (dyfull, rest) = aligned(scratch, d.f * ys + d.c * xl + vl).split_at_mut(d.f * ys);
    let (xbuf, vacc) = rest.split_at_mut(d.c * xl);
    vacc.fill(0.0);
    for ni in 0..d.n {
        dyfull.fill(0.0);
        for fi in 0..d.f {
            let src = &dy[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for oy in 0..oh {
                copy_short(&mut dyfull[fi * ys + oy * wp..][..ow], &src[oy * ow..][..ow]);
            }
        }
        for ci in 0..d.c {
            padded(d, x, ni, ci, &mut xbuf[ci * xl..][..xl]);
        }
        let (gm, km) = dw_limits::<S>();
        for (f0, g) in balanced(d.f, gm) {
            for ci in 0..d.c {
                for ky in 0..k {
                    for (kx0, kw) in balanced(k, km) {
                        let a = (d, f0, ci, ky, kx0, len, xl, &*xbuf, &*dyfull, ys, &mut *vacc);
                        // SAFETY: the token's features (inlined into their function); `dw_tile`
                        // asserts its bounds; dyfull is zero past `len` up to `ys`.
                        unsafe { dw_dispatch(s, g, kw, FullWidth(a)) }
                    }
                }
            }
        }
    }
    fold_partials(vacc, acc, ow);
}

/// The most filters and kernel columns of one weight-gradient tile at width `S`: `G·KX` partial-sum
/// accumulators of 16 lanes (`16/L` registers each), plus `G` of dY and one of X, fit the register
/// file (32 AVX-512 registers: 6 × 4 tiles use 31; 16 AVX2 registers: 2 × 3 tiles, two registers
/// per accumulator, use 15).
pub(super) fn dw_limits<S: Simd>() -> (usize, usize) {
    if S::LANES >= PS { (6, 4) } else { (2, 3) }
}

/// `0..n` in `n.div_ceil(most)` runs of near-equal length (`(start, len)`): 8 filters at most 6 per
/// tile make two tiles of 4, not 6 + 2.
pub(super) fn balanced(n: usize, most: usize) -> impl Iterator<Item = (usize, usize)> {
    let parts = n.div_ceil(most).max(1);
    (0..parts).map(move |i| (i * n / parts, (i + 1) * n / parts - i * n / parts)).filter(|&(_, l)| l > 0)
}

/// The arguments of [`dw_tile`]: dims, first filter, input channel, kernel row, first kernel column,
/// positions, padded plane length, padded planes, full-width dY, its plane stride, partial sums.
type DwArgs<'a> = (&'a ConvDims, usize, usize, usize, usize, usize, usize, &'a [f32], &'a [f32], usize, &'a mut [f32]);

/// A weight-gradient tile of `G` filters × `KX` kernel columns with its arguments: the full-width
/// one ([`FullWidth`]) or the compact one (`compact::Tile`).
pub(super) trait DwTile {
    /// Runs the `G × KX` instance.
    ///
    /// # Safety
    /// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
    unsafe fn run<S: Simd, const G: usize, const KX: usize>(self, s: S);
}

/// [`dw_tile`]'s arguments.
struct FullWidth<'a>(DwArgs<'a>);

impl DwTile for FullWidth<'_> {
    #[inline(always)]
    unsafe fn run<S: Simd, const G: usize, const KX: usize>(self, s: S) {
        // SAFETY: forwarded (the caller's contract).
        unsafe { dw_tile::<S, G, KX>(s, self.0) }
    }
}

/// Runs the `g × kw` instance of a weight-gradient tile (`g ≤ 6`, `kw ≤ 4`, as [`dw_limits`]
/// allows at width `S`).
///
/// # Safety
/// As [`DwTile::run`].
#[inline(always)]
pub(super) unsafe fn dw_dispatch<S: Simd, T: DwTile>(s: S, g: usize, kw: usize, t: T) {
    macro_rules! by_kw {
        ($g:literal) => {
            match kw {
                1 => t.run::<S, $g, 1>(s),
                2 => t.run::<S, $g, 2>(s),
                3 => t.run::<S, $g, 3>(s),
                4 if S::LANES >= PS => t.run::<S, $g, 4>(s),
                _ => unreachable!("kernel columns per tile: {kw}"),
            }
        };
    }
    // SAFETY: forwarded (the caller's contract).
    unsafe {
        match g {
            1 => by_kw!(1),
            2 => by_kw!(2),
            3 if S::LANES >= PS => by_kw!(3),
            4 if S::LANES >= PS => by_kw!(4),
            5 if S::LANES >= PS => by_kw!(5),
            6 if S::LANES >= PS => by_kw!(6),
            _ => unreachable!("filters per tile: {g}"),
        }
    }
}

/// Filters `f0..f0+G`, input channel `ci`, kernel row `ky`, kernel columns `kx0..kx0+KX`: 16
/// lanes of `Σ dY·X` per weight in registers (`16/L` vectors each) over the whole plane, each dY
/// load shared by `KX` weights and each X load by `G`, then added to that weight's partial sums in
/// `vacc`. Lane `j` sums the positions `≡ j (mod 16)` in order at both widths, so both give the
/// same bits.
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
// (the tile's accumulators are indexed by filter, column and vector, as registers are named)
#[allow(clippy::needless_range_loop)]
unsafe fn dw_tile<S: Simd, const G: usize, const KX: usize>(
    s: S,
    (d, f0, ci, ky, kx0, len, xl, xbuf, dyfull, ys, vacc): DwArgs,
) {
    let (k, wp, l) = (d.k, d.w + 2 * d.pad, S::LANES);
    let nv = PS / l;
    let kk = k * k;
    let end = round16(len);
    assert!(nv * l == PS && nv <= 2 && end <= ys && (f0 + G) * ys <= dyfull.len());
    assert!(ci < d.c && ky < k && kx0 + KX <= k && end + (k - 1) * (wp + 1) <= xl && d.c * xl <= xbuf.len());
    assert!((f0 + G) * d.c * kk * PS <= vacc.len());
    let (xp, gp, vp) = (xbuf.as_ptr(), dyfull.as_ptr(), vacc.as_mut_ptr());
    // SAFETY: the asserts above bound every pointer offset used below: X is read at
    // `ci·xl + ky·wp + kx < ci·xl + (k−1)(wp+1) + 1` plus positions below `end`, dY below `(f0+G)·ys`.
    unsafe {
        let xo = xp.add(ci * xl + ky * wp + kx0);
        let mut acc: [[[S::V; 2]; KX]; G] = [[[s.zero(); 2]; KX]; G];
        let mut pos = 0;
        while pos < end {
            for v in 0..nv {
                let gv: [S::V; G] = core::array::from_fn(|g| s.load(gp.add((f0 + g) * ys + pos + v * l)));
                for j in 0..KX {
                    let xv = s.load(xo.add(pos + v * l + j));
                    for g in 0..G {
                        acc[g][j][v] = s.fmadd(gv[g], xv, acc[g][j][v]);
                    }
                }
            }
            pos += PS;
        }
        add_partials(s, &acc, vp, ((f0 * d.c + ci) * kk + ky * k + kx0, d.c * kk));
    }
}
