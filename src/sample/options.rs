//! Settings of the samplers beyond the step count: spacing, PC, EDM churn, DDIM/DDPM, Langevin.
//! One struct, usable as clap flags (`scoresde sample …`) and as a serde table (experiments).

use super::grid::Spacing;
use crate::ddpm::Variance;

/// Song et al. 2021's predictors (App. E–G; papers.md §1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Predictor {
    /// Euler–Maruyama on the reverse SDE.
    EulerMaruyama,
    /// The reverse of the forward discretisation: `x̄ = (2 − a) x + b² s`, `x = x̄ + b z`.
    ReverseDiffusion,
    /// Ancestral sampling: `x̄ = (x + b² s)/a` plus noise of variance b² (VP) or β̃ (VE).
    Ancestral,
    /// The probability-flow predictor `x = (2 − a) x + ½ b² s` (no noise).
    ProbabilityFlow,
    /// No predictor (corrector-only samplers).
    None,
}

/// Correctors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Corrector {
    /// Langevin MCMC with step `ε = 2α (r ‖z‖/‖s‖)²` (norms averaged over the batch).
    Langevin,
    None,
}

/// Everything a sampler may need besides its step count.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SamplerOptions {
    /// Spacing of the time grid (default: time; logsnr for DPM-Solver; edm for EDM samplers).
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub spacing: Option<Spacing>,
    /// ρ of the EDM spacing.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 7.0))]
    pub rho: f64,
    /// Final Tweedie denoising step x̂₀ = (x + s² ∇log p)/m at ε, one more NFE (default: on
    /// for edm-heun, edm-sde, ddpm and ddim; off otherwise).
    #[cfg_attr(feature = "cli", arg(long))]
    pub denoise: Option<bool>,
    /// Predictor of `--sampler pc`.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Predictor::ReverseDiffusion))]
    pub predictor: Predictor,
    /// Corrector of `--sampler pc`.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Corrector::Langevin))]
    pub corrector: Corrector,
    /// Corrector steps per noise level.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1))]
    pub corrector_steps: usize,
    /// Signal-to-noise ratio r of the Langevin corrector.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.16))]
    pub snr: f64,
    /// DDIM's η (0: deterministic DDIM, 1: DDPM's posterior variance).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub eta: f64,
    /// Variance of ancestral / DDPM steps (default: beta, beta-tilde for VE).
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub variance: Option<Variance>,
    /// EDM stochastic sampler: S_churn.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub s_churn: f64,
    /// EDM: churn only where σ̃ = s/m ≥ S_tmin.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub s_tmin: f64,
    /// EDM: churn only where σ̃ = s/m ≤ S_tmax.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = f64::INFINITY))]
    pub s_tmax: f64,
    /// EDM: S_noise.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.0))]
    pub s_noise: f64,
    /// λ of Huang et al.'s plug-in reverse SDEs (0: reverse SDE, 1: probability flow).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub lambda: f64,
    /// Langevin step size ε (plain: α = ε; annealed: α_i = ε s_i²/s_L²).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.1))]
    pub step_size: f64,
    /// Noise levels of annealed Langevin (spread from t_max to ε by --spacing).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10))]
    pub levels: usize,
    /// DDPM / DDIM on the N-step discrete schedule read off the VP-SDE (the grid is a linear
    /// sub-sequence of its matched times). ddpm defaults to N = --steps.
    #[cfg_attr(feature = "cli", arg(long))]
    pub discrete: Option<usize>,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        Self {
            spacing: None,
            rho: 7.0,
            denoise: None,
            predictor: Predictor::ReverseDiffusion,
            corrector: Corrector::Langevin,
            corrector_steps: 1,
            snr: 0.16,
            eta: 0.0,
            variance: None,
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: f64::INFINITY,
            s_noise: 1.0,
            lambda: 0.0,
            step_size: 0.1,
            levels: 10,
            discrete: None,
        }
    }
}
