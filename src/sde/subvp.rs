//! The sub-VP SDE `dx = −½ β x dt + √(β(t)(1 − e^{−2B(t)})) dw` (Song et al. 2021, eq. 12).

use super::{BetaSchedule, Marginal, Rates, Sde};

/// sub-VP SDE: same mean as VP, kernel std `s(t) = 1 − e^{−B(t)}` (the std, not the variance).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SubVpSde {
    pub schedule: BetaSchedule,
}

impl SubVpSde {
    pub fn linear(beta_min: f64, beta_max: f64) -> Self {
        Self {
            schedule: BetaSchedule::Linear { beta_min, beta_max },
        }
    }
}

impl Sde for SubVpSde {
    fn name(&self) -> &'static str {
        "subvp"
    }
    fn drift_coeff(&self, t: f64) -> f64 {
        -0.5 * self.schedule.beta(t)
    }
    /// β(t)(1 − e^{−2B(t)}).
    fn g2(&self, t: f64) -> f64 {
        let b = self.schedule.integral(t);
        self.schedule.beta(t) * -(-2.0 * b).exp_m1()
    }
    fn diffusion(&self, t: f64) -> f64 {
        let b = self.schedule.integral(t);
        (self.schedule.beta(t) * -(-2.0 * b).exp_m1()).sqrt()
    }
    fn marginal(&self, t: f64) -> Marginal {
        let b = self.schedule.integral(t);
        Marginal {
            mean: (-0.5 * b).exp(),
            std: -(-b).exp_m1(),
        }
    }
    /// `ṁ = −½ β m`, `ṡ = β e^{−B} = β m²` (s = 1 − e^{−B}).
    fn rates(&self, t: f64) -> Rates {
        let (m, b) = (self.marginal(t).mean, self.schedule.beta(t));
        Rates {
            dmean: -0.5 * b * m,
            dstd: b * m * m,
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
    /// With u = e^B, `SNR = u / (u − 1)²`; for q = e^{−l} the root u > 1 is
    /// `1 + q/2 + ½√(q² + 4q)`.
    fn t_of_log_snr(&self, l: f64) -> f64 {
        let q = (-l).exp();
        let b = (0.5 * q + 0.5 * (q * q + 4.0 * q).sqrt()).ln_1p();
        self.schedule.inverse_integral(b).clamp(0.0, self.t_max())
    }
}
