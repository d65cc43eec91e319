//! The predictor and corrector choices of the PC samplers.

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
