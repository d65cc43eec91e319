//! `scoresde eval`: a trained model against the exact optimum of its mixture data: the excess
//! denoising loss per t bucket, then sample quality (energy, kNN, spread) beside the exact
//! score's, then the calibrated battery.

use super::test::run_battery;
use crate::data::{Dataset, REFERENCE_DOMAIN};
use crate::io::AtomicFile;
use crate::model::Model;
use crate::sample::SampleSpec;
use crate::score::MixtureScore;
use crate::stats::spread::component_spread;
use crate::stats::suite::Battery;
use crate::stats::two_sample::{knn_fraction, EnergyReference};
use crate::stats::KNN_K;
use crate::train::eval::{bucket_edges, excess_loss};
use crate::train::RunDir;
use crate::{invalid, Error, Result};
use ndarray::Array2;
use std::path::PathBuf;

/// Excess denoising loss against the exact optimum per t bucket, and sample tests.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct EvalTask {
    /// A run directory from `scoresde train`.
    #[cfg_attr(feature = "cli", arg(long))]
    pub model: PathBuf,
    /// The exact mixture to compare with (default: the run's training data).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: Option<String>,
    /// Draws per t bucket for the excess loss, and samples for the tests.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2000))]
    pub n: usize,
    /// Number of t buckets (log-spaced from the run's t_eps to T).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 8))]
    pub buckets: usize,
    /// Reverse EM steps for the sample tests (0: skip them).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1000))]
    pub steps: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.01))]
    pub alpha: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Also write the per-bucket losses as CSV.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: Option<PathBuf>,
}

impl EvalTask {
    /// Runs the evaluation, handing each finished part of the report to `say`; returns whether
    /// the battery rejects the learned samples (false when `steps` = 0).
    pub fn run(&self, say: &mut dyn FnMut(&str)) -> Result<bool> {
        if !(2..=10_000_000).contains(&self.n) {
            return Err(invalid!("`n` must lie in [2, 10000000], got {}", self.n));
        }
        crate::error::check_range("buckets", self.buckets, 1000)?;
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(invalid!(
                "`alpha` must lie in (0, 1), got {}",
                crate::error::num(self.alpha)
            ));
        }
        // The output location is checked before any work.
        let out_file = self.out.as_ref().map(AtomicFile::create).transpose()?;
        let (model, cfg) = Model::from_run(&self.model)?;
        model.check_prior()?;
        let spec = self.data.clone().unwrap_or(cfg.data.clone());
        let data = Dataset::from_spec(&spec)?;
        let mixture = data.exact_mixture()?.clone();
        let battery = Battery {
            alpha: self.alpha,
            seed: self.seed,
            progress: true,
            ..Default::default()
        };
        // The battery's settings are checked before any work.
        battery.validate(&data)?;
        if data.dim() != model.dim() {
            return Err(Error::Data(format!(
                "the model has dimension {} but dataset '{spec}' has {}",
                model.dim(),
                data.dim()
            )));
        }
        let sde = model.sde().clone();
        let (_, step) = RunDir::new(&self.model).load_config()?;
        let edges = bucket_edges(cfg.train.t_eps, sde.t_max(), self.buckets);
        let rows = excess_loss(model.score(), &mixture, &sde, &edges, self.n, self.seed);
        let mut s = format!(
            "model {} (step {step}, EMA weights) against the exact ε* of {} under the {} SDE; n={} per bucket, seed={}\n",
            self.model.display(),
            data.name(),
            sde.name(),
            self.n,
            self.seed
        );
        s.push_str("losses per coordinate: dsm = E‖ε_θ−ε‖², optimum = E‖ε*−ε‖², excess = E‖ε_θ−ε*‖² = dsm − optimum\n");
        s.push_str(&format!(
            "  {:>21}  {:>10}  {:>10}  {:>10}  {:>9}  {:>8}\n",
            "t bucket", "dsm", "optimum", "excess", "± se", "excess %"
        ));
        let mut csv = String::from("t_lo,t_hi,dsm,optimum,excess,excess_se\n");
        for r in &rows {
            s.push_str(&format!(
                "  [{:>8.2e}, {:>8.2e})  {:>10.5}  {:>10.5}  {:>10.6}  {:>9.6}  {:>7.2}%\n",
                r.t_lo,
                r.t_hi,
                r.dsm,
                r.optimum,
                r.excess,
                r.excess_se,
                100.0 * r.excess / r.dsm.max(f64::MIN_POSITIVE)
            ));
            csv.push_str(&format!(
                "{:e},{:e},{:e},{:e},{:e},{:e}\n",
                r.t_lo, r.t_hi, r.dsm, r.optimum, r.excess, r.excess_se
            ));
        }
        let mean_excess = rows.iter().map(|r| r.excess).sum::<f64>() / rows.len() as f64;
        s.push_str(&format!("  mean excess over buckets: {mean_excess:.6}"));
        say(&s);
        if !rows
            .iter()
            .all(|r| r.dsm.is_finite() && r.excess.is_finite() && r.excess_se.is_finite())
        {
            return Err(Error::Data(
                "the excess loss is not finite: nothing written".into(),
            ));
        }
        if let (Some(out), Some(mut f)) = (&self.out, out_file) {
            std::io::Write::write_all(f.writer(), csv.as_bytes()).map_err(|e| Error::io(out, e))?;
            f.commit()?;
        }
        if self.steps == 0 {
            return Ok(false);
        }
        let spec = SampleSpec {
            sampler: crate::sample::Sampler::em_for(sde.as_ref()),
            steps: self.steps,
            n: self.n,
            seed: self.seed,
            ..Default::default()
        };
        let learned = model.sample(&spec, None)?;
        let exact = Model::new(MixtureScore::new(mixture.clone(), sde.clone()), sde.clone())?;
        let exact_run = exact.sample(&spec, None)?;
        let reference = data.sample(self.n, self.seed, REFERENCE_DOMAIN);
        let energy = EnergyReference::new(reference.clone());
        let e_learned = energy.distance(learned.x.view());
        let e_exact = energy.distance(exact_run.x.view());
        say(&format!(
            "reverse EM, w = g or √(2s) where g is singular ({} steps, n={}): energy distance to exact draws: learned {e_learned:.5}, exact score {e_exact:.5} (ratio {:.2})",
            self.steps,
            self.n,
            e_learned / e_exact.max(f64::MIN_POSITIVE)
        ));
        let frac = |x: &Array2<f64>| knn_fraction(x.view(), reference.view(), KNN_K);
        say(&format!(
            "local structure: kNN same-sample fraction ({KNN_K} neighbours; chance ≈ 0.50, a blurred model is higher): learned {:.3}, exact score {:.3}",
            frac(&learned.x),
            frac(&exact_run.x)
        ));
        let spread = |x: &Array2<f64>| {
            let s = component_spread(&mixture, x.view());
            let have: Vec<f64> = s.ratios.iter().flatten().copied().collect();
            let lo = have.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = have.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("median {:.3} (range {lo:.3}–{hi:.3})", s.median)
        };
        say(&format!(
            "within-component spread (fitted / true std per component; 1 = exact, > 1 blurred): learned {}, exact score {}",
            spread(&learned.x),
            spread(&exact_run.x)
        ));
        let (report, text) = run_battery(learned.x.view(), &data, "learned samples", &battery)?;
        say(&text);
        Ok(report.rejected)
    }
}
