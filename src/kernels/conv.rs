//! 2-D convolution (cross-correlation) kernels: a direct loop for few channels, im2col + GEMM for many.

use super::{Elem, Strides, gemm};

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
    /// Output height `(h + 2p − k)/s + 1`.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }
    /// Output width `(w + 2p − k)/s + 1`.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
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

/// Forward pass, direct loop: `y[n,f] = Σ_c x[n,c] ⋆ w[f,c] (+ b[f])`.
pub fn forward_direct<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E]) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ni in 0..d.n {
        for fi in 0..d.f {
            let yp = &mut y[(ni * d.f + fi) * oh * ow..][..oh * ow];
            yp.fill(bias.map_or(E::zero(), |b| b[fi]));
            for ci in 0..d.c {
                let xp = &x[(ni * d.c + ci) * d.h * d.w..][..d.h * d.w];
                let wk = &w[(fi * d.c + ci) * k * k..][..k * k];
                for ky in 0..k {
                    let (oy0, oy1) = d.valid(ky, d.h, oh);
                    for kx in 0..k {
                        let (ox0, ox1) = d.valid(kx, d.w, ow);
                        let wv = wk[ky * k + kx];
                        for oy in oy0..oy1 {
                            let iy = oy * s + ky - d.pad;
                            let yrow = &mut yp[oy * ow..(oy + 1) * ow];
                            let xrow = &xp[iy * d.w..(iy + 1) * d.w];
                            if s == 1 {
                                let off = ox0 + kx - d.pad;
                                for (yv, &xv) in yrow[ox0..ox1].iter_mut().zip(&xrow[off..]) {
                                    *yv += wv * xv;
                                }
                            } else {
                                for ox in ox0..ox1 {
                                    yrow[ox] += wv * xrow[ox * s + kx - d.pad];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Backward pass, direct loop: `dw = Σ_n x ⋆ dy`, `db = Σ dy`, `dx = dy` fully convolved with `w`.
#[allow(clippy::too_many_arguments)]
pub fn backward_direct<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    mut dx: Option<&mut [E]>,
) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    dw.fill(E::zero());
    if let Some(db) = db {
        db.fill(E::zero());
        for ni in 0..d.n {
            for (fi, b) in db.iter_mut().enumerate() {
                *b += dy[(ni * d.f + fi) * oh * ow..][..oh * ow].iter().copied().sum::<E>();
            }
        }
    }
    if let Some(dx) = dx.as_deref_mut() {
        dx.fill(E::zero());
    }
    for ni in 0..d.n {
        for fi in 0..d.f {
            let dyp = &dy[(ni * d.f + fi) * oh * ow..][..oh * ow];
            for ci in 0..d.c {
                let xoff = (ni * d.c + ci) * d.h * d.w;
                let xp = &x[xoff..][..d.h * d.w];
                let woff = (fi * d.c + ci) * k * k;
                for ky in 0..k {
                    let (oy0, oy1) = d.valid(ky, d.h, oh);
                    for kx in 0..k {
                        let (ox0, ox1) = d.valid(kx, d.w, ow);
                        let wv = w[woff + ky * k + kx];
                        let mut acc = E::zero();
                        for oy in oy0..oy1 {
                            let iy = oy * s + ky - d.pad;
                            let drow = &dyp[oy * ow..(oy + 1) * ow];
                            let xrow = &xp[iy * d.w..(iy + 1) * d.w];
                            for ox in ox0..ox1 {
                                acc += drow[ox] * xrow[ox * s + kx - d.pad];
                            }
                            if let Some(dx) = dx.as_deref_mut() {
                                let dxrow = &mut dx[xoff + iy * d.w..][..d.w];
                                for ox in ox0..ox1 {
                                    dxrow[ox * s + kx - d.pad] += wv * drow[ox];
                                }
                            }
                        }
                        dw[woff + ky * k + kx] += acc;
                    }
                }
            }
        }
    }
}

/// Writes the patches of sample `xs` (`(c, h, w)`) as the columns of `cols` (`c·k·k × oh·ow`).
pub fn im2col<E: Elem>(d: &ConvDims, xs: &[E], cols: &mut [E]) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ci in 0..d.c {
        for ky in 0..k {
            let (oy0, oy1) = d.valid(ky, d.h, oh);
            for kx in 0..k {
                let (ox0, ox1) = d.valid(kx, d.w, ow);
                let row = &mut cols[((ci * k + ky) * k + kx) * oh * ow..][..oh * ow];
                row.fill(E::zero());
                for oy in oy0..oy1 {
                    let iy = oy * s + ky - d.pad;
                    let xrow = &xs[(ci * d.h + iy) * d.w..][..d.w];
                    for ox in ox0..ox1 {
                        row[oy * ow + ox] = xrow[ox * s + kx - d.pad];
                    }
                }
            }
        }
    }
}

/// Adds the columns of `cols` back into the sample gradient `dxs` (the adjoint of [`im2col`]).
pub fn col2im<E: Elem>(d: &ConvDims, cols: &[E], dxs: &mut [E]) {
    let (oh, ow, k, s) = (d.oh(), d.ow(), d.k, d.stride);
    for ci in 0..d.c {
        for ky in 0..k {
            let (oy0, oy1) = d.valid(ky, d.h, oh);
            for kx in 0..k {
                let (ox0, ox1) = d.valid(kx, d.w, ow);
                let row = &cols[((ci * k + ky) * k + kx) * oh * ow..][..oh * ow];
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

/// Forward pass through im2col + GEMM; `cols` is scratch of `c·k·k·oh·ow` elements.
pub fn forward_im2col<E: Elem>(d: &ConvDims, x: &[E], w: &[E], bias: Option<&[E]>, y: &mut [E], cols: &mut [E]) {
    let (p, q) = (d.patch(), d.oh() * d.ow());
    for ni in 0..d.n {
        im2col(d, &x[ni * d.c * d.h * d.w..][..d.c * d.h * d.w], cols);
        let yn = &mut y[ni * d.f * q..][..d.f * q];
        gemm(d.f, q, p, w, Strides::row_major(p), cols, Strides::row_major(q), yn, Strides::row_major(q), false);
        if let Some(b) = bias {
            for (fi, row) in yn.chunks_exact_mut(q).enumerate() {
                for v in row {
                    *v += b[fi];
                }
            }
        }
    }
}

/// Backward pass through im2col + GEMM; `cols` and `dcols` are scratch of `c·k·k·oh·ow` elements.
#[allow(clippy::too_many_arguments)]
pub fn backward_im2col<E: Elem>(
    d: &ConvDims,
    x: &[E],
    w: &[E],
    dy: &[E],
    dw: &mut [E],
    db: Option<&mut [E]>,
    mut dx: Option<&mut [E]>,
    cols: &mut [E],
    dcols: &mut [E],
) {
    let (p, q) = (d.patch(), d.oh() * d.ow());
    let chw = d.c * d.h * d.w;
    if let Some(db) = db {
        db.fill(E::zero());
        for ni in 0..d.n {
            for (fi, b) in db.iter_mut().enumerate() {
                *b += dy[(ni * d.f + fi) * q..][..q].iter().copied().sum::<E>();
            }
        }
    }
    if d.n == 0 {
        dw.fill(E::zero());
    }
    for ni in 0..d.n {
        let dyn_ = &dy[ni * d.f * q..][..d.f * q];
        im2col(d, &x[ni * chw..][..chw], cols);
        // dW (f × p) += dY_n (f × q) · colsᵀ (q × p)
        gemm(d.f, p, q, dyn_, Strides::row_major(q), cols, Strides::transposed(q), dw, Strides::row_major(p), ni > 0);
        if let Some(dx) = dx.as_deref_mut() {
            // dcols (p × q) = Wᵀ (p × f) · dY_n (f × q)
            gemm(
                p,
                q,
                d.f,
                w,
                Strides::transposed(p),
                dyn_,
                Strides::row_major(q),
                dcols,
                Strides::row_major(q),
                false,
            );
            let dxs = &mut dx[ni * chw..][..chw];
            dxs.fill(E::zero());
            col2im(d, dcols, dxs);
        }
    }
}
