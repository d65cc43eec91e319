//! The variance-preserving SDE `dx = −½ β(t) x dt + √β(t) dw` (Song et al. 2021, eq. 11).

use super::{BetaSchedule, Marginal, Rates, Sde};

/// VP-SDE. Kernel: `m(t) = exp(−B(t)/2)`, `s(t) = √(1 − e^{−B(t)})`, computed with `expm1` so
/// that s keeps full precision near t = 0 (s(1e-5) ≈ 1.0005e-3).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct VpSde {
    pub schedule: BetaSchedule,
}

impl VpSde {
    /// Linear β from `beta_min` to `beta_max`.
    pub fn linear(beta_min: f64, beta_max: f64) -> Self {
        Self {
            schedule: BetaSchedule::Linear { beta_min, beta_max },
        }
    }

    /// β(t).
    pub fn beta(&self, t: f64) -> f64 {
        self.schedule.beta(t)
    }

    /// ᾱ(t) = exp(−∫₀ᵗ β).
    pub fn alpha_bar(&self, t: f64) -> f64 {
        (-self.schedule.integral(t)).exp()
    }
}

impl Sde for VpSde {
    fn name(&self) -> &'static str {
        "vp"
    }
    fn drift_coeff(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    /// β(t).
    fn g2(&self, t: f64) -> f64 {
        self.beta(t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.beta(t).sqrt()
    }
    fn marginal(&self, t: f64) -> Marginal {
        let b = self.schedule.integral(t);
        Marginal {
            mean: (-0.5 * b).exp(),
            std: (-(-b).exp_m1()).sqrt(),
        }
    }
    /// `ṁ = −½ β m`, `ṡ = β m² / (2 s)` (from s² = 1 − m²).
    fn rates(&self, t: f64) -> Rates {
        let (k, b) = (self.marginal(t), self.beta(t));
        Rates {
            dmean: -0.5 * b * k.mean,
            dstd: 0.5 * b * k.mean * k.mean / k.std,
        }
    }
    fn t_max(&self) -> f64 {
        self.schedule.t_max()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn default_eps(&self) -> f64 {
        1e-3
    }
    /// `a = e^{−ΔB/2}`, `b² = 1 − a² = −expm1(−ΔB)`: full precision for short steps.
    fn transition(&self, from: f64, to: f64) -> Marginal {
        let db = self.schedule.integral(to) - self.schedule.integral(from);
        Marginal {
            mean: (-0.5 * db).exp(),
            std: (-(-db).exp_m1()).max(0.0).sqrt(),
        }
    }
    fn as_vp(&self) -> Option<&VpSde> {
        Some(self)
    }
    /// `log SNR = −log(e^B − 1)`, so `B = log(1 + e^{−l})` (a softplus).
    fn t_of_log_snr(&self, l: f64) -> f64 {
        let z = -l;
        let b = z.max(0.0) + (-z.abs()).exp().ln_1p();
        self.schedule.inverse_integral(b).clamp(0.0, self.t_max())
    }
}
