//! `scoresde decompose`: the error of a sampler's output split into initialisation,
//! truncation, discretisation and score ([`crate::decompose`]), written as a CSV table
//! (`stage,source,sw2,stderr`) with the summary on stdout.

use super::sample::SamplerFlags;
use crate::data::Dataset;
use crate::decompose::{decompose, DecomposeSpec, Decomposition};
use crate::io::AtomicFile;
use crate::model::Model;
use crate::sde::SdeSpec;
use crate::{invalid, Error, Result};
use std::io::Write;
use std::path::PathBuf;

/// Decompose a sampler's error against a mixture's exact draws.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct DecomposeTask {
    /// Builtin mixture or mixture .toml: the data (its exact score replaces the model's).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: String,
    /// A run directory from `scoresde train` (default: the exact score of --data).
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: Option<PathBuf>,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub sde: SdeSpec,
    #[cfg_attr(
        feature = "cli",
        arg(long, default_value = "em", value_parser = clap::builder::PossibleValuesParser::new(crate::sample::config::NAMES))
    )]
    pub sampler: String,
    #[cfg_attr(feature = "cli", command(flatten))]
    pub settings: SamplerFlags,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 100))]
    pub steps: usize,
    /// Final time ε (default: the path's).
    #[cfg_attr(feature = "cli", arg(long))]
    pub eps: Option<f64>,
    /// Samples per run.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub n: usize,
    /// Repetitions (standard errors over them; at least 2).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 4))]
    pub seeds: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Random directions of the sliced W₂².
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 64))]
    pub projections: usize,
    /// The CSV table to write.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
}

impl DecomposeTask {
    /// Runs the decomposition and writes its table; returns the summary line.
    pub fn run(&self) -> Result<String> {
        crate::error::check_points("n", self.n, 1)?;
        crate::error::check_range("seeds", self.seeds, 1000)?;
        crate::error::check_range("projections", self.projections, 10_000)?;
        let data = Dataset::from_spec(&self.data)?;
        let mixture = data.exact_mixture()?.clone();
        let (model, exact) = match &self.model {
            Some(dir) => {
                let (model, cfg) = Model::from_run(dir)?;
                if self.sde != SdeSpec::default() && self.sde != cfg.sde {
                    return Err(invalid!(
                        "the run was trained on the {} path; decompose it there (omit --path)",
                        model.sde().name()
                    ));
                }
                let exact = Model::exact(&data, &cfg.sde)?;
                (model, exact)
            }
            None => (
                Model::exact(&data, &self.sde)?,
                Model::exact(&data, &self.sde)?,
            ),
        };
        model.check_prior()?;
        let sampler = self.settings.sampler(&self.sampler)?;
        let out = AtomicFile::create(&self.out)?;
        let spec = DecomposeSpec {
            sampler,
            steps: self.steps,
            eps: self.eps,
            n: self.n,
            seeds: self.seeds,
            seed: self.seed,
            projections: self.projections,
            ..Default::default()
        };
        let dec = decompose(&model, &exact, &mixture, &spec)?;
        write_table(out, &dec)?;
        let parts: Vec<String> = dec
            .contributions
            .iter()
            .map(|(s, e)| format!("{}={:.3e}±{:.1e}", s.name(), e.mean, e.stderr))
            .collect();
        Ok(format!(
            "decomposed sampler={} steps={} n={} seeds={}: full={:.3e}±{:.1e} floor={:.3e} {} interaction={:.3e}±{:.1e} -> {}",
            self.sampler,
            self.steps,
            self.n,
            self.seeds,
            dec.full.mean,
            dec.full.stderr,
            dec.floor.mean,
            parts.join(" "),
            dec.interaction.mean,
            dec.interaction.stderr,
            self.out.display()
        ))
    }
}

fn write_table(mut out: AtomicFile, d: &Decomposition) -> Result<()> {
    let mut text = String::from("stage,source,sw2,stderr\n");
    let mut row = |stage: &str, source: &str, e: crate::decompose::Estimate| {
        text.push_str(&format!("{stage},{source},{:e},{:e}\n", e.mean, e.stderr));
    };
    row("floor", "", d.floor);
    row("full", "", d.full);
    for (s, e) in &d.chain {
        row("chain", s.name(), *e);
    }
    for (s, e) in &d.contributions {
        row("contribution", s.name(), *e);
    }
    for (s, e) in &d.alone {
        row("alone", s.name(), *e);
    }
    row("interaction", "", d.interaction);
    let path = out.tmp_path().to_path_buf();
    out.writer()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    out.commit()
}
