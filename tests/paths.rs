//! The path algebra against exact references: rates against finite differences of the kernel,
//! the oracle's velocity against the continuity equation, the w(t) family's marginals against
//! the exact CDF (with two deliberately wrong variants rejected), post-hoc path change against
//! the target path's own oracle, and the PF-ODE likelihood on every path against the closed form.

use ndarray::{array, Array2, ArrayView2, ArrayViewMut2};
use scoresde::data::Dataset;
use scoresde::path::{check_path, EdmPath, Marginal, Path, Rates, RectifiedPath, TrigPath};
use scoresde::reverse::{Diffusion, DiffusionKind, ReverseSde, WrongReverse};
use scoresde::sample::{config::Em, sample, SampleSpec, Sampler};
use scoresde::score::{MixtureScore, PathChange, Score};
use scoresde::sde::{BetaSchedule, SubVpSde, VeSde, VpSde};
use scoresde::solvers::{
    solve, KeyedNormal, Method, Problem, SdeSystem, SolveOptions, Steps, Time, TimeGrid,
};
use scoresde::stats::ks::ks_test;
use std::sync::Arc;

fn paths() -> Vec<Arc<dyn Path>> {
    vec![
        Arc::new(VpSde::default()),
        Arc::new(VpSde {
            schedule: BetaSchedule::cosine(),
        }),
        Arc::new(SubVpSde::default()),
        Arc::new(VeSde::new(0.02, 30.0).unwrap()),
        Arc::new(EdmPath { sigma_max: 40.0 }),
        Arc::new(RectifiedPath::default()),
        Arc::new(RectifiedPath::new(0.07).unwrap()),
        Arc::new(TrigPath),
    ]
}

fn interior(p: &dyn Path) -> Vec<f64> {
    [0.013, 0.1, 0.37, 0.5, 0.81, 0.97]
        .iter()
        .map(|f| f * p.t_max())
        .collect()
}

/// ṁ, ṡ against central differences of m, s (relative 1e-6); the generic g² of every path
/// against its closed form where it has one; λ⁻¹(λ(t)) = t.
#[test]
fn rates_are_the_derivatives_of_the_kernel() {
    for p in paths() {
        check_path(p.as_ref()).unwrap();
        for t in interior(p.as_ref()) {
            let h = 1e-6 * p.t_max();
            let (kp, km) = (p.marginal(t + h), p.marginal(t - h));
            let r = p.rates(t);
            let fd = Rates {
                dmean: (kp.mean - km.mean) / (2.0 * h),
                dstd: (kp.std - km.std) / (2.0 * h),
            };
            for (a, b, what) in [(r.dmean, fd.dmean, "ṁ"), (r.dstd, fd.dstd, "ṡ")] {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{} {what} at {t}: {a} vs {b}",
                    p.name()
                );
            }
            // g² from the rates (the trait's formula) against the closed-form diffusion.
            let k = p.marginal(t);
            let generic = 2.0 * (k.std * r.dstd - k.std * k.std * r.dmean / k.mean);
            let closed = p.diffusion(t).powi(2);
            assert!(
                (generic - closed).abs() <= 1e-9 * closed,
                "{} g² at {t}: {generic} vs {closed}",
                p.name()
            );
            let back = p.t_of_log_snr(p.log_snr(t));
            assert!(
                (back - t).abs() <= 1e-7 * p.t_max(),
                "{} λ⁻¹ at {t}: {back}",
                p.name()
            );
        }
    }
    // Closed forms of the new paths (Lipman et al. 2023; Albergo & Vanden-Eijnden 2023).
    let r = RectifiedPath::default();
    assert!((r.g2(0.3) - 2.0 * 0.3 / 0.7).abs() < 1e-12);
    assert!(
        (TrigPath.g2(0.3) - std::f64::consts::PI * (0.15 * std::f64::consts::PI).tan()).abs()
            < 1e-12
    );
    assert_eq!(TrigPath.marginal(1.0).mean, 0.0);
}

/// A user's path is one impl; one whose s/m falls is refused with a one-line error.
#[test]
fn a_path_with_negative_g2_is_refused() {
    #[derive(Debug)]
    struct Shrinking;
    impl Path for Shrinking {
        fn name(&self) -> &'static str {
            "shrinking"
        }
        fn marginal(&self, t: f64) -> Marginal {
            Marginal {
                mean: 1.0,
                std: 1.0 - 0.5 * t,
            }
        }
        fn rates(&self, _: f64) -> Rates {
            Rates {
                dmean: 0.0,
                dstd: -0.5,
            }
        }
        fn prior_std(&self) -> f64 {
            0.5
        }
        fn default_eps(&self) -> f64 {
            1e-3
        }
    }
    let e = check_path(&Shrinking).unwrap_err().to_string();
    assert!(
        e.contains("g²") && e.contains("shrinking") && !e.contains('\n'),
        "{e}"
    );
    for bad in [1.0, -0.1, f64::NAN] {
        assert!(RectifiedPath::new(bad).is_err());
    }
}

fn full_cov_mixture() -> Arc<scoresde::data::GaussianMixture> {
    use scoresde::data::{Covariance, GaussianMixture};
    Arc::new(
        GaussianMixture::new(
            vec![0.3, 0.7],
            array![[1.5, -0.5], [-1.0, 0.8]],
            vec![
                Covariance::full(array![[0.3, 0.12], [0.12, 0.2]]).unwrap(),
                Covariance::isotropic(0.4).unwrap(),
            ],
        )
        .unwrap(),
    )
}

/// The oracle's velocity obeys the continuity equation ∂_t log p_t = −∇·u − u·∇log p_t
/// (finite differences in t and x, relative 1e-5), and its regular denoiser equals Tweedie's
/// (x + s²∇log p)/m, an independent formula, where m > 0.
#[test]
fn oracle_velocity_obeys_the_continuity_equation() {
    let mix = full_cov_mixture();
    for p in paths() {
        let f = MixtureScore::new(mix.clone(), p.clone());
        let x = array![[0.4, -0.2], [1.7, 0.9], [-2.0, 1.1]];
        for t in interior(p.as_ref()) {
            let (ht, hx) = (1e-5 * p.t_max(), 1e-5 * (1.0 + p.marginal(t).std));
            let dlogp =
                (&f.log_prob(t + ht, x.view()) - &f.log_prob(t - ht, x.view())) / (2.0 * ht);
            let u = f.velocity_at(t, x.view());
            let mut sc = Array2::zeros(x.raw_dim());
            f.score(Time::Shared(t), x.view(), sc.view_mut());
            for i in 0..x.nrows() {
                let mut div = 0.0;
                for j in 0..2 {
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    xp[[i, j]] += hx;
                    xm[[i, j]] -= hx;
                    let (up, um) = (f.velocity_at(t, xp.view()), f.velocity_at(t, xm.view()));
                    div += (up[[i, j]] - um[[i, j]]) / (2.0 * hx);
                }
                let rhs = -div - u.row(i).dot(&sc.row(i));
                assert!(
                    (dlogp[i] - rhs).abs() <= 1e-5 * (1.0 + rhs.abs()),
                    "{} t = {t} row {i}: ∂t log p = {} but −∇·u − u·s = {rhs}",
                    p.name(),
                    dlogp[i]
                );
            }
            let k = p.marginal(t);
            let x0 = f.denoise(t, x.view());
            for ((a, &xv), &s) in x0.iter().zip(x.iter()).zip(sc.iter()) {
                let tweedie = (xv + k.std * k.std * s) / k.mean;
                assert!(
                    (a - tweedie).abs() <= 1e-9 * (1.0 + tweedie.abs()),
                    "{}: {a} vs {tweedie}",
                    p.name()
                );
            }
        }
    }
}

/// The exact CDF of coordinate 0 of p_t.
fn cdf_at(mix: &scoresde::data::GaussianMixture, k: Marginal) -> impl Fn(f64) -> f64 {
    let comps = mix.diffused_mixture(k).unwrap().marginal_1d(0);
    move |x| {
        comps
            .iter()
            .map(|&(w, m, s)| w * 0.5 * libm_erfc(-(x - m) / (s * std::f64::consts::SQRT_2)))
            .sum()
    }
}

fn libm_erfc(x: f64) -> f64 {
    statrs::function::erf::erfc(x)
}

const N: usize = 4000;
const STEPS: usize = 2000;
/// α of each KS test; the family below has at most 40 tests, so the family-wise level of the
/// acceptance checks is ≤ 0.04 (Bonferroni).
const ALPHA: f64 = 1e-3;

/// Runs `sys` from the prior at t_max down to 1e-3 on a uniform grid and returns the states at
/// t = ½ t_max and at the end.
fn run(sys: &dyn SdeSystem, path: &dyn Path, seed: u64) -> Vec<(f64, Array2<f64>)> {
    let grid: Vec<f64> = (0..=STEPS)
        .map(|i| path.t_max() + (1e-3 - path.t_max()) * i as f64 / STEPS as f64)
        .collect();
    let mid = grid[STEPS / 2];
    let x = path.prior_sample(N, 1, seed);
    let sol = solve(
        Problem::Sde(sys, &KeyedNormal::new(seed, 77)),
        Method::EulerMaruyama,
        &Steps::Grid(TimeGrid::new(grid.clone()).unwrap()),
        x,
        &SolveOptions {
            record: vec![mid],
            ..Default::default()
        },
    )
    .unwrap();
    let mut out = sol.records;
    out.push((1e-3, sol.x));
    out
}

fn min_p(
    mix: &scoresde::data::GaussianMixture,
    path: &dyn Path,
    states: &[(f64, Array2<f64>)],
) -> f64 {
    states
        .iter()
        .map(|(t, x)| {
            ks_test(
                x.column(0)
                    .as_slice_memory_order()
                    .unwrap_or(&x.column(0).to_vec()),
                cdf_at(mix, path.marginal(*t)),
            )
            .1
        })
        .fold(1.0, f64::min)
}

/// Every w(t) leaves the marginals at p_t (1-D, KS against the exact CDF at t_max/2 and at the
/// cut-off; α = 1e-3 per test, n = 4000, 2000 Euler–Maruyama steps, seeds 1…): zero, g (where
/// finite), 2g, constant, sigma, linear, decreasing on VP, rectified and trig. Power: noise
/// without the score correction (zea PR #551) and a doubled correction (REPA #52's 2t for t)
/// are rejected on every path.
#[test]
fn every_diffusion_keeps_the_marginals() {
    let data = Dataset::from_spec("bimodal-1d").unwrap();
    let mix = data.mixture().unwrap().clone();
    let kinds = [
        (DiffusionKind::Zero, 1.0),
        (DiffusionKind::G, 1.0),
        (DiffusionKind::G, 2.0),
        (DiffusionKind::Constant, 1.0),
        (DiffusionKind::Sigma, 1.0),
        (DiffusionKind::Linear, 1.0),
        (DiffusionKind::Decreasing, 1.0),
    ];
    let paths: Vec<Arc<dyn Path>> = vec![
        Arc::new(VpSde::default()),
        Arc::new(RectifiedPath::default()),
        Arc::new(TrigPath),
    ];
    let mut seed = 1;
    for path in &paths {
        let f = MixtureScore::new(mix.clone(), path.clone());
        for &(kind, scale) in &kinds {
            let w = Diffusion::Kind { kind, scale };
            if w.check(path.as_ref(), path.t_max(), 1e-3).is_err() {
                assert!(w.needs_g() && path.name() != "vp");
                continue;
            }
            let sys = ReverseSde::new(path.as_ref(), &f).with_diffusion(w);
            let p = min_p(&mix, path.as_ref(), &run(&sys, path.as_ref(), seed));
            seed += 1;
            assert!(
                p > ALPHA,
                "{} {kind:?}×{scale}: rejected, min p = {p:.2e}",
                path.name()
            );
        }
        // The wrong variants, with w² = 2s (finite on every path).
        let w = Diffusion::Kind {
            kind: DiffusionKind::Sigma,
            scale: 1.0,
        };
        let right = ReverseSde::new(path.as_ref(), &f).with_diffusion(w);
        let controls: [(&dyn SdeSystem, &str); 2] = [
            (&WrongReverse(right), "noise without correction"),
            (&Doubled(right), "a doubled coefficient"),
        ];
        for (sys, what) in controls {
            let p = min_p(&mix, path.as_ref(), &run(sys, path.as_ref(), seed));
            assert!(
                p < 1e-6,
                "{}: {what} not rejected (p = {p:.2e})",
                path.name()
            );
        }
    }
}

/// The drift corrects for w² but the noise is √2·w (w² doubled: REPA #52's 2t for t).
struct Doubled<'a>(ReverseSde<'a>);
impl SdeSystem for Doubled<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn drift(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        self.0.drift(t, x, out)
    }
    fn diffusion(&self, t: f64) -> f64 {
        std::f64::consts::SQRT_2 * self.0.diffusion(t)
    }
}

/// The exact field of path A moved to path B equals B's exact field (score and velocity, to
/// rounding: relative 1e-9) wherever λ_B lies in A's range.
#[test]
fn path_change_of_the_exact_field_is_exact() {
    let mix = full_cov_mixture();
    let x = array![[0.4, -0.2], [1.7, 0.9], [-2.0, 1.1]];
    for a in paths() {
        for b in paths() {
            let moved = PathChange {
                field: Box::new(MixtureScore::new(mix.clone(), a.clone())),
                from: a.clone(),
                to: b.clone(),
            };
            let own = MixtureScore::new(mix.clone(), b.clone());
            for t in interior(b.as_ref()) {
                let l = b.log_snr(t);
                let ta = a.t_of_log_snr(l);
                if (a.log_snr(ta) - l).abs() >= 1e-9 * (1.0 + l.abs()) || l.is_nan() {
                    continue; // outside A's range
                }
                let (mut s1, mut s2) = (Array2::zeros((3, 2)), Array2::zeros((3, 2)));
                moved.score(Time::Shared(t), x.view(), s1.view_mut());
                own.score(Time::Shared(t), x.view(), s2.view_mut());
                let (mut u1, mut u2) = (Array2::zeros((3, 2)), Array2::zeros((3, 2)));
                assert!(moved.velocity(Time::Shared(t), x.view(), u1.view_mut()));
                own.velocity(Time::Shared(t), x.view(), u2.view_mut());
                for (v, w) in s1.iter().zip(&s2).chain(u1.iter().zip(&u2)) {
                    assert!(
                        (v - w).abs() <= 1e-7 * (1.0 + w.abs()),
                        "{} → {} at t = {t}: {v} vs {w}",
                        a.name(),
                        b.name()
                    );
                }
            }
        }
    }
}

/// With the exact field the PF-ODE NLL does not depend on the path: rectified (two σ_min)
/// and trigonometric paths (and VP with β_max = 40) give the closed-form −log p₀(x) within 2e-3 nats per point.
#[test]
fn pf_ode_nll_is_path_independent() {
    let mix = full_cov_mixture();
    let (x, _) = mix.sample(40, 5, 9);
    let exact = MixtureScore::new(mix.clone(), Arc::new(VpSde::default())).log_prob(0.0, x.view());
    // −log p_ε differs from −log p₀ by O(s(ε)²/σ²_min) ≤ 1e-4 here.
    // VP, sub-VP, VE and EDM are inexact at their prior end (m(1) = e^{-5} for VP's β_max = 20;
    // N(μ, Σ + σ²) against N(0, σ²) for VE and EDM: the NLL is off by up to 2e-2); VP with
    // β_max = 40 (m(1) = 5e-5) stands for them.
    let mut ps = paths();
    ps.retain(|p| !matches!(p.name(), "vp" | "subvp" | "ve" | "edm"));
    ps.push(Arc::new(VpSde::linear(0.1, 40.0)));
    for p in ps {
        let f = MixtureScore::new(mix.clone(), p.clone());
        let spec = scoresde::likelihood::NllSpec {
            eps: 1e-5 * p.t_max(),
            ..Default::default()
        };
        let run = scoresde::likelihood::pf_ode_nll(p.as_ref(), &f, x.view(), &spec).unwrap();
        // Against the path's own p_ε (σ_min > 0 smooths p₀), and for σ_min = 0 against p₀.
        let own = f.log_prob(spec.eps, x.view());
        let reference = if p.marginal(0.0).std > 0.0 {
            &own
        } else {
            &exact
        };
        for (a, b) in run.nll.iter().zip(reference) {
            assert!(
                (a + b).abs() < 2e-3,
                "{}: NLL {a} vs closed form {}",
                p.name(),
                -b
            );
        }
    }
}

/// Samplers on the rectified path with the exact field: the em default refuses (g singular),
/// w² = 2s works; DDIM and DPM-Solver++(2M) start at m = 0 from the field's velocity.
#[test]
fn samplers_start_where_m_is_zero() {
    let data = Dataset::from_spec("bimodal-1d").unwrap();
    let mix = data.mixture().unwrap().clone();
    let path: Arc<dyn Path> = Arc::new(RectifiedPath::default());
    let f = MixtureScore::new(mix.clone(), path.clone());
    let spec = |sampler| SampleSpec {
        sampler,
        steps: 200,
        n: N,
        seed: 3,
        ..Default::default()
    };
    let e = sample(path.as_ref(), &f, &spec(Sampler::default()), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("singular") && e.contains("rectified"), "{e}");
    let cdf = cdf_at(
        &mix,
        Marginal {
            mean: 1.0,
            std: 1e-3,
        },
    );
    for s in [
        Sampler::em_for(path.as_ref()),
        Sampler::Em(Em {
            diffusion: Some(DiffusionKind::Linear),
            ..Default::default()
        }),
        "ddim".parse().unwrap(),
        "dpm-solver-pp2m".parse().unwrap(),
        "pf-heun".parse().unwrap(),
    ] {
        let run = sample(path.as_ref(), &f, &spec(s.clone()), None).unwrap();
        let p = ks_test(&run.x.column(0).to_vec(), &cdf).1;
        assert!(p > ALPHA, "{}: p = {p:.2e}", s.label());
    }
    let e = sample(
        path.as_ref(),
        &f,
        &spec("dpm-solver-2".parse().unwrap()),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dpm-solver-2") && e.contains("rectified"), "{e}");
}
