//! `scoresde schedule`: the time grid that minimises a sampler's endpoint error with the exact
//! score of a mixture at a fixed NFE ([`crate::sample::schedules::GridProblem`]), written as a
//! grid file (`t` per row) that every sampler reads with `--spacing file:GRID.csv`.

use super::sample::SamplerFlags;
use crate::data::Dataset;
use crate::io::AtomicFile;
use crate::model::Model;
use crate::sample::schedules::GridProblem;
use crate::sde::SdeSpec;
use crate::{invalid, Error, Result};
use std::io::Write;
use std::path::PathBuf;

/// Optimises a sampler's grid against the exact flow of a mixture.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ScheduleTask {
    /// Builtin mixture or mixture .toml (its exact score is the oracle).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: String,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub sde: SdeSpec,
    /// The sampler whose grid is optimised (its own settings as flags).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::sample::config::NAMES))
    )]
    pub sampler: String,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub settings: SamplerFlags,
    /// The sampler's N (its NFE formula says what it costs).
    #[cfg_attr(feature = "cli", arg(long))]
    pub steps: usize,
    /// Final time ε (default: the path's).
    #[cfg_attr(feature = "cli", arg(long))]
    pub eps: Option<f64>,
    /// Prior draws whose mean endpoint error is minimised.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 200))]
    pub particles: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Largest number of sampler runs of the optimiser.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3000))]
    pub evals: usize,
    /// The grid file to write (header `t`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

impl ScheduleTask {
    /// Optimises from the sampler's own grid and writes the result; returns the summary line.
    pub fn run(&self) -> Result<String> {
        crate::error::check_range("particles", self.particles, crate::error::MAX_VALUES)?;
        crate::error::check_range("steps", self.steps, 1000)?;
        crate::error::check_range("evals", self.evals, 1_000_000)?;
        let data = Dataset::from_spec(&self.data)?;
        let model = Model::exact(&data, &self.sde)?;
        let sde = model.sde();
        let sampler = self.settings.sampler(&self.sampler)?;
        let method = sampler.method(Some(sde.as_ref()))?;
        if method.order().is_none() || !method.reads_steps() {
            return Err(invalid!(
                "`sampler` {} is not a fixed-step deterministic sampler: its grid has no exact endpoint to optimise",
                self.sampler
            ));
        }
        let eps = self.eps.unwrap_or(sde.default_eps());
        let out = AtomicFile::create(&self.out)?;
        let x_t = sde.prior_sample(self.particles, model.dim(), self.seed);
        let problem = GridProblem::new(
            sde.as_ref(),
            model.score(),
            method.as_ref(),
            self.steps,
            x_t,
            sde.t_max(),
            eps,
        )?;
        let start = method.grid(sde.as_ref(), eps, self.steps)?;
        let e0 = problem.error(&start)?;
        let (grid, e) = problem.optimise(&start, self.evals)?;
        let mut out = out;
        {
            let path = self.out.clone();
            let w = out.writer();
            let mut text = String::from("t\n");
            for t in &grid {
                text.push_str(&format!("{t:e}\n"));
            }
            w.write_all(text.as_bytes())
                .map_err(|e| Error::io(&path, e))?;
        }
        out.commit()?;
        Ok(format!(
            "schedule data={} sde={} sampler={} steps={} points={}: endpoint error {e0:.4e} on its own grid, {e:.4e} optimised ({:.2}×) -> {}",
            data.name(),
            sde.name(),
            sampler.label(),
            self.steps,
            grid.len(),
            e0 / e,
            self.out.display()
        ))
    }
}
