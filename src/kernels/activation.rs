//! Activation kernels: elementwise function/derivative pairs ([`Activation`]) over one forward and
//! one backward kernel, and the row softmaxes (softmax and log-softmax over a row's features).

use super::split::split_elementwise;
use super::{Elem, multiversion};

/// An elementwise activation: a function `f` and its derivative `df`, which reads either the input
/// `x` or the output `y = f(x)` ([`Activation::df_reads`]). One kernel runs every variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `y = 1/(1 + e^−x)`; `dy/dx = y·(1 − y)` (reads `y`).
    Sigmoid,
    /// `y = tanh x`; `dy/dx = 1 − y²` (reads `y`).
    Tanh,
    /// `y = x` for `x > 0`, else `slope·x`; `dy/dx = 1` for `x > 0`, else `slope` (reads `x`).
    LeakyReLU {
        /// The slope for `x ≤ 0`.
        slope: f64,
    },
    /// The exact GELU, `y = x·Φ(x)` with `Φ(x) = ½(1 + erf(x/√2))` (PyTorch's `nn.GELU()`; see
    /// [`Elem::erf`] for its precision);
    /// `dy/dx = Φ(x) + x·φ(x)`, `φ(x) = e^(−x²/2)/√(2π)` (reads `x`).
    Gelu,
}

/// What an activation's derivative reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// The input `x`.
    Input,
    /// The output `y = f(x)`.
    Output,
}

impl Activation {
    /// What [`Activation::df`] reads: the input or the output.
    pub const fn df_reads(&self) -> Reads {
        match self {
            Activation::Sigmoid | Activation::Tanh => Reads::Output,
            Activation::LeakyReLU { .. } | Activation::Gelu => Reads::Input,
        }
    }

    /// `f(x)`.
    #[inline(always)]
    pub fn f<E: Elem>(self, x: E) -> E {
        match self {
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh_inline(),
            Activation::LeakyReLU { slope } => leaky(x, E::lit(slope)),
            Activation::Gelu => x * phi_cdf(x),
        }
    }

    /// `f′(x)`, from `x` or from `y = f(x)` as [`Activation::df_reads`] says (the other is ignored).
    #[inline(always)]
    pub fn df<E: Elem>(self, x: E, y: E) -> E {
        match self {
            Activation::Sigmoid => y * (E::one() - y),
            Activation::Tanh => E::one() - y * y,
            Activation::LeakyReLU { slope } => leaky_df(x, E::lit(slope)),
            Activation::Gelu => gelu_df(x),
        }
    }
}

/// `1/(1 + e^−x)` from `e = e^−|x|` (never overflows; vectorises in `f32`).
#[inline(always)]
fn sigmoid<E: Elem>(x: E) -> E {
    let e = (-x.abs()).exp_nonpos();
    let r = E::one() / (E::one() + e);
    if x >= E::zero() { r } else { e * r }
}

#[inline(always)]
fn leaky<E: Elem>(x: E, slope: E) -> E {
    if x > E::zero() { x } else { slope * x }
}

#[inline(always)]
fn leaky_df<E: Elem>(x: E, slope: E) -> E {
    if x > E::zero() { E::one() } else { slope }
}

/// `Φ(x) = ½(1 + erf(x/√2))`, the standard normal distribution function.
#[inline(always)]
fn phi_cdf<E: Elem>(x: E) -> E {
    E::lit(0.5) * (E::one() + (x * E::lit(core::f64::consts::FRAC_1_SQRT_2)).erf())
}

/// `Φ(x) + x·φ(x)`.
#[inline(always)]
fn gelu_df<E: Elem>(x: E) -> E {
    // 1/√(2π)
    let c = E::lit(0.398_942_280_401_432_7);
    phi_cdf(x) + x * c * (E::lit(-0.5) * x * x).exp_nonpos()
}

/// `y = f(x)` elementwise (split over the kernel threads when large).
pub fn activation_forward<E: Elem>(a: Activation, x: &[E], y: &mut [E]) {
    assert_eq!(x.len(), y.len(), "activation: input and output lengths differ");
    split_elementwise(y, 64 * 16, |r, y| act_forward_one(a, &x[r], y));
}

/// `dx = dy ⊙ f′(x)` elementwise, `f′` reading `x` or `y` as [`Activation::df_reads`] says (split over
/// the kernel threads when large).
pub fn activation_backward<E: Elem>(a: Activation, x: &[E], y: &[E], dy: &[E], dx: &mut [E]) {
    assert!(
        x.len() == y.len() && y.len() == dy.len() && dy.len() == dx.len(),
        "activation backward: lengths differ (x {}, y {}, dy {}, dx {})",
        x.len(),
        y.len(),
        dy.len(),
        dx.len()
    );
    split_elementwise(dx, 64 * 16, |r, dx| act_backward_one(a, &x[r.clone()], &y[r.clone()], &dy[r], dx));
}

multiversion! {
    fn act_forward_one<E: Elem>(a: Activation, x: &[E], y: &mut [E]) => act_forward_body
}

#[inline(always)]
fn act_forward_body<E: Elem, const FMA: bool>(a: Activation, x: &[E], y: &mut [E]) {
    // one loop per variant, so each loop body is straight-line code
    #[inline(always)]
    fn map<E: Elem>(x: &[E], y: &mut [E], f: impl Fn(E) -> E) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = f(v);
        }
    }
    match a {
        Activation::Sigmoid => map(x, y, |v| Activation::Sigmoid.f(v)),
        Activation::Tanh => map(x, y, |v| v.tanh_inline()),
        Activation::LeakyReLU { slope } => {
            let s = E::lit(slope);
            map(x, y, |v| leaky(v, s))
        }
        Activation::Gelu => map(x, y, |v| v * phi_cdf(v)),
    }
}

multiversion! {
    fn act_backward_one<E: Elem>(a: Activation, x: &[E], y: &[E], dy: &[E], dx: &mut [E]) => act_backward_body
}

#[inline(always)]
fn act_backward_body<E: Elem, const FMA: bool>(a: Activation, x: &[E], y: &[E], dy: &[E], dx: &mut [E]) {
    #[inline(always)]
    fn map<E: Elem>(src: &[E], dy: &[E], dx: &mut [E], df: impl Fn(E) -> E) {
        for ((o, &g), &v) in dx.iter_mut().zip(dy).zip(src) {
            *o = g * df(v);
        }
    }
    match a {
        Activation::Sigmoid => map(y, dy, dx, |y| y * (E::one() - y)),
        Activation::Tanh => map(y, dy, dx, |y| E::one() - y * y),
        Activation::LeakyReLU { slope } => {
            let s = E::lit(slope);
            map(x, dy, dx, |v| leaky_df(v, s))
        }
        Activation::Gelu => map(x, dy, dx, gelu_df),
    }
}

/// Sizes of a row softmax: `rows` rows of `d` features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowDims {
    /// Number of rows (the batch).
    pub rows: usize,
    /// Features per row.
    pub d: usize,
}

impl RowDims {
    fn check(&self, lens: &[usize]) {
        let n = self.rows.checked_mul(self.d);
        assert!(lens.iter().all(|&l| Some(l) == n), "row kernel: lengths {lens:?} for {self:?}");
    }
}

/// Softmax over each row, `y = e^(x − max)/Σ e^(x − max)`, or with `log` the log-softmax
/// `y = (x − max) − ln Σ e^(x − max)`.
pub fn softmax_forward<E: Elem>(d: RowDims, x: &[E], y: &mut [E], log: bool) {
    d.check(&[x.len(), y.len()]);
    if d.d == 0 {
        return;
    }
    let parts = super::split_batch(d.rows, d.d * 16);
    crate::threads::for_chunks(y, d.d, parts, |at, y| {
        for (yr, xr) in y.chunks_exact_mut(d.d).zip(x[at..].chunks_exact(d.d)) {
            softmax_row(xr, yr, log);
        }
    });
}

multiversion! {
    fn softmax_row<E: Elem>(x: &[E], y: &mut [E], log: bool) => softmax_row_body
}

#[inline(always)]
fn softmax_row_body<E: Elem, const FMA: bool>(x: &[E], y: &mut [E], log: bool) {
    let m = x.iter().copied().fold(E::neg_infinity(), E::max);
    let mut s = E::zero();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m).exp();
        s += *o;
    }
    if log {
        // (x − m) − ln s: x − m is exact near the maximum, where x − (m + ln s) would lose ln s's
        // low bits to m's magnitude
        let ls = s.ln();
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (v - m) - ls;
        }
    } else {
        let inv = E::one() / s;
        for o in y.iter_mut() {
            *o = *o * inv;
        }
    }
}

/// Backward of [`softmax_forward`] from its output `y`: softmax `dx = y ⊙ (dy − Σ dy·y)`;
/// log-softmax `dx = dy − e^y·Σ dy` (per row).
pub fn softmax_backward<E: Elem>(d: RowDims, y: &[E], dy: &[E], dx: &mut [E], log: bool) {
    d.check(&[y.len(), dy.len(), dx.len()]);
    if d.d == 0 {
        return;
    }
    let parts = super::split_batch(d.rows, d.d * 16);
    crate::threads::for_chunks(dx, d.d, parts, |at, dx| {
        let rows = y[at..].chunks_exact(d.d).zip(dy[at..].chunks_exact(d.d));
        for (o, (yr, gr)) in dx.chunks_exact_mut(d.d).zip(rows) {
            softmax_back_row(yr, gr, o, log);
        }
    });
}

multiversion! {
    fn softmax_back_row<E: Elem>(y: &[E], dy: &[E], dx: &mut [E], log: bool) => softmax_back_row_body
}

#[inline(always)]
fn softmax_back_row_body<E: Elem, const FMA: bool>(y: &[E], dy: &[E], dx: &mut [E], log: bool) {
    if log {
        let s: E = dy.iter().copied().sum();
        for ((o, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
            *o = g - v.exp() * s;
        }
    } else {
        let s: E = dy.iter().zip(y).map(|(&g, &v)| g * v).sum();
        for ((o, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
            *o = v * (g - s);
        }
    }
}
