//! Stride-1 direct convolution on compact positions, for output rows at least 16 wide: a vector
//! holds `L` consecutive output positions of the `oh × ow` map itself (not of the full-width rows
//! of `simd.rs`, whose `k − 1` wrap-around columns per row are computed and dropped: 21 % of 4a's
//! multiply-adds). A vector that crosses into the next output row reads its input with two masked
//! loads, one per row, merged (`Simd::select`); rows of at least 16 mean a vector spans at most two.
//! So no multiply-add is spent on a dropped column, unpadded planes are read where they lie, the
//! output is written in place and the output gradient read in place (no full-width copies).
//!
//! The forward tiles hold `G` filters × `NV` vectors of positions (`G·NV` accumulators, up to
//! 5 × 4 or 8 × 3 on AVX-512), so each merged input vector feeds `G` multiply-adds and each weight
//! broadcast `NV`: with 2 vectors, as in the first form, the loads bound the tile (this project's
//! Zen 4, `examples/conv_layers.rs`: 4b's first layer, 8 × 3, 0.935 of the time, the CIFAR VGG's
//! first 0.96; 4a's, 5 × 4, 0.97 with the last three vectors as one tile). The weight gradient of
//! more than 5 filters runs on column-shifted copies of the input instead (`shifted.rs`), where
//! the merged tiles are short of registers.
//!
//! AVX-512 only (see [`applies`]); the code is generic over the width and written for 16 partial
//! sums per weight whatever the width. The forward pass sums each output over `(c, ky, kx)` in the
//! order `simd.rs` does, so it gives the same bits as the AVX2 full-width tiles; the weight gradient
//! keeps 16 partial sums per weight (lane `j` sums the positions `≡ j (mod 16)` of the compact map,
//! not of the full-width rows), so its bits differ from the full-width tiles' by rounding.

use super::simd::{DwTile, add_partials, balanced, dw_dispatch, dw_limits, fold_partials, padded};
use super::{ConvDims, shifted};
use crate::kernels::simd::Simd;

/// Partial sums per weight in the weight gradient (whatever the width).
const PS: usize = 16;

/// Whether the compact kernels apply at width `S`: AVX-512 (16 lanes), stride 1 and output rows
/// of at least 16, so that no vector spans more than two rows. On AVX2 the masked loads
/// (`vmaskmovps`) made these kernels 2–2.5× slower than the full-width ones on this project's
/// Zen 4, so AVX2 keeps the full-width tiles.
pub(super) fn applies<S: Simd>(d: &ConvDims) -> bool {
    S::LANES >= PS && d.stride == 1 && d.ow() >= PS
}

/// Forward pass of a batch (`simd::forward_f32` at width `S`, where [`applies`] says): each sample's
/// planes read in place (padded into `scratch` first when `pad > 0`), filter groups of at most
/// `MR`, outputs written in place.
#[inline(always)]
pub(super) fn forward<S: Simd>(
    s: S,
    d: &ConvDims,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (plane, ys) = ((d.h + 2 * d.pad) * (d.w + 2 * d.pad), d.f * d.oh() * d.ow());
    if d.pad > 0 {
        scratch.resize(d.c * plane, 0.0);
    }
    for ni in 0..d.n {
        let (planes, xl) = sample_planes(d, x, ni, scratch);
        let yn = &mut y[ni * ys..][..ys];
        for (f0, g) in balanced(d.f, S::MR) {
            let a = (s, d, f0, planes, xl, w, bias, &mut *yn);
            // SAFETY: the token's features (inlined into their function); `fw_tile` asserts its
            // bounds. (`G·NV` accumulators, `NV` merged vectors with their two loads and a
            // broadcast fit the 32 AVX-512 registers; AVX2 never comes here, see `applies`.)
            unsafe {
                match g {
                    8 if S::MR >= 8 => fw_tile::<S, 8, 3>(a),
                    7 if S::MR >= 7 => fw_tile::<S, 7, 3>(a),
                    1 => fw_tile::<S, 1, 4>(a),
                    2 => fw_tile::<S, 2, 4>(a),
                    3 => fw_tile::<S, 3, 4>(a),
                    4 => fw_tile::<S, 4, 4>(a),
                    5 => fw_tile::<S, 5, 4>(a),
                    _ => fw_tile::<S, 6, 3>(a),
                }
            }
        }
    }
}

/// Sample `ni`'s input planes and their stride: `x` itself without padding, else padded copies in
/// `scratch` (sized `c·hp·wp` by the caller).
#[inline(always)]
fn sample_planes<'a>(d: &ConvDims, x: &'a [f32], ni: usize, scratch: &'a mut [f32]) -> (&'a [f32], usize) {
    let plane = (d.h + 2 * d.pad) * (d.w + 2 * d.pad);
    if d.pad == 0 {
        return (&x[ni * d.c * plane..][..d.c * plane], plane);
    }
    for ci in 0..d.c {
        padded(d, x, ni, ci, &mut scratch[ci * plane..][..plane]);
    }
    (&scratch[..d.c * plane], plane)
}

/// Weight gradient of a batch (`simd::weight_grad_f32` at width `S`, where [`applies`] says):
/// `acc[((f·c + ci)·k·k + ky·k + kx)·ow] += dW`, 16 partial sums per weight kept across the batch
/// and summed once at the end; on the shifted copies where `shifted::pays` (the same sums, so the
/// same bits), else on merged loads ([`weight_grad_merged`]).
#[inline(always)]
pub(super) fn weight_grad<S: Simd>(s: S, d: &ConvDims, x: &[f32], dy: &[f32], acc: &mut [f32], scratch: &mut Vec<f32>) {
    if shifted::pays(d) {
        shifted::weight_grad(s, d, x, dy, acc, scratch)
    } else {
        weight_grad_merged(s, d, x, dy, acc, scratch)
    }
}

/// [`weight_grad`] on merged loads: tiles of up to 6 filters × 4 kernel columns of one kernel row.
#[inline(always)]
pub(super) fn weight_grad_merged<S: Simd>(
    s: S,
    d: &ConvDims,
    x: &[f32],
    dy: &[f32],
    acc: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (k, plane, ys) = (d.k, (d.h + 2 * d.pad) * (d.w + 2 * d.pad), d.f * d.oh() * d.ow());
    let xl = if d.pad > 0 { d.c * plane } else { 0 };
    let vl = d.f * d.c * k * k * PS;
    scratch.resize(xl + vl, 0.0);
    let (xbuf, vacc) = scratch.split_at_mut(xl);
    vacc.fill(0.0);
    let (gm, km) = dw_limits::<S>();
    for ni in 0..d.n {
        let (planes, xl) = sample_planes(d, x, ni, xbuf);
        let dyn_ = &dy[ni * ys..][..ys];
        for (f0, g) in balanced(d.f, gm) {
            for ci in 0..d.c {
                for ky in 0..k {
                    for (kx0, kw) in balanced(k, km) {
                        let t = Tile { d, at: (f0, ci, ky, kx0), planes, xl, dy: dyn_, vacc: &mut *vacc };
                        // SAFETY: the token's features (inlined into their function); the tile
                        // asserts its bounds.
                        unsafe { dw_dispatch(s, g, kw, t) }
                    }
                }
            }
        }
    }
    fold_partials(vacc, acc, d.ow());
}

/// [`dw_tile`]'s arguments.
struct Tile<'a> {
    d: &'a ConvDims,
    at: (usize, usize, usize, usize),
    planes: &'a [f32],
    xl: usize,
    dy: &'a [f32],
    vacc: &'a mut [f32],
}

impl DwTile for Tile<'_> {
    #[inline(always)]
    unsafe fn run<S: Simd, const G: usize, const KX: usize>(self, s: S) {
        // SAFETY: forwarded (the caller's contract).
        unsafe { dw_tile::<S, G, KX>(s, self.d, self.at, self.planes, self.xl, self.dy, self.vacc) }
    }
}

/// `L` output positions from `p0`: lanes `0..a` from row `oy`, columns `ox0..`; lanes `a..v` from
/// row `oy + 1`, columns `0..`; lanes past `v` (past the map's end) are idle.
#[derive(Clone, Copy)]
struct Span<M> {
    /// Offset of lane 0 in a plane of row width `wp` (`oy·wp + ox0`).
    at_a: usize,
    /// Offset that lane `a` would have in the next row, minus `a` (`(oy+1)·wp − a`; ≥ 0 as
    /// `wp ≥ ow ≥ L ≥ a`), so that lane `j ≥ a` reads `at_b + j`.
    at_b: usize,
    /// The lanes of the first row.
    ma: M,
    /// The lanes of the next row.
    mb: M,
    /// The lanes of the map (`0..v`).
    mv: M,
    /// Whether all `L` lanes lie in the map.
    full: bool,
}

/// The span of positions `p0..p0 + L` of an `oh × ow` map on rows of width `wp`.
#[inline(always)]
fn span<S: Simd>(s: S, p0: usize, q: usize, ow: usize, wp: usize) -> Span<S::M> {
    let l = S::LANES;
    let (oy, ox0) = (p0 / ow, p0 % ow);
    let v = (q - p0).min(l);
    let a = (ow - ox0).min(v);
    Span {
        at_a: oy * wp + ox0,
        at_b: (oy + 1) * wp - a,
        ma: s.lanes(0, a),
        mb: s.lanes(a, v),
        mv: s.lanes(0, v),
        full: v == l,
    }
}

/// The input vector of span `sp` at kernel offset `off` of the planes at `xp`.
///
/// # Safety
/// Every lane of `sp` in the map reads inside the planes: the caller asserts
/// `(c − 1)·xl + hp·wp ≤ planes.len()` and `off ≤ (c − 1)·xl + (k − 1)·(wp + 1)`.
#[inline(always)]
unsafe fn gather<S: Simd>(s: S, xp: *const f32, off: usize, sp: &Span<S::M>) -> S::V {
    // SAFETY: the caller's bounds; idle lanes are masked off and not read (their addresses,
    // formed with `wrapping_add`, may lie outside the planes).
    unsafe {
        let a = s.load_masked(xp.wrapping_add(off + sp.at_a), sp.ma);
        let b = s.load_masked(xp.wrapping_add(off + sp.at_b), sp.mb);
        s.select(sp.mb, a, b)
    }
}

/// Forward pass of one sample: `y[f0+g] = b + Σ_{c,ky,kx} w ⋆ x` for `G` filters, tiles of `NV`
/// vectors of positions (then one tile of the `< NV` left), written in place into `y` (the
/// sample's `f × oh × ow` outputs). `planes` holds the sample's input planes (padded, `hp × wp`) at stride `xl`.
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn fw_tile<S: Simd, const G: usize, const NV: usize>(
    (s, d, f0, planes, xl, w, bias, y): (S, &ConvDims, usize, &[f32], usize, &[f32], Option<&[f32]>, &mut [f32]),
) {
    let (k, oh, ow, l) = (d.k, d.oh(), d.ow(), S::LANES);
    let (hp, wp, kk, q) = (d.h + 2 * d.pad, d.w + 2 * d.pad, d.k * d.k, oh * ow);
    assert!(applies::<S>(d) && k >= 1 && d.c >= 1 && xl >= hp * wp && (d.c - 1) * xl + hp * wp <= planes.len());
    assert!((f0 + G) * d.c * kk <= w.len() && (f0 + G) * q <= y.len() && oh + k - 1 == hp && ow + k - 1 == wp);
    let b: [f32; G] = core::array::from_fn(|g| bias.map_or(0.0, |b| b[f0 + g]));
    let vecs = q.div_ceil(l);
    let mut v0 = 0;
    // SAFETY: the asserts above (`fw_positions`' contract); every tile starts below `q`.
    unsafe {
        while v0 + NV <= vecs {
            fw_positions::<S, G, NV>(s, v0 * l, (d, f0, planes, xl, w, &b, &mut *y));
            v0 += NV;
        }
        // the last `vecs − v0 < NV` vectors as one narrower tile (three single-vector tiles were
        // 4a's last three of 31 vectors, at a third of the multiply-adds per load)
        let a = (d, f0, planes, xl, w, &b, &mut *y);
        match vecs - v0 {
            0 => {}
            1 => fw_positions::<S, G, 1>(s, v0 * l, a),
            2 => fw_positions::<S, G, 2>(s, v0 * l, a),
            3 => fw_positions::<S, G, 3>(s, v0 * l, a),
            n => unreachable!("{n} vectors left after tiles of {NV}"),
        }
    }
}

/// The arguments of [`fw_positions`]: dims, first filter, planes, their stride, weights, biases,
/// output.
type FwArgs<'a, const G: usize> = (&'a ConvDims, usize, &'a [f32], usize, &'a [f32], &'a [f32; G], &'a mut [f32]);

/// `NV` vectors of positions from `p0` (each within the map) for `G` filters.
///
/// # Safety
/// As [`fw_tile`], after its asserts; `p0 + (NV − 1)·L < oh·ow`.
#[inline(always)]
// (the tile's accumulators are indexed by filter, column and vector, as registers are named)
#[allow(clippy::needless_range_loop)]
unsafe fn fw_positions<S: Simd, const G: usize, const NV: usize>(
    s: S,
    p0: usize,
    (d, f0, planes, xl, w, b, y): FwArgs<'_, G>,
) {
    let (k, ow, l) = (d.k, d.ow(), S::LANES);
    let (wp, kk, q) = (d.w + 2 * d.pad, k * k, d.oh() * ow);
    let (xp, wpt, yp) = (planes.as_ptr(), w.as_ptr(), y.as_mut_ptr());
    let sp: [Span<S::M>; NV] = core::array::from_fn(|v| span(s, p0 + v * l, q, ow, wp));
    let mut acc: [[S::V; NV]; G] = core::array::from_fn(|g| [s.splat(b[g]); NV]);
    for ci in 0..d.c {
        for ky in 0..k {
            for kx in 0..k {
                let off = ci * xl + ky * wp + kx;
                let t = (f0 * d.c + ci) * kk + ky * k + kx;
                // SAFETY: `off` and the spans are within `fw_tile`'s asserted bounds (`gather`'s
                // contract); `t + g·c·kk < (f0 + G)·c·kk ≤ w.len()`.
                unsafe {
                    let xv: [S::V; NV] = core::array::from_fn(|v| gather(s, xp, off, &sp[v]));
                    for g in 0..G {
                        let wv = s.splat(*wpt.add(t + g * d.c * kk));
                        for v in 0..NV {
                            acc[g][v] = s.fmadd(wv, xv[v], acc[g][v]);
                        }
                    }
                }
            }
        }
    }
    for (g, a) in acc.iter().enumerate() {
        for v in 0..NV {
            // SAFETY: lanes in the map lie below `(f0 + G)·q ≤ y.len()`.
            unsafe {
                let o = yp.add((f0 + g) * q + p0 + v * l);
                if sp[v].full { s.store(o, a[v]) } else { s.store_masked(o, a[v], sp[v].mv) }
            }
        }
    }
}

/// Weight gradient of one sample, filters `f0..f0+G`, input channel `ci`, kernel row `ky`, kernel
/// columns `kx0..kx0+KX`: 16 lanes of `Σ dY·X` per weight in registers (`16/L` vectors each) over
/// the whole map, each dY load shared by `KX` weights and each input vector by `G`, then added to
/// that weight's partial sums in `vacc` (`((f·c + ci)·k·k + ky·k + kx)·16`). `dy` is the sample's
/// `f × oh × ow` output gradient, read in place.
///
/// # Safety
/// The token's features, inlined into a function compiled with them. (Bounds are asserted.)
#[inline(always)]
// (the tile's accumulators are indexed by filter, column and vector, as registers are named)
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn dw_tile<S: Simd, const G: usize, const KX: usize>(
    s: S,
    d: &ConvDims,
    (f0, ci, ky, kx0): (usize, usize, usize, usize),
    planes: &[f32],
    xl: usize,
    dy: &[f32],
    vacc: &mut [f32],
) {
    let (k, oh, ow, l) = (d.k, d.oh(), d.ow(), S::LANES);
    let (hp, wp, kk, q) = (d.h + 2 * d.pad, d.w + 2 * d.pad, d.k * d.k, oh * ow);
    let nv = PS / l;
    assert!(applies::<S>(d) && nv * l == PS && nv <= 2 && oh + k - 1 == hp && ow + k - 1 == wp);
    assert!(ci < d.c && ky < k && kx0 + KX <= k && xl >= hp * wp && (d.c - 1) * xl + hp * wp <= planes.len());
    assert!((f0 + G) * q <= dy.len() && (f0 + G) * d.c * kk * PS <= vacc.len());
    let (xp, gp, vp) = (planes.as_ptr(), dy.as_ptr(), vacc.as_mut_ptr());
    let off = ci * xl + ky * wp + kx0;
    let mut acc: [[[S::V; 2]; KX]; G] = [[[s.zero(); 2]; KX]; G];
    let mut p0 = 0;
    while p0 < q {
        for v in 0..nv {
            let pv = p0 + v * l;
            if pv >= q {
                break;
            }
            let sp = span(s, pv, q, ow, wp);
            // SAFETY: dY lanes in the map lie below `(f0 + G)·q ≤ dy.len()`; the input lanes are
            // within `gather`'s asserted bounds (`off + j ≤ (c−1)·xl + (k−1)·(wp+1)`).
            unsafe {
                let gv: [S::V; G] = core::array::from_fn(|g| {
                    let at = gp.add((f0 + g) * q + pv);
                    if sp.full { s.load(at) } else { s.load_masked(at, sp.mv) }
                });
                for j in 0..KX {
                    let xv = gather(s, xp, off + j, &sp);
                    for g in 0..G {
                        acc[g][j][v] = s.fmadd(gv[g], xv, acc[g][j][v]);
                    }
                }
            }
        }
        p0 += PS;
    }
    // SAFETY: the token's features; below `(f0 + G)·c·kk·16 ≤ vacc.len()` (asserted above).
    unsafe { add_partials(s, &acc, vp, ((f0 * d.c + ci) * kk + ky * k + kx0, d.c * kk)) }
}
