//! A serialisable description of a path: the CLI flags, run configs and experiment files all
//! build their path from this one struct.

use super::{BetaSchedule, Sde, SubVpSde, VeSde, VpSde};
use crate::path::{check_path, EdmPath, RectifiedPath, TrigPath};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which path (see the README's path table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SdeKind {
    /// Variance preserving (`--schedule`, `--beta-*`).
    #[default]
    Vp,
    /// Sub-VP (`--schedule`, `--beta-*`).
    Subvp,
    /// Variance exploding (`--sigma-*`).
    Ve,
    /// EDM's σ(t) = t on [0, σ_max] (`--sigma-max`, default 80).
    Edm,
    /// Rectified flow / conditional OT: m = 1 − t, s = σ_min + (1 − σ_min) t
    /// (`--path-sigma-min`).
    Rectified,
    /// Trigonometric: m = cos(πt/2), s = sin(πt/2).
    Trig,
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

/// A path and its parameters (defaults: Song et al. 2021; the others' authors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(deny_unknown_fields, default)]
pub struct SdeSpec {
    /// The path (`--sde` is its older name).
    #[cfg_attr(feature = "cli", arg(long = "path", visible_alias = "sde", value_enum, default_value_t = SdeKind::Vp))]
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
    /// VE σ_max (default: the data diameter, Song & Ermon 2020's technique 1); EDM's σ_max
    /// (default 80).
    #[cfg_attr(feature = "cli", arg(long))]
    pub sigma_max: Option<f64>,
    /// σ_min of the rectified path, in [0, 1) (default 0).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    #[serde(skip_serializing_if = "is_zero")]
    pub path_sigma_min: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
            path_sigma_min: 0.0,
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
            SdeKind::Edm => &["sigma_max"],
            SdeKind::Rectified => &["path_sigma_min"],
            SdeKind::Trig => &[],
        }
    }

    /// Builds the path (checked by [`check_path`]); `diameter` supplies VE's σ_max when it is
    /// not given.
    pub fn build(&self, diameter: impl FnOnce() -> f64) -> Result<Arc<dyn Sde>> {
        let schedule = self.beta_schedule()?;
        if self.kind != SdeKind::Rectified && self.path_sigma_min != 0.0 {
            return Err(crate::invalid!(
                "--path-sigma-min applies to the rectified path only (the path is {})",
                crate::io::variant_name(&self.kind)
            ));
        }
        let path: Arc<dyn Sde> = match self.kind {
            SdeKind::Vp => Arc::new(VpSde { schedule }),
            SdeKind::Subvp => Arc::new(SubVpSde { schedule }),
            SdeKind::Ve => Arc::new(VeSde::new(
                self.sigma_min,
                self.sigma_max.unwrap_or_else(diameter),
            )?),
            SdeKind::Edm => {
                let sigma_max = self.sigma_max.unwrap_or(EdmPath::default().sigma_max);
                if !(sigma_max > 0.0 && sigma_max <= super::ve::MAX_SIGMA) {
                    return Err(crate::invalid!(
                        "the edm path needs 0 < sigma_max ≤ {:e}, got {}",
                        super::ve::MAX_SIGMA,
                        crate::error::num(sigma_max)
                    ));
                }
                Arc::new(EdmPath { sigma_max })
            }
            SdeKind::Rectified => Arc::new(RectifiedPath::new(self.path_sigma_min)?),
            SdeKind::Trig => Arc::new(TrigPath),
        };
        check_path(path.as_ref())?;
        Ok(path)
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
