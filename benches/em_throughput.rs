//! Throughput of reverse Euler–Maruyama with the exact `8gaussians` score: 100 000 particles ×
//! 1000 steps, f64, all cores — the same code path as `scoresde sample`.
//!
//! `cargo bench --bench em_throughput` (set `EM_BENCH_PARTICLES` to change the size).
//! Reference points for the same computation on this 2-core machine: vectorised PyTorch
//! float32 eager ≈ 16 M particle-steps/s, torch.compile ≈ 20 M/s.

use scoresde::data::Dataset;
use scoresde::sample::{sample, SampleSpec, Sampler};
use scoresde::score::MixtureScore;
use scoresde::sde::{Sde, VpSde};
use std::sync::Arc;

fn main() {
    let n: usize = std::env::var("EM_BENCH_PARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let steps = 1000;
    let data = Dataset::from_spec("8gaussians").expect("builtin");
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    let score = MixtureScore::new(data.mixture().expect("mixture").clone(), sde.clone());
    let spec = SampleSpec {
        sampler: Sampler::default(),
        steps,
        n,
        seed: 0,
        ..Default::default()
    };
    // Warm-up on a small batch, then the timed runs.
    sample(
        sde.as_ref(),
        &score,
        &SampleSpec {
            n: 1000,
            ..spec.clone()
        },
        None,
    )
    .expect("warm-up");
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let run = sample(sde.as_ref(), &score, &spec, None).expect("sampling");
        best = best.min(run.wall.as_secs_f64());
    }
    let rate = (n * steps) as f64 / best / 1e6;
    println!(
        "reverse EM, exact 8gaussians score, {n} particles x {steps} steps, f64, {} threads: best of 3 {best:.3} s = {rate:.1} M particle-steps/s (PyTorch f32: eager 16, compiled 20; target 40)",
        rayon::current_num_threads()
    );
}
