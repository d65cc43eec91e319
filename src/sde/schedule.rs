//! Noise schedules β(t) of the VP and sub-VP SDEs, with their integrals B(t) = ∫₀ᵗ β(s) ds.

/// β(t) for the VP family. `ᾱ(t) = exp(−B(t))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BetaSchedule {
    /// `β(t) = β_min + t (β_max − β_min)` (Song et al. 2021; DDPM's 1e-4…0.02 at N = 1000).
    Linear { beta_min: f64, beta_max: f64 },
    /// Nichol & Dhariwal 2021: `ᾱ(t) = cos²(θ(t)) / cos²(θ(0))`, `θ(t) = (t + s)/(1 + s) · π/2`.
    Cosine { s: f64 },
}

impl Default for BetaSchedule {
    fn default() -> Self {
        BetaSchedule::Linear {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }
}

impl BetaSchedule {
    /// The cosine schedule with Nichol & Dhariwal's offset s = 0.008.
    pub fn cosine() -> Self {
        BetaSchedule::Cosine { s: 0.008 }
    }

    fn theta(s: f64, t: f64) -> f64 {
        (t + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2
    }

    /// β(t).
    pub fn beta(&self, t: f64) -> f64 {
        match *self {
            BetaSchedule::Linear { beta_min, beta_max } => beta_min + t * (beta_max - beta_min),
            BetaSchedule::Cosine { s } => {
                std::f64::consts::PI / (1.0 + s) * Self::theta(s, t).tan()
            }
        }
    }

    /// B(t) = ∫₀ᵗ β(s) ds = −log ᾱ(t).
    pub fn integral(&self, t: f64) -> f64 {
        match *self {
            BetaSchedule::Linear { beta_min, beta_max } => {
                beta_min * t + 0.5 * (beta_max - beta_min) * t * t
            }
            BetaSchedule::Cosine { s } => {
                2.0 * (Self::theta(s, 0.0).cos().ln() - Self::theta(s, t).cos().ln())
            }
        }
    }

    /// Largest usable time. The cosine schedule has β → ∞ at t = 1; like DPM-Solver's
    /// `NoiseScheduleVP('cosine')` it stops at T = 0.9946.
    /// The inverse of [`BetaSchedule::integral`]: the t with `∫₀ᵗ β = b` (b ≥ 0).
    /// Linear: the positive root of `½(β₁−β₀)t² + β₀t = b`, written as `2b / (β₀ + √(β₀² + 2(β₁−β₀)b))`
    /// to avoid cancellation. Cosine: `cos θ(t) = cos θ(0) e^{−b/2}`.
    pub fn inverse_integral(&self, b: f64) -> f64 {
        let b = b.max(0.0);
        match *self {
            BetaSchedule::Linear { beta_min, beta_max } => {
                2.0 * b
                    / (beta_min + (beta_min * beta_min + 2.0 * (beta_max - beta_min) * b).sqrt())
            }
            BetaSchedule::Cosine { s } => {
                let c = Self::theta(s, 0.0).cos() * (-0.5 * b).exp();
                c.acos() / std::f64::consts::FRAC_PI_2 * (1.0 + s) - s
            }
        }
    }

    pub fn t_max(&self) -> f64 {
        match self {
            BetaSchedule::Linear { .. } => 1.0,
            BetaSchedule::Cosine { .. } => 0.9946,
        }
    }

    /// Checks that the schedule is usable (positive, finite, increasing β).
    pub fn validate(&self) -> crate::Result<()> {
        match *self {
            BetaSchedule::Linear { beta_min, beta_max } => {
                if !(beta_min > 0.0 && beta_max >= beta_min && beta_max.is_finite()) {
                    return Err(crate::invalid!(
                        "beta schedule needs 0 < beta_min <= beta_max (got beta_min = {beta_min}, beta_max = {beta_max})"
                    ));
                }
            }
            BetaSchedule::Cosine { s } => {
                if !(s > 0.0 && s < 1.0) {
                    return Err(crate::invalid!(
                        "cosine schedule offset s must lie in (0, 1), got {}",
                        crate::error::num(s)
                    ));
                }
            }
        }
        Ok(())
    }
}
