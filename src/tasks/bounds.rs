//! `scoresde elbo` and `scoresde nll`: ELBO terms and exact PF-ODE likelihoods as CSV files.

use super::ModelChoice;
use crate::ddpm::Variance;
use crate::elbo::TimeSampling;
use crate::io::AtomicFile;
use crate::likelihood::{Divergence, NllSpec};
use crate::stats::stderr;
use crate::{invalid, Error, Result};
use std::f64::consts::LN_2;
use std::path::{Path, PathBuf};

/// ELBO terms (prior L_T, denoise L_{t−1}, recon L_0, total) of the exact ε* or a trained
/// model, as CSV `term,t,nats,stderr`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ElboTask {
    #[cfg_attr(feature = "cli", command(flatten))]
    pub model: ModelChoice,
    /// Steps T of the discrete bound.
    #[cfg_attr(feature = "cli", arg(long = "T", default_value_t = 1000))]
    pub steps: usize,
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Variance::Beta))]
    pub variance: Variance,
    /// The continuous-time bound instead (rows prior, diffusion, recon, total).
    #[cfg_attr(feature = "cli", arg(long))]
    pub continuous: bool,
    /// Continuous bound: draws of t per point.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16))]
    pub draws: usize,
    /// Continuous bound: how t is drawn.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_enum, default_value_t = TimeSampling::Importance)
    )]
    pub sampling: TimeSampling,
    /// Continuous bound: lower end ε.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-5))]
    pub eps: f64,
}

/// Writes `csv` to `out` atomically.
fn write_text(out: AtomicFile, path: &Path, csv: &str) -> Result<()> {
    let mut out = out;
    std::io::Write::write_all(out.writer(), csv.as_bytes()).map_err(|e| Error::io(path, e))?;
    out.commit()
}

impl ElboTask {
    /// Computes the bound into `model.out`; returns the summary line.
    pub fn run(&self) -> Result<String> {
        let m = &self.model;
        if !self.continuous {
            crate::error::check_range("T", self.steps, 1_000_000)?;
        }
        let out = AtomicFile::create(&m.out)?;
        let (model, data, x) = m.load(None)?;
        if x.nrows() < 2 {
            return Err(invalid!(
                "the bound's standard error needs at least 2 points, got {}",
                x.nrows()
            ));
        }
        let mut csv = String::from("term,t,nats,stderr\n");
        let (total, se) = if self.continuous {
            let b =
                model.continuous_bound(x.view(), self.eps, self.draws, self.sampling, m.seed)?;
            csv.push_str(&format!(
                "prior,{},{:e},{:e}\n",
                model.sde().t_max(),
                b.prior.mean().unwrap_or(f64::NAN),
                stderr(&b.prior)
            ));
            csv.push_str(&format!(
                "diffusion,,{:e},{:e}\n",
                b.diffusion.mean().unwrap_or(f64::NAN),
                stderr(&b.diffusion)
            ));
            csv.push_str(&format!("recon,{},{:e},0\n", self.eps, b.recon));
            (b.total(), b.stderr())
        } else {
            let b = model.discrete_bound(x.view(), self.steps, self.variance, m.seed)?;
            for t in &b.terms {
                csv.push_str(&format!(
                    "{},{},{:e},{:e}\n",
                    t.kind.name(),
                    t.step,
                    t.nats,
                    t.stderr
                ));
            }
            (b.total(), b.stderr())
        };
        csv.push_str(&format!("total,,{total:e},{se:e}\n"));
        if !(total.is_finite() && se.is_finite()) || csv.contains("NaN") || csv.contains("inf") {
            return Err(Error::Data(format!(
                "the bound is not finite (total {total}, stderr {se}): nothing written to {}",
                m.out.display()
            )));
        }
        write_text(out, &m.out, &csv)?;
        let what = if self.continuous {
            format!(
                "continuous bound (ε = {}, {} {} draws)",
                crate::error::num(self.eps),
                self.draws,
                crate::io::variant_name(&self.sampling)
            )
        } else {
            format!(
                "T = {}, variance {}",
                self.steps,
                crate::io::variant_name(&self.variance)
            )
        };
        Ok(format!(
            "-ELBO = {} nats ({:.5} bits/dim) over n={} points of {data}, {what}, sde={}",
            crate::stats::plus_minus(total, se, x.nrows()),
            total / (x.ncols() as f64 * LN_2),
            x.nrows(),
            model.sde().name()
        ))
    }
}

/// Exact negative log-likelihoods through the probability-flow ODE, one row per point.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct NllTask {
    #[cfg_attr(feature = "cli", command(flatten))]
    pub model: ModelChoice,
    /// A CSV of points (header x0,x1,…) instead of --n draws.
    #[cfg_attr(feature = "cli", arg(long))]
    pub points: Option<PathBuf>,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-5))]
    pub rtol: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-5))]
    pub atol: f64,
    /// Where the data sit on the time axis.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1e-5))]
    pub eps: f64,
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Divergence::Exact))]
    pub divergence: Divergence,
}

impl NllTask {
    /// Computes the NLL of every point into `model.out` (`x0,…,nll`); returns the summary line.
    pub fn run(&self) -> Result<String> {
        let m = &self.model;
        let out = AtomicFile::create(&m.out)?;
        let (model, data, x) = m.load(self.points.as_ref())?;
        let spec = NllSpec {
            rtol: self.rtol,
            atol: self.atol,
            eps: self.eps,
            divergence: self.divergence,
            seed: m.seed,
            chunk: 0,
        };
        let run = model.nll(x.view(), &spec)?;
        let d = x.ncols();
        let mut csv = (0..d)
            .map(|j| format!("x{j}"))
            .collect::<Vec<_>>()
            .join(",");
        csv.push_str(",nll\n");
        for (row, nll) in x.rows().into_iter().zip(&run.nll) {
            for v in row {
                csv.push_str(&format!("{v:e},"));
            }
            csv.push_str(&format!("{nll:e}\n"));
        }
        write_text(out, &m.out, &csv)?;
        let se = stderr(&run.nll);
        Ok(format!(
            "NLL = {} nats ({:.5} bits/dim) over n={} points of {data}, PF-ODE RK45 rtol={} atol={} eps={}, nfe={:.1}, sde={}, wall={:.2}s",
            crate::stats::plus_minus(run.mean(), se, x.nrows()),
            run.mean() / (d as f64 * LN_2),
            x.nrows(),
            crate::error::num(self.rtol),
            crate::error::num(self.atol),
            crate::error::num(self.eps),
            run.nfe,
            model.sde().name(),
            run.wall.as_secs_f64()
        ))
    }
}
