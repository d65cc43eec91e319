//! A serialisable description of an SDE: the CLI flags, run configs and experiment files all
//! build their SDE from this one struct.

use super::{BetaSchedule, Sde, SubVpSde, VeSde, VpSde};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which forward SDE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SdeKind {
    #[default]
    Vp,
    Subvp,
    Ve,
}

/// The β schedule of the VP and sub-VP SDEs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Linear,
    Cosine,
}

/// An SDE and its parameters (defaults: Song et al. 2021).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields, default)]
pub struct SdeSpec {
    /// Forward SDE.
    #[cfg_attr(feature = "cli", arg(long = "sde", value_enum, default_value_t = SdeKind::Vp))]
    pub kind: SdeKind,
    /// β schedule of the VP and sub-VP SDEs.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = ScheduleKind::Linear))]
    pub schedule: ScheduleKind,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.1))]
    pub beta_min: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 20.0))]
    pub beta_max: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.01))]
    pub sigma_min: f64,
    /// VE σ_max (default: the data diameter, Song & Ermon 2020's technique 1).
    #[cfg_attr(feature = "cli", arg(long))]
    pub sigma_max: Option<f64>,
}

impl Default for SdeSpec {
    fn default() -> Self {
        Self {
            kind: SdeKind::Vp,
            schedule: ScheduleKind::Linear,
            beta_min: 0.1,
            beta_max: 20.0,
            sigma_min: 0.01,
            sigma_max: None,
        }
    }
}

impl SdeSpec {
    /// The fields the chosen SDE reads (besides `kind`): β schedule for VP / sub-VP, σ range
    /// for VE.
    pub fn reads(&self) -> &'static [&'static str] {
        match self.kind {
            SdeKind::Vp | SdeKind::Subvp => &["schedule", "beta_min", "beta_max"],
            SdeKind::Ve => &["sigma_min", "sigma_max"],
        }
    }

    /// Builds the SDE; `diameter` supplies VE's σ_max when it is not given.
    pub fn build(&self, diameter: impl FnOnce() -> f64) -> Result<Arc<dyn Sde>> {
        let schedule = self.beta_schedule()?;
        Ok(match self.kind {
            SdeKind::Vp => Arc::new(VpSde { schedule }),
            SdeKind::Subvp => Arc::new(SubVpSde { schedule }),
            SdeKind::Ve => Arc::new(VeSde::new(
                self.sigma_min,
                self.sigma_max.unwrap_or_else(diameter),
            )?),
        })
    }

    /// The β schedule of the VP and sub-VP SDEs, validated.
    pub fn beta_schedule(&self) -> Result<BetaSchedule> {
        let schedule = match self.schedule {
            ScheduleKind::Linear => BetaSchedule::Linear {
                beta_min: self.beta_min,
                beta_max: self.beta_max,
            },
            ScheduleKind::Cosine => BetaSchedule::cosine(),
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The same spec with VE's σ_max fixed (so that a saved config rebuilds the same SDE).
    pub fn resolved(&self, diameter: impl FnOnce() -> f64) -> Self {
        let mut s = self.clone();
        if s.kind == SdeKind::Ve && s.sigma_max.is_none() {
            s.sigma_max = Some(diameter());
        }
        s
    }
}
