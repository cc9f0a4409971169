//! Convolution through explicit patch matrices: `im2col`/`col2im` (several samples side by side
//! for small maps) and the GEMM over them, the path for any element type, stride and padding.

use super::{ConvDims, ConvScratch, check_bias, split_backward};
use crate::kernels::{Elem, Strides, copy_short, gemm, matmul, multiversion, split_batch};
use crate::threads::{chunk_count, run_chunks, split_runs};

/// Writes the patches of sample `xs` (`(c, h, w)`) as the columns of `cols` (`c·k·k × oh·ow`).
pub fn im2col<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E]) {
    d.validate();
    im2col_at(d, xs, cols, d.oh() * d.ow(), 0)
}

/// [`im2col`] into columns `col0..col0 + oh·ow` of a matrix whose rows are `ld` long (several
/// samples side by side). Stride 1 goes through a zero-padded plane in the thread's packing buffer.
fn im2col_at<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize) {
    if d.stride == 1 {
        let len = (d.h + 2 * d.pad) * (d.w + 2 * d.pad);
        matmul::with_panel::<E, _>(len, |plane| im2col_plane_mv(d, xs, cols, ld, col0, plane))
    } else {
        im2col_strided(d, xs, cols, ld, col0)
    }
}

multiversion! {
    /// The stride-1 [`im2col_at`], through `plane`.
    fn im2col_plane_mv<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize, plane: &mut [E]) => im2col_plane_body
}

multiversion! {
    /// [`im2col_at`] for any stride.
    fn im2col_strided<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize) => im2col_strided_body
}

/// Copies `OW` elements (`OW > 0`, a fixed-size move) or `dst.len()` elements (`OW = 0`).
#[inline(always)]
fn copy_fixed<E: Elem, const OW: usize>(dst: &mut [E], src: &[E]) {
    if OW > 0 {
        let v: [E; OW] = src[..OW].try_into().expect("row width");
        let d: &mut [E; OW] = dst.try_into().expect("row width");
        *d = v;
    } else {
        copy_short(dst, src);
    }
}

/// `dst += src` over `OW` elements (`OW > 0`, fixed-size) or `dst.len()` elements (`OW = 0`).
#[inline(always)]
fn add_fixed<E: Elem, const OW: usize>(dst: &mut [E], src: &[E]) {
    if OW > 0 {
        let v: &[E; OW] = src[..OW].try_into().expect("row width");
        let d: &mut [E; OW] = dst.try_into().expect("row width");
        for j in 0..OW {
            d[j] += v[j];
        }
    } else {
        add_row(dst, src);
    }
}

/// Stride-1 im2col through a zero-padded copy of each input plane: the row of kernel offset
/// `(ky, kx)` is `oh` windows of `OW` elements (`OW = 0`: `ow`, not fixed) of the plane, so every
/// copy is a fixed-size move with no border logic. `plane` (`(h + 2p)·(w + 2p)`) arrives zeroed;
/// only its inner part is written, so its border stays zero.
#[inline(always)]
fn im2col_plane<E: Elem, const OW: usize>(
    d: &ConvDims,
    xs: &[E],
    cols: &mut [E],
    ld: usize,
    col0: usize,
    plane: &mut [E],
) {
    let (oh, ow, k, p) = (d.oh(), d.ow(), d.k, d.pad);
    let pw = d.w + 2 * p;
    for ci in 0..d.c {
        for iy in 0..d.h {
            copy_short(&mut plane[(iy + p) * pw + p..][..d.w], &xs[(ci * d.h + iy) * d.w..][..d.w]);
        }
        for ky in 0..k {
            for kx in 0..k {
                let dst = &mut cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                let src = &plane[ky * pw + kx..];
                for (oy, out) in dst.chunks_exact_mut(ow).enumerate() {
                    copy_fixed::<E, OW>(out, &src[oy * pw..][..ow]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col_plane`]: each plane's kernel-offset rows are added into a zero-padded
/// accumulator with fixed-size adds, whose inner part is then added into `dxs`.
#[inline(always)]
fn col2im_plane<E: Elem, const OW: usize>(
    d: &ConvDims,
    cols: &[E],
    ld: usize,
    col0: usize,
    dxs: &mut [E],
    plane: &mut [E],
) {
    let (oh, ow, k, p) = (d.oh(), d.ow(), d.k, d.pad);
    let pw = d.w + 2 * p;
    for ci in 0..d.c {
        plane.fill(E::zero());
        for ky in 0..k {
            for kx in 0..k {
                let src = &cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                let acc = &mut plane[ky * pw + kx..];
                for (oy, row) in src.chunks_exact(ow).enumerate() {
                    add_fixed::<E, OW>(&mut acc[oy * pw..][..ow], row);
                }
            }
        }
        for iy in 0..d.h {
            add_row(&mut dxs[(ci * d.h + iy) * d.w..][..d.w], &plane[(iy + p) * pw + p..][..d.w]);
        }
    }
}

/// `dst += src` elementwise (the adjoint of [`copy_short`]).
#[inline(always)]
fn add_row<E: Elem>(dst: &mut [E], src: &[E]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d += v;
    }
}

/// `$f::<E, W>(args)` with `W` the output width `$ow` when it is one of the common widths (fixed-size
/// row moves), `W = 0` (rows of `ow` elements) otherwise.
macro_rules! by_width {
    ($ow:expr, $f:ident($($arg:expr),*)) => {
        match $ow {
            2 => $f::<E, 2>($($arg),*),
            4 => $f::<E, 4>($($arg),*),
            8 => $f::<E, 8>($($arg),*),
            16 => $f::<E, 16>($($arg),*),
            32 => $f::<E, 32>($($arg),*),
            _ => $f::<E, 0>($($arg),*),
        }
    };
}

#[inline(always)]
fn im2col_plane_body<E: Elem, const FMA: bool>(
    d: &ConvDims,
    xs: &[E],
    cols: &mut [E],
    ld: usize,
    col0: usize,
    plane: &mut [E],
) {
    plane.fill(E::zero());
    by_width!(d.ow(), im2col_plane(d, xs, cols, ld, col0, plane))
}

#[inline(always)]
fn im2col_strided_body<E: Elem, const FMA: bool>(d: &ConvDims, xs: &[E], cols: &mut [E], ld: usize, col0: usize) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ci in 0..d.c {
        for ky in 0..k {
            let (oy0, oy1) = d.valid(ky, d.h, oh);
            for kx in 0..k {
                let (ox0, ox1) = d.valid(kx, d.w, ow);
                let row = &mut cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                for oy in 0..oh {
                    let out = &mut row[oy * ow..][..ow];
                    if oy < oy0 || oy >= oy1 {
                        out.fill(E::zero());
                        continue;
                    }
                    let iy = oy * s + ky - d.pad;
                    let xrow = &xs[(ci * d.h + iy) * d.w..][..d.w];
                    out[..ox0].fill(E::zero());
                    out[ox1..].fill(E::zero());
                    for ox in ox0..ox1 {
                        out[ox] = xrow[ox * s + kx - d.pad];
                    }
                }
            }
        }
    }
}

/// Adds the columns of `cols` back into the sample gradient `dxs` (the adjoint of [`im2col`]).
pub fn col2im<E: Elem>(d: &ConvDims, cols: &[E], dxs: &mut [E]) {
    d.validate();
    col2im_at(d, cols, d.oh() * d.ow(), 0, dxs)
}

/// [`col2im`] from columns `col0..col0 + oh·ow` of a matrix whose rows are `ld` long. Stride 1
/// accumulates in a zero-padded plane in the thread's packing buffer.
fn col2im_at<E: Elem>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E]) {
    if d.stride == 1 {
        let len = (d.h + 2 * d.pad) * (d.w + 2 * d.pad);
        matmul::with_panel::<E, _>(len, |plane| col2im_plane_mv(d, cols, ld, col0, dxs, plane))
    } else {
        col2im_strided(d, cols, ld, col0, dxs)
    }
}

multiversion! {
    /// The stride-1 [`col2im_at`], through `plane`.
    fn col2im_plane_mv<E: Elem>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E], plane: &mut [E]) => col2im_plane_body
}

multiversion! {
    /// [`col2im_at`] for any stride.
    fn col2im_strided<E: Elem>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E]) => col2im_strided_body
}

#[inline(always)]
fn col2im_plane_body<E: Elem, const FMA: bool>(
    d: &ConvDims,
    cols: &[E],
    ld: usize,
    col0: usize,
    dxs: &mut [E],
    plane: &mut [E],
) {
    by_width!(d.ow(), col2im_plane(d, cols, ld, col0, dxs, plane))
}

#[inline(always)]
fn col2im_strided_body<E: Elem, const FMA: bool>(d: &ConvDims, cols: &[E], ld: usize, col0: usize, dxs: &mut [E]) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ci in 0..d.c {
        for ky in 0..k {
            let (oy0, oy1) = d.valid(ky, d.h, oh);
            for kx in 0..k {
                let (ox0, ox1) = d.valid(kx, d.w, ow);
                let row = &cols[((ci * k + ky) * k + kx) * ld + col0..][..oh * ow];
                for oy in oy0..oy1 {
                    let iy = oy * s + ky - d.pad;
                    let dxrow = &mut dxs[(ci * d.h + iy) * d.w..][..d.w];
                    for ox in ox0..ox1 {
                        dxrow[ox * s + kx - d.pad] += row[oy * ow + ox];
                    }
                }
            }
        }
    }
}

/// How many samples' patch matrices to put side by side in one GEMM: enough for at least 64 columns
/// (the 16-wide micro-kernel needs several), few enough that the `p × columns` matrix stays in L2.
fn samples_per_gemm(p: usize, q: usize, per: usize) -> usize {
    const L2_ELEMS: usize = 65536; // 256 KiB of f32, a quarter of this machine's L2
    let fit = L2_ELEMS / (p * q).max(1);
    let wide = 64usize.div_ceil(q.max(1));
    fit.max(wide).clamp(1, per.max(1))
}

/// Forward pass through an explicit patch matrix (im2col) + GEMM, whatever the element type and
/// shape (what [`forward_im2col`](super::forward_im2col) falls back to; public so that benches can compare the two).
pub fn forward_patch_matrix<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    bias: Option<&[E]>,
    y: &mut [E],
    scratch: &mut ConvScratch<E>,
) {
    d.check_lens(x.len(), w.len(), y.len());
    check_bias(d, bias.map(|b| b.len()));
    let (p, q) = (d.patch(), d.oh() * d.ow());
    let (xs, ys) = (d.c * d.h * d.w, d.f * q);
    let parts = split_batch(d.n, ys * p).max(1);
    let chunks = chunk_count(d.n, parts);
    // Samples per GEMM: small feature maps are batched side by side so that the product has enough
    // columns for the 16-wide micro-kernel.
    let nb = samples_per_gemm(p, q, d.n.div_ceil(chunks));
    let run = |buf: &mut [Vec<E>; 4], (lo, n, yc): (usize, usize, &mut [E])| {
        let [cols, ytmp, _, _] = buf;
        cols.resize(p * q * nb, E::zero());
        ytmp.resize(d.f * q * nb, E::zero());
        let mut s0 = 0;
        while s0 < n {
            let m = nb.min(n - s0);
            let ld = m * q;
            for s in 0..m {
                im2col_at(d, &x[(lo + s0 + s) * xs..][..xs], cols, ld, s * q);
            }
            if m == 1 {
                let yn = &mut yc[s0 * ys..][..ys];
                gemm(
                    d.f,
                    q,
                    p,
                    w,
                    Strides::row_major(p),
                    cols,
                    Strides::row_major(q),
                    yn,
                    Strides::row_major(q),
                    false,
                );
            } else {
                gemm(
                    d.f,
                    ld,
                    p,
                    w,
                    Strides::row_major(p),
                    cols,
                    Strides::row_major(ld),
                    ytmp,
                    Strides::row_major(ld),
                    false,
                );
                for s in 0..m {
                    for fi in 0..d.f {
                        copy_short(&mut yc[(s0 + s) * ys + fi * q..][..q], &ytmp[fi * ld + s * q..][..q]);
                    }
                }
            }
            if let Some(b) = bias {
                for yn in yc[s0 * ys..(s0 + m) * ys].chunks_exact_mut(ys) {
                    for (fi, row) in yn.chunks_exact_mut(q).enumerate() {
                        for v in row {
                            *v += b[fi];
                        }
                    }
                }
            }
            s0 += m;
        }
    };
    run_chunks(scratch.parts(parts), split_runs(y, d.n, ys, chunks), run);
}

/// Backward pass (weight and input gradients; no bias gradient) through explicit patch matrices
/// (im2col/col2im) + GEMM: what [`backward_im2col`](super::backward_im2col) falls back to, public for benches.
#[allow(clippy::too_many_arguments)]
pub fn backward_patch_matrix<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    dx: Option<&mut [E]>,
    scratch: &mut ConvScratch<E>,
) {
    d.check_backward(x.len(), w.len(), dy.len(), dw.len(), None, dx.as_ref().map(|t| t.len()));
    patch_matrix_backward(d, x, w, dy, dw, (dx, None), scratch)
}

/// [`backward_patch_matrix`], and the bias gradient when `db` is given.
pub(super) fn patch_matrix_backward<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    (dx, db): (Option<&mut [E]>, Option<&mut [E]>),
    scratch: &mut ConvScratch<E>,
) {
    let (p, q) = (d.patch(), d.oh() * d.ow());
    let (xs, ys) = (d.c * d.h * d.w, d.f * q);
    let parts = split_batch(d.n, ys * p * 2).max(1);
    let nb = samples_per_gemm(p, q, d.n.div_ceil(chunk_count(d.n, parts)));
    // One chunk: samples lo..lo+n, its dW partial sum in `dwp`; small maps are batched `nb` at a time.
    let run = |lo: usize, n: usize, dxc: Option<&mut [E]>, dwp: &mut [E], buf: &mut [Vec<E>; 4]| {
        let [cols, dcols, _, dyg] = buf;
        cols.resize(p * q * nb, E::zero());
        dcols.resize(p * q * nb, E::zero());
        dyg.resize(d.f * q * nb, E::zero());
        dwp.fill(E::zero());
        let mut dxc = dxc;
        let mut s0 = 0;
        while s0 < n {
            let m = nb.min(n - s0);
            let ld = m * q;
            for s in 0..m {
                im2col_at(d, &x[(lo + s0 + s) * xs..][..xs], cols, ld, s * q);
            }
            let g: &[E] = if m == 1 {
                &dy[(lo + s0) * ys..][..ys]
            } else {
                for s in 0..m {
                    for fi in 0..d.f {
                        copy_short(&mut dyg[fi * ld + s * q..][..q], &dy[(lo + s0 + s) * ys + fi * q..][..q]);
                    }
                }
                &dyg[..d.f * ld]
            };
            // dWᵀ (p × f) += cols (p × ld) · dYᵀ (ld × f): the GEMM packs the narrow dY, not
            // the 9×-wider patch matrix, and broadcasts from the patch rows in place.
            gemm(
                p,
                d.f,
                ld,
                cols,
                Strides::row_major(ld),
                g,
                Strides::transposed(ld),
                dwp,
                Strides::transposed(p),
                true,
            );
            if let Some(dx) = dxc.as_deref_mut() {
                // dcols (p × ld) = Wᵀ (p × f) · dY (f × ld)
                gemm(
                    p,
                    ld,
                    d.f,
                    w,
                    Strides::transposed(p),
                    g,
                    Strides::row_major(ld),
                    dcols,
                    Strides::row_major(ld),
                    false,
                );
                for s in 0..m {
                    let dxs = &mut dx[(s0 + s) * xs..][..xs];
                    dxs.fill(E::zero());
                    col2im_at(d, dcols, ld, s * q, dxs);
                }
            }
            s0 += m;
        }
    };
    let mut partials = core::mem::take(&mut scratch.partials);
    split_backward(d, dy, (dx, db), (scratch.parts(parts), 1), (&mut partials, d.f * p), run);
    dw.copy_from_slice(&partials[..d.f * p]);
    scratch.partials = partials;
}
