//! Layer norm over each row's features: `y = γ·x̂ + β` per row, `ε` inside the square root; the
//! backward pass from each row's kept mean and inverse deviation.

use super::cpu::{fmadd, sq_dev_lanes, sum_lanes};
use super::{Elem, multiversion};

/// Layer norm over each of `rows` rows of `d` features: `y = γ·x̂ + β` with
/// `x̂ = (x − μ)/√(σ² + eps)`, `μ` and the biased `σ²` of the row. With `stats`, keeps each row's
/// `μ` and `1/√(σ² + eps)` for the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward<E: Elem>(
    rows: usize,
    d: usize,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    eps: E,
    y: &mut [E],
    stats: Option<(&mut [E], &mut [E])>,
) {
    assert_eq!(Some(x.len()), rows.checked_mul(d), "layer norm: input length for {rows} rows of {d}");
    assert!(y.len() == x.len() && gamma.len() == d && beta.len() == d, "layer norm: output or γ, β lengths");
    assert!(stats.as_ref().is_none_or(|(m, s)| m.len() == rows && s.len() == rows), "layer norm: statistics lengths");
    if d == 0 {
        return;
    }
    match stats {
        Some((mean, inv_std)) => layernorm_rows(d, x, gamma, beta, eps, y, mean, inv_std),
        None => {
            for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
                let (mut m, mut s) = ([E::zero()], [E::zero()]);
                layernorm_rows(d, xr, gamma, beta, eps, yr, &mut m, &mut s);
            }
        }
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn layernorm_rows<E: Elem>(
        d: usize, x: &[E], gamma: &[E], beta: &[E], eps: E, y: &mut [E], mean: &mut [E], inv_std: &mut [E],
    ) => layernorm_rows_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layernorm_rows_body<E: Elem, const FMA: bool>(
    d: usize,
    x: &[E],
    gamma: &[E],
    beta: &[E],
    eps: E,
    y: &mut [E],
    mean: &mut [E],
    inv_std: &mut [E],
) {
    let count = E::lit(d as f64);
    let rows = x.chunks_exact(d).zip(y.chunks_exact_mut(d));
    for ((xr, yr), (mu, is)) in rows.zip(mean.iter_mut().zip(inv_std.iter_mut())) {
        let m = sum_lanes(xr) / count;
        let s = E::one() / (sq_dev_lanes::<E, FMA>(xr, m) / count + eps).sqrt();
        for (((o, &v), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
            *o = fmadd::<E, FMA>(g, (v - m) * s, b);
        }
        (*mu, *is) = (m, s);
    }
}

/// Backward of [`layernorm_forward`] from the kept row statistics: `dβ = Σ_rows dy`,
/// `dγ = Σ_rows dy·x̂` (overwritten), and per row, with `g = γ·dy`,
/// `dx = inv_std/d · (d·g − Σ g − x̂·Σ g·x̂)`.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward<E: Elem>(
    rows: usize,
    d: usize,
    x: &[E],
    dy: &[E],
    gamma: &[E],
    mean: &[E],
    inv_std: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
    dx: Option<&mut [E]>,
) {
    assert_eq!(Some(x.len()), rows.checked_mul(d), "layer norm: input length for {rows} rows of {d}");
    assert!(dy.len() == x.len() && dx.as_ref().is_none_or(|t| t.len() == x.len()), "layer norm: gradient lengths");
    assert!(gamma.len() == d && dgamma.len() == d && dbeta.len() == d, "layer norm: γ, β lengths");
    assert!(mean.len() == rows && inv_std.len() == rows, "layer norm: backward without a training forward pass");
    dgamma.fill(E::zero());
    dbeta.fill(E::zero());
    if d == 0 {
        return;
    }
    layernorm_param_grads(d, x, dy, mean, inv_std, dgamma, dbeta);
    if let Some(dx) = dx {
        layernorm_dx(d, x, dy, gamma, mean, inv_std, dx);
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn layernorm_param_grads<E: Elem>(
        d: usize, x: &[E], dy: &[E], mean: &[E], inv_std: &[E], dgamma: &mut [E], dbeta: &mut [E],
    ) => layernorm_param_grads_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layernorm_param_grads_body<E: Elem, const FMA: bool>(
    d: usize,
    x: &[E],
    dy: &[E],
    mean: &[E],
    inv_std: &[E],
    dgamma: &mut [E],
    dbeta: &mut [E],
) {
    for ((xr, gr), (&m, &s)) in x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(mean.iter().zip(inv_std)) {
        for (((dg, db), &v), &g) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(xr).zip(gr) {
            *dg = fmadd::<E, FMA>(g, (v - m) * s, *dg);
            *db += g;
        }
    }
}

multiversion! {
    #[allow(clippy::too_many_arguments)]
    fn layernorm_dx<E: Elem>(
        d: usize, x: &[E], dy: &[E], gamma: &[E], mean: &[E], inv_std: &[E], dx: &mut [E],
    ) => layernorm_dx_body
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layernorm_dx_body<E: Elem, const FMA: bool>(
    d: usize,
    x: &[E],
    dy: &[E],
    gamma: &[E],
    mean: &[E],
    inv_std: &[E],
    dx: &mut [E],
) {
    let count = E::lit(d as f64);
    let rows = x.chunks_exact(d).zip(dy.chunks_exact(d)).zip(dx.chunks_exact_mut(d));
    for (((xr, gr), o), (&m, &s)) in rows.zip(mean.iter().zip(inv_std)) {
        // Σ g and Σ g·x̂ with g = γ·dy, in eight independent partial sums (one chain of adds
        // would wait on itself)
        let (mut lg, mut lgx) = ([E::zero(); 8], [E::zero(); 8]);
        let (cx, cg, cy) = (xr.chunks_exact(8), gamma.chunks_exact(8), gr.chunks_exact(8));
        let (mut sg, mut sgx) = (E::zero(), E::zero());
        for ((&v, &dyv), &ga) in cx.remainder().iter().zip(cy.remainder()).zip(cg.remainder()) {
            sg += ga * dyv;
            sgx = fmadd::<E, FMA>(ga * dyv, (v - m) * s, sgx);
        }
        for ((xc, yc), gc) in cx.zip(cy).zip(cg) {
            for l in 0..8 {
                let g = gc[l] * yc[l];
                lg[l] += g;
                lgx[l] = fmadd::<E, FMA>(g, (xc[l] - m) * s, lgx[l]);
            }
        }
        let sg = lg.iter().copied().fold(sg, |a, v| a + v);
        let sgx = lgx.iter().copied().fold(sgx, |a, v| a + v);
        let k = s / count;
        for (((o, &v), &dyv), &ga) in o.iter_mut().zip(xr).zip(gr).zip(gamma) {
            let xh = (v - m) * s;
            *o = k * (count * ga * dyv - sg - xh * sgx);
        }
    }
}
