//! The variance-exploding SDE `dx = σ(t) √(2 log(σ_max/σ_min)) dw` (Song et al. 2021, eq. 9).

use super::{Marginal, Rates, Sde};

/// VE-SDE with `σ(t) = σ_min (σ_max/σ_min)^t`. The kernel std is σ(t) (as in the reference
/// code, not √(σ(t)² − σ(0)²)); the prior is N(0, σ_max² I).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VeSde {
    pub sigma_min: f64,
    pub sigma_max: f64,
}

impl Default for VeSde {
    /// Image defaults σ_min = 0.01, σ_max = 50. For toy data pick σ_max ≈ the data diameter.
    fn default() -> Self {
        Self {
            sigma_min: 0.01,
            sigma_max: 50.0,
        }
    }
}

/// Range of the VE noise scales: σ² and the densities' normalisers stay finite in f64 (σ_max
/// = 1e170 gave |x| up to 1e166 and σ² = ∞), and the largest data the mixture files allow
/// (means and stds up to 1e6) are still covered.
pub const MIN_SIGMA: f64 = 1e-12;
pub const MAX_SIGMA: f64 = 1e12;

impl VeSde {
    pub fn new(sigma_min: f64, sigma_max: f64) -> crate::Result<Self> {
        if !(sigma_min >= MIN_SIGMA && sigma_max > sigma_min && sigma_max <= MAX_SIGMA) {
            return Err(crate::invalid!(
                "VE SDE needs {MIN_SIGMA:e} ≤ sigma_min < sigma_max ≤ {MAX_SIGMA:e}, where σ² stays far from f64's limits (got sigma_min = {}, sigma_max = {})",
                crate::error::num(sigma_min),
                crate::error::num(sigma_max)
            ));
        }
        Ok(Self {
            sigma_min,
            sigma_max,
        })
    }

    /// σ(t).
    pub fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }
}

impl Sde for VeSde {
    fn name(&self) -> &'static str {
        "ve"
    }
    fn drift_coeff(&self, _t: f64) -> f64 {
        0.0
    }
    /// 2σ(t)² ln(σ_max/σ_min).
    fn g2(&self, t: f64) -> f64 {
        2.0 * self.sigma(t).powi(2) * (self.sigma_max / self.sigma_min).ln()
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.sigma(t) * (2.0 * (self.sigma_max / self.sigma_min).ln()).sqrt()
    }
    fn marginal(&self, t: f64) -> Marginal {
        Marginal {
            mean: 1.0,
            std: self.sigma(t),
        }
    }
    /// `ṁ = 0`, `ṡ = σ(t) ln(σ_max/σ_min)`.
    fn rates(&self, t: f64) -> Rates {
        Rates {
            dmean: 0.0,
            dstd: self.sigma(t) * (self.sigma_max / self.sigma_min).ln(),
        }
    }
    fn prior_std(&self) -> f64 {
        self.sigma_max
    }
    /// `a = 1`, `b² = σ(to)² − σ(from)²`.
    fn transition(&self, from: f64, to: f64) -> Marginal {
        Marginal {
            mean: 1.0,
            std: (self.sigma(to).powi(2) - self.sigma(from).powi(2))
                .max(0.0)
                .sqrt(),
        }
    }
    fn default_eps(&self) -> f64 {
        1e-5
    }
    /// `log SNR = −2 log σ(t)`, σ geometric in t.
    fn t_of_log_snr(&self, l: f64) -> f64 {
        ((-0.5 * l - self.sigma_min.ln()) / (self.sigma_max / self.sigma_min).ln())
            .clamp(0.0, self.t_max())
    }
}
