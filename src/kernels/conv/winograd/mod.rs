//! Winograd F(2×2, 3×3) convolutions (Lavin & Gray, 2016): 3×3 kernels, stride 1, "same" padding.
//!
//! Each 2 × 2 block of outputs ("tile") is computed from the 4 × 4 window of the padded input
//! around it as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`: 16 multiplications instead of 36, so the three
//! products of a training step (forward, weight gradient, input gradient) do 16/36 of the direct
//! form's multiply-adds, as 16 GEMMs (one per point `p` of the 4 × 4 transformed tile) whose
//! inner dimension is the channels:
//! - forward: `M[p] (f × tiles) = U[p] (f × c) · V[p] (c × tiles)`, `U = G g Gᵀ` per filter and
//!   channel, `V = Bᵀ d B` per channel and tile, then `Y = Aᵀ M A` per filter and tile;
//! - weight gradient, the adjoint of the forward in `g`: `dg = Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ V] G`,
//!   i.e. `Mw[p] (f × c) = Σ Z[p] (f × tiles) · V[p]ᵀ` with `Z = A dY Aᵀ` per filter and tile;
//! - input gradient: a forward pass of the output gradient with the weights flipped and
//!   transposed (as `implicit.rs`), through the same code.
//!
//! The transforms add and subtract whole vectors, in one of two layouts:
//! - maps at least 8 wide (`phases.rs`): the vectors are 16 consecutive tiles of a plane, read
//!   from the plane's four phases (even and odd rows and columns), each also kept shifted by one
//!   column; blocks of whole samples (`BLOCK_PHASES`);
//! - narrower maps (`lanes.rs`), whose planes have fewer tiles than a vector: the vectors are the
//!   same tile of `S` = 16 samples, gathered first and scattered back after;
//!   blocks of `S` samples and a few tile positions (`BLOCK_LANES`). The last block of a batch
//!   fills its missing lanes with zeros (their outputs are dropped; their zero output gradients
//!   add nothing to the weight gradient).
//!
//! Either way a block's transformed inputs and products stay in the core's L2 cache. The GEMMs
//! are the crate's.
//!
//! Rounding: the transformed values are sums of up to 4 × 4 inputs, so an output can differ
//! from the direct sum by a few ulps of the inputs' magnitude (tested against the f64 reference).
//! A non-finite input reaches the outputs of every tile whose window holds it (a 4 × 4 block of
//! outputs around it, where the direct loops reach 3 × 3).

mod lanes;
mod ops;
mod phases;
mod rows;

use super::{ConvDims, ConvScratch, split_backward};
use crate::kernels::matmul::gemm_small;
use crate::kernels::split::{split_columns, split_pass};
use crate::kernels::{Elem, Strides, split_batch};
use crate::threads::{chunk_count, for_chunks, run_chunks, run_chunks_on, split_unit_runs};

/// Points of a transformed tile.
const PTS: usize = 16;
/// Samples per block of `lanes.rs`: the lanes of its transforms.
const S: usize = 16;
/// A block of `phases.rs` has at most this many tiles times `c + f`: its `V` and `M`
/// (`16·(c + f)·tiles` values) then take 384 KiB in f32 (paired in the VGG's step against 4096,
/// 8192, 12288, 16384 and 32768: 0.96–0.98 of 8192, 1.02–1.09 for the others).
const BLOCK_PHASES: usize = 6144;
/// A block of `lanes.rs` has at most this many tile positions times `c + f` (its `V` and `M`
/// then take 512 KiB; 256 and 1024 measured 2–4 % slower).
const BLOCK_LANES: usize = 512;
/// Maps at least this wide take the phases (`phases.rs`), narrower ones the lanes (`lanes.rs`).
const PHASES_FROM: usize = 8;
/// The entry points choose Winograd where `c·f ≥ k·(c + f)` for `c` input channels and `f`
/// filters, `k` this: the 16 products save `20·c·f` multiply-adds per tile over the direct form,
/// the transforms cost in proportion to `c + f`. Measured with `examples/conv_layers.rs` on Zen 4
/// against im2col in the same run (forward, backward, ms): 16→16 at 16 × 16 1.08, 2.39 against
/// 1.27, 2.57 (taken); 8→32 at 16 × 16 1.17, 3.51 against 1.30, 2.71 and 8→16 at 6 × 6 0.15,
/// 0.41 against 0.15, 0.40 (not taken).
const CHANNELS: usize = 8;

/// Whether the entry points take the Winograd path: f32, a 3 × 3 kernel, stride 1, padding 1,
/// and enough channels and filters ([`CHANNELS`]).
pub(super) fn winograd_applies<E: Elem>(d: &ConvDims) -> bool {
    core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() && fits(d) && d.c * d.f >= CHANNELS * (d.c + d.f)
}

/// The sizes the Winograd path computes (any element type and channel count).
fn fits(d: &ConvDims) -> bool {
    d.k == 3 && d.stride == 1 && d.pad == 1 && d.n > 0
}

/// `(src, dst)` as f32 slices when `E` is `f32` and the kernels run AVX-512 (`isa()` never
/// exceeds the detected ISA): the condition of the transforms' AVX-512 forms (`rows.rs`,
/// `lanes.rs`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn wide_f32<'a, 'b, E: Elem>(src: &'a [E], dst: &'b mut [E]) -> Option<(&'a [f32], &'b mut [f32])> {
    use crate::kernels::matmul::{as_f32, as_f32_mut};
    let wide = core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>()
        && crate::kernels::isa() == crate::kernels::Isa::Avx512;
    wide.then(|| (as_f32(src), as_f32_mut(dst)))
}

/// The tiling of an `h × w` map.
#[derive(Clone, Copy, Debug)]
struct Geo {
    h: usize,
    w: usize,
    /// Tile rows and columns, `⌈h/2⌉` and `⌈w/2⌉`.
    th: usize,
    tw: usize,
}

impl Geo {
    fn new(d: &ConvDims) -> Self {
        Geo { h: d.h, w: d.w, th: d.h.div_ceil(2), tw: d.w.div_ceil(2) }
    }
    /// Whether the transforms run on the phases of each plane (`phases.rs`).
    fn phases(&self) -> bool {
        self.w >= PHASES_FROM
    }
    /// The samples a split over the kernel threads keeps together: a block of `lanes.rs` (so
    /// that no block but the batch's last has idle lanes), else one.
    fn unit(&self) -> usize {
        if self.phases() { 1 } else { S }
    }
    /// Tile positions of a `lanes.rs` block taken at once for `c` input channels and `f` outputs.
    fn positions(&self, c: usize, f: usize) -> usize {
        (BLOCK_LANES / (c + f)).clamp(1, self.th * self.tw)
    }
    /// Tiles of one plane, `th × tw`.
    fn per(&self) -> usize {
        self.th * self.tw
    }
    /// Length of a phase of the padded input in `phases.rs`: `(th + 1) × tw`.
    fn phase(&self) -> usize {
        (self.th + 1) * self.tw
    }
    /// Length of the phases' scratch: the input's eight (four phases, each also shifted by one
    /// column).
    fn tmp(&self) -> usize {
        8 * self.phase()
    }
    /// The row length in `phases.rs`'s `V`, `Z` and `M` for `sn` samples: their tiles and 16
    /// more, so that the 16 points of a row, `16·ld` apart, are never a multiple of 4 KiB apart
    /// (conv2's 128 tiles put every row of the GEMM's right factor in the same L1 sets).
    fn ld(&self, sn: usize) -> usize {
        sn * self.per() + 16
    }
    /// Samples per `phases.rs` block for `c` input channels and `f` outputs.
    fn samples(&self, c: usize, f: usize) -> usize {
        (BLOCK_PHASES / (c + f) / self.per()).max(1)
    }
}

/// `u[p·n + j] = (G g Gᵀ)[p]` for `n` kernels `g[s][v] = tap(j, 3s + v)` (`j = r·cols + q` for
/// output row `r`, column `q` of the 16 products). The taps are first laid out tap-major after
/// the points (`u[16n ..]`), then transformed 16 kernels at a time (`ops::weights`), the kernels
/// split over the threads (every entry written: `u` is only grown).
fn transform_weights<E: Elem>(u: &mut Vec<E>, n: usize, tap: impl Fn(usize, usize) -> E + Sync) {
    if u.len() < (PTS + 9) * n {
        u.resize((PTS + 9) * n, E::zero());
    }
    let (points, taps) = u[..(PTS + 9) * n].split_at_mut(PTS * n);
    let parts = split_pass((PTS + 9) * n);
    let blocks = split_columns(taps, (9, n), parts, 16).zip(split_columns(points, (PTS, n), parts, 16));
    run_chunks_on(parts, blocks, |(mut taps, mut points)| {
        for k in 0..9 {
            let lo = taps.lo();
            for (j, t) in taps.row(k).iter_mut().enumerate() {
                *t = tap(lo + j, k);
            }
        }
        ops::weights(&mut taps, &mut points);
    });
}

/// `dw[j·9 + 3s + v] = (Gᵀ m G)[s][v]` of the summed transformed products `m[i][b] =
/// points[(4i + b)·n + j]` of the `n = dw.len()/9` kernels, split over the threads.
fn fold_weight_gradient<E: Elem>(points: &[E], dw: &mut [E]) {
    let n = dw.len() / 9;
    for_chunks(dw, 9 * 16, split_pass((PTS + 9) * n), |at, block| {
        ops::weight_gradient(points, n, at / 9, block);
    });
}

/// Where value `t` of row `r` of point `p` of a block's `V`, `Z` or `M` is: `r·rs + p·ps + t`.
/// `lanes.rs` keeps each point's matrix whole (`rs = tb`, `ps = rows·tb`), `phases.rs` the 16
/// points of a row together (`rs = 16·tb`, `ps = tb`), so that a plane's transform writes (and
/// the output transform reads) one small region instead of 16 far apart.
#[derive(Clone, Copy)]
struct Layout {
    rs: usize,
    ps: usize,
}

impl Layout {
    fn new(points_of_a_row_together: bool, rows: usize, tb: usize) -> Self {
        if points_of_a_row_together { Layout { rs: PTS * tb, ps: tb } } else { Layout { rs: tb, ps: rows * tb } }
    }
}

/// `m[p] = u[p] · v[p]` for the 16 points: `u[p]` (`rows × inner`, row-major, one after
/// another), `v[p]` (`inner × tb`) and `m[p]` (`rows × tb`) laid out as `lv` and `lm` say.
fn products<E: Elem>(
    (rows, inner, tb): (usize, usize, usize),
    u: &[E],
    (v, lv): (&[E], Layout),
    (m, lm): (&mut [E], Layout),
) {
    let la = rows * inner;
    assert!(v.len() >= (inner - 1) * lv.rs + 15 * lv.ps + tb && m.len() >= (rows - 1) * lm.rs + 15 * lm.ps + tb);
    for p in 0..PTS {
        let (sv, sm) = (Strides { rs: lv.rs, cs: 1 }, Strides { rs: lm.rs, cs: 1 });
        let mp = &mut m[p * lm.ps..];
        gemm_small(rows, tb, inner, &u[p * la..][..la], Strides::row_major(inner), &v[p * lv.ps..], sv, mp, sm, false);
    }
}

/// `mw[p] (f × c) += Z[p] (f × tb) · V[p]ᵀ (tb × c)` (`=` for the `first` block) for the 16
/// points, `Z` and `V` laid out as `lz` and `lv` say.
fn weight_products<E: Elem>(
    (f, c, tb): (usize, usize, usize),
    (z, lz): (&[E], Layout),
    (v, lv): (&[E], Layout),
    (mw, first): (&mut [E], bool),
) {
    assert!(z.len() >= (f - 1) * lz.rs + 15 * lz.ps + tb && v.len() >= (c - 1) * lv.rs + 15 * lv.ps + tb);
    for p in 0..PTS {
        let (sz, sv) = (Strides { rs: lz.rs, cs: 1 }, Strides { rs: 1, cs: lv.rs });
        let mwp = &mut mw[p * f * c..][..f * c];
        gemm_small(f, c, tb, &z[p * lz.ps..], sz, &v[p * lv.ps..], sv, mwp, Strides::row_major(c), !first);
    }
}

/// Makes `v` at least `len` long (never shorter: a short last block would otherwise make the next
/// call zero what it regrows).
fn grow<E: Elem>(v: &mut Vec<E>, len: usize) {
    if v.len() < len {
        v.resize(len, E::zero());
    }
}

/// The forward pass of the samples `x` (`n × c × h × w`) into `y` (`n × f × h × w`) with the
/// transformed weights `u` (`16 × f × c`), block by block; `buf` holds `V`, `M` and the phases, or
/// `V`, `M`, the gathered input and the outputs before their scatter.
fn forward_samples<E: Elem>(
    g: Geo,
    (c, f): (usize, usize),
    u: &[E],
    bias: Option<&[E]>,
    x: &[E],
    y: &mut [E],
    [v, m, tmp, yt]: [&mut Vec<E>; 4],
) {
    let (xs, ys) = (c * g.h * g.w, f * g.h * g.w);
    let n = x.len() / xs;
    if g.phases() {
        let sb = g.samples(c, f);
        grow(tmp, g.tmp());
        for s0 in (0..n).step_by(sb) {
            let sn = sb.min(n - s0);
            let (tb, ld) = (sn * g.per(), g.ld(sn));
            grow(v, PTS * c * ld);
            grow(m, PTS * f * ld);
            phases::input_tiles(&x[s0 * xs..][..sn * xs], c, g, ld, v, tmp);
            products((f, c, tb), u, (v, Layout::new(true, c, ld)), (m, Layout::new(true, f, ld)));
            phases::output_tiles(m, f, g, ld, bias, &mut y[s0 * ys..][..sn * ys], tmp);
        }
        return;
    }
    let (positions, tp) = (g.th * g.tw, g.positions(c, f));
    grow(tmp, c * (2 * g.th + 2) * (2 * g.tw + 2) * S);
    grow(yt, ys * S);
    for s0 in (0..n).step_by(S) {
        let sn = S.min(n - s0);
        lanes::gather(&x[s0 * xs..][..sn * xs], c, g, (2 * g.th + 2, 2 * g.tw + 2, 1), tmp);
        for pos0 in (0..positions).step_by(tp) {
            let tp = tp.min(positions - pos0);
            let tb = tp * S;
            grow(v, PTS * c * tb);
            grow(m, PTS * f * tb);
            lanes::input_tiles(tmp, c, g, (pos0, tp), v);
            products((f, c, tb), u, (v, Layout::new(false, c, tb)), (m, Layout::new(false, f, tb)));
            lanes::output_tiles(m, f, g, (pos0, tp), bias, yt);
        }
        lanes::scatter(yt, f, g, &mut y[s0 * ys..][..sn * ys]);
    }
}

/// The transformed weight gradient `mw` (`16 × f × c`, overwritten) of the samples `x` and `dy`,
/// block by block; `buf` holds `V`, `Z` and the phases or the gathered input and output gradient.
fn weight_gradient<E: Elem>(
    g: Geo,
    (c, f): (usize, usize),
    x: &[E],
    dy: &[E],
    mw: &mut [E],
    [v, z, tmp, dyt]: [&mut Vec<E>; 4],
) {
    let (xs, ys) = (c * g.h * g.w, f * g.h * g.w);
    let n = x.len() / xs;
    if n == 0 {
        return mw.fill(E::zero());
    }
    // The first block's products overwrite `mw` (no zero fill of a partial sum per chunk).
    if g.phases() {
        let sb = g.samples(c, f);
        grow(tmp, g.tmp());
        for s0 in (0..n).step_by(sb) {
            let sn = sb.min(n - s0);
            let (tb, ld) = (sn * g.per(), g.ld(sn));
            grow(v, PTS * c * ld);
            grow(z, PTS * f * ld);
            phases::input_tiles(&x[s0 * xs..][..sn * xs], c, g, ld, v, tmp);
            phases::gradient_tiles(&dy[s0 * ys..][..sn * ys], f, g, ld, z, tmp);
            weight_products((f, c, tb), (z, Layout::new(true, f, ld)), (v, Layout::new(true, c, ld)), (mw, s0 == 0));
        }
        return;
    }
    let (positions, tp) = (g.th * g.tw, g.positions(c, f));
    grow(tmp, c * (2 * g.th + 2) * (2 * g.tw + 2) * S);
    grow(dyt, f * (2 * g.th) * (2 * g.tw) * S);
    for s0 in (0..n).step_by(S) {
        let sn = S.min(n - s0);
        lanes::gather(&x[s0 * xs..][..sn * xs], c, g, (2 * g.th + 2, 2 * g.tw + 2, 1), tmp);
        lanes::gather(&dy[s0 * ys..][..sn * ys], f, g, (2 * g.th, 2 * g.tw, 0), dyt);
        for pos0 in (0..positions).step_by(tp) {
            let tp = tp.min(positions - pos0);
            let tb = tp * S;
            grow(v, PTS * c * tb);
            grow(z, PTS * f * tb);
            lanes::input_tiles(tmp, c, g, (pos0, tp), v);
            lanes::gradient_tiles(dyt, f, g, (pos0, tp), z);
            weight_products(
                (f, c, tb),
                (z, Layout::new(false, f, tb)),
                (v, Layout::new(false, c, tb)),
                (mw, s0 == 0 && pos0 == 0),
            );
        }
    }
}

/// Forward pass through Winograd F(2×2, 3×3), for any element type (the convolution entry points
/// choose it for f32; tests run it in f64 too); panics unless the kernel is 3 × 3 with stride 1,
/// padding 1 (and a batch).
pub fn forward_winograd<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    assert!(fits(d), "Winograd F(2×2, 3×3) needs a 3×3 kernel, stride 1 and padding 1: {d:?}");
    assert!(bias.is_none_or(|b| b.len() == d.f), "convolution: bias length for {} filters", d.f);
    let g = Geo::new(d);
    let (xs, ys) = (d.c * d.h * d.w, d.f * d.h * d.w);
    let mut u = core::mem::take(&mut scratch.wt);
    // U[p] (f × c): kernel (fi, ci) at j = fi·c + ci.
    transform_weights(&mut u, d.f * d.c, |j, k| w[j * 9 + k]);
    let parts = split_batch(d.n, ys * d.patch()).max(1);
    let unit = g.unit();
    let pieces = split_unit_runs(y, d.n, ys, chunk_count(d.n.div_ceil(unit), parts), unit);
    run_chunks(scratch.parts(parts), pieces, |buf, (lo, n, yc)| {
        let [v, m, tmp, yt] = buf;
        forward_samples(g, (d.c, d.f), &u, bias, &x[lo * xs..][..n * xs], yc, [v, m, tmp, yt]);
    });
    scratch.wt = u;
}

/// Backward pass through Winograd F(2×2, 3×3), for any element type, with the conditions of
/// [`forward_winograd`]: `dw` (and `db`, `dx` when given) are overwritten.
#[allow(clippy::too_many_arguments)]
pub fn backward_winograd<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_backward(x.len(), w.len(), dy.len(), dw.len(), db.as_ref().map(|b| b.len()), dx.as_ref().map(|t| t.len()));
    assert!(fits(d), "Winograd F(2×2, 3×3) needs a 3×3 kernel, stride 1 and padding 1: {d:?}");
    let g = Geo::new(d);
    let (c, f) = (d.c, d.f);
    let (xs, ys) = (c * d.h * d.w, f * d.h * d.w);
    let mut u = core::mem::take(&mut scratch.wt);
    if dx.is_some() {
        // The input gradient is the forward pass of dY with W'[ci, fi] = W[fi, ci] turned by 180°.
        // U'[p] (c × f): kernel (fi, ci) turned by 180° at j = ci·f + fi.
        transform_weights(&mut u, c * f, |j, k| w[((j % f) * c + j / f) * 9 + 8 - k]);
    }
    let plen = PTS * f * c;
    let run = |lo: usize, n: usize, dxc: Option<&mut [E]>, mw: &mut [E], buf: &mut [Vec<E>; 4]| {
        let [v, z, tmp, dyt] = buf;
        let (xc, dyc) = (&x[lo * xs..][..n * xs], &dy[lo * ys..][..n * ys]);
        weight_gradient(g, (c, f), xc, dyc, mw, [&mut *v, &mut *z, &mut *tmp, dyt]);
        if let Some(dxc) = dxc {
            forward_samples(g, (f, c), &u, None, dyc, dxc, [v, z, tmp, dyt]);
        }
    };
    let mut partials = core::mem::take(&mut scratch.partials);
    let bufs = scratch.parts(split_batch(d.n, ys * d.patch() * 2).max(1));
    split_backward(d, dy, (dx, db), (bufs, g.unit()), (&mut partials, plen), run);
    // dW[fi, ci] = Gᵀ Mw G (3 × 3) from the summed transformed products.
    fold_weight_gradient(&partials[..PTS * f * c], dw);
    scratch.partials = partials;
    scratch.wt = u;
}
