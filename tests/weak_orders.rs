//! Weak convergence of the stochastic newer samplers with the exact score: the error of the
//! second moment E[x²] of the samples against its exact value for data N(0, c²) (exact for
//! every t: the marginal is N(0, m²c² + s²)), at N = 16 … 256 steps, 200 000 particles
//! (seed 9). The Monte-Carlo noise floor of the estimate is √(Var x²/n) = √2 E[x²]/√n ≈ 8e-4:
//! the slope is fitted on the three largest N whose error exceeds ten times the floor.
//!
//! Asserted: SA-Solver with p = 1, no corrector, τ = 1 (the first-order SDE-DPM-Solver++,
//! an exponential Euler–Maruyama step) converges weakly at order 1 (±0.4); the same fit refutes
//! weak order 2 for it (power). Reported: SA-Solver (2, 2) at τ = 1 and SEEDS-2 (η = 1).

use ndarray::array;
use scoresde::data::{Covariance, GaussianMixture};
use scoresde::numerics::loglog_slope;
use scoresde::sample::{sample, SampleSpec, Sampler};
use scoresde::score::MixtureScore;
use scoresde::sde::{Sde, VpSde};
use std::sync::Arc;

const C: f64 = 0.5;
const N_PARTICLES: usize = 200_000;

/// The number of N above 10× the noise floor (at most 3) and the weak order fitted on them.
fn weak(table: &str, steps: &[usize]) -> (usize, f64) {
    let mixture = Arc::new(
        GaussianMixture::new(
            vec![1.0],
            array![[0.0]],
            vec![Covariance::isotropic(C).unwrap()],
        )
        .unwrap(),
    );
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    let score = MixtureScore::new(mixture, sde.clone());
    let sampler: Sampler = toml::from_str(table).unwrap();
    let eps = sde.default_eps();
    let k = sde.marginal(eps);
    let exact = k.mean * k.mean * C * C + k.std * k.std;
    let floor = 2f64.sqrt() * exact / (N_PARTICLES as f64).sqrt();
    let points: Vec<(usize, f64)> = steps
        .iter()
        .map(|&n| {
            let spec = SampleSpec {
                sampler: sampler.clone(),
                steps: n,
                n: N_PARTICLES,
                seed: 9,
                denoise: Some(false),
                ..Default::default()
            };
            let x = sample(sde.as_ref(), &score, &spec, None).unwrap().x;
            let m2 = x.iter().map(|v| v * v).sum::<f64>() / N_PARTICLES as f64;
            (n, (m2 - exact).abs())
        })
        .collect();
    let above: Vec<&(usize, f64)> = points.iter().filter(|p| p.1 > 10.0 * floor).collect();
    let fit = &above[above.len().saturating_sub(3)..];
    let slope = -loglog_slope(
        &fit.iter().map(|p| p.0 as f64).collect::<Vec<_>>(),
        &fit.iter().map(|p| p.1).collect::<Vec<_>>(),
    );
    eprintln!(
        "{table:?}: errors {points:?} (floor {floor:.1e}), weak order {slope:.2} over {} points",
        fit.len()
    );
    (fit.len(), slope)
}

#[test]
fn stochastic_samplers_converge_weakly() {
    let steps = [16, 32, 64, 128, 256];
    let (points, sa1) = weak(
        "sampler = \"sa-solver\"\npredictor_order = 1\ncorrector_order = 0\ntau = 1.0\ntau_window = [0.0, 1.0]\nspacing = \"logsnr\"",
        &steps,
    );
    assert_eq!(
        points, 3,
        "SA-Solver (1, 0): too few errors above the noise floor"
    );
    assert!(
        (sa1 - 1.0).abs() <= 0.4,
        "SA-Solver (1, 0), τ = 1: weak order {sa1}"
    );
    assert!(
        (sa1 - 2.0).abs() > 0.4,
        "power: weak order 2 not refuted ({sa1})"
    );
    for table in [
        "sampler = \"sa-solver\"\ntau = 1.0\ntau_window = [0.0, 1.0]\nspacing = \"logsnr\"",
        "sampler = \"seeds-2\"",
    ] {
        let (points, slope) = weak(table, &steps);
        assert!(
            points >= 2 && slope > 0.5,
            "{table}: does not converge ({slope} over {points} N)"
        );
    }
}
