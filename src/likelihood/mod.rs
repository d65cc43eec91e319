//! Exact likelihoods through the probability-flow ODE (Song et al. 2021, App. D.2): the
//! instantaneous change of variables `d log p_t(x(t))/dt = −∇·f̃(x, t)` with
//! `f̃ = a(t) x − ½ g(t)² s(x, t)`, so that
//! `log p_ε(x) = log π(x(T)) + ∫_ε^T ∇·f̃ dt`, `∇·f̃ = d a(t) − ½ g(t)² ∇·s`.
//!
//! The data point is placed at t = ε (default 1e-5) and the augmented state `(x, ∫∇·f̃)` is
//! integrated to T with adaptive Dormand–Prince (rtol = atol = 1e-5), step size per particle.
//! The divergence is exact for the exact mixture score (trace of the analytic Hessian), by
//! central differences for networks ([`Score::score_divergence`]), or Hutchinson's estimator
//! with one Rademacher vector per particle (kept in the state, so results do not depend on
//! chunking).

use crate::reverse::reverse_drift;
use crate::score::{Counted, Score};
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};
use rand::Rng;
use scoresde_solvers::{
    solve, KeyedNormal, Method, OdeSystem, Problem, SolveOptions, Steps, Time, Tolerances, DOPRI5,
};
use std::time::{Duration, Instant};

/// Noise domain of the Hutchinson probe vectors.
pub const HUTCHINSON_DOMAIN: u64 = crate::domain::Domain::Hutchinson.key();

/// How ∇·s is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Divergence {
    /// The model's own divergence: analytic for exact scores, central differences otherwise.
    Exact,
    /// Hutchinson: `vᵀ (s(x + h v) − s(x − h v)) / 2h`, v Rademacher, fixed per particle.
    Hutchinson,
}

/// Settings of a PF-ODE likelihood computation.
#[derive(Clone, Debug)]
pub struct NllSpec {
    pub rtol: f64,
    pub atol: f64,
    /// Where the data sit (default 1e-5, the Score-SDE likelihood default).
    pub eps: f64,
    pub divergence: Divergence,
    /// Seed of the Hutchinson vectors.
    pub seed: u64,
    /// Rows per chunk (0: default); results do not depend on it.
    pub chunk: usize,
}

impl Default for NllSpec {
    fn default() -> Self {
        Self {
            rtol: 1e-5,
            atol: 1e-5,
            eps: 1e-5,
            divergence: Divergence::Exact,
            seed: 0,
            chunk: 0,
        }
    }
}

/// Per-point negative log-likelihoods and their cost.
#[derive(Clone, Debug)]
pub struct NllRun {
    /// `−log p_ε(x_i)` in nats.
    pub nll: Array1<f64>,
    /// Evaluations of (score, divergence) per point.
    pub nfe: f64,
    /// The end points x(T) and `∫_ε^T ∇·f̃ dt` per point, so that any other prior can be
    /// used: `−log p_ε(x) = −log p_T(x(T)) − delta`.
    pub x_t: Array2<f64>,
    pub delta: Array1<f64>,
    pub wall: Duration,
}

impl NllRun {
    pub fn mean(&self) -> f64 {
        self.nll.mean().unwrap_or(f64::NAN)
    }
}

/// The augmented PF-ODE: state `[x (d), v (d, Hutchinson only), ∫∇·f̃ (1)]`.
struct Augmented<'a> {
    sde: &'a dyn Sde,
    score: &'a dyn Score,
    d: usize,
    hutchinson: bool,
}

impl Augmented<'_> {
    fn width(&self) -> usize {
        if self.hutchinson {
            2 * self.d + 1
        } else {
            self.d + 1
        }
    }
}

impl OdeSystem for Augmented<'_> {
    fn dim(&self) -> usize {
        self.width()
    }

    fn rhs(&self, t: Time<'_>, state: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        let (n, d) = (state.nrows(), self.d);
        let x = state.slice(s![.., ..d]);
        let mut sc = Array2::zeros((n, d));
        let mut div = vec![0.0; n];
        if self.hutchinson {
            const H: f64 = 1e-3;
            self.score.score(t, x, sc.view_mut());
            let v = state.slice(s![.., d..2 * d]);
            let (mut sp, mut sm) = (Array2::zeros((n, d)), Array2::zeros((n, d)));
            let xp = &x + &(&v * H);
            let xm = &x - &(&v * H);
            self.score.score(t, xp.view(), sp.view_mut());
            self.score.score(t, xm.view(), sm.view_mut());
            for (i, dv) in div.iter_mut().enumerate() {
                *dv = v.row(i).dot(&(&sp.row(i) - &sm.row(i))) / (2.0 * H);
            }
            out.slice_mut(s![.., d..2 * d]).fill(0.0);
        } else {
            self.score.score_divergence(t, x, sc.view_mut(), &mut div);
        }
        let last = out.ncols() - 1;
        for i in 0..n {
            let ti = t.at(i);
            let (a, g2) = (self.sde.drift_coeff(ti), self.sde.diffusion(ti).powi(2));
            for j in 0..d {
                out[[i, j]] = reverse_drift(a, 0.5 * g2, x[[i, j]], sc[[i, j]]);
            }
            // The divergence of the drift: d·a − ½ g² ∇·s.
            out[[i, last]] = reverse_drift(a, 0.5 * g2, d as f64, div[i]);
        }
    }
}

/// `−log p_ε(x_i)` for every row of `x` through the PF-ODE of `sde` driven by `score`.
pub fn pf_ode_nll(
    sde: &dyn Sde,
    score: &dyn Score,
    x: ArrayView2<f64>,
    spec: &NllSpec,
) -> Result<NllRun> {
    crate::score::check_sde(score, sde)?;
    let t_max = sde.t_max();
    if !(spec.eps > 0.0 && spec.eps < t_max) {
        return Err(invalid!(
            "`eps` must lie in (0, {t_max}), got {}",
            crate::error::num(spec.eps)
        ));
    }
    if x.ncols() != score.dim() {
        return Err(invalid!(
            "points have dimension {} but the score has {}",
            x.ncols(),
            score.dim()
        ));
    }
    let (n, d) = x.dim();
    let counted = Counted::new(score);
    let sys = Augmented {
        sde,
        score: &counted,
        d,
        hutchinson: spec.divergence == Divergence::Hutchinson,
    };
    let mut state = Array2::zeros((n, sys.width()));
    state.slice_mut(s![.., ..d]).assign(&x);
    if sys.hutchinson {
        let key = KeyedNormal::new(spec.seed, HUTCHINSON_DOMAIN);
        for i in 0..n {
            let mut rng = key.rng(i as u64, 0);
            for j in 0..d {
                state[[i, d + j]] = if rng.random::<bool>() { 1.0 } else { -1.0 };
            }
        }
    }
    let start = Instant::now();
    let opts = SolveOptions {
        // A whole-batch field is called once per stage.
        chunk_size: if score.whole_batch() { n } else { spec.chunk },
        ..Default::default()
    };
    // Rectified and trigonometric paths: m(t_max) = 0, where f and g² are infinite.
    let signal_free = sde.marginal(t_max).mean == 0.0;
    let t1 = if signal_free {
        t_max * (1.0 - crate::path::SIGNAL_FREE_MARGIN)
    } else {
        t_max
    };
    let steps = Steps::Adaptive {
        t0: spec.eps,
        t1,
        tol: Tolerances::new(spec.rtol, spec.atol),
    };
    let sol = crate::interrupt::check(
        solve(
            Problem::Ode(&sys),
            Method::Rk(&DOPRI5),
            &steps,
            state,
            &opts,
        )
        .map_err(Into::into),
    )?;
    let x_t = sol.x.slice(s![.., ..d]).to_owned();
    let prior = if signal_free {
        crate::path::isotropic_log_prob(x_t.view(), sde.marginal(t1).std)
    } else {
        sde.prior_log_prob(x_t.view())
    };
    let last = sys.width() - 1;
    let delta: Array1<f64> = sol.x.column(last).to_owned();
    let nll = -(&prior + &delta);
    Ok(NllRun {
        nll,
        x_t,
        delta,
        nfe: counted.rows() as f64 / n as f64,
        wall: start.elapsed(),
    })
}
