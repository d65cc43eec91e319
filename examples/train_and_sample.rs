//! Training an ε-network from code, sampling it with its own SDE and judging it against the exact
//! mixture: within-component spread (fitted / true std, 1 = exact, > 1 = blurred) and the kNN
//! same-sample fraction (≈ 0.5 = indistinguishable locally). Power control: the same network
//! after 30 steps must fail both bounds. Run: `cargo run --release --example train_and_sample`.

use scoresde::data::{Dataset, REFERENCE_DOMAIN};
use scoresde::sample::{sample, SampleSpec};
use scoresde::stats::{spread::component_spread, two_sample::knn_fraction, KNN_K};
use scoresde::train::{load_model, RunConfig, RunDir, TrainConfig, Trainer};

fn main() -> scoresde::Result<()> {
    let data = Dataset::from_spec("8gaussians")?;
    let mixture = data.mixture().unwrap().clone();
    let reference = data.sample(2000, 5, REFERENCE_DOMAIN);
    let scratch = tempfile::tempdir().map_err(|e| scoresde::Error::io("tempdir", e))?;
    for (steps, good) in [(3000, true), (30, false)] {
        let cfg = RunConfig {
            data: "8gaussians".into(),
            train: TrainConfig {
                steps,
                ..Default::default()
            },
            ..Default::default()
        };
        let dir = RunDir::new(scratch.path().join(format!("run-{steps}")));
        let started = std::time::Instant::now();
        Trainer::new(cfg)?.run_to_end(&dir, |_| {})?;
        let (_, net) = load_model(&dir.path)?; // EMA weights and the run's own SDE
        let spec = SampleSpec {
            steps: 500,
            n: 2000,
            seed: 5,
            ..Default::default()
        };
        let x = sample(net.sde().as_ref(), &net, &spec, None)?.x;
        let spread = component_spread(&mixture, x.view()).median;
        let knn = knn_fraction(x.view(), reference.view(), KNN_K);
        let pass = (0.8..=1.25).contains(&spread) && knn <= 0.53;
        println!(
            "{steps:>5} steps ({:.1} s): spread {spread:.3} (want [0.8, 1.25]), kNN fraction {knn:.3} (want ≤ 0.53) -> {}",
            started.elapsed().as_secs_f64(),
            if pass { "pass" } else { "fail" }
        );
        assert_eq!(pass, good, "{steps} steps: unexpected verdict");
    }
    Ok(())
}
