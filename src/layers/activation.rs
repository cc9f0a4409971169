//! Elementwise activations — Sigmoid, Tanh, LeakyReLU, GELU — as function/derivative pairs
//! ([`Activation`]) over one forward and one backward kernel.

use crate::kernels::Elem;
use crate::kernels::activation::Activation;
use crate::layer::{Act, Layer, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::{Rule, Shape};

/// The shared forward pass of the activation layers.
#[inline]
fn forward<E: Elem, M: Module<E>>(a: Activation, x: Act<'_, E>, y: &mut [E]) {
    check_io::<E, M>(&x, y.len());
    E::k_activation_forward(a, x.data, y);
}

/// The shared backward pass: `dX = dY ⊙ f′`, with `f′` read from `x` or `y` (no cache needed).
#[inline]
fn backward<E: Elem, M: Module<E>>(a: Activation, x: Act<'_, E>, y: &[E], dy: &[E], dx: Option<&mut [E]>) {
    check_grads::<E, M>(&x, y, dy, dx.as_deref());
    if let Some(dx) = dx {
        E::k_activation_backward(a, x.data, y, dy, dx);
    }
}

/// Implements `Module` and `Layer` (output shape = input shape) for an activation layer.
macro_rules! activation_layer {
    ($ty:ident $(<const $c:ident: $ct:ty>)?, $name:literal, $act:expr) => {
        impl<$(const $c: $ct,)? E: Elem> Module<E> for $ty$(<$c>)? {
            const RULE: Rule = Rule::Elementwise { name: $name };
            type Cache = ();
            const PER_SAMPLE: bool = true;

            fn zeros() -> Self {
                $ty
            }
            no_params!(E);
            $(
                /// The name with its parameter, e.g. `LeakyReLU<200>`.
                fn type_name() -> String {
                    format!(concat!($name, "<{}>"), $c)
                }
            )?

            fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
                forward::<E, Self>($act, x, y)
            }
            fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
                forward::<E, Self>($act, x, y)
            }
            fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
                backward::<E, Self>($act, x, y, dy, dx)
            }
        }

        impl<$(const $c: $ct,)? S: Shape, E: Elem> Layer<S, E> for $ty$(<$c>)? {
            type Out = S;
        }
    };
}

/// Logistic sigmoid, elementwise `y = 1/(1 + e^−x)`; no parameters.
///
/// # Shapes
/// - any input `S`, output `S`.
/// - Backward: `dX = dY·y·(1 − y)` (from the output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigmoid;
activation_layer!(Sigmoid, "Sigmoid", Activation::Sigmoid);

/// Hyperbolic tangent, elementwise `y = tanh x`; no parameters.
///
/// # Shapes
/// - any input `S`, output `S`.
/// - Backward: `dX = dY·(1 − y²)` (from the output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tanh;
activation_layer!(Tanh, "Tanh", Activation::Tanh);

/// Leaky rectifier, elementwise `y = x` for `x > 0`, else `α·x` with `α = SLOPE_PER_MILLE/1000`
/// (the default 10 is PyTorch's `negative_slope = 0.01`); no parameters.
///
/// ```
/// use shaped::layers::LeakyReLU;
/// let _default = LeakyReLU::<10>;   // α = 0.01, as `LeakyReLU` alone
/// let _steeper = LeakyReLU::<200>;  // α = 0.2
/// ```
///
/// # Shapes
/// - any input `S`, output `S`.
/// - Backward: `dX = dY` where `x > 0`, else `α·dY` (from the input; `α` at `x = 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeakyReLU<const SLOPE_PER_MILLE: u32 = 10>;
activation_layer!(LeakyReLU<const P: u32>, "LeakyReLU", Activation::LeakyReLU { slope: P as f64 / 1000.0 });

/// Gaussian error linear unit, the exact form `y = x·Φ(x)`, `Φ(x) = ½(1 + erf(x/√2))`: PyTorch's
/// `nn.GELU()` default (not the tanh approximation); `erf` is libm's in `f64` (within an ulp) and a
/// vectorising rational approximation in `f32` (within 5e-7). No parameters.
///
/// # Shapes
/// - any input `S`, output `S`.
/// - Backward: `dX = dY·(Φ(x) + x·φ(x))`, `φ(x) = e^(−x²/2)/√(2π)` (from the input).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GELU;
activation_layer!(GELU, "GELU", Activation::Gelu);
