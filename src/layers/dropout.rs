//! Dropout in its two forms: vanilla (the homework's) and inverted (modern frameworks').

use crate::kernels::Elem;
use crate::layer::{Act, Layer, Module};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::{Rule, Shape};
use core::marker::PhantomData;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A dropout probability, spelled in the type so that keep and drop cannot be confused:
/// [`Keep<80>`] keeps 80 % of activations, [`Drop<20>`] drops 20 % of them (the same layer).
/// (`Keep` is in the prelude; `Drop` is not, as it would hide the standard `Drop` trait: write
/// `shaped::layers::Drop<20>` or import it by name.)
pub trait Probability: Send + Sync + 'static {
    /// Probability that an activation is kept, in `[0, 1]` (a percentage over 100 is a compile
    /// error of the model that uses it, through [`Probability::RULE`]).
    const KEEP: f64;
    /// The shape rule of a dropout layer with this probability (checks the percentage).
    const RULE: Rule;
    /// How the type spells it, for summaries.
    fn describe() -> String;
}

/// Keep each activation with probability `PERCENT / 100`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep<const PERCENT: u32>;

/// Drop (zero) each activation with probability `PERCENT / 100`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drop<const PERCENT: u32>;

impl<const P: u32> Probability for Keep<P> {
    const KEEP: f64 = P as f64 / 100.0;
    const RULE: Rule = Rule::Dropout { percent: P, keep: true };
    fn describe() -> String {
        format!("Keep<{P}>")
    }
}

impl<const P: u32> Probability for Drop<P> {
    const KEEP: f64 = 1.0 - P as f64 / 100.0;
    const RULE: Rule = Rule::Dropout { percent: P, keep: false };
    fn describe() -> String {
        format!("Drop<{P}>")
    }
}

/// Which dropout: where the `1/p` scaling goes.
pub trait DropoutForm: Send + Sync + 'static {
    /// Scale of kept activations in training.
    fn train_scale(keep: f64) -> f64;
    /// Scale of all activations at test time.
    fn test_scale(keep: f64) -> f64;
    /// The form's name, for summaries.
    fn name() -> &'static str;
}

/// The homework's form: `Y = X ⊙ M` in training (no rescale), `Y = p·X` at test time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vanilla;

/// The modern form: `Y = X ⊙ M / p` in training, identity at test time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inverted;

impl DropoutForm for Vanilla {
    fn train_scale(_keep: f64) -> f64 {
        1.0
    }
    fn test_scale(keep: f64) -> f64 {
        keep
    }
    fn name() -> &'static str {
        "Vanilla"
    }
}

impl DropoutForm for Inverted {
    fn train_scale(keep: f64) -> f64 {
        if keep > 0.0 { 1.0 / keep } else { 0.0 }
    }
    fn test_scale(_keep: f64) -> f64 {
        1.0
    }
    fn name() -> &'static str {
        "Inverted"
    }
}

/// Dropout with keep probability `P` ([`Keep`] or [`Drop`]) in form `F` ([`Inverted`] by default,
/// [`Vanilla`] for the homework).
///
/// # Shapes
/// - any input `S`, output `S`; no parameters.
/// - Training: a mask `M` with `P(M = 1) = p` (keep probability); `Y = X ⊙ M · s` with `s = 1`
///   (vanilla) or `1/p` (inverted); backward `dX = dY ⊙ M · s`.
/// - Inference: `Y = p·X` (vanilla) or `Y = X` (inverted).
///
/// The mask comes from the layer's own seeded generator: [`Module::reseed`] makes it reproducible.
pub struct Dropout<P: Probability = Keep<50>, F: DropoutForm = Inverted> {
    rng: SmallRng,
    _p: PhantomData<(P, F)>,
}

impl<P: Probability, F: DropoutForm> Clone for Dropout<P, F> {
    fn clone(&self) -> Self {
        Dropout { rng: self.rng.clone(), _p: PhantomData }
    }
}

impl<P: Probability, F: DropoutForm> core::fmt::Debug for Dropout<P, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Dropout<{}, {}>", P::describe(), F::name())
    }
}

impl<P: Probability, F: DropoutForm> Dropout<P, F> {
    /// The keep probability.
    pub fn keep_probability(&self) -> f64 {
        P::KEEP
    }
}

/// The mask of the last training pass, scaled: `M · s`.
#[derive(Clone, Debug, Default)]
pub struct DropoutCache<E> {
    mask: Vec<E>,
    /// In a step in parts, the whole batch's masks (drawn by the last part).
    full: Vec<E>,
}

impl<E> DropoutCache<E> {
    /// The scaled mask of the last training pass.
    pub fn mask(&self) -> &[E] {
        &self.mask
    }
}

impl<P: Probability, F: DropoutForm, E: Elem> Module<E> for Dropout<P, F> {
    const RULE: Rule = P::RULE;
    type Cache = DropoutCache<E>;
    // In a step in parts the masks are drawn for the whole batch (below).
    const IN_PARTS: bool = true;

    fn zeros() -> Self {
        Dropout { rng: SmallRng::seed_from_u64(0), _p: PhantomData }
    }
    no_params!(E);
    fn reseed(&mut self, seed: u64) {
        self.rng = SmallRng::seed_from_u64(seed);
    }
    fn type_name() -> String {
        format!("Dropout<{}, {}>", P::describe(), F::name())
    }

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        let s = E::lit(F::test_scale(P::KEEP));
        for (o, &v) in y.iter_mut().zip(x.data) {
            *o = v * s;
        }
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], cache: &mut DropoutCache<E>) {
        check_io::<E, Self>(&x, y.len());
        let keep = P::KEEP;
        let s = E::lit(F::train_scale(keep));
        cache.mask.resize(x.data.len(), E::zero());
        // the mask picked by index, not by a branch on a coin toss (which no predictor learns)
        let pick = [E::zero(), s];
        let mut draw =
            |out: &mut [E]| out.iter_mut().for_each(|m| *m = pick[usize::from(self.rng.random::<f64>() < keep)]);
        match crate::threads::group::member() {
            None => draw(&mut cache.mask),
            Some(me) => {
                // A step in parts: the last part, whose generator is the trained model's, draws the
                // whole batch's masks in order (a whole step's masks) and each part takes its own.
                assert_eq!(x.n, me.n(), "dropout in a step in parts: {} samples in a part of {}", x.n, me.n());
                let per = x.data.len() / x.n.max(1);
                let last = me.parts() - 1;
                if me.index() == last {
                    cache.full.resize(me.total() * per, E::zero());
                    draw(&mut cache.full);
                } else {
                    cache.full.clear();
                }
                let mask = &mut cache.mask;
                me.exchange([&cache.full[..], &[]], |get| {
                    mask.copy_from_slice(&get(last)[0][me.lo() * per..][..me.n() * per])
                });
            }
        }
        for ((o, m), &v) in y.iter_mut().zip(&cache.mask).zip(x.data) {
            *o = v * *m;
        }
    }

    fn backward_raw(
        &self,
        x: Act<'_, E>,
        y: &[E],
        dy: &[E],
        cache: &mut DropoutCache<E>,
        dx: Option<&mut [E]>,
        _: &mut Self,
    ) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            assert_eq!(cache.mask.len(), dy.len(), "Dropout: backward without a training forward pass");
            for ((d, &g), &m) in dx.iter_mut().zip(dy).zip(&cache.mask) {
                *d = g * m;
            }
        }
    }
}

impl<S: Shape, P: Probability, F: DropoutForm, E: Elem> Layer<S, E> for Dropout<P, F> {
    type Out = S;
}
