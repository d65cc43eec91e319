//! EDM's path σ(t) = t.

use super::{Marginal, Path, Rates};

/// `m = 1`, `s = t` on [0, σ_max] (Karras et al. 2022, Table 1: σ(t) = t, s(t) = 1): time is
/// the noise level. `f = 0`, `g² = 2t`. Prior N(0, σ_max² I); default σ_max = 80.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdmPath {
    pub sigma_max: f64,
}

impl Default for EdmPath {
    fn default() -> Self {
        Self { sigma_max: 80.0 }
    }
}

impl Path for EdmPath {
    fn name(&self) -> &'static str {
        "edm"
    }
    fn marginal(&self, t: f64) -> Marginal {
        Marginal { mean: 1.0, std: t }
    }
    fn rates(&self, _t: f64) -> Rates {
        Rates {
            dmean: 0.0,
            dstd: 1.0,
        }
    }
    fn drift_coeff(&self, _t: f64) -> f64 {
        0.0
    }
    fn g2(&self, t: f64) -> f64 {
        2.0 * t
    }
    fn t_max(&self) -> f64 {
        self.sigma_max
    }
    fn prior_std(&self) -> f64 {
        self.sigma_max
    }
    /// σ_min = 0.002 (Karras et al. 2022, Table 1).
    fn default_eps(&self) -> f64 {
        0.002
    }
    fn t_of_log_snr(&self, l: f64) -> f64 {
        (-0.5 * l).exp().clamp(0.0, self.sigma_max)
    }
}
