//! The exact score of an isotropic Gaussian mixture at dimension d with K components — the
//! sweeps' inner loop — in particle-scores per second over a batch of 10 000, f64, all cores:
//! `∇log p_t(x) = Σ_k r_k(x) (m μ_k − x) / c_k` (the same kernel as `scoresde sample`).
//!
//! `cargo bench --bench mixture_score`; `benches/pytorch_oracle.py` times the batched f64
//! PyTorch form of the same score on the same (d, K) and `scripts/bench-vs-pytorch.sh` prints
//! the ratios.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scoresde::data::GaussianMixture;
use scoresde::path::Marginal;
use scoresde::score::Scratch;
use std::time::Instant;

/// Rows per parallel task.
const CHUNK: usize = 256;

fn main() {
    let n = 10_000;
    for &(d, k) in &[(2, 8), (2, 1000), (16, 100), (64, 100), (64, 1000)] {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        let means = Array2::from_shape_fn((k, d), |_| 3.0 * rng.sample::<f64, _>(StandardNormal));
        let mix = GaussianMixture::isotropic(vec![1.0; k], means, &vec![0.5; k]).expect("mixture");
        let at = mix.at(Marginal {
            mean: 0.6,
            std: 0.8,
        });
        let x: Vec<f64> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
        let mut out = vec![0.0; n * d];
        let mut run = || {
            out.par_chunks_mut(CHUNK * d)
                .zip(x.par_chunks(CHUNK * d))
                .for_each_init(Scratch::default, |s, (o, xb)| {
                    assert!(at.score_rows_isotropic(xb, o, s));
                });
        };
        run();
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let start = Instant::now();
            let mut reps = 0;
            while start.elapsed().as_secs_f64() < 0.5 {
                run();
                reps += 1;
            }
            best = best.min(start.elapsed().as_secs_f64() / reps as f64);
        }
        assert!(out.iter().all(|v| v.is_finite()));
        println!(
            "mixture score d={d} K={k} (f64, batch {n}, {} threads): {:.3} M particle-scores/s",
            rayon::current_num_threads(),
            n as f64 / best / 1e6
        );
    }
}
