//! A score written outside the crate, sampled by the library and judged against exact draws.
//!
//! The score is the closed form for 1-D data N(μ, s²) under the VP-SDE: p_t = N(m μ, m² s² + σ²),
//! so ∇log p_t(x) = −(x − m μ)/(m² s² + σ²) with (m, σ) = `sde.marginal(t)`. A deliberately wrong
//! one (data variance × 2.25) is the power control: the battery must reject it.
//! Run: `cargo run --release --example custom_score`.

use ndarray::{arr2, ArrayView2, ArrayViewMut2};
use scoresde::data::Dataset;
use scoresde::data::GaussianMixture;
use scoresde::sample::{sample, SampleSpec};
use scoresde::score::Score;
use scoresde::sde::{Sde, VpSde};
use scoresde::solvers::Time;
use scoresde::stats::suite::Battery;
use std::sync::Arc;

struct GaussianScore {
    sde: VpSde,
    mean: f64,
    var: f64,
}

impl Score for GaussianScore {
    fn dim(&self) -> usize {
        1
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        for (i, (xi, mut o)) in x.rows().into_iter().zip(out.rows_mut()).enumerate() {
            let k = self.sde.marginal(t.at(i));
            o[0] = -(xi[0] - k.mean * self.mean) / (k.mean * k.mean * self.var + k.std * k.std);
        }
    }
}

fn main() -> scoresde::Result<()> {
    let (mean, std) = (1.5, 0.4);
    let data = Dataset::Mixture {
        name: "N(1.5, 0.4²)".into(),
        mixture: Arc::new(GaussianMixture::isotropic(
            vec![1.0],
            arr2(&[[mean]]),
            &[std],
        )?),
    };
    let spec = SampleSpec {
        steps: 500,
        n: 2000,
        seed: 7,
        ..Default::default()
    };
    let battery = Battery {
        alpha: 0.01,
        seed: 7,
        ..Default::default()
    };
    let sde = VpSde::default();
    for (label, var, want_rejected) in [
        ("exact", std * std, false),
        ("too wide", 2.25 * std * std, true),
    ] {
        let score = GaussianScore { sde, mean, var };
        let run = sample(&sde, &score, &spec, None)?;
        let report = battery.run(run.x.view(), &data)?;
        let min_adj = report.adjusted.iter().copied().fold(1.0, f64::min);
        println!(
            "{label:>8} score: n = {}, NFE = {}, smallest family-wise adjusted p = {min_adj:.4}, rejected = {}",
            report.n, run.nfe, report.rejected
        );
        assert_eq!(
            report.rejected, want_rejected,
            "{label}: unexpected verdict"
        );
    }
    Ok(())
}
