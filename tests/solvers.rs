//! The generic solvers: accuracy on closed-form problems, convergence orders of the PF-ODE
//! with the exact score, honest evaluation counts, recording, reproducibility, NaN detection.

mod common;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};
use scoresde::sample::convergence::EndpointOracle;
use scoresde::sample::{integrate, sample, SampleSpec, Sampler};
use scoresde::score::{Counted, MixtureScore, Score};
use scoresde::sde::{Sde, VpSde};
use scoresde::solvers::{
    solve, KeyedNormal, Method, OdeSystem, Problem, SdeSystem, Solution, SolveError, SolveOptions,
    Steps, Tableau, Time, TimeGrid, Tolerances, DOPRI5, EULER, HEUN, RK4,
};
use std::sync::Arc;

/// dx/dt = λ(t) x with λ(t) = −1 − t: x(t) = x0 exp(−t − t²/2).
struct Linear;
impl OdeSystem for Linear {
    fn dim(&self) -> usize {
        2
    }
    fn rhs(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        for (i, (mut o, x)) in out.rows_mut().into_iter().zip(x.rows()).enumerate() {
            let l = -1.0 - t.at(i);
            Zip::from(&mut o).and(&x).for_each(|o, &x| *o = l * x);
        }
    }
}

/// Fixed-grid RK integration through the one entry point.
fn ode_fixed(
    sys: &dyn OdeSystem,
    tab: &'static Tableau,
    x0: Array2<f64>,
    grid: &TimeGrid,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError> {
    solve(
        Problem::Ode(sys),
        Method::Rk(tab),
        &Steps::Grid(grid.clone()),
        x0,
        opts,
    )
}

/// Adaptive Dormand–Prince through the one entry point.
fn dopri5(
    sys: &dyn OdeSystem,
    x0: Array2<f64>,
    t0: f64,
    t1: f64,
    tol: Tolerances,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError> {
    solve(
        Problem::Ode(sys),
        Method::Rk(&DOPRI5),
        &Steps::Adaptive { t0, t1, tol },
        x0,
        opts,
    )
}

fn exact_linear(x0: f64, t0: f64, t1: f64) -> f64 {
    let f = |t: f64| -t - 0.5 * t * t;
    x0 * (f(t1) - f(t0)).exp()
}

#[test]
fn fixed_methods_have_their_orders_forward_and_backward() {
    let x0 = Array2::from_shape_fn((3, 2), |(i, j)| 1.0 + i as f64 - 0.5 * j as f64);
    for (t0, t1) in [(0.0, 1.0), (1.0, 0.0)] {
        for (method, order) in [(&EULER, 1.0), (&HEUN, 2.0), (&RK4, 4.0), (&RALSTON, 2.0)] {
            let err = |n: usize| {
                let sol = ode_fixed(
                    &Linear,
                    method,
                    x0.clone(),
                    &TimeGrid::uniform(t0, t1, n).unwrap(),
                    &SolveOptions::default(),
                )
                .unwrap();
                assert_eq!(sol.stats.evals, 3 * n as u64 * method.stages() as u64);
                sol.x
                    .iter()
                    .zip(x0.iter())
                    .map(|(&x, &a)| (x - exact_linear(a, t0, t1)).abs())
                    .fold(0.0, f64::max)
            };
            let slope = (err(64).ln() - err(32).ln()) / 2f64.ln();
            assert!(
                (slope + order).abs() < 0.15,
                "{} {t0}->{t1}: slope {slope}",
                method.name
            );
        }
    }
}

#[test]
fn dopri5_meets_tolerance_and_records_exact_times() {
    let x0 = Array2::from_shape_fn((4, 2), |(i, j)| 0.5 + i as f64 + j as f64);
    for (t0, t1, rec) in [
        (0.0, 2.0, vec![0.0, 0.5, 1.25, 2.0]),
        (2.0, 0.0, vec![1.5, 0.3]),
    ] {
        for tol in [1e-4, 1e-7, 1e-10] {
            let opts = SolveOptions {
                record: rec.clone(),
                ..Default::default()
            };
            let sol = dopri5(
                &Linear,
                x0.clone(),
                t0,
                t1,
                Tolerances::new(tol, tol),
                &opts,
            )
            .unwrap();
            let err = sol
                .x
                .iter()
                .zip(x0.iter())
                .map(|(&x, &a)| ((x - exact_linear(a, t0, t1)) / exact_linear(a, t0, t1)).abs())
                .fold(0.0, f64::max);
            assert!(err < 50.0 * tol, "tol {tol}: err {err}");
            for (t, snap) in &sol.records {
                for (&x, &a) in snap.iter().zip(x0.iter()) {
                    let want = exact_linear(a, t0, *t);
                    assert!(((x - want) / want).abs() < 50.0 * tol);
                }
            }
            // Every evaluation is counted: 2 to pick the first step + 6 per attempted step.
            assert_eq!(
                sol.stats.evals,
                2 * 4 + 6 * (sol.stats.accepted + sol.stats.rejected)
            );
        }
    }
}

/// Ralston's second-order method, written here as a user would: a new explicit method is a
/// tableau (Ralston 1962: c = (0, ⅔), a₂₁ = ⅔, b = (¼, ¾)).
const RALSTON: Tableau = Tableau {
    name: "ralston",
    order: 2,
    c: &[0.0, 2.0 / 3.0],
    a: &[&[], &[2.0 / 3.0]],
    b: &[1.0, 3.0],
    b_den: 4.0,
    err: None,
    fsal: false,
};

#[test]
fn combinations_that_do_not_exist_are_errors() {
    let x0 = Array2::ones((2, 1));
    let grid = Steps::Grid(TimeGrid::uniform(0.0, 1.0, 4).unwrap());
    let adaptive = Steps::Adaptive {
        t0: 0.0,
        t1: 1.0,
        tol: Tolerances::new(1e-6, 1e-6),
    };
    let noise = KeyedNormal::new(0, 0);
    let opts = SolveOptions::default();
    let cases: [(Problem, Method, &Steps, &str); 4] = [
        (
            Problem::Ode(&Linear),
            Method::EulerMaruyama,
            &grid,
            "not an ODE",
        ),
        (
            Problem::Sde(&Explodes, &noise),
            Method::Rk(&RK4),
            &grid,
            "ODE method",
        ),
        (
            Problem::Sde(&Explodes, &noise),
            Method::EulerMaruyama,
            &adaptive,
            "fixed grid",
        ),
        (
            Problem::Ode(&Linear),
            Method::Rk(&RK4),
            &adaptive,
            "embedded error",
        ),
    ];
    for (problem, method, steps, want) in cases {
        let x = Array2::ones((2, problem_dim(&problem)));
        let e = solve(problem, method, steps, x, &opts).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    // The working combinations on the same values.
    assert!(solve(
        Problem::Ode(&Linear),
        Method::Rk(&DOPRI5),
        &adaptive,
        Array2::ones((2, 2)),
        &opts
    )
    .is_ok());
    assert!(solve(
        Problem::Sde(&Explodes, &noise),
        Method::EulerMaruyama,
        &grid,
        x0,
        &opts
    )
    .is_ok());
}

fn problem_dim(p: &Problem) -> usize {
    match p {
        Problem::Ode(s) => s.dim(),
        Problem::Sde(s, _) => s.dim(),
    }
}

#[test]
fn invalid_grids_and_tolerances_are_errors() {
    assert!(TimeGrid::uniform(1.0, 0.0, 0).is_err());
    assert!(TimeGrid::new(vec![0.0, 0.5, 0.5]).is_err());
    assert!(TimeGrid::new(vec![0.0, f64::NAN]).is_err());
    let x0 = Array2::ones((1, 2));
    assert!(dopri5(
        &Linear,
        x0.clone(),
        0.0,
        1.0,
        Tolerances::new(0.0, 1e-6),
        &SolveOptions::default()
    )
    .is_err());
    let opts = SolveOptions {
        record: vec![0.123],
        ..Default::default()
    };
    assert!(ode_fixed(
        &Linear,
        &EULER,
        x0,
        &TimeGrid::uniform(0.0, 1.0, 10).unwrap(),
        &opts
    )
    .is_err());
}

/// dx = x² dt + dw blows up in finite time.
struct Explodes;
impl SdeSystem for Explodes {
    fn dim(&self) -> usize {
        1
    }
    fn drift(&self, _: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        Zip::from(&mut out).and(&x).for_each(|o, &x| *o = x * x * x);
    }
    fn diffusion(&self, _: f64) -> f64 {
        0.1
    }
}

#[test]
fn non_finite_states_stop_with_step_and_time() {
    let x0 = Array2::from_elem((4, 1), 3.0);
    let grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
    let err = solve(
        Problem::Sde(&Explodes, &KeyedNormal::new(0, 0)),
        Method::EulerMaruyama,
        &Steps::Grid(grid),
        x0,
        &SolveOptions::default(),
    )
    .unwrap_err();
    match &err {
        SolveError::NonFinite { step, t, .. } => assert!(*step < 50 && *t > 0.0),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("non-finite at step"));
}

fn setup(name: &str) -> (Arc<dyn Sde>, MixtureScore) {
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    (sde.clone(), MixtureScore::new(common::builtin(name), sde))
}

/// Mean endpoint error of a PF-ODE sampler against an RK45 (tol 1e-10) solution from the
/// same x_T; returns the fitted log–log slope of error against steps.
fn pf_slope(sampler: Sampler, data: &str) -> f64 {
    let (sde, score) = setup(data);
    let oracle = EndpointOracle::new(sde.as_ref(), &score, sde.prior_sample(200, 2, 7)).unwrap();
    let steps = [64usize, 128, 256, 512];
    let errs: Vec<f64> = steps
        .iter()
        .map(|&steps| {
            let spec = SampleSpec {
                sampler: sampler.clone(),
                steps,
                ..Default::default()
            };
            let run = integrate(sde.as_ref(), &score, oracle.x_t.clone(), &spec, None).unwrap();
            oracle.error(&run.x)
        })
        .collect();
    let nfe: Vec<f64> = steps.iter().map(|&n| n as f64).collect();
    let slope = scoresde::numerics::loglog_slope(&nfe, &errs);
    eprintln!("{sampler:?} on {data}: errors {errs:?}, slope {slope:.3}");
    slope
}

#[test]
fn pf_ode_convergence_orders_with_exact_score() {
    let euler = pf_slope(common::sampler("pf-euler"), "8gaussians");
    assert!((euler + 1.0).abs() <= 0.3, "Euler slope {euler}");
    let heun = pf_slope(common::sampler("pf-heun"), "8gaussians");
    assert!((heun + 2.0).abs() <= 0.3, "Heun slope {heun}");
}

#[test]
fn nfe_is_counted_and_matches_the_formula() {
    let (sde, score) = setup("ncsn");
    for sampler in [
        common::sampler("em"),
        common::sampler("pf-euler"),
        common::sampler("pf-heun"),
        common::sampler("pf-rk4"),
    ] {
        let spec = SampleSpec {
            sampler: sampler.clone(),
            steps: 37,
            n: 50,
            chunk: 16,
            ..Default::default()
        };
        let run = sample(sde.as_ref(), &score, &spec, None).unwrap();
        assert_eq!(
            run.nfe,
            sampler.nfe(37, None).unwrap().unwrap() as f64,
            "{sampler:?}"
        );
        assert_eq!(
            run.stats.evals,
            50 * sampler.nfe(37, None).unwrap().unwrap()
        );
    }
    let spec = SampleSpec {
        sampler: common::sampler("pf-rk45"),
        n: 50,
        ..Default::default()
    };
    let run = sample(sde.as_ref(), &score, &spec, None).unwrap();
    assert_eq!(
        run.nfe * 50.0,
        run.stats.evals as f64,
        "adaptive NFE is the counted evaluations"
    );
    // The counting wrapper counts rows, once per call.
    let counted = Counted::new(&score);
    let x = Array2::zeros((5, 2));
    let mut out = Array2::zeros((5, 2));
    counted.score(Time::Shared(0.5), x.view(), out.view_mut());
    assert_eq!((counted.rows(), counted.calls()), (5, 1));
}

#[test]
fn time_grid_starts_at_t_max_and_lands_on_eps() {
    let (sde, score) = setup("8gaussians");
    let spec = SampleSpec {
        sampler: common::sampler("em"),
        steps: 10,
        n: 3,
        eps: Some(1e-3),
        record: vec![1.0, 1e-3],
        ..Default::default()
    };
    let run = sample(sde.as_ref(), &score, &spec, None).unwrap();
    assert_eq!(
        run.records[0].1,
        sde.prior_sample(3, 2, 0),
        "record at t = T is the prior draw"
    );
    assert_eq!(run.records[1].1, run.x, "record at ε is the output");
    let g = TimeGrid::uniform(1.0, 1e-3, 10).unwrap();
    assert_eq!((g.times()[0], g.times()[10], g.n_steps()), (1.0, 1e-3, 10));
}

#[test]
fn output_is_identical_for_any_chunk_size_and_thread_count() {
    let (sde, score) = setup("8gaussians");
    let mix3 = MixtureScore::new(common::mixture_3d(), sde.clone());
    for (score, d) in [(&score, 2usize), (&mix3, 3)] {
        for sampler in [common::sampler("em"), common::sampler("pf-rk45")] {
            let run = |chunk: usize, threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let spec = SampleSpec {
                    sampler: sampler.clone(),
                    steps: 50,
                    n: 301,
                    chunk,
                    seed: 11,
                    ..Default::default()
                };
                pool.install(|| sample(sde.as_ref(), score, &spec, None).unwrap().x)
            };
            let base = run(0, 1);
            assert_eq!(base.ncols(), d);
            for (chunk, threads) in [(1, 2), (7, 2), (64, 1), (1000, 2)] {
                let x = run(chunk, threads);
                assert!(
                    x.iter()
                        .zip(base.iter())
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{sampler:?} chunk {chunk} threads {threads}"
                );
            }
        }
    }
}
