//! 2-D max pooling kernels with argmax bookkeeping.

use super::{Elem, multiversion};

/// Sizes of a pooling call: `x` is `(planes, h, w)` with `planes = n·c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolDims {
    /// Number of `h × w` planes (batch × channels).
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size (square).
    pub p: usize,
    /// Stride.
    pub stride: usize,
}

impl PoolDims {
    /// Output height `(h − p)/s + 1`.
    pub fn oh(&self) -> usize {
        (self.h - self.p) / self.stride + 1
    }
    /// Output width `(w − p)/s + 1`.
    pub fn ow(&self) -> usize {
        (self.w - self.p) / self.stride + 1
    }
}

/// Max pooling; when `argmax` is given, records for each output the in-plane index of the first
/// maximum of its window (row-major scan order).
pub fn max_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>) {
    let (xs, ys) = (d.h * d.w, d.oh() * d.ow());
    let parts = super::split_batch(d.planes, xs * 8);
    if parts <= 1 {
        return max_forward_one(d, x, y, argmax);
    }
    // Planes are independent: split them over the kernel threads.
    let per = d.planes.div_ceil(parts);
    crate::threads::scope(|sc| {
        let mut arg_rest = argmax;
        for (i, yc) in y[..d.planes * ys].chunks_mut(per * ys).enumerate() {
            let n = yc.len() / ys;
            let dd = PoolDims { planes: n, ..*d };
            let xc = &x[i * per * xs..][..n * xs];
            let ac = match arg_rest.take() {
                Some(rest) => {
                    let (head, tail) = rest.split_at_mut(n * ys);
                    arg_rest = Some(tail);
                    Some(head)
                }
                None => None,
            };
            let last = (i + 1) * per >= d.planes;
            crate::threads::spawn_or_run(sc, last, move || max_forward_one(&dd, xc, yc, ac));
        }
    });
}

fn max_forward_one<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: Option<&mut [u32]>) {
    match argmax {
        Some(a) if d.p == 2 && d.stride == 2 => max2_forward(d, x, y, a),
        a => max_forward_general(d, x, y, a),
    }
}

multiversion! {
    /// 2×2 windows with stride 2 (the common case), branch-free, with argmax.
    fn max2_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], argmax: &mut [u32]) => max2_forward_body
}

#[inline(always)]
fn max2_forward_body<E: Elem, const FMA: bool>(d: &PoolDims, x: &[E], y: &mut [E], argmax: &mut [u32]) {
    let (oh, ow, w) = (d.oh(), d.ow(), d.w);
    for pl in 0..d.planes {
        let xp = &x[pl * d.h * w..][..d.h * w];
        let base = pl * oh * ow;
        for oy in 0..oh {
            let r0 = &xp[2 * oy * w..][..w];
            let r1 = &xp[(2 * oy + 1) * w..][..w];
            let yrow = &mut y[base + oy * ow..][..ow];
            let arow = &mut argmax[base + oy * ow..][..ow];
            let i0 = (2 * oy * w) as u32;
            for ox in 0..ow {
                let (a, b, c, e) = (r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]);
                // first maximum in row-major order: a later element wins only when strictly larger
                let (m1, k1) = if b > a { (b, 1u32) } else { (a, 0u32) };
                let (m2, k2) = if e > c { (e, 1u32) } else { (c, 0u32) };
                let (m, k) = if m2 > m1 { (m2, w as u32 + k2) } else { (m1, k1) };
                yrow[ox] = m;
                arow[ox] = i0 + 2 * ox as u32 + k;
            }
        }
    }
}

/// Max pooling for any window and stride (the general path; [`max_forward`] dispatches here except
/// for 2×2 windows with stride 2).
pub fn max_forward_general<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], mut argmax: Option<&mut [u32]>) {
    let (oh, ow, p, s) = (d.oh(), d.ow(), d.p, d.stride);
    for pl in 0..d.planes {
        let xp = &x[pl * d.h * d.w..][..d.h * d.w];
        let base = pl * oh * ow;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = oy * s * d.w + ox * s;
                let mut bv = xp[best];
                for ky in 0..p {
                    let row = (oy * s + ky) * d.w + ox * s;
                    for kx in 0..p {
                        let v = xp[row + kx];
                        if v > bv {
                            bv = v;
                            best = row + kx;
                        }
                    }
                }
                y[base + oy * ow + ox] = bv;
                if let Some(a) = argmax.as_deref_mut() {
                    a[base + oy * ow + ox] = best as u32;
                }
            }
        }
    }
}

/// Backward: each output gradient goes to the first maximum of its window; overlapping windows
/// accumulate.
pub fn max_backward<E: Elem>(d: &PoolDims, dy: &[E], argmax: &[u32], dx: &mut [E]) {
    let (xs, q) = (d.h * d.w, d.oh() * d.ow());
    let parts = super::split_batch(d.planes, xs * 8);
    if parts <= 1 {
        return max_backward_one(d, dy, argmax, dx);
    }
    // Planes are independent: split them over the kernel threads.
    let per = d.planes.div_ceil(parts);
    crate::threads::for_pieces(&mut dx[..d.planes * xs], per * xs, |at, dxc| {
        let (p0, n) = (at / xs, dxc.len() / xs);
        let dd = PoolDims { planes: n, ..*d };
        max_backward_one(&dd, &dy[p0 * q..][..n * q], &argmax[p0 * q..][..n * q], dxc)
    });
}

fn max_backward_one<E: Elem>(d: &PoolDims, dy: &[E], argmax: &[u32], dx: &mut [E]) {
    let q = d.oh() * d.ow();
    dx[..d.planes * d.h * d.w].fill(E::zero());
    for pl in 0..d.planes {
        let dxp = &mut dx[pl * d.h * d.w..][..d.h * d.w];
        for (g, &i) in dy[pl * q..][..q].iter().zip(&argmax[pl * q..][..q]) {
            dxp[i as usize] += *g;
        }
    }
}
