//! 2-D convolution (cross-correlation) kernels: a direct loop for few channels, im2col + GEMM for many.
//!
//! This module holds the sizes ([`ConvDims`]), the scratch buffers ([`ConvScratch`]), the entry points
//! that choose a path, and the split of a batch over the kernel threads; the paths are in `direct.rs`
//! (direct loops), `im2col.rs` (explicit patch matrices + GEMM), `implicit.rs` (implicit im2col,
//! f32 on AVX2), `dense.rs` (small maps as one dense product), `winograd/` (3 × 3 kernels in
//! Winograd's F(2×2, 3×3): 16 multiplications per 2 × 2 outputs instead of 36) and `simd.rs` (the
//! AVX2 and AVX-512 register tiles of the direct path).

#[cfg(target_arch = "x86_64")]
mod compact;
mod dense;
mod direct;
mod im2col;
mod implicit;
mod shifted;
#[cfg(target_arch = "x86_64")]
mod simd;
mod winograd;

pub use dense::{backward_dense, forward_dense};
pub use direct::{backward_direct, forward_direct, forward_direct_rows};
pub use im2col::{backward_patch_matrix, col2im, forward_patch_matrix, im2col};
pub use winograd::{backward_winograd, forward_winograd};

use super::Elem;
use super::cpu;
use super::split::split_pass;
use crate::threads::{chunk_count, run_chunks, unit_runs};
use dense::dense_applies;
use im2col::patch_matrix_backward;
use implicit::{backward_indirect, forward_indirect, indirect_backward_applies};
use winograd::winograd_applies;

/// Sizes of a convolution call. `x` is `(n, c, h, w)`, the kernel `(f, c, k, k)`, `y` `(n, f, oh, ow)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Filters (output channels).
    pub f: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl ConvDims {
    /// Output height `(h + 2p − k)/s + 1`; panics when the kernel is larger than the padded input or
    /// the stride is 0 (see [`ConvDims::validate`]).
    pub fn oh(&self) -> usize {
        out_extent(self.h, self.k, self.stride, self.pad)
    }
    /// Output width `(w + 2p − k)/s + 1`; panics like [`ConvDims::oh`].
    pub fn ow(&self) -> usize {
        out_extent(self.w, self.k, self.stride, self.pad)
    }
    /// Checks the sizes every kernel relies on: kernel, stride, channels and filters at least 1, the
    /// kernel inside the padded input, and the tensors' element counts free of overflow. The public
    /// entry points call it (with [`ConvDims::check_lens`]) before touching a buffer.
    pub fn validate(&self) {
        assert!(
            self.k >= 1 && self.stride >= 1,
            "convolution: kernel {} and stride {} must be at least 1",
            self.k,
            self.stride
        );
        assert!(
            self.c >= 1 && self.f >= 1,
            "convolution: {} channels and {} filters must be at least 1",
            self.c,
            self.f
        );
        let (oh, ow) = (self.oh(), self.ow());
        let x = [self.n, self.c, self.h, self.w].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let y = [self.n, self.f, oh, ow].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let w = [self.f, self.c, self.k, self.k].iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let pad = (self.h + 2 * self.pad).checked_mul(self.w + 2 * self.pad);
        assert!(
            x.is_some() && y.is_some() && w.is_some() && pad.is_some(),
            "convolution: sizes overflow usize: {self:?}"
        );
    }
    /// Validates the dims and checks `x`, `w`, `y` hold `n·c·h·w`, `f·c·k·k` and `n·f·oh·ow` values.
    pub fn check_lens(&self, x: usize, w: usize, y: usize) {
        self.validate();
        assert_eq!(x, self.n * self.c * self.h * self.w, "convolution: input length for {self:?}");
        assert_eq!(w, self.f * self.c * self.k * self.k, "convolution: weight length for {self:?}");
        assert_eq!(y, self.n * self.f * self.oh() * self.ow(), "convolution: output length for {self:?}");
    }
    /// [`ConvDims::check_lens`] for a backward pass, plus the gradients' lengths: `dw` like the
    /// weights, `dx` (when asked for) like the input, `db` (when asked for) one per filter.
    pub fn check_backward(&self, x: usize, w: usize, dy: usize, dw: usize, db: Option<usize>, dx: Option<usize>) {
        self.check_lens(x, w, dy);
        assert_eq!(dw, w, "convolution: weight gradient length");
        assert!(dx.is_none_or(|l| l == x), "convolution: input gradient length");
        assert!(db.is_none_or(|l| l == self.f), "convolution: bias length {db:?} for {} filters", self.f);
    }
    /// Rows of the im2col matrix: `c·k·k`.
    pub fn patch(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Whether im2col + GEMM is the faster path (many input channels); see `benches/kernels.rs`.
    pub fn prefers_im2col(&self) -> bool {
        self.c >= 4
    }
    /// The output positions `o` (along an axis of input extent `len` and output extent `olen`) for
    /// which kernel offset `kk` reads inside the input: `lo..hi`.
    #[inline(always)]
    fn valid(&self, kk: usize, len: usize, olen: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        let lo = if p > kk { (p - kk).div_ceil(s) } else { 0 };
        let hi = if len + p > kk { ((len - 1 + p - kk) / s + 1).min(olen) } else { 0 };
        (lo, hi.max(lo))
    }
}

/// `db[f] = Σ_{n, position} dy[n, f, position]`.
fn bias_grad<E: Elem>(d: &ConvDims, dy: &[E], db: &mut [E]) {
    let q = d.oh() * d.ow();
    db.fill(E::zero());
    for ni in 0..d.n {
        for (fi, b) in db.iter_mut().enumerate() {
            *b += cpu::sum_lanes(&dy[(ni * d.f + fi) * q..][..q]);
        }
    }
}

/// The first `len` elements of `rest` (which keeps the others), when there is a buffer at all.
fn split_off<'a, E>(rest: &mut Option<&'a mut [E]>, len: usize) -> Option<&'a mut [E]> {
    let (head, tail) = rest.take()?.split_at_mut(len);
    *rest = Some(tail);
    Some(head)
}

/// Runs `run(lo, n, dx, partial, buffers)` on the batch of `d.n` samples cut into chunks of whole
/// `unit`s of samples (samples `lo..lo + n` each, with their slice of `dx` and a `plen`-long slice
/// of `partials` for the chunk's own weight-gradient partial sum, which `run` overwrites), spread
/// over `bufs.len()` threads, each
/// with its own buffers: the backward passes' split over the kernel threads. When `db` is given,
/// each chunk also sums its samples' bias gradient (`Σ dy` per filter). On return
/// `partials[..plen]` holds the sum of the chunks' partial sums and `db` the bias gradient, both
/// added in chunk order (the same sums whichever thread ran which chunk).
fn split_backward<E: Elem>(
    d: &ConvDims,
    dy: &[E],
    (dx, db): (Option<&mut [E]>, Option<&mut [E]>),
    (bufs, unit): (&mut [[Vec<E>; 4]], usize),
    (partials, plen): (&mut Vec<E>, usize),
    run: impl Fn(usize, usize, Option<&mut [E]>, &mut [E], &mut [Vec<E>; 4]) + Sync,
) {
    let (xs, ys) = (d.c * d.h * d.w, d.f * d.oh() * d.ow());
    let nb = if db.is_some() { d.f } else { 0 };
    let chunks = chunk_count(d.n.div_ceil(unit), bufs.len());
    let stride = (plen + nb).max(1); // (so that a gradient of no values still has one slot per chunk)
    if partials.len() < chunks * stride {
        partials.resize(chunks * stride, E::zero());
    }
    let one = |lo: usize, n: usize, dxc: Option<&mut [E]>, part: &mut [E], buf: &mut [Vec<E>; 4]| {
        let (dwp, dbp) = part[..plen + nb].split_at_mut(plen);
        run(lo, n, dxc, dwp, buf);
        if nb > 0 {
            bias_grad(&ConvDims { n, ..*d }, &dy[lo * ys..][..n * ys], dbp);
        }
    };
    if let [buf] = bufs {
        one(0, d.n, dx, &mut partials[..stride], buf);
    } else {
        let mut dx_rest = dx;
        let pieces = unit_runs(d.n, chunks, unit)
            .zip(partials.chunks_exact_mut(stride))
            .map(|((lo, n), part)| (lo, n, split_off(&mut dx_rest, n * xs), part));
        run_chunks(bufs, pieces, |buf, (lo, n, dxc, part)| one(lo, n, dxc, part, buf));
        reduce_chunks(partials, stride, chunks);
    }
    if let Some(db) = db {
        db.copy_from_slice(&partials[plen..plen + nb]);
    }
}

/// `partials[..len] = Σ_i partials[i·len ..][..len]` over `chunks` partial sums, in chunk order
/// (the same sums however the elements are split over the kernel threads).
fn reduce_chunks<E: Elem>(partials: &mut [E], len: usize, chunks: usize) {
    if chunks <= 1 {
        return;
    }
    let (first, rest) = partials[..chunks * len].split_at_mut(len);
    let rest = &*rest;
    let parts = split_pass(len * chunks);
    crate::threads::for_chunks(first, 64, parts, |at, out| {
        let r = at..at + out.len();
        for c in 0..chunks - 1 {
            for (o, &v) in out.iter_mut().zip(&rest[c * len + r.start..][..r.len()]) {
                *o += v;
            }
        }
    });
}

/// A bias (or its gradient), when given, has one value per filter.
fn check_bias(d: &ConvDims, len: Option<usize>) {
    assert!(len.is_none_or(|l| l == d.f), "convolution: bias length {len:?} for {} filters", d.f);
}

/// `(len + 2·pad − k)/stride + 1`, checked: a kernel larger than the padded input or a zero stride
/// panics with the sizes instead of wrapping around.
fn out_extent(len: usize, k: usize, stride: usize, pad: usize) -> usize {
    let padded = pad.checked_mul(2).and_then(|p| len.checked_add(p));
    match padded.and_then(|p| p.checked_sub(k)) {
        Some(span) if stride > 0 => span / stride + 1,
        _ => panic!("convolution: kernel {k} with stride {stride} does not fit an input extent {len} padded by {pad}"),
    }
}

/// Scratch buffers of the convolution kernels, one set per thread of a split, kept across steps so
/// that a steady-state step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct ConvScratch<E> {
    parts: Vec<[Vec<E>; 4]>,
    /// One weight-gradient partial sum per chunk of the batch (see `split_backward`).
    partials: Vec<E>,
    /// The row offsets of the implicit patch matrix (see `forward_indirect`), or the dense path's
    /// map of kernel taps (see `dense::tap_map`).
    offs: Vec<usize>,
    /// The flipped, transposed weights of the implicit backward pass (see `backward_indirect`),
    /// the Winograd path's transformed weights, or the dense path's `Wdᵀ`.
    wt: Vec<E>,
}

impl<E: Elem> ConvScratch<E> {
    /// The first `n` sets. Every set is first given the capacity of the largest of its kind: with
    /// work stealing, the part that owns a set may run no chunk in one step and several in the
    /// next, and it must not then allocate mid-step (tests/alloc.rs at two threads on a busy host).
    fn parts(&mut self, n: usize) -> &mut [[Vec<E>; 4]] {
        if self.parts.len() < n {
            self.parts.resize_with(n, Default::default);
        }
        for j in 0..4 {
            let cap = self.parts.iter().map(|p| p[j].capacity()).max().unwrap_or(0);
            for p in &mut self.parts {
                let v = &mut p[j];
                if v.capacity() < cap {
                    v.reserve_exact(cap - v.len());
                }
            }
        }
        &mut self.parts[..n]
    }
}

/// Whether the direct loops' AVX-512 compact tiles (f32, stride 1, output rows ≥ 16; `compact.rs`)
/// take a convolution of fewer than 4 input channels (and no input gradient, which they do not
/// compute): there they beat the implicit-im2col GEMM (the CIFAR VGG's first layer, `examples/
/// conv_layers.rs`: forward 0.99 against 1.16 ms, weight gradient 1.18 against 1.52 ms).
fn direct_compact<E: Elem>(d: &ConvDims, dx: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    if core::any::TypeId::of::<E>() == core::any::TypeId::of::<f32>() {
        return !dx && !d.prefers_im2col() && simd::compact_applies(d);
    }
    let _ = (d, dx);
    false
}

/// Forward pass by the fastest path for `d` and `E`: one dense product where the input plane is no
/// larger than the kernel window (small maps: [`forward_dense`]), Winograd's F(2×2, 3×3) for f32
/// 3 × 3 kernels with stride 1 and padding 1 and enough channels `c` and filters `f`
/// (`c·f ≥ 8·(c + f)`: [`forward_winograd`]), the direct loops' AVX-512 tiles for few input
/// channels on wide maps, without a patch matrix where `backward` can do the same
/// (f32 on AVX2, stride 1, "same" padding, output rows ≥ 8), through im2col + GEMM for ≥ 4 input
/// channels ([`ConvDims::prefers_im2col`]), direct loops otherwise.
pub fn forward<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E], scratch: &mut ConvScratch<E>) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    if dense_applies(d) {
        forward_dense(d, x, w, bias, y, scratch)
    } else if winograd_applies::<E>(d) {
        forward_winograd(d, x, w, bias, y, scratch)
    } else if direct_compact::<E>(d, false) {
        forward_direct(d, x, w, bias, y, scratch)
    } else if d.prefers_im2col() || indirect_backward_applies::<E>(d) {
        forward_im2col(d, x, w, bias, y, scratch)
    } else {
        forward_direct(d, x, w, bias, y, scratch)
    }
}

/// Backward pass by the fastest path for `d` and `E`, as [`forward`] chooses (the direct loops'
/// AVX-512 tiles only without an input gradient).
#[allow(clippy::too_many_arguments)]
pub fn backward<E: Elem>(
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
    if dense_applies(d) {
        backward_dense(d, x, w, dy, dw, db, dx, scratch)
    } else if winograd_applies::<E>(d) {
        backward_winograd(d, x, w, dy, dw, db, dx, scratch)
    } else if direct_compact::<E>(d, dx.is_some()) {
        backward_direct(d, x, w, dy, dw, db, dx, scratch)
    } else if d.prefers_im2col() || indirect_backward_applies::<E>(d) {
        backward_im2col(d, x, w, dy, dw, db, dx, scratch)
    } else {
        backward_direct(d, x, w, dy, dw, db, dx, scratch)
    }
}

/// Forward pass through im2col + GEMM, the batch split over the kernel threads: without a patch
/// matrix where the implicit path applies (f32 on AVX2, stride 1, output rows ≥ 8), through
/// [`forward_patch_matrix`] otherwise.
pub fn forward_im2col<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    if !forward_indirect(d, x, w, bias, y, scratch) {
        forward_patch_matrix(d, x, w, bias, y, scratch)
    }
}

/// Backward pass through im2col + GEMM, the batch split over the kernel threads in chunks (each with
/// its own weight- and bias-gradient partial sums, added in chunk order): without patch matrices
/// where the implicit path applies (f32 on AVX2, stride 1, "same" padding, output rows ≥ 8), through
/// [`backward_patch_matrix`] otherwise.
#[allow(clippy::too_many_arguments)]
pub fn backward_im2col<E: Elem>(
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
    if let Err(dx_db) = backward_indirect(d, x, w, dy, dw, (dx, db), scratch) {
        patch_matrix_backward(d, x, w, dy, dw, dx_db, scratch)
    }
}
