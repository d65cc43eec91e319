//! What each `scoresde` subcommand does, as library calls: a task is a plain settings struct
//! (clap arguments under the `cli` feature) whose `run` does the work and returns what the
//! command prints. The binary only parses and dispatches; a Rust user can call the same tasks.

mod bounds;
mod decompose;
mod eval;
mod sample;
mod schedule;
mod test;
mod train;

pub use bounds::{ElboTask, NllTask};
pub use decompose::DecomposeTask;
pub use eval::EvalTask;
pub use sample::SampleTask;
pub use schedule::ScheduleTask;
pub use test::{render_report, TestTask};
pub use train::{train, trainer, TrainTask};

use crate::data::{Dataset, REFERENCE_DOMAIN};
use crate::io::read_csv;
use crate::model::Model;
use crate::sde::SdeSpec;
use crate::{invalid, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use std::io::IsTerminal;
use std::path::PathBuf;

/// The model an ELBO or likelihood is computed for, and the points.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ModelChoice {
    /// Builtin mixture or mixture .toml: the points' distribution (and the exact model with
    /// --exact). With --model: default the run's training data.
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: Option<String>,
    /// Use the exact score of --data.
    #[cfg_attr(
        feature = "cli",
        arg(long, conflicts_with = "model", required_unless_present = "model")
    )]
    pub exact: bool,
    /// A run directory from `scoresde train` (EMA weights and the run's SDE).
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub sde: SdeSpec,
    /// Points drawn from --data (seed --seed).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1000))]
    pub n: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

impl ModelChoice {
    /// The model (a run's network under its SDE, or the exact score of `data`), the name of the
    /// points' data and the points: read from `points`, or `n` exact draws (seed `seed`).
    pub fn load(&self, points: Option<&PathBuf>) -> Result<(Model, String, Array2<f64>)> {
        let (model, data) = match &self.model {
            Some(dir) => {
                let (model, cfg) = Model::from_run(dir)?;
                (model, self.data.clone().unwrap_or(cfg.data))
            }
            None => {
                let spec = self
                    .data
                    .clone()
                    .ok_or_else(|| invalid!("`exact` needs `data`"))?;
                (Model::exact(&Dataset::from_spec(&spec)?, &self.sde)?, spec)
            }
        };
        model.check_prior()?;
        let x = match points {
            Some(p) => read_csv(p)?,
            None => {
                if self.n == 0 {
                    return Err(invalid!("`n` must be at least 1"));
                }
                Dataset::from_spec(&data)?.sample(self.n, self.seed, REFERENCE_DOMAIN)
            }
        };
        model.check_points(x.view())?;
        Ok((model, data, x))
    }
}

/// A progress bar on a terminal (stderr), nothing otherwise.
pub(crate) fn progress_bar(total: u64, template: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(total);
    pb.set_style(ProgressStyle::with_template(template).expect("valid template"));
    Some(pb)
}

/// Integers without a fraction, others with four decimals.
pub(crate) fn format_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}
