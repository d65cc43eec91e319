//! A path written outside the crate: the "quadratic" path m = 1 − t², s = t (its g² = 2t(1 + t²)
//! /(1 − t²) is singular at t = 1, like the rectified path's). One `impl Path` is all it takes:
//! the exact oracle, the reverse dynamics in velocity form and every sampler that can start at
//! m = 0 run on it, and the battery judges the samples. The power control is the same path with
//! ṡ doubled: the PF-ODE (pf-heun), whose drift is built from ṁ and ṡ, must be rejected, while
//! DPM-Solver++(2M), which reads only m and s (an exponential integrator in λ), is unaffected.
//! Run: `cargo run --release --example custom_path`.

use scoresde::data::Dataset;
use scoresde::path::{check_path, Marginal, Path, Rates};
use scoresde::sample::{sample, SampleSpec, Sampler};
use scoresde::score::MixtureScore;
use scoresde::stats::suite::Battery;
use std::sync::Arc;

#[derive(Debug)]
struct Quadratic {
    /// 1 for the true path; 2 for the control whose ṡ is wrong.
    ds_factor: f64,
}

impl Path for Quadratic {
    fn name(&self) -> &'static str {
        "quadratic"
    }
    fn marginal(&self, t: f64) -> Marginal {
        Marginal {
            mean: 1.0 - t * t,
            std: t,
        }
    }
    fn rates(&self, t: f64) -> Rates {
        Rates {
            dmean: -2.0 * t,
            dstd: self.ds_factor,
        }
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn default_eps(&self) -> f64 {
        1e-3
    }
}

fn main() -> scoresde::Result<()> {
    let data = Dataset::from_spec("8gaussians")?;
    let battery = Battery {
        alpha: 0.01,
        seed: 11,
        ..Default::default()
    };
    for ds_factor in [1.0, 2.0] {
        let path: Arc<dyn Path> = Arc::new(Quadratic { ds_factor });
        check_path(path.as_ref())?;
        let field = MixtureScore::new(data.exact_mixture()?.clone(), path.clone());
        for sampler in ["pf-heun", "dpm-solver-pp2m"] {
            let spec = SampleSpec {
                sampler: sampler.parse::<Sampler>()?,
                steps: 100,
                n: 2000,
                seed: 11,
                ..Default::default()
            };
            let want_rejected = ds_factor != 1.0 && sampler == "pf-heun";
            let run = sample(path.as_ref(), &field, &spec, None)?;
            let report = battery.run(run.x.view(), &data)?;
            println!(
                "ṡ × {ds_factor}, {sampler}: rejected = {} (want {want_rejected})",
                report.rejected
            );
            assert_eq!(report.rejected, want_rejected);
        }
    }
    Ok(())
}
