//! Network throughput on the reference shape: input 2 + 128-d sinusoidal embedding,
//! 3 hidden layers of 256, SiLU (`--hidden 256 --layers 3 --time-dim 128`), f32, all cores.
//!
//! * sampling: 10 000 particles × 100 reverse-EM steps with the network score (the ndarray
//!   inference path, the same code as `scoresde sample --model`), and the candle forward pass
//!   on the same batch for comparison;
//! * training: optimiser steps per second at batch 1024 (candle autograd + Adam + EMA), and for
//!   the default network of `scoresde train` at its default batch.
//!
//! `scripts/bench-vs-pytorch.sh` runs this beside `benches/pytorch_reference.py` (the same
//! networks in PyTorch) on the same machine and prints the ratios.
//!
//! `cargo bench --bench net_throughput`. PyTorch 2 on this CPU, f32, both cores: sampling
//! ≈ 0.21 M particle-steps/s (≈ 70 GFLOP/s), training ≈ 65 steps/s.

use scoresde::nn::{EpsNet, NetConfig, NetScore};
use scoresde::sample::{sample, SampleSpec, Sampler};
use scoresde::sde::{Sde, SdeSpec, VpSde};
use scoresde::train::{RunConfig, TrainConfig, Trainer};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    scoresde::nn::tune_runtime();
    let cfg = NetConfig {
        dim: 2,
        hidden: 256,
        layers: 3,
        time_dim: 128,
        fourier: 0,
        residual: false,
        ..Default::default()
    };
    let flops_row = 2.0 * cfg.macs_per_row() as f64;
    let net = EpsNet::init(cfg.clone(), 0).expect("init");
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    let score = NetScore::new(net.mlp().expect("weights"), sde.clone());
    let (n, steps) = (10_000, 100);
    let spec = SampleSpec {
        sampler: Sampler::default(),
        steps,
        n,
        seed: 0,
        ..Default::default()
    };
    sample(
        sde.as_ref(),
        &score,
        &SampleSpec {
            n: 1000,
            steps: 5,
            ..spec.clone()
        },
        None,
    )
    .expect("warm-up");
    let mut walls: Vec<f64> = (0..3)
        .map(|_| {
            let run = sample(sde.as_ref(), &score, &spec, None).expect("sampling");
            run.wall.as_secs_f64()
        })
        .collect();
    walls.sort_by(f64::total_cmp);
    let rate = (n * steps) as f64 / walls[1];
    println!(
        "sampling: reverse EM with the network score, {n} particles x {steps} steps: median of 3 {:.3} s = {:.3} M particle-steps/s, {:.0} GFLOP/s (PyTorch on the issue's machine 0.21 M/s)",
        walls[1],
        rate / 1e6,
        rate * flops_row / 1e9
    );

    // candle forward pass on the same batch (one shared t), for comparison.
    let x = ndarray::Array2::<f64>::zeros((n, 2));
    let t = vec![0.5; n];
    let input = net.input(x.view(), &t).expect("input");
    net.forward(&input).expect("forward");
    let reps = 20;
    let start = Instant::now();
    for _ in 0..reps {
        net.forward(&input).expect("forward");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "candle forward, batch {n}: {:.3} M rows/s, {:.0} GFLOP/s",
        (reps * n) as f64 / secs / 1e6,
        (reps * n) as f64 * flops_row / secs / 1e9
    );

    let reference = train_rate(cfg, 1024);
    println!(
        "training reference (3x256 + 128-d embedding, batch 1024, Adam + EMA): {reference:.1} steps/s, {:.0} GFLOP/s (forward + backward ≈ 3 × forward; PyTorch on the issue's machine 65 steps/s, target ≥ 100)",
        reference * 1024.0 * 3.0 * flops_row / 1e9
    );
    let default = TrainConfig::default();
    let rate = train_rate(NetConfig::default(), default.batch);
    println!(
        "training default (scoresde train's network, batch {}): {rate:.1} steps/s",
        default.batch
    );
}

/// Median steps/s of 5 timed blocks of 40 steps (after 20 warm-up steps) on 8gaussians.
fn train_rate(net: NetConfig, batch: usize) -> f64 {
    let run = RunConfig {
        data: "8gaussians".into(),
        sde: SdeSpec::default(),
        net,
        train: TrainConfig {
            batch,
            ..Default::default()
        },
    };
    let mut trainer = Trainer::new(run).expect("trainer");
    for _ in 0..20 {
        trainer.step().expect("step");
    }
    let mut rates: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..40 {
                trainer.step().expect("step");
            }
            40.0 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[2]
}
