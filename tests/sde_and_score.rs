//! SDE kernels against papers.md §1.1 and closed forms; the exact mixture score against
//! finite differences and independent dense-matrix formulas.

mod common;

use ndarray::{array, Array1, Array2};
use ndarray_linalg::{Determinant, Inverse};
use scoresde::data::GaussianMixture;
use scoresde::reverse::Reverse;
use scoresde::score::{convert, MixtureScore, Score};
use scoresde::sde::{BetaSchedule, Marginal, Sde, SubVpSde, VeSde, VpSde};
use scoresde::solvers::Time;
use std::sync::Arc;

/// papers.md §1.1 table (β_min 0.1, β_max 20): t, m(t), s(t). Values are printed to 6
/// significant digits, so each is compared to within half a unit of its last printed digit.
const TABLE: [(f64, f64, f64, f64, f64); 5] = [
    // t, m, tol_m, s, tol_s
    (1e-5, 0.999999, 5e-7, 0.0010005, 5e-8),
    (1e-3, 0.999945, 5e-7, 0.0104854, 5e-8),
    (0.1, 0.946722, 5e-7, 0.322053, 5e-7),
    (0.5, 0.281183, 5e-7, 0.959654, 5e-7),
    (1.0, 0.00657159, 5e-9, 0.999978, 5e-7),
];

#[test]
fn vp_marginals_match_reference_table() {
    let sde = VpSde::default();
    for (t, m, tm, s, ts) in TABLE {
        let k = sde.marginal(t);
        assert!((k.mean - m).abs() <= tm, "m({t}) = {} vs {m}", k.mean);
        assert!((k.std - s).abs() <= ts, "s({t}) = {} vs {s}", k.std);
    }
    // log-SNR column, printed to 4 significant digits.
    for (t, l) in [
        (1e-5, 13.81),
        (1e-3, 9.115),
        (0.1, 2.157),
        (0.5, -2.455),
        (1.0, -10.05),
    ] {
        assert!(
            (sde.marginal(t).log_snr() - l).abs() < 0.006,
            "log-SNR({t})"
        );
    }
}

#[test]
fn vp_std_is_accurate_near_zero() {
    // s(t)² = 1 − e^{−B} = B − B²/2 + B³/6 − …; the series is exact to 1e-18 here.
    let sde = VpSde::default();
    for t in [1e-8f64, 1e-7, 1e-6, 1e-5] {
        let b = 0.1 * t + 0.5 * 19.9 * t * t;
        let series = (b - b * b / 2.0 + b * b * b / 6.0).sqrt();
        let rel = (sde.marginal(t).std - series).abs() / series;
        assert!(rel < 1e-12, "t = {t}: relative error {rel:e}");
    }
}

#[test]
fn schedules_integrate_their_beta() {
    for sched in [
        BetaSchedule::default(),
        BetaSchedule::Linear {
            beta_min: 0.5,
            beta_max: 7.0,
        },
        BetaSchedule::cosine(),
    ] {
        assert_eq!(sched.integral(0.0), 0.0);
        for t in [0.01, 0.2, 0.5, 0.9] {
            let h = 1e-6;
            let fd = (sched.integral(t + h) - sched.integral(t - h)) / (2.0 * h);
            assert!(
                (fd - sched.beta(t)).abs() < 1e-6 * sched.beta(t).max(1.0),
                "{sched:?} at {t}"
            );
        }
    }
    // Cosine: ᾱ(t) = cos²(θ(t))/cos²(θ(0)) computed in floating point (no integer division).
    let vp = VpSde {
        schedule: BetaSchedule::cosine(),
    };
    let th = |t: f64| (t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2;
    for t in [0.0, 0.25, 0.5, 0.75, 0.99] {
        let want = (th(t).cos() / th(0.0).cos()).powi(2);
        assert!((vp.alpha_bar(t) - want).abs() < 1e-12);
    }
    assert!(vp.t_max() < 1.0);
}

#[test]
fn subvp_and_ve_kernels() {
    let sub = SubVpSde::default();
    let vp = VpSde::default();
    for t in [1e-5, 0.1, 0.7, 1.0] {
        let (a, b) = (sub.marginal(t), vp.marginal(t));
        assert_eq!(a.mean, b.mean);
        assert!(
            (a.std - b.std * b.std).abs() < 1e-15,
            "sub-VP std is 1 − ᾱ (the VP variance)"
        );
        // g² = β (1 − e^{−2B})
        let big_b = -2.0 * b.mean.ln();
        assert!(
            (sub.diffusion(t).powi(2) - vp.beta(t) * (1.0 - (-2.0 * big_b).exp())).abs() < 1e-12
        );
    }
    let ve = VeSde::new(0.01, 50.0).unwrap();
    assert!((ve.marginal(0.0).std - 0.01).abs() < 1e-15);
    assert!((ve.marginal(1.0).std - 50.0).abs() < 1e-12);
    // d σ²/dt = g²
    for t in [0.1, 0.5, 0.9] {
        let h = 1e-6;
        let fd = (ve.sigma(t + h).powi(2) - ve.sigma(t - h).powi(2)) / (2.0 * h);
        assert!((fd - ve.diffusion(t).powi(2)).abs() < 1e-5 * fd);
    }
    assert_eq!(ve.prior_std(), 50.0);
    assert!(VeSde::new(1.0, 0.5).is_err());
}

#[test]
fn prior_log_prob_is_the_gaussian_density() {
    let ve = VeSde::new(0.01, 3.0).unwrap();
    let x = array![[0.5, -1.0], [2.0, 0.0]];
    let lp = ve.prior_log_prob(x.view());
    for (r, &l) in x.rows().into_iter().zip(&lp) {
        let want = -r.dot(&r) / 18.0 - (2.0 * std::f64::consts::PI * 9.0).ln();
        assert!((l - want).abs() < 1e-12);
    }
}

fn mixtures() -> Vec<(&'static str, Arc<GaussianMixture>)> {
    vec![
        ("8gaussians", common::builtin("8gaussians")),
        ("ncsn", common::builtin("ncsn")),
        ("bimodal-1d", common::builtin("bimodal-1d")),
        ("full-cov-2d", common::full_cov_2d()),
        ("3d", common::mixture_3d()),
    ]
}

fn sdes() -> Vec<Arc<dyn Sde>> {
    vec![
        Arc::new(VpSde::default()),
        Arc::new(SubVpSde::default()),
        Arc::new(VeSde::new(0.01, 10.0).unwrap()),
    ]
}

/// A few deterministic test points around the data.
fn points(d: usize) -> Array2<f64> {
    Array2::from_shape_fn((6, d), |(i, j)| {
        ((i * 7 + j * 3) % 11) as f64 * 0.6 - 3.0 + 0.17 * j as f64
    })
}

#[test]
fn score_is_the_gradient_of_log_density() {
    for (name, mix) in mixtures() {
        for sde in sdes() {
            let score = MixtureScore::new(mix.clone(), sde.clone());
            let x = points(mix.dim());
            for t in [1e-3, 0.05, 0.3, 0.9] {
                let mut s = Array2::zeros(x.raw_dim());
                score.score(Time::Shared(t), x.view(), s.view_mut());
                for i in 0..x.nrows() {
                    for j in 0..x.ncols() {
                        let h = 1e-5 * (1.0 + sde.marginal(t).std);
                        let (mut xp, mut xm) = (
                            x.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                            x.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                        );
                        xp[[0, j]] += h;
                        xm[[0, j]] -= h;
                        let fd = (score.log_prob(t, xp.view())[0]
                            - score.log_prob(t, xm.view())[0])
                            / (2.0 * h);
                        let tol = 1e-5 * (1.0 + fd.abs());
                        assert!(
                            (s[[i, j]] - fd).abs() < tol,
                            "{name} {} t={t} row {i} coord {j}: {} vs fd {fd}",
                            sde.name(),
                            s[[i, j]]
                        );
                    }
                }
            }
        }
    }
}

/// Independent dense-matrix evaluation of p_t, its score and the Tweedie denoiser.
fn dense_reference(
    mix: &GaussianMixture,
    k: Marginal,
    x: ndarray::ArrayView1<f64>,
) -> (f64, Array1<f64>, Array1<f64>) {
    let d = mix.dim();
    let (m, s2) = (k.mean, k.std * k.std);
    let mut logs = vec![];
    let mut grads = vec![];
    let mut posts = vec![];
    for (c, cov) in mix.covariances().iter().enumerate() {
        let sigma = cov.matrix(d);
        let ck = &sigma * (m * m) + Array2::<f64>::eye(d) * s2;
        let inv = ck.inv().unwrap();
        let diff = &x - &(&mix.means().row(c) * m);
        let quad = diff.dot(&inv.dot(&diff));
        let det = ck.det().unwrap();
        logs.push(
            mix.weights()[c].ln()
                - 0.5 * quad
                - 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + det.ln()),
        );
        grads.push(-inv.dot(&diff));
        posts.push(&mix.means().row(c) + &(sigma.dot(&inv.dot(&diff)) * m));
    }
    let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = logs.iter().map(|l| (l - max).exp()).sum();
    let lp = max + z.ln();
    let mut g = Array1::zeros(d);
    let mut post = Array1::zeros(d);
    for c in 0..logs.len() {
        let r = (logs[c] - lp).exp();
        g += &(&grads[c] * r);
        post += &(&posts[c] * r);
    }
    (lp, g, post)
}

#[test]
fn log_prob_score_and_denoiser_match_dense_formulas() {
    for (name, mix) in mixtures() {
        for sde in sdes() {
            let score = MixtureScore::new(mix.clone(), sde.clone());
            let x = points(mix.dim());
            for t in [1e-5, 1e-3, 0.2, 1.0] {
                let k = sde.marginal(t);
                let lp = score.log_prob(t, x.view());
                let den = score.denoise(t, x.view());
                let eps = score.eps(t, x.view());
                let mut s = Array2::zeros(x.raw_dim());
                score.score(Time::Shared(t), x.view(), s.view_mut());
                for (i, row) in x.rows().into_iter().enumerate() {
                    let (l, g, post) = dense_reference(&mix, k, row);
                    assert!(
                        (lp[i] - l).abs() < 1e-9 * (1.0 + l.abs()),
                        "{name} log p at t={t}"
                    );
                    for j in 0..mix.dim() {
                        assert!(
                            (s[[i, j]] - g[j]).abs() < 1e-8 * (1.0 + g[j].abs()),
                            "{name} {} score t={t}",
                            sde.name()
                        );
                        assert!(
                            (den[[i, j]] - post[j]).abs() < 1e-7 * (1.0 + post[j].abs()),
                            "{name} {} Tweedie t={t}",
                            sde.name()
                        );
                        assert!(
                            (eps[[i, j]] - convert::eps_from_score(g[j], k)).abs()
                                < 1e-8 * (1.0 + g[j].abs())
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn per_row_times_match_shared_time() {
    let mix = common::full_cov_2d();
    let score = MixtureScore::new(mix, Arc::new(VpSde::default()));
    let x = points(2);
    let ts = vec![0.3; x.nrows()];
    let (mut a, mut b) = (Array2::zeros(x.raw_dim()), Array2::zeros(x.raw_dim()));
    score.score(Time::Shared(0.3), x.view(), a.view_mut());
    score.score(Time::PerRow(&ts), x.view(), b.view_mut());
    assert_eq!(a, b);
}

#[test]
fn far_points_and_tiny_times_stay_finite() {
    for (name, mix) in mixtures() {
        let score = MixtureScore::new(mix.clone(), Arc::new(VpSde::default()));
        let x = Array2::from_elem((3, mix.dim()), 1e3);
        let mut s = Array2::zeros(x.raw_dim());
        score.score(Time::Shared(1e-5), x.view(), s.view_mut());
        assert!(s.iter().all(|v| v.is_finite()), "{name}: {s:?}");
        assert!(score.log_prob(1e-5, x.view()).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn conversions_round_trip() {
    let k = Marginal {
        mean: 0.8,
        std: 0.6,
    };
    let (x, eps) = (0.7, -1.3);
    let s = convert::score_from_eps(eps, k);
    assert!((convert::eps_from_score(s, k) - eps).abs() < 1e-15);
    let x0 = convert::x0_from_score(s, x, k);
    assert!(
        (x - (k.mean * x0 + k.std * eps)).abs() < 1e-14,
        "x = m x0 + s eps"
    );
    assert!((convert::score_from_x0(x0, x, k) - s).abs() < 1e-14);
    let v = k.mean * eps - k.std * x0;
    assert!((convert::eps_from_v(v, x, k) - eps).abs() < 1e-14);
}

#[test]
fn invalid_mixtures_are_rejected_with_the_cause() {
    let e = scoresde::data::Covariance::full(array![[1.0, 2.0], [2.0, 1.0]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not positive definite"), "{e}");
    let e = scoresde::data::Covariance::full(array![[1.0, 0.5], [0.0, 1.0]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not symmetric"), "{e}");
    let e = GaussianMixture::isotropic(vec![1.0, -1.0], array![[0.0], [1.0]], &[1.0, 1.0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight"), "{e}");
}

/// A score carries its SDE: sampling, bounding or scoring it under another SDE is an error, not
/// a silently wrong answer (the VP score of p_t is not the VE one); under its own SDE (rebuilt
/// from the same parameters) it runs. `reverse` works on a concrete SDE type.
#[test]
fn a_score_used_under_another_sde_is_refused() {
    use scoresde::elbo::{continuous_bound, TimeSampling};
    use scoresde::sample::{sample, SampleSpec};
    let (_, mix) = mixtures().remove(0);
    let vp = VpSde::default();
    let score = MixtureScore::new(mix.clone(), Arc::new(vp));
    let spec = SampleSpec {
        steps: 20,
        n: 10,
        ..Default::default()
    };
    let ve = VeSde::new(0.01, 10.0).unwrap();
    let err = sample(&ve, &score, &spec, None).unwrap_err().to_string();
    assert!(err.contains("belongs to a vp SDE"), "{err}");
    let other_vp = VpSde::linear(0.1, 10.0);
    assert!(
        sample(&other_vp, &score, &spec, None).is_err(),
        "β_max 10 ≠ 20"
    );
    let x0 = mix.sample(5, 0, 0).0;
    assert!(continuous_bound(&ve, &score, x0.view(), 1e-5, 2, TimeSampling::Uniform, 0).is_err());
    assert!(sample(&VpSde::default(), &score, &spec, None).is_ok());
    // The reverse SDE and PF-ODE straight from a concrete SDE value.
    let _pf = vp.reverse(&score).probability_flow();
}

/// The batched isotropic score (8 particles a lane block, AVX-512 where the CPU has it) against
/// the one-row formula `Diffused::score`, on every CPU: dimensions below and above the SIMD
/// threshold, K not a multiple of the kernels' component group, a batch that ends in a partial
/// block. The two sum in different orders, so they agree to rounding, not bit for bit.
#[test]
fn batched_isotropic_score_matches_the_one_row_formula() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
    for &(d, k) in &[(1, 1), (2, 8), (5, 7), (64, 301)] {
        let means = Array2::from_shape_fn((k, d), |_| 4.0 * (rng.random::<f64>() - 0.5));
        let stds: Vec<f64> = (0..k).map(|_| 0.2 + rng.random::<f64>()).collect();
        let weights: Vec<f64> = (0..k).map(|_| 0.1 + rng.random::<f64>()).collect();
        let mix = GaussianMixture::isotropic(weights, means, &stds).unwrap();
        let at = mix.at(Marginal {
            mean: 0.7,
            std: 0.6,
        });
        let n = 13;
        let x: Vec<f64> = (0..n * d)
            .map(|_| 3.0 * (rng.random::<f64>() - 0.5))
            .collect();
        let mut batched = vec![0.0; n * d];
        let mut s = scoresde::score::Scratch::default();
        assert!(at.score_rows_isotropic(&x, &mut batched, &mut s));
        for (row, got) in x.chunks(d).zip(batched.chunks(d)) {
            let mut want = vec![0.0; d];
            at.score(Array1::from(row.to_vec()).view(), &mut s, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-11 * (1.0 + w.abs()),
                    "d={d} K={k}: batched {g} vs one-row {w}"
                );
            }
        }
    }
}
