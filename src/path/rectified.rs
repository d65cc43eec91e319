//! The rectified-flow / conditional-OT path.

use super::{Marginal, Path, Rates};

/// `m = 1 − t`, `s = σ_min + (1 − σ_min) t` on [0, 1] (Liu, Gong & Liu 2022; Lipman et al.
/// 2023, eq. 20 with σ_min; σ_min = 0 is rectified flow). Prior N(0, I) at t = 1, where m = 0
/// and the forward SDE's f = −1/(1 − t) and g² = 2s/(1 − t) are
/// singular; the velocity form of the reverse dynamics is regular there.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct RectifiedPath {
    pub sigma_min: f64,
}

impl RectifiedPath {
    /// σ_min must lie in [0, 1).
    pub fn new(sigma_min: f64) -> crate::Result<Self> {
        if !(0.0..1.0).contains(&sigma_min) {
            return Err(crate::invalid!(
                "--path-sigma-min must lie in [0, 1), got {}",
                crate::error::num(sigma_min)
            ));
        }
        Ok(Self { sigma_min })
    }
}

impl Path for RectifiedPath {
    fn name(&self) -> &'static str {
        "rectified"
    }
    fn marginal(&self, t: f64) -> Marginal {
        Marginal {
            mean: 1.0 - t,
            std: self.sigma_min + (1.0 - self.sigma_min) * t,
        }
    }
    fn rates(&self, _t: f64) -> Rates {
        Rates {
            dmean: -1.0,
            dstd: 1.0 - self.sigma_min,
        }
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn default_eps(&self) -> f64 {
        1e-3
    }
    /// `r = e^{λ/2} = (1 − t)/(σ_min + (1 − σ_min) t)`, so `t = (1 − r σ_min)/(1 + r(1 − σ_min))`.
    fn t_of_log_snr(&self, l: f64) -> f64 {
        let r = (0.5 * l).exp();
        ((1.0 - r * self.sigma_min) / (1.0 + r * (1.0 - self.sigma_min))).clamp(0.0, 1.0)
    }
}
