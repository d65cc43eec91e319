//! Exact likelihoods and ELBOs against the exact mixture: PF-ODE NLL = −log p₀ (0.01 nats),
//! −ELBO_T ≥ NLL and decreasing in T, the N(0, 1) variance check, importance sampling.

mod common;

use ndarray::{Array1, Array2};
use scoresde::data::GaussianMixture;
use scoresde::data::REFERENCE_DOMAIN;
use scoresde::likelihood::{pf_ode_nll, Divergence, NllSpec};
use scoresde::score::MixtureScore;
use scoresde::sde::{Sde, SubVpSde, VeSde, VpSde};
use std::sync::Arc;

fn one_d() -> Arc<GaussianMixture> {
    Arc::new(
        GaussianMixture::isotropic(vec![0.3, 0.7], ndarray::array![[-1.5], [1.0]], &[0.3, 0.5])
            .unwrap(),
    )
}

fn cases() -> Vec<(&'static str, Arc<GaussianMixture>)> {
    vec![
        ("8gaussians", common::builtin("8gaussians")),
        ("ncsn", common::builtin("ncsn")),
        ("full-cov", common::full_cov_2d()),
        ("1d", one_d()),
    ]
}

fn true_nll(m: &Arc<GaussianMixture>, x: &Array2<f64>) -> ndarray::Array1<f64> {
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    -MixtureScore::new(m.clone(), sde).log_prob(0.0, x.view())
}

/// PF-ODE NLL (RK45 1e-5, ε = 1e-5, exact Hessian trace) equals −log p₀ within 0.01 nats on
/// average over 500 points (seed 1) on four mixtures. Per point, the model NLL also carries the
/// prior mismatch log p_T − log π (±0.03 nats on ncsn, whose modes at ±5 leave p_1 shifted);
/// with the exact p_T as prior the mean per-point error is < 0.01 nats. Sub-VP and VE, and
/// Hutchinson (0.15 nats), on 8gaussians.
#[test]
fn pf_ode_nll_is_the_true_nll() {
    for (name, m) in cases() {
        let x = m.sample(500, 1, REFERENCE_DOMAIN).0;
        let truth = true_nll(&m, &x);
        let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
        let run = pf_ode_nll(
            sde.as_ref(),
            &MixtureScore::new(m.clone(), sde.clone()),
            x.view(),
            &NllSpec::default(),
        )
        .unwrap();
        let mean_err = (run.mean() - truth.mean().unwrap()).abs();
        let p_t = MixtureScore::new(m.clone(), sde.clone()).log_prob(sde.t_max(), run.x_t.view());
        let exact_prior = -(&p_t + &run.delta);
        let err = (&exact_prior - &truth).mapv(f64::abs).mean().unwrap();
        let model_err = (&run.nll - &truth).mapv(f64::abs).mean().unwrap();
        eprintln!("{name}: mean NLL {:.4} true {:.4} (|Δ| {mean_err:.1e}); per point: with π {model_err:.1e}, with exact p_T {err:.1e}; nfe {:.1}", run.mean(), truth.mean().unwrap(), run.nfe);
        assert!(
            mean_err < 0.01,
            "{name}: |mean PF-ODE NLL − mean true NLL| = {mean_err}"
        );
        assert!(
            err < 0.01,
            "{name}: mean |PF-ODE NLL − true NLL| (exact prior) = {err}"
        );
    }
    let m = common::builtin("8gaussians");
    let x = m.sample(200, 2, REFERENCE_DOMAIN).0;
    let truth = true_nll(&m, &x);
    let sdes: [Arc<dyn Sde>; 3] = [
        Arc::new(SubVpSde::default()),
        Arc::new(VeSde::new(0.01, 8.0).unwrap()),
        Arc::new(VpSde::default()),
    ];
    for sde in sdes {
        for div in [Divergence::Exact, Divergence::Hutchinson] {
            let spec = NllSpec {
                divergence: div,
                ..Default::default()
            };
            let run = pf_ode_nll(
                sde.as_ref(),
                &MixtureScore::new(m.clone(), sde.clone()),
                x.view(),
                &spec,
            )
            .unwrap();
            let err = (run.mean() - truth.mean().unwrap()).abs();
            eprintln!(
                "8gaussians {} {div:?}: mean NLL {:.4} true {:.4}",
                sde.name(),
                run.mean(),
                truth.mean().unwrap()
            );
            let tol = if div == Divergence::Exact { 0.01 } else { 0.15 };
            assert!(err < tol, "{} {div:?}: {err}", sde.name());
        }
    }
}

use scoresde::elbo::{continuous_bound, discrete_bound, TimeSampling};
use scoresde::sample::Variance;

fn vp() -> Arc<dyn Sde> {
    Arc::new(VpSde::default())
}

/// −ELBO_T of the exact ε* ≥ true NLL beyond MC error (paired per point, 3 standard errors)
/// for T ∈ {10, 20, 50, 100, 200, 500, 1000}, and decreasing along that list; 30 000 points
/// (seed 3; the gap at T = 1000 is 0.004–0.010 nats, about 1/T).
#[test]
fn discrete_elbo_bounds_the_nll_and_tightens_with_t() {
    const NPTS: usize = 30_000;
    for (name, m) in cases() {
        let x = m.sample(NPTS, 3, REFERENCE_DOMAIN).0;
        let nll = true_nll(&m, &x);
        let sde = vp();
        let score = MixtureScore::new(m.clone(), sde.clone());
        let mut prev: Option<Array1<f64>> = None;
        for t in [10usize, 20, 50, 100, 200, 500, 1000] {
            let b = discrete_bound(sde.as_ref(), &score, x.view(), t, Variance::Beta, 7).unwrap();
            let gap = &b.per_point - &nll;
            let (g, se) = (gap.mean().unwrap(), (gap.var(1.0) / NPTS as f64).sqrt());
            eprintln!(
                "{name} T={t}: −ELBO {:.4} ± {:.4}, NLL {:.4}, gap {g:.4} ± {se:.4}",
                b.total(),
                b.stderr(),
                nll.mean().unwrap()
            );
            assert!(g > 3.0 * se, "{name} T={t}: gap {g} not beyond 3 se {se}");
            if let Some(p) = &prev {
                let dec = p - &b.per_point;
                let (m, se) = (dec.mean().unwrap(), (dec.var(1.0) / NPTS as f64).sqrt());
                assert!(m > -3.0 * se, "{name} T={t}: −ELBO rose by {} ± {se}", -m);
            }
            prev = Some(b.per_point.clone());
        }
    }
}

/// x₀ ~ N(0, 1) in 1D: with σ_t² = β_t the model chain is the true reverse chain, so −ELBO
/// equals the NLL (within 3 se, T = 100, 2000 points); with β̃_t it is strictly larger.
#[test]
fn gaussian_data_variance_choices() {
    let m =
        Arc::new(GaussianMixture::isotropic(vec![1.0], ndarray::array![[0.0]], &[1.0]).unwrap());
    let x = m.sample(2000, 4, REFERENCE_DOMAIN).0;
    let nll = true_nll(&m, &x);
    let sde = vp();
    let score = MixtureScore::new(m.clone(), sde.clone());
    let beta = discrete_bound(sde.as_ref(), &score, x.view(), 100, Variance::Beta, 1).unwrap();
    let tilde =
        discrete_bound(sde.as_ref(), &score, x.view(), 100, Variance::BetaTilde, 1).unwrap();
    let g_beta = &beta.per_point - &nll;
    let g_tilde = &tilde.per_point - &nll;
    let se = |g: &Array1<f64>| (g.var(1.0) / g.len() as f64).sqrt();
    eprintln!(
        "N(0,1): gap β {:.5} ± {:.5}, gap β̃ {:.5} ± {:.5}",
        g_beta.mean().unwrap(),
        se(&g_beta),
        g_tilde.mean().unwrap(),
        se(&g_tilde)
    );
    assert!(g_beta.mean().unwrap().abs() < 3.0 * se(&g_beta) + 1e-9);
    assert!(g_tilde.mean().unwrap() > 3.0 * se(&g_tilde));
}

/// The continuous bound (ε = 1e-5) of the exact model ≥ NLL beyond −3 se (2000 points, 32
/// importance draws each, seed 6); importance-sampled t (uniform in log-SNR) has at least 2×
/// lower single-draw variance than uniform t at equal draws (500 points × 8).
#[test]
fn continuous_bound_and_importance_sampling() {
    for (name, m) in cases() {
        let sde = vp();
        let score = MixtureScore::new(m.clone(), sde.clone());
        let x = m.sample(500, 6, REFERENCE_DOMAIN).0;
        let u = continuous_bound(
            sde.as_ref(),
            &score,
            x.view(),
            1e-5,
            8,
            TimeSampling::Uniform,
            2,
        )
        .unwrap();
        let is = continuous_bound(
            sde.as_ref(),
            &score,
            x.view(),
            1e-5,
            8,
            TimeSampling::Importance,
            2,
        )
        .unwrap();
        let ratio = u.single_draw_var / is.single_draw_var;
        let x = m.sample(2000, 6, REFERENCE_DOMAIN).0;
        let nll = true_nll(&m, &x);
        let b = continuous_bound(
            sde.as_ref(),
            &score,
            x.view(),
            1e-5,
            32,
            TimeSampling::Importance,
            2,
        )
        .unwrap();
        let gap = &b.per_point - &nll;
        let (g, se) = (gap.mean().unwrap(), (gap.var(1.0) / 2000.0).sqrt());
        eprintln!(
            "{name}: continuous −ELBO {:.4} ± {:.4} vs NLL {:.4} (gap {g:.4} ± {se:.4}); single-draw variance uniform {:.1} vs importance {:.1} (ratio {ratio:.1})",
            b.total(), b.stderr(), nll.mean().unwrap(), u.single_draw_var, is.single_draw_var
        );
        assert!(g > -3.0 * se, "{name}: bound below NLL: {g} ± {se}");
        assert!(ratio >= 2.0, "{name}: variance ratio {ratio}");
    }
}

/// The β̃ bound's small-noise excess tends to ½d(γ + 1 − ln 2) as T → ∞ on linear and cosine
/// VP schedules (T = 10⁶: within 0.5 %), is far from it at T = 1000 on the linear schedule
/// (convergence is slow: β grows 20 % per step over the first steps there), and measured on
/// 8gaussians at T = 1000 (exact ε*, 20 000 points, seed 3) the β̃ − β gap matches the
/// penalty within 5 %. Power: the β bound's own gap (≈ 0.01) does not.
#[test]
fn beta_tilde_gap_tends_to_its_constant() {
    use scoresde::ddpm::{DiscreteSchedule, Variance};
    use scoresde::elbo::{beta_tilde_limit, beta_tilde_penalty, discrete_bound};
    use scoresde::sde::BetaSchedule;
    for schedule in [
        BetaSchedule::Linear {
            beta_min: 0.1,
            beta_max: 20.0,
        },
        BetaSchedule::cosine(),
    ] {
        let vp = VpSde { schedule };
        for d in [1, 2, 5] {
            let p = beta_tilde_penalty(&DiscreteSchedule::exact_vp(&vp, 1_000_000).unwrap(), d);
            let limit = beta_tilde_limit(d);
            assert!(
                (p / limit - 1.0).abs() < 0.005,
                "{schedule:?} d = {d}: {p} vs {limit}"
            );
        }
    }
    assert!((beta_tilde_limit(1) - 0.442_034).abs() < 1e-6);
    let m = common::builtin("8gaussians");
    let sde = vp();
    let score = MixtureScore::new(m.clone(), sde.clone());
    let x = m.sample(20_000, 3, REFERENCE_DOMAIN).0;
    let bound = |v| {
        discrete_bound(sde.as_ref(), &score, x.view(), 1000, v, 3)
            .unwrap()
            .total()
    };
    let (beta, tilde) = (bound(Variance::Beta), bound(Variance::BetaTilde));
    let p = beta_tilde_penalty(
        &DiscreteSchedule::exact_vp(sde.as_vp().unwrap(), 1000).unwrap(),
        2,
    );
    assert!(
        ((tilde - beta) / p - 1.0).abs() < 0.05,
        "β̃ − β = {} vs penalty {p}",
        tilde - beta
    );
    let nll = true_nll(&m, &x).mean().unwrap();
    assert!(
        ((beta - nll) / p - 1.0).abs() > 0.5,
        "power: the β gap {} matches {p}",
        beta - nll
    );
}
