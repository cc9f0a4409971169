//! Parameter initialisation: the homework's Gaussian with a weight scale, He and Xavier.

use crate::kernels::Elem;
use rand_distr::{Distribution, StandardNormal};

/// How weights are drawn (biases and β start at zero, γ at one, whatever is chosen here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `N(0, scale²)`: the homework's `weight_scale` (1e-3 by default there).
    Gaussian(f64),
    /// He (Kaiming) normal: `N(0, 2 / fan_in)`, for ReLU networks.
    He,
    /// Xavier (Glorot) normal: `N(0, 2 / (fan_in + fan_out))`.
    Xavier,
}

impl Default for Init {
    /// He (Kaiming) normal, the usual choice for ReLU networks (PyTorch's `kaiming_normal_`). The
    /// homework's `Gaussian(1e-3)` is asked for explicitly (`examples/hw1.rs` does).
    fn default() -> Self {
        Init::He
    }
}

impl Init {
    /// The standard deviation for a weight with the given fans.
    pub fn std(&self, fan_in: usize, fan_out: usize) -> f64 {
        match *self {
            Init::Gaussian(s) => s,
            Init::He => (2.0 / fan_in.max(1) as f64).sqrt(),
            Init::Xavier => (2.0 / (fan_in + fan_out).max(1) as f64).sqrt(),
        }
    }

    /// Fills `data` with draws from this distribution.
    pub fn fill<E: Elem, R: rand::Rng + ?Sized>(&self, rng: &mut R, data: &mut [E], fan_in: usize, fan_out: usize) {
        let std = self.std(fan_in, fan_out);
        for v in data {
            let z: f64 = StandardNormal.sample(rng);
            *v = E::from(z * std).unwrap_or_else(E::zero);
        }
    }
}
