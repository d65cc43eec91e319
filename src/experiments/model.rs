//! Score networks trained within an experiment run, cached in `OUT/runs/LABEL-HASH/`: a run
//! directory is reused when its saved config (data, SDE, network, optimisation, seed, steps)
//! equals the requested one, so experiments sharing a model train it once.

use super::{Experiment, Outputs};
use crate::nn::{NetConfig, NetScore};
use crate::sde::SdeSpec;
use crate::train::{load_model, RunConfig, RunDir, TrainConfig, Trainer};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A model to train (or reuse) for an experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Name in legends, tables and the cache directory.
    pub label: String,
    /// Training data (default: the experiment's).
    #[serde(default)]
    pub data: Option<String>,
    /// SDE (default: the experiment's).
    #[serde(default)]
    pub sde: Option<SdeSpec>,
    #[serde(default)]
    pub net: NetConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// Optimiser steps under `--quick`.
    pub quick_steps: usize,
}

/// One model used by a run, for the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelUse {
    pub label: String,
    pub dir: String,
    /// false: reused from the cache.
    pub trained: bool,
    pub steps: usize,
    pub train_seconds: f64,
}

impl ModelSpec {
    /// The full run config this spec asks for (steps cut to `quick_steps` under `--quick`).
    pub fn config(&self, exp: &Experiment, quick: bool) -> RunConfig {
        let mut train = self.train.clone();
        if quick {
            train.steps = self.quick_steps.min(train.steps);
            train.warmup = train.warmup.min(train.steps / 4);
        }
        RunConfig {
            data: self.data.clone().unwrap_or_else(|| exp.data.clone()),
            sde: self.sde.clone().unwrap_or_else(|| exp.sde.clone()),
            net: self.net.clone(),
            train,
        }
    }

    /// Trains the model into the run cache, or loads it when a run with the same config exists.
    pub fn trained(&self, exp: &Experiment, o: &mut Outputs) -> Result<NetScore> {
        let trainer = Trainer::new(self.config(exp, o.quick))?;
        let cfg = trainer.cfg.clone();
        let key = toml::to_string(&cfg).map_err(|e| crate::invalid!("model config: {e}"))?;
        let runs = o.dir.parent().unwrap_or(&o.dir).join("runs");
        let dir = RunDir::new(runs.join(format!(
            "{}-{:016x}",
            self.label,
            crate::io::fnv1a(key.as_bytes())
        )));
        let _lock = dir.lock_waiting()?;
        let cached =
            matches!(dir.load_config(), Ok((c, step)) if c == cfg && step == cfg.train.steps);
        let start = Instant::now();
        if !cached {
            eprintln!(
                "{}: training '{}' ({} steps on {}) into {}",
                exp.name,
                self.label,
                cfg.train.steps,
                cfg.data,
                dir.path.display()
            );
            let mut t = trainer;
            t.run_to_end(&dir, |_| {})?;
        }
        o.models.push(ModelUse {
            label: self.label.clone(),
            dir: dir.path.display().to_string(),
            trained: !cached,
            steps: cfg.train.steps,
            train_seconds: start.elapsed().as_secs_f64(),
        });
        Ok(load_model(&dir.path)?.1)
    }
}
