//! Residual connections: `y = block(x) + shortcut(x)`, with an identity or a projection shortcut.

use crate::kernels::Elem;
use crate::layer::{Act, Layer, Module, ParamInfo, Path, SummaryRow};
use crate::layers::{check_grads, check_io, no_params};
use crate::shape::{Extents, Rule, Shape};

/// The identity map, `y = x`; no parameters. The default shortcut of [`Residual`].
///
/// # Shapes
/// - any input `S`, output `S`; backward `dX = dY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity;

impl<E: Elem> Module<E> for Identity {
    const RULE: Rule = Rule::Identity;
    type Cache = ();
    const PER_SAMPLE: bool = true;
    const VIEW: bool = true;

    fn zeros() -> Self {
        Identity
    }
    no_params!(E);

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        E::k_copy(x.data, y);
    }
    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], _: &mut ()) {
        self.forward_raw(x, y);
    }
    fn backward_raw(&self, x: Act<'_, E>, y: &[E], dy: &[E], _: &mut (), dx: Option<&mut [E]>, _: &mut Self) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        if let Some(dx) = dx {
            E::k_copy(dy, dx);
        }
    }
}

impl<S: Shape, E: Elem> Layer<S, E> for Identity {
    type Out = S;
}

/// A residual connection: `y = block(x) + shortcut(x)`.
///
/// `Residual<B>` has the identity shortcut (`y = B(x) + x`, ResNet's basic block); a block that
/// changes channels or resolution takes a projection shortcut, e.g.
/// `Residual<Down, Conv2d<16, 32, 1, 2, 0, false>>` (a strided 1×1 convolution), or any layer or
/// derived model whose output has the block's shape.
///
/// # Shapes
/// - input `S`; output the block's output shape, which must equal the shortcut's (for the identity
///   shortcut: the input's). A mismatch is a compile error of the model that uses it, naming the
///   field and both shapes.
/// - Parameters: the block's under `block.…`, the shortcut's under `shortcut.…`.
/// - Backward: `dX = dX_block + dX_shortcut` (for the identity, `dX_block + dY`); both branches
///   receive `dY`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Residual<B, P = Identity> {
    /// The main branch.
    pub block: B,
    /// The shortcut branch.
    pub shortcut: P,
}

/// What a [`Residual`] keeps between its passes: both branches' outputs and caches, and the
/// shortcut's input gradient.
#[derive(Clone, Debug, Default)]
pub struct ResidualCache<E, CB, CP> {
    main: Vec<E>,
    short: Vec<E>,
    dshort: Vec<E>,
    block: CB,
    shortcut: CP,
}

impl<B: Module<E>, P: Module<E>, E: Elem> Module<E> for Residual<B, P> {
    const RULE: Rule = Rule::Residual { main: &B::RULE, shortcut: &P::RULE };
    type Cache = ResidualCache<E, B::Cache, P::Cache>;
    const PER_SAMPLE: bool = B::PER_SAMPLE && P::PER_SAMPLE;
    const IN_PARTS: bool = B::IN_PARTS && P::IN_PARTS;

    fn zeros() -> Self {
        Residual { block: B::zeros(), shortcut: P::zeros() }
    }
    fn visit_params(&self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &[E])) {
        self.block.visit_params(&path.child("block"), f);
        self.shortcut.visit_params(&path.child("shortcut"), f);
    }
    fn visit_params_mut(&mut self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E])) {
        self.block.visit_params_mut(&path.child("block"), f);
        self.shortcut.visit_params_mut(&path.child("shortcut"), f);
    }
    fn zip_params_mut(&mut self, other: &Self, path: &Path<'_>, f: &mut dyn FnMut(&ParamInfo<'_>, &mut [E], &[E])) {
        self.block.zip_params_mut(&other.block, &path.child("block"), f);
        self.shortcut.zip_params_mut(&other.shortcut, &path.child("shortcut"), f);
    }
    fn reseed(&mut self, seed: u64) {
        self.block.reseed(crate::layer::mix_seed(seed, 0));
        self.shortcut.reseed(crate::layer::mix_seed(seed, 1));
    }
    fn summary_rows(&self, input: Extents) -> Vec<SummaryRow> {
        self.block.summary_rows(input)
    }
    fn type_name() -> String {
        if matches!(P::RULE, Rule::Identity) {
            format!("Residual<{}>", B::type_name())
        } else {
            format!("Residual<{}, {}>", B::type_name(), P::type_name())
        }
    }

    fn forward_raw(&self, x: Act<'_, E>, y: &mut [E]) {
        check_io::<E, Self>(&x, y.len());
        self.block.forward_raw(x, y);
        if matches!(P::RULE, Rule::Identity) {
            E::k_add_assign(y, x.data);
        } else {
            let mut short = vec![E::zero(); y.len()];
            self.shortcut.forward_raw(x, &mut short);
            E::k_add_assign(y, &short);
        }
    }

    fn forward_reuse(&self, x: Act<'_, E>, y: &mut [E], cache: &mut Self::Cache) {
        check_io::<E, Self>(&x, y.len());
        self.block.forward_reuse(x, y, &mut cache.block);
        if matches!(P::RULE, Rule::Identity) {
            E::k_add_assign(y, x.data);
        } else {
            cache.short.resize(y.len(), E::zero());
            self.shortcut.forward_reuse(x, &mut cache.short, &mut cache.shortcut);
            E::k_add_assign(y, &cache.short);
        }
    }

    fn forward_train_raw(&mut self, x: Act<'_, E>, y: &mut [E], cache: &mut Self::Cache) {
        check_io::<E, Self>(&x, y.len());
        cache.main.resize(y.len(), E::zero());
        self.block.forward_train_raw(x, &mut cache.main, &mut cache.block);
        if matches!(P::RULE, Rule::Identity) {
            E::k_add_into(y, &cache.main, x.data);
        } else {
            cache.short.resize(y.len(), E::zero());
            self.shortcut.forward_train_raw(x, &mut cache.short, &mut cache.shortcut);
            E::k_add_into(y, &cache.main, &cache.short);
        }
    }

    fn backward_raw(
        &self,
        x: Act<'_, E>,
        y: &[E],
        dy: &[E],
        cache: &mut Self::Cache,
        dx: Option<&mut [E]>,
        grads: &mut Self,
    ) {
        check_grads::<E, Self>(&x, y, dy, dx.as_deref());
        assert_eq!(cache.main.len(), y.len(), "Residual: backward without a training forward pass");
        match dx {
            Some(dx) => {
                self.block.backward_raw(x, &cache.main, dy, &mut cache.block, Some(&mut *dx), &mut grads.block);
                if matches!(P::RULE, Rule::Identity) {
                    E::k_add_assign(dx, dy);
                } else {
                    cache.dshort.resize(dx.len(), E::zero());
                    let (short, dshort) = (&cache.short, &mut cache.dshort);
                    self.shortcut.backward_raw(x, short, dy, &mut cache.shortcut, Some(dshort), &mut grads.shortcut);
                    E::k_add_assign(dx, &cache.dshort);
                }
            }
            None => {
                self.block.backward_raw(x, &cache.main, dy, &mut cache.block, None, &mut grads.block);
                if !matches!(P::RULE, Rule::Identity) {
                    let short = &cache.short;
                    self.shortcut.backward_raw(x, short, dy, &mut cache.shortcut, None, &mut grads.shortcut);
                }
            }
        }
    }
}

impl<S: Shape, B: Layer<S, E, Out = S>, E: Elem> Layer<S, E> for Residual<B, Identity> {
    type Out = S;
}
