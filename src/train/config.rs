//! Training configuration: one serde struct for `--config train.toml`, the CLI flags and the
//! `run.toml` sidecar of a run directory.

use crate::nn::NetConfig;
use crate::sde::SdeSpec;
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

/// How the denoising loss weighs noise levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// ε-MSE with t ~ U(t_eps, T): DDPM's L_simple, i.e. score matching with λ(t) = σ(t)².
    #[default]
    Simple,
    /// λ(t) = g(t)² (Song, Durkan et al. 2021) by importance sampling: t drawn with density
    /// ∝ g²/σ² = −d log SNR/dt, which turns the weighted loss into Z · ε-MSE (Z constant).
    Likelihood,
    /// t = t_eps + (T − t_eps)·sigmoid(n), n ~ N(0, 1): the logit-normal times of
    /// rectified-flow image models (Esser et al. 2024, eq. 19 with m = 0, s = 1), loss unweighted
    /// in the model's own prediction.
    #[serde(rename = "logit-normal")]
    #[cfg_attr(feature = "cli", value(name = "logit-normal"))]
    LogitNormal,
}

/// Learning rate after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// Constant at `lr`.
    #[default]
    Constant,
    /// Cosine decay from `lr` to `lr/100` at the last step (Loshchilov & Hutter 2017, no restarts).
    Cosine,
}

/// Optimisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Total optimiser steps.
    pub steps: usize,
    pub batch: usize,
    /// Adam learning rate after warm-up.
    pub lr: f64,
    /// Linear learning-rate warm-up steps.
    pub warmup: usize,
    /// Learning rate after warm-up.
    pub lr_schedule: LrSchedule,
    /// Clip the global gradient norm to this (0: off).
    pub grad_clip: f64,
    /// EMA decay of the weights (ramped as min(decay, (1 + k)/(10 + k))).
    pub ema_decay: f64,
    pub weighting: Weighting,
    /// Smallest training time (continuous training).
    pub t_eps: f64,
    /// Train on DDPM's integer grid of N steps instead of continuous t (VP only).
    pub discrete: Option<usize>,
    pub seed: u64,
    /// Save a checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
    /// Train a class-conditional network on a class-labelled mixture (the network's classes are
    /// the data's).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conditional: bool,
    /// Probability p that a conditional training row sees the null class instead of its own
    /// (Ho & Salimans 2022, Algorithm 1's p_uncond), so one network gives both fields.
    #[serde(skip_serializing_if = "is_default_dropout")]
    pub label_dropout: f64,
    /// The run directory this run is the bad version of (autoguidance, Karras et al. 2024: a
    /// smaller network or a shorter training on the same data, path and classes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_version_of: Option<String>,
}

/// Default label dropout (Ho & Salimans 2022 find p_uncond ∈ {0.1, 0.2} best).
pub const LABEL_DROPOUT: f64 = 0.1;

fn is_default_dropout(p: &f64) -> bool {
    *p == LABEL_DROPOUT
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 12000,
            batch: 512,
            lr: 2e-3,
            warmup: 200,
            lr_schedule: LrSchedule::Cosine,
            grad_clip: 1.0,
            ema_decay: 0.999,
            weighting: Weighting::Simple,
            t_eps: 1e-5,
            discrete: None,
            seed: 0,
            checkpoint_every: 2000,
            conditional: false,
            label_dropout: LABEL_DROPOUT,
            bad_version_of: None,
        }
    }
}

/// Everything that defines a run: data, SDE, network and optimisation (`data` must be set;
/// the network's dimension is read off the data).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Builtin name, mixture `.toml` or points `.csv`.
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub sde: SdeSpec,
    #[serde(default)]
    pub net: NetConfig,
    #[serde(default)]
    pub train: TrainConfig,
}

/// A struct's serde field names ([`crate::io::field_names`]).
type FieldNames = fn() -> &'static [&'static str];

impl RunConfig {
    /// The names [`RunConfig::with_overrides`] takes: `data`, `path` (the path's kind, or a
    /// table of the whole path; `sde` is its older name) and every field of the `sde`, `net`
    /// and `train` tables.
    pub fn override_names() -> Vec<&'static str> {
        let mut names = vec!["data", "path", "sde"];
        for section in Self::SECTIONS {
            names.extend(section.1().iter().filter(|&&f| f != "kind"));
        }
        names
    }

    /// The tables whose fields are overridden by their own names (none shares a name).
    const SECTIONS: [(&'static str, FieldNames); 3] = [
        ("sde", crate::io::field_names::<SdeSpec>),
        ("net", crate::io::field_names::<NetConfig>),
        ("train", crate::io::field_names::<TrainConfig>),
    ];

    /// This config with flat overrides `{name: value}` applied (names as
    /// [`RunConfig::override_names`]): the one way the CLI's flags, the Python keywords and
    /// scripts change a config, checked by deserialising the result. An unknown name is an
    /// error listing the valid ones.
    pub fn with_overrides(&self, overrides: &toml::Table) -> Result<RunConfig> {
        let mut cfg =
            toml::Table::try_from(self).map_err(|e| crate::invalid!("run config: {e}"))?;
        for (name, value) in overrides {
            if let (Some(sde), true) = (value.as_table(), matches!(name.as_str(), "path" | "sde")) {
                // A whole path: its kind and settings (`{ kind = "ve", sigma_max = 5.0 }`).
                cfg.insert("sde".into(), toml::Value::Table(sde.clone()));
                continue;
            }
            let (table, field) = match name.as_str() {
                "data" => (None, "data"),
                "path" | "sde" => (Some("sde"), "kind"),
                other => match Self::SECTIONS.iter().find(|s| s.1().contains(&other)) {
                    Some(s) => (Some(s.0), other),
                    None => {
                        return Err(crate::invalid!(
                            "unknown training setting `{other}` (valid: {})",
                            Self::override_names().join(", ")
                        ))
                    }
                },
            };
            let target = match table {
                None => &mut cfg,
                Some(t) => cfg
                    .entry(t)
                    .or_insert_with(|| toml::Table::new().into())
                    .as_table_mut()
                    .ok_or_else(|| crate::invalid!("run config: `{t}` is not a table"))?,
            };
            target.insert(field.to_string(), value.clone());
        }
        toml::Value::Table(cfg)
            .try_into()
            .map_err(|e| crate::invalid!("training settings: {}", e.to_string().trim()))
    }
}

impl TrainConfig {
    /// Learning rate at optimiser step k (0-based): linear warm-up, then the schedule.
    pub fn lr(&self, k: usize) -> f64 {
        let warm = if self.warmup == 0 {
            1.0
        } else {
            ((k + 1) as f64 / self.warmup as f64).min(1.0)
        };
        let after = match self.lr_schedule {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
                let u = (k.saturating_sub(self.warmup) as f64 / span).min(1.0);
                0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * u).cos())
            }
        };
        self.lr * warm * after
    }

    pub fn validate(&self) -> Result<()> {
        crate::error::check_range("batch", self.batch, 1 << 20)?;
        crate::error::check_range("steps", self.steps.max(1), crate::error::MAX_STEPS)?;
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(invalid!(
                "lr must be positive, got {}",
                crate::error::num(self.lr)
            ));
        }
        if self.grad_clip.is_nan() || self.grad_clip < 0.0 {
            return Err(invalid!(
                "grad_clip must be ≥ 0, got {}",
                crate::error::num(self.grad_clip)
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(invalid!(
                "ema_decay must lie in [0, 1), got {}",
                crate::error::num(self.ema_decay)
            ));
        }
        if !(self.t_eps > 0.0 && self.t_eps < 1.0) {
            return Err(invalid!(
                "t_eps must lie in (0, 1), got {}",
                crate::error::num(self.t_eps)
            ));
        }
        if self.checkpoint_every == 0 {
            return Err(invalid!("checkpoint_every must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(invalid!(
                "label_dropout must lie in [0, 1), got {}",
                crate::error::num(self.label_dropout)
            ));
        }
        Ok(())
    }
}
