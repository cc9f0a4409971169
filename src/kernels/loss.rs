//! The losses' row kernels: logistic, and the element-wise regression and multi-label losses (MSE,
//! L1, Huber, binary cross-entropy on logits); the softmax rows live in `crate::loss`.

use super::{Elem, multiversion};

multiversion! {
    /// The logistic loss's kernel: for each score `s` with label `y ∈ {0, 1}` writes
    /// `(σ(s) − y)/n` into `d` and adds `log(1 + eˢ) − y·s` to `total`, both from `e^−|s|` (no
    /// overflow, one exponential).
    pub(crate) fn logistic_rows<E: Elem>(scores: &[E], labels: &[usize], d: &mut [E], n: E, total: &mut E) => logistic_body
}

#[inline(always)]
fn logistic_body<E: Elem, const FMA: bool>(scores: &[E], labels: &[usize], d: &mut [E], n: E, total: &mut E) {
    #[inline(always)]
    fn one<E: Elem>(s: E, label: usize, d: &mut E, n: E) -> E {
        let y = if label == 1 { E::one() } else { E::zero() };
        let e = (-s.abs()).exp_nonpos();
        let sig = if s >= E::zero() { E::one() } else { e } / (E::one() + e);
        *d = (sig - y) / n;
        s.max(E::zero()) - s * y + e.ln_1p_unit()
    }
    let len = scores.len().min(labels.len()).min(d.len());
    let (scores, labels, d) = (&scores[..len], &labels[..len], &mut d[..len]);
    let mut lanes = [E::zero(); 8];
    let (cs, cl, mut cd) = (scores.chunks_exact(8), labels.chunks_exact(8), d.chunks_exact_mut(8));
    let (rs, rl) = (cs.remainder(), cl.remainder());
    for ((s, l), dd) in cs.zip(cl).zip(&mut cd) {
        for i in 0..8 {
            lanes[i] += one(s[i], l[i], &mut dd[i], n);
        }
    }
    let mut tail = E::zero();
    for ((&s, &l), dd) in rs.iter().zip(rl).zip(cd.into_remainder()) {
        tail += one(s, l, dd, n);
    }
    *total = lanes.iter().copied().fold(tail, |a, v| a + v);
}

/// Runs `one(s, t) -> (loss, dloss/ds)` over paired scores and targets, writing `dloss/ds · inv_n`
/// into `d` and returning the sum of the losses (eight independent partial sums, so the loop is
/// not latency-bound on the additions).
#[inline(always)]
fn pointwise<E: Elem>(scores: &[E], targets: &[E], d: &mut [E], inv_n: E, one: impl Fn(E, E) -> (E, E)) -> E {
    let len = scores.len().min(targets.len()).min(d.len());
    let (scores, targets, d) = (&scores[..len], &targets[..len], &mut d[..len]);
    let mut lanes = [E::zero(); 8];
    let (cs, ct, mut cd) = (scores.chunks_exact(8), targets.chunks_exact(8), d.chunks_exact_mut(8));
    let (rs, rt) = (cs.remainder(), ct.remainder());
    for ((s, t), dd) in cs.zip(ct).zip(&mut cd) {
        for i in 0..8 {
            let (l, g) = one(s[i], t[i]);
            lanes[i] += l;
            dd[i] = g * inv_n;
        }
    }
    let mut tail = E::zero();
    for ((&s, &t), dd) in rs.iter().zip(rt).zip(cd.into_remainder()) {
        let (l, g) = one(s, t);
        tail += l;
        *dd = g * inv_n;
    }
    lanes.iter().copied().fold(tail, |a, v| a + v)
}

/// Squared error: adds `(s − t)²` over the elements to the returned sum and writes
/// `2(s − t)·inv_n` into `d`.
pub(crate) fn mse_rows<E: Elem>(scores: &[E], targets: &[E], d: &mut [E], inv_n: E) -> E {
    let two = E::lit(2.0);
    pointwise(scores, targets, d, inv_n, |s, t| {
        let r = s - t;
        (r * r, two * r)
    })
}

/// Absolute error: `|s − t|`, gradient `sign(s − t)·inv_n` (0 at `s = t`, PyTorch's choice).
pub(crate) fn l1_rows<E: Elem>(scores: &[E], targets: &[E], d: &mut [E], inv_n: E) -> E {
    pointwise(scores, targets, d, inv_n, |s, t| {
        let r = s - t;
        let g = if r > E::zero() {
            E::one()
        } else if r < E::zero() {
            -E::one()
        } else {
            E::zero()
        };
        (r.abs(), g)
    })
}

/// Huber loss with threshold `delta` (PyTorch's `HuberLoss`): `0.5·r²` for `|r| < δ`, else
/// `δ·(|r| − 0.5·δ)`, with `r = s − t`; gradient `r` or `δ·sign(r)`, times `inv_n`.
pub(crate) fn huber_rows<E: Elem>(scores: &[E], targets: &[E], d: &mut [E], inv_n: E, delta: E) -> E {
    let half = E::lit(0.5);
    pointwise(scores, targets, d, inv_n, |s, t| {
        let r = s - t;
        let a = r.abs();
        if a < delta {
            (half * r * r, r)
        } else {
            (delta * (a - half * delta), if r > E::zero() { delta } else { -delta })
        }
    })
}

/// Binary cross-entropy on logits, per element, for targets `t ∈ [0, 1]`:
/// `max(s, 0) − s·t + ln(1 + e^−|s|)` (no overflow for any `s`), gradient `(σ(s) − t)·inv_n`.
pub(crate) fn bce_logits_rows<E: Elem>(scores: &[E], targets: &[E], d: &mut [E], inv_n: E) -> E {
    pointwise(scores, targets, d, inv_n, |s, t| {
        let e = (-s.abs()).exp_nonpos();
        let sig = if s >= E::zero() { E::one() } else { e } / (E::one() + e);
        (s.max(E::zero()) - s * t + e.ln_1p_unit(), sig - t)
    })
}
