//! Network throughput on the reference shape: input 2 + 128-d sinusoidal embedding,
//! 3 hidden layers of 256, SiLU (`--hidden 256 --layers 3 --time-dim 128`), f32, all cores.
//!
//! * sampling: 10 000 particles × 100 reverse-EM steps with the network score (the ndarray
//!   inference path, the same code as `scoresde sample --model`), and the candle forward pass
//!   on the same batch for comparison;
//! * training: optimiser steps per second at batch 1024 (candle autograd + Adam + EMA).
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
        ..Default::default()
    };
    let flops_row = 2.0 * cfg.macs_per_row() as f64;
    let net = EpsNet::init(cfg.clone(), 0).expect("init");
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    let score = NetScore::new(net.mlp().expect("weights"), sde.clone());
    let (n, steps) = (10_000, 100);
    let spec = SampleSpec {
        sampler: Sampler::Em,
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
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let run = sample(sde.as_ref(), &score, &spec, None).expect("sampling");
        best = best.min(run.wall.as_secs_f64());
    }
    let rate = (n * steps) as f64 / best;
    println!(
        "sampling: reverse EM with the network score, {n} particles x {steps} steps: best of 3 {best:.3} s = {:.3} M particle-steps/s, {:.0} GFLOP/s (PyTorch 0.21 M/s; target 0.32)",
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

    let run = RunConfig {
        data: "8gaussians".into(),
        sde: SdeSpec::default(),
        net: cfg,
        train: TrainConfig {
            batch: 1024,
            ..Default::default()
        },
    };
    let mut trainer = Trainer::new(run).expect("trainer");
    for _ in 0..20 {
        trainer.step().expect("step");
    }
    let k = 200;
    let start = Instant::now();
    for _ in 0..k {
        trainer.step().expect("step");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "training: batch 1024, Adam + EMA: {:.1} steps/s, {:.0} GFLOP/s (forward + backward ≈ 3 × forward; PyTorch 65 steps/s; target 65)",
        k as f64 / secs,
        k as f64 * 1024.0 * 3.0 * flops_row / secs / 1e9
    );
}
