//! The optimizers' element updates: SGD (plain and with momentum), RMSprop, Adam and AdamW.

use super::split::split_pass;
use super::{Elem, multiversion};
use crate::threads::{chunk_count, run_chunks_on};

multiversion! {
    /// RMSprop's element update with gradient `g = dw + reg·w` (the L2 term, `reg` = 0 for
    /// unregularised parameters): `c = ρ·c + (1−ρ)·g²; w −= lr·g/(√c + ε)` (plain multiplies and
    /// adds in both versions, so results do not depend on the CPU).
    #[allow(clippy::too_many_arguments)]
    fn rmsprop_run<E: Elem>(w: &mut [E], dw: &[E], c: &mut [E], lr: E, rho: E, eps: E, reg: E) => rmsprop_body
}

/// [`rmsprop_run`] (RMSprop's element update, see there), large tensors split over the kernel
/// threads (each element is updated by the same code wherever the cuts fall).
pub(crate) fn rmsprop_update<E: Elem>(w: &mut [E], dw: &[E], c: &mut [E], lr: E, rho: E, eps: E, reg: E) {
    with_state(w, dw, c, |w, dw, c| rmsprop_run(w, dw, c, lr, rho, eps, reg))
}

/// Runs an update of one state buffer `s` on `(w, dw, s)` whole, or on matching pieces split over
/// the kernel threads for large tensors.
#[inline(always)]
fn with_state<E: Elem>(w: &mut [E], dw: &[E], s: &mut [E], run: impl Fn(&mut [E], &[E], &mut [E]) + Sync) {
    let (parts, piece) = pieces(w.len());
    if parts <= 1 {
        return run(w, dw, s);
    }
    let chunks = w.chunks_mut(piece).zip(dw.chunks(piece)).zip(s.chunks_mut(piece));
    run_chunks_on(parts, chunks, |((w, dw), s)| run(w, dw, s));
}

#[inline(always)]
fn rmsprop_body<E: Elem, const FMA: bool>(w: &mut [E], dw: &[E], c: &mut [E], lr: E, rho: E, eps: E, reg: E) {
    let one_minus = E::one() - rho;
    for ((w, &g), c) in w.iter_mut().zip(dw).zip(c.iter_mut()) {
        let g = g + reg * *w;
        *c = rho * *c + one_minus * g * g;
        *w = *w - lr * g / (c.sqrt() + eps);
    }
}

multiversion! {
    /// Plain SGD's element update with gradient `g = dw + reg·w`: `w −= lr·g` (plain multiplies
    /// and adds in every version, so results do not depend on the CPU).
    fn sgd_run<E: Elem>(w: &mut [E], dw: &[E], lr: E, reg: E) => sgd_body
}

/// [`sgd_run`] (plain SGD's element update, see there), large tensors split over the kernel
/// threads (each element is updated by the same code wherever the cuts fall).
pub(crate) fn sgd_update<E: Elem>(w: &mut [E], dw: &[E], lr: E, reg: E) {
    let (parts, piece) = pieces(w.len());
    if parts <= 1 {
        return sgd_run(w, dw, lr, reg);
    }
    run_chunks_on(parts, w.chunks_mut(piece).zip(dw.chunks(piece)), |(w, dw)| sgd_run(w, dw, lr, reg));
}

#[inline(always)]
fn sgd_body<E: Elem, const FMA: bool>(w: &mut [E], dw: &[E], lr: E, reg: E) {
    for (w, &g) in w.iter_mut().zip(dw) {
        *w = *w - lr * (g + reg * *w);
    }
}

multiversion! {
    /// SGD with momentum's element update with gradient `g = dw + reg·w`: `v = μ·v − lr·g`, then
    /// `w += v`, or `w += μ·v − lr·g` (Nesterov). Plain multiplies and adds in every version, so
    /// results do not depend on the CPU.
    fn momentum_run<E: Elem>(w: &mut [E], dw: &[E], v: &mut [E], lr: E, mu: E, reg: E, nesterov: bool) => momentum_body
}

/// [`momentum_run`] (SGD with momentum's element update, see there), large tensors split over the
/// kernel threads (each element is updated by the same code wherever the cuts fall).
pub(crate) fn momentum_update<E: Elem>(w: &mut [E], dw: &[E], v: &mut [E], lr: E, mu: E, reg: E, nesterov: bool) {
    with_state(w, dw, v, |w, dw, v| momentum_run(w, dw, v, lr, mu, reg, nesterov))
}

#[inline(always)]
fn momentum_body<E: Elem, const FMA: bool>(w: &mut [E], dw: &[E], v: &mut [E], lr: E, mu: E, reg: E, nesterov: bool) {
    // (One loop per form: the choice is not made per element. Inlined, so that it is compiled
    // with the caller's target features.)
    #[inline(always)]
    fn each<E: Elem, const NESTEROV: bool>(w: &mut [E], dw: &[E], v: &mut [E], lr: E, mu: E, reg: E) {
        for ((w, &g), v) in w.iter_mut().zip(dw).zip(v.iter_mut()) {
            let step = lr * (g + reg * *w);
            *v = mu * *v - step;
            *w += if NESTEROV { mu * *v - step } else { *v };
        }
    }
    if nesterov { each::<E, true>(w, dw, v, lr, mu, reg) } else { each::<E, false>(w, dw, v, lr, mu, reg) }
}

/// Adam's element update with gradient `g = dw + reg·w` and bias corrections `c1 = 1−β₁ᵗ`,
/// `c2 = 1−β₂ᵗ`: [`adamw_update`] without decay (`w·1` is `w`, to the bit).
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_update<E: Elem>(
    w: &mut [E],
    dw: &[E],
    m: &mut [E],
    v: &mut [E],
    lr: E,
    b1: E,
    b2: E,
    eps: E,
    c1: E,
    c2: E,
    reg: E,
) {
    adamw_update(w, dw, m, v, lr, b1, b2, eps, c1, c2, reg, E::one())
}

multiversion! {
    /// AdamW's element update: Adam's on `g = dw + reg·w` (the L2 term read from the weights before
    /// the decay), applied to the decayed weight `w·keep` (`keep = 1 − lr·λ`, or 1 for parameters
    /// that are not decayed, and for plain Adam). Plain multiplies and adds in every version, so
    /// results do not depend on the CPU.
    #[allow(clippy::too_many_arguments)]
    fn adamw_run<E: Elem>(w: &mut [E], dw: &[E], m: &mut [E], v: &mut [E], lr: E, b1: E, b2: E, eps: E, c1: E, c2: E, reg: E, keep: E) => adamw_body
}

/// [`adamw_run`] (AdamW's element update, see there), large tensors split over the kernel threads
/// (each element is updated by the same code wherever the cuts fall).
#[allow(clippy::too_many_arguments)]
pub(crate) fn adamw_update<E: Elem>(
    w: &mut [E],
    dw: &[E],
    m: &mut [E],
    v: &mut [E],
    lr: E,
    b1: E,
    b2: E,
    eps: E,
    c1: E,
    c2: E,
    reg: E,
    keep: E,
) {
    let (parts, piece) = pieces(w.len());
    if parts <= 1 {
        return adamw_run(w, dw, m, v, lr, b1, b2, eps, c1, c2, reg, keep);
    }
    let chunks = w.chunks_mut(piece).zip(dw.chunks(piece)).zip(m.chunks_mut(piece)).zip(v.chunks_mut(piece));
    run_chunks_on(parts, chunks, |(((w, dw), m), v)| adamw_run(w, dw, m, v, lr, b1, b2, eps, c1, c2, reg, keep));
}

/// The parts and the piece length (a multiple of 64) of an optimizer update over `len` values.
fn pieces(len: usize) -> (usize, usize) {
    let parts = split_pass(len);
    let units = len.div_ceil(64);
    (parts, units.div_ceil(chunk_count(units, parts)).max(1) * 64)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adamw_body<E: Elem, const FMA: bool>(
    w: &mut [E],
    dw: &[E],
    m: &mut [E],
    v: &mut [E],
    lr: E,
    b1: E,
    b2: E,
    eps: E,
    c1: E,
    c2: E,
    reg: E,
    keep: E,
) {
    let (one_b1, one_b2) = (E::one() - b1, E::one() - b2);
    for (((w, &g), m), v) in w.iter_mut().zip(dw).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g + reg * *w;
        *m = b1 * *m + one_b1 * g;
        *v = b2 * *v + one_b2 * g * g;
        let mt = *m / c1;
        let vt = *v / c2;
        *w = *w * keep - lr * mt / (vt.sqrt() + eps);
    }
}
