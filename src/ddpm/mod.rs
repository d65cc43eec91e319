//! Discrete DDPM (Ho et al. 2020) as the special case of the VP-SDE on a grid.

mod schedule;

pub use schedule::{DiscreteSchedule, Posterior};

/// Variance of an ancestral / DDPM step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Variance {
    /// σ² = β (the forward step variance b²; optimal for x₀ ~ N(0, I)).
    Beta,
    /// σ² = β̃ (the forward posterior variance; optimal for a single point x₀).
    BetaTilde,
}
