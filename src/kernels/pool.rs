//! 2-D max pooling kernels with argmax bookkeeping.

use super::Elem;

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
pub fn max_forward<E: Elem>(d: &PoolDims, x: &[E], y: &mut [E], mut argmax: Option<&mut [u32]>) {
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
    let q = d.oh() * d.ow();
    dx.fill(E::zero());
    for pl in 0..d.planes {
        let dxp = &mut dx[pl * d.h * d.w..][..d.h * d.w];
        for (g, &i) in dy[pl * q..][..q].iter().zip(&argmax[pl * q..][..q]) {
            dxp[i as usize] += *g;
        }
    }
}
