//! The logistic loss's row kernel (the softmax rows live in `crate::loss`).

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
