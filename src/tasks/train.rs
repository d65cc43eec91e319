//! `scoresde train`: a new run from a config and overrides, or `resume` of an existing one.

use super::progress_bar;
use crate::io::read_toml;
use crate::score::convert::Prediction;
use crate::sde::SdeKind;
use crate::train::{LrSchedule, RunConfig, RunDir, Trainer, Weighting};
use crate::{invalid, Result};
use std::path::{Path, PathBuf};

/// Train an ε-network by denoising score matching into a run directory. Every option but
/// `config`, `out` and `resume` is an override of the run config by its own name
/// ([`RunConfig::with_overrides`]; serialised to TOML, which omits `None`, the given ones
/// are exactly the overrides).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainTask {
    /// Builtin name, mixture .toml or a .csv of points (header x0,x1,…).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: Option<String>,
    /// A training config (.toml with an optional `data` and `sde`, `net`, `train` tables).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Total optimiser steps (with --resume: the new total).
    #[cfg_attr(feature = "cli", arg(long))]
    pub steps: Option<usize>,
    #[cfg_attr(feature = "cli", arg(long))]
    pub batch: Option<usize>,
    #[cfg_attr(feature = "cli", arg(long))]
    pub hidden: Option<usize>,
    #[cfg_attr(feature = "cli", arg(long))]
    pub layers: Option<usize>,
    /// Size of the sinusoidal time embedding.
    #[cfg_attr(feature = "cli", arg(long))]
    pub time_dim: Option<usize>,
    /// The time embedding's scale: it sees τ = scale · t [default: 10; 1000 is DDPM's integer
    /// step and the scale of runs saved before checkpoint format 4, ≈ 4× the adaptive PF-ODE
    /// steps].
    #[cfg_attr(feature = "cli", arg(long))]
    pub time_scale: Option<f64>,
    /// Number of random Fourier features of x (0: raw x only).
    #[cfg_attr(feature = "cli", arg(long))]
    pub fourier: Option<usize>,
    /// Standard deviation of the Fourier frequencies.
    #[cfg_attr(feature = "cli", arg(long))]
    pub fourier_scale: Option<f64>,
    /// Residual hidden layers (true/false).
    #[cfg_attr(feature = "cli", arg(long))]
    pub residual: Option<bool>,
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub weighting: Option<Weighting>,
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub prediction: Option<Prediction>,
    #[cfg_attr(feature = "cli", arg(long))]
    pub lr: Option<f64>,
    /// Learning rate after warm-up: constant or cosine decay to lr/100.
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub lr_schedule: Option<LrSchedule>,
    /// Train on DDPM's integer grid with N steps (VP only).
    #[cfg_attr(feature = "cli", arg(long))]
    pub discrete: Option<usize>,
    /// The path (`--sde` is its older name).
    #[cfg_attr(feature = "cli", arg(long = "path", visible_alias = "sde", value_enum))]
    #[serde(rename = "path")]
    pub sde_kind: Option<SdeKind>,
    #[cfg_attr(feature = "cli", arg(long))]
    pub seed: Option<u64>,
    /// Train a class-conditional network (class-labelled mixture data; one network for p(x | c)
    /// and, through label dropout, p(x)).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conditional: bool,
    /// Probability that a conditional training row sees the null class [default: 0.1].
    #[cfg_attr(feature = "cli", arg(long))]
    pub label_dropout: Option<f64>,
    /// Train the bad version of this run for autoguidance: its settings, changed by the other
    /// flags to a smaller network (--hidden, --layers) or a shorter training (--steps).
    #[cfg_attr(feature = "cli", arg(long))]
    pub bad_version_of: Option<PathBuf>,
    /// The run directory (created; must not hold a run unless --resume).
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[cfg_attr(feature = "cli", arg(long))]
    #[serde(skip)]
    pub resume: bool,
}

impl TrainTask {
    /// The given options as run-config overrides (`{name: value}`).
    pub fn overrides(&self) -> Result<toml::Table> {
        toml::Table::try_from(self).map_err(|e| invalid!("training options: {e}"))
    }

    /// The trainer: a resumed run (only `steps` may change) or a new one from `config` with
    /// the overrides applied.
    pub fn trainer(&self) -> Result<Trainer> {
        trainer(
            &self.out,
            self.config.as_deref(),
            self.resume,
            &self.overrides()?,
        )
    }

    /// Trains to the configured total (a progress bar on a terminal); returns the summary line.
    /// The run directory is locked for the whole run (one writer at a time).
    pub fn run(&self) -> Result<String> {
        train(
            &self.out,
            self.config.as_deref(),
            self.resume,
            &self.overrides()?,
        )
    }
}

/// Trains the run in `out` ([`trainer`]) to its configured total (a progress bar on a
/// terminal); returns the summary line. The directory is locked for the whole run.
pub fn train(
    out: &Path,
    config: Option<&Path>,
    resume: bool,
    overrides: &toml::Table,
) -> Result<String> {
    let dir = RunDir::new(out);
    let _lock = dir.lock()?;
    let mut trainer = trainer(out, config, resume, overrides)?;
    let total = trainer.cfg.train.steps;
    let start_step = trainer.state.step;
    if total <= start_step {
        return Err(invalid!(
            "the run is already at step {start_step}; pass `steps` larger than that to continue"
        ));
    }
    let pb = progress_bar(
        total as u64,
        "[{elapsed_precise}] {bar:30} {pos}/{len} steps {per_sec} ETA {eta} {msg}",
    );
    if let Some(pb) = &pb {
        pb.set_position(start_step as u64);
        pb.reset_eta();
    }
    let started = std::time::Instant::now();
    let mut smooth = f64::NAN;
    trainer.run_to_end(&dir, |rec| {
        smooth = if smooth.is_nan() {
            rec.loss
        } else {
            0.98 * smooth + 0.02 * rec.loss
        };
        if let Some(pb) = &pb {
            pb.inc(1);
            if rec.step % 10 == 0 {
                pb.set_message(format!("loss {smooth:.4}"));
            }
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = total - start_step;
    let window = (done / 100).max(10);
    let c = &trainer.cfg;
    Ok(format!(
        "trained data={} sde={} net={}x{} (+{}-d time embedding, {} parameters) steps={}..{} batch={} loss={:.5} (mean of last {}) wall={:.1}s {:.1} steps/s -> {}",
        c.data,
        trainer.sde().name(),
        c.net.layers,
        c.net.hidden,
        c.net.time_dim,
        c.net.parameters(),
        start_step,
        total,
        c.train.batch,
        trainer.recent_loss(window),
        window.min(trainer.history.len()),
        secs,
        done as f64 / secs,
        out.display()
    ))
}

/// The trainer of a run in `out`: resumed (the overrides may hold `steps` only), or new from
/// `config` (default settings without one) with `overrides` applied
/// ([`RunConfig::with_overrides`]). What `scoresde train` and the Python `train` both call.
pub fn trainer(
    out: &Path,
    config: Option<&Path>,
    resume: bool,
    overrides: &toml::Table,
) -> Result<Trainer> {
    let dir = RunDir::new(out);
    if resume {
        let config_given = config.is_some().then_some("config");
        let mut given = overrides.keys().map(String::as_str).chain(config_given);
        if let Some(name) = given.find(|k| *k != "steps") {
            return Err(invalid!(
                "`{name}` cannot change a run on `resume` (the run's settings are in {})",
                out.join("run.toml").display()
            ));
        }
        let mut t = dir.resume()?;
        if let Some(steps) = overrides.get("steps") {
            t.cfg.train.steps = steps
                .clone()
                .try_into()
                .map_err(|e| invalid!("`steps`: {e}"))?;
        }
        return Ok(t);
    }
    if dir.exists() {
        return Err(invalid!(
            "{} already holds a run: pass `resume` to continue it, or choose another `out`",
            out.display()
        ));
    }
    let mut overrides = overrides.clone();
    let good = overrides.remove("bad_version_of");
    let cfg = match (config, &good) {
        (Some(_), Some(_)) => {
            return Err(invalid!(
                "give either `config` or `bad_version_of` (a bad version takes its run's settings)"
            ))
        }
        (Some(p), None) => read_toml::<RunConfig>(p)?,
        (None, None) => RunConfig::default(),
        (None, Some(v)) => {
            let good = v
                .as_str()
                .ok_or_else(|| invalid!("`bad_version_of` must be a run directory"))?;
            return bad_version(Path::new(good), &overrides);
        }
    };
    Trainer::new(cfg.with_overrides(&overrides)?)
}

/// The trainer of a bad version of the run in `good` (Karras et al. 2024's autoguidance): the
/// good run's settings with `overrides`, which must make the network smaller (fewer
/// parameters) or the training shorter (fewer steps); the good run is recorded.
fn bad_version(good: &Path, overrides: &toml::Table) -> Result<Trainer> {
    let (base, _) = RunDir::new(good).load_config()?;
    let mut cfg = base.with_overrides(overrides)?;
    cfg.train.bad_version_of = Some(
        std::fs::canonicalize(good)
            .unwrap_or_else(|_| good.to_path_buf())
            .display()
            .to_string(),
    );
    let t = Trainer::new(cfg)?;
    let (g, b) = (&base, &t.cfg);
    if b.net.parameters() >= g.net.parameters() && b.train.steps >= g.train.steps {
        return Err(invalid!(
            "a bad version must be smaller or shorter than {} ({} parameters, {} steps): pass a smaller `hidden`/`layers` or fewer `steps`",
            good.display(),
            g.net.parameters(),
            g.train.steps
        ));
    }
    if b.data != g.data || b.net.classes != g.net.classes || b.sde != g.sde {
        return Err(invalid!(
            "a bad version keeps its run's data, path and classes (those of {})",
            good.display()
        ));
    }
    Ok(t)
}
