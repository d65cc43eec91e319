//! DDPM as the special case of the VP-SDE: schedules in f64, matched times, the posterior,
//! and L_simple = denoising score matching with λ = σ².

mod common;

use scoresde::data::REFERENCE_DOMAIN;
use scoresde::ddpm::DiscreteSchedule;
use scoresde::score::{MixtureScore, Score};
use scoresde::sde::{Sde, VpSde};
use scoresde::solvers::{KeyedNormal, Time};
use std::sync::Arc;

/// max_i |ᾱ_i − ᾱ(t_i)| on the nominal grid shrinks as N grows, at rate ≈ N^{-1}; the matched
/// times t̃_i reproduce the discrete marginals exactly.
#[test]
fn discrete_alpha_bar_converges_to_the_sde() {
    let sde = VpSde::default();
    let mut errs = Vec::new();
    let ns = [100usize, 1000, 10_000];
    for n in ns {
        let s = DiscreteSchedule::from_vp(&sde, n).unwrap();
        let err = (1..=n)
            .map(|i| (s.alpha_bar(i) - sde.alpha_bar(s.nominal_time(i))).abs())
            .fold(0.0, f64::max);
        let matched = (1..=n)
            .map(|i| {
                let (a, b) = (sde.marginal(s.time(i)), s.marginal(i));
                ((a.mean - b.mean) / b.mean)
                    .abs()
                    .max(((a.std - b.std) / b.std).abs())
            })
            .fold(0.0, f64::max);
        eprintln!("N = {n}: max |ᾱ_i − ᾱ(t_i)| = {err:.3e}; matched-time relative error {matched:.1e}; t̃_N = {:.5}", s.time(n));
        assert!(matched < 1e-10, "N = {n}: {matched}");
        errs.push(err);
    }
    let rate = (errs[2] / errs[0]).ln() / (100f64).ln();
    eprintln!("rate: N^{rate:.3}");
    assert!(errs[0] > errs[1] && errs[1] > errs[2]);
    assert!((rate + 1.0).abs() < 0.2, "rate {rate}");
}

/// The exact grid, Ho's linear schedule at any N (the T = 50 pitfall), and the cosine schedule
/// in floating point: every β positive (an integer-division port gets all but the last zero).
#[test]
fn schedules_in_floating_point() {
    let sde = VpSde::default();
    let e = DiscreteSchedule::exact_vp(&sde, 10).unwrap();
    for i in 1..=10 {
        let t = i as f64 / 10.0;
        assert!((e.alpha_bar(i) / sde.alpha_bar(t) - 1.0).abs() < 1e-12);
        assert!((e.time(i) - t).abs() < 1e-12);
    }
    let ho = DiscreteSchedule::linear(1e-4, 0.02, 50).unwrap();
    assert!((ho.beta(1) - 1e-4).abs() < 1e-18 && (ho.beta(50) - 0.02).abs() < 1e-17);
    assert!(
        (ho.alpha_bar(50) - 0.603).abs() < 1e-3,
        "{}",
        ho.alpha_bar(50)
    );
    let n = 1000;
    let c = DiscreteSchedule::cosine(n, 0.008).unwrap();
    let f = |i: usize| {
        (((i as f64 / n as f64) + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    assert!((1..=n).all(|i| c.beta(i) > 0.0), "a β is zero");
    assert!(c.beta(1) < 1e-4 && c.beta(n) == 0.999);
    for i in 1..n - 5 {
        assert!(
            (c.alpha_bar(i) / (f(i) / f(0)) - 1.0).abs() < 1e-9,
            "i = {i}"
        );
    }
}

/// q(x_{t−1} | x_t, x_0) against Gaussian conditioning done by hand: precision
/// 1/(1 − ᾱ_{t−1}) + α_t/β_t, mean var · (√ᾱ_{t−1} x_0/(1 − ᾱ_{t−1}) + √α_t x_t/β_t).
#[test]
fn posterior_matches_gaussian_conditioning() {
    let s = DiscreteSchedule::from_vp(&VpSde::default(), 1000).unwrap();
    for t in [2usize, 10, 500, 1000] {
        let (ab_prev, a, b) = (s.alpha_bar(t - 1), s.alpha(t), s.beta(t));
        let var = 1.0 / (1.0 / (1.0 - ab_prev) + a / b);
        let p = s.posterior(t);
        assert!((p.var / var - 1.0).abs() < 1e-10, "t = {t}");
        assert!((p.coef_x0 / (var * ab_prev.sqrt() / (1.0 - ab_prev)) - 1.0).abs() < 1e-10);
        assert!((p.coef_xt / (var * a.sqrt() / b) - 1.0).abs() < 1e-10);
    }
}

/// For the same draws (x_0, i, ε), L_simple = ‖ε − ε_θ‖² equals denoising score matching with
/// λ = σ² = 1 − ᾱ_i: λ ‖s_θ(x_i) − ∇log q(x_i | x_0)‖² (2000 draws, 8gaussians, exact ε*).
#[test]
fn l_simple_is_dsm_with_sigma_squared_weighting() {
    let m = common::builtin("8gaussians");
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    let score = MixtureScore::new(m.clone(), sde.clone());
    let sched = DiscreteSchedule::from_vp(&VpSde::default(), 1000).unwrap();
    let x0 = m.sample(2000, 1, REFERENCE_DOMAIN).0;
    let key = KeyedNormal::new(2, 7);
    let (mut simple, mut dsm) = (0.0, 0.0);
    for (r, x) in x0.rows().into_iter().enumerate() {
        let mut rng = key.rng(r as u64, 0);
        let i = 1 + (rand::Rng::random::<f64>(&mut rng) * 1000.0) as usize % 1000;
        let mut eps = [0.0; 2];
        key.fill_row(r as u64, 1, &mut eps);
        let k = sched.marginal(i);
        let xt = ndarray::array![[
            k.mean * x[0] + k.std * eps[0],
            k.mean * x[1] + k.std * eps[1]
        ]];
        let e_theta = score.eps(sched.time(i), xt.view());
        let mut s_theta = ndarray::Array2::zeros((1, 2));
        score.score(Time::Shared(sched.time(i)), xt.view(), s_theta.view_mut());
        for j in 0..2 {
            simple += (eps[j] - e_theta[[0, j]]).powi(2);
            let target = -(xt[[0, j]] - k.mean * x[j]) / (k.std * k.std);
            dsm += k.std * k.std * (s_theta[[0, j]] - target).powi(2);
        }
    }
    eprintln!(
        "L_simple {:.6}, DSM(λ = σ²) {:.6}",
        simple / 2000.0,
        dsm / 2000.0
    );
    assert!((simple / dsm - 1.0).abs() < 1e-9);
}
