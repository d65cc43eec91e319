//! `scoresde sample`: draws from an exact or trained model into a CSV file.

use super::{format_num, progress_bar};
use crate::data::Dataset;
use crate::io::{write_csv, AtomicFile};
use crate::model::Model;
use crate::sample::{SampleSpec, Sampler, SamplerOptions};
use crate::sde::SdeSpec;
use crate::Result;
use std::path::PathBuf;

/// Sample with the exact score of a mixture dataset, or with a trained network (`model`).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SampleTask {
    /// Builtin mixture name or a mixture .toml file (exact score). With --model: optional.
    #[cfg_attr(feature = "cli", arg(long, required_unless_present = "model"))]
    pub data: Option<String>,
    /// A run directory from `scoresde train`: sample with its EMA network and its SDE.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub sde: SdeSpec,
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Sampler::Em))]
    pub sampler: Sampler,
    /// Steps N (per sampler: steps, grid points, NFE budget or iterations; see the README).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1000))]
    pub steps: usize,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub options: SamplerOptions,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-5))]
    pub rtol: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-5))]
    pub atol: f64,
    /// Final time ε (default 1e-3 for VP/sub-VP, 1e-5 for VE).
    #[cfg_attr(feature = "cli", arg(long))]
    pub eps: Option<f64>,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub n: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Rows per work chunk; results do not depend on it.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0, hide = true))]
    pub chunk: usize,
}

impl SampleTask {
    /// Samples into `out` (written only when the run succeeds); returns the summary line.
    pub fn run(&self) -> Result<String> {
        let model = match &self.model {
            Some(dir) => Model::from_run(dir)?.0,
            None => Model::exact(
                &Dataset::from_spec(self.data.as_deref().unwrap_or_default())?,
                &self.sde,
            )?,
        };
        let spec = SampleSpec {
            sampler: self.sampler,
            steps: self.steps,
            rtol: self.rtol,
            atol: self.atol,
            eps: self.eps,
            n: self.n,
            seed: self.seed,
            chunk: self.chunk,
            record: vec![],
            options: self.options.clone(),
        };
        // Fail on an unwritable `out` before spending any time.
        let out = AtomicFile::create(&self.out)?;
        let pb = progress_bar(
            self.n as u64,
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} particles ({eta})",
        );
        let tick = pb.as_ref().map(|pb| move |k: u64| pb.inc(k));
        let run = model.sample(&spec, tick.as_ref().map(|f| f as &(dyn Fn(u64) + Sync)))?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        write_csv(out, run.x.view())?;
        let steps = run.stats.accepted as f64 / run.stats.particles.max(1) as f64;
        let secs = run.wall.as_secs_f64();
        let sde = model.sde();
        Ok(format!(
            "sampled n={} d={} data={} sde={} sampler={} steps={} eps={} nfe={} rejected={} wall={:.3}s throughput={:.2}M particle-steps/s -> {}",
            self.n,
            model.dim(),
            model.data().unwrap_or_default(),
            sde.name(),
            self.sampler.name(),
            format_num(steps),
            self.eps.unwrap_or(sde.default_eps()),
            format_num(run.nfe),
            run.stats.rejected,
            secs,
            run.stats.accepted as f64 / secs / 1e6,
            self.out.display()
        ))
    }
}
