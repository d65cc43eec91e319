//! What every sampler runs over: the [`StepContext`]. Step-map samplers (PC, EDM, DPM-Solver,
//! DDIM, DDPM, Langevin) step the whole batch with score / ε / x₀ evaluations in parallel row
//! blocks, keyed noise, records, progress and the state check after every step; the reverse
//! SDE and PF-ODE samplers hand the whole integration to the solvers crate
//! ([`StepContext::solve`]), which runs independent row chunks.
//!
//! A step-map step sees the whole batch, so batch statistics (the Langevin corrector's averaged
//! norms) are those of all n particles. Results depend on neither the thread count nor the
//! block or chunk size: every row is computed independently and every reduction is summed in
//! row order.

use crate::reverse::ReverseSde;
use crate::score::{convert, par_eps, par_score, Score};
use crate::sde::{Marginal, Sde};
use crate::Result;
use ndarray::{Array2, ArrayView2, Axis, Zip};
use rayon::prelude::*;
use scoresde_solvers::{
    solve, KeyedNormal, Method as Step, Problem, SolveError, SolveOptions, Stats, Steps, Time,
};

/// What [`StepContext::solve`] integrates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dynamics {
    /// The reverse dynamics with this w(t) (w = g: the reverse SDE).
    ReverseSde {
        diffusion: crate::reverse::Diffusion,
    },
    /// The probability-flow ODE.
    ProbabilityFlow,
}

use crate::numerics::BLOCK;

/// An error naming the step, the time and the first particle whose state is not finite.
pub(crate) fn check_finite(step: u64, t: f64, x: &Array2<f64>) -> Result<()> {
    match x
        .rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        Some(row) => Err(SolveError::NonFinite { step, t, row }.into()),
        None => Ok(()),
    }
}

/// How far beyond the scale of the prior (and of the initial states) a state may go before
/// the run counts as diverged: no sampler of a stable configuration comes near it.
pub const DIVERGENCE_FACTOR: f64 = 1e10;

/// The divergence limit for a run that starts from `x` under `sde`:
/// [`DIVERGENCE_FACTOR`] × max(1, prior std at t_max, largest |x|).
pub(crate) fn divergence_limit(sde: &dyn Sde, x: &Array2<f64>) -> f64 {
    let prior = sde.marginal(sde.t_max()).std;
    let start = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    DIVERGENCE_FACTOR * 1f64.max(prior).max(start)
}

/// [`check_finite`], and that no value exceeds `limit` in magnitude (a diverging state may stay
/// finite for many steps: Langevin with too large a step reaches 1e160).
pub(crate) fn check_state(step: u64, t: f64, x: &Array2<f64>, limit: f64) -> Result<()> {
    // One branch-free pass (it vectorises; NaN fails `≤`, ±∞ fails it for a finite limit); the
    // slower scans below only name the culprit.
    if limit.is_finite() && x.iter().fold(true, |ok, v| ok & (v.abs() <= limit)) {
        return Ok(());
    }
    check_finite(step, t, x)?;
    if let Some((row, v)) = x
        .rows()
        .into_iter()
        .enumerate()
        .find_map(|(i, r)| r.iter().find(|v| v.abs() > limit).map(|&v| (i, v)))
    {
        return Err(crate::invalid!(
            "the sampler diverged: at step {step} (t = {t:.6}) particle {row} reached {v:.3e}, beyond {DIVERGENCE_FACTOR:e} × the prior's scale ({limit:.3e}); use more steps, a smaller step size or snr"
        ));
    }
    Ok(())
}

/// What a step-map sampler sees while it runs: the SDE, the model (counted), keyed noise,
/// record times, progress and the state check after every step. Built-in and user samplers
/// ([`super::Method`]) get the same context from [`super::sample_with`].
pub struct StepContext<'a> {
    /// The forward SDE the model belongs to.
    pub sde: &'a dyn Sde,
    score: &'a dyn Score,
    noise: KeyedNormal,
    /// Noise draws so far: each draw gets its own key (row, draw).
    draws: u64,
    /// Steps taken so far (for error messages).
    steps: u64,
    record: &'a [f64],
    pub(crate) records: Vec<(f64, Array2<f64>)>,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Steps the sampler will take in all, and particles reported so far.
    total_steps: u64,
    reported: u64,
    /// Divergence limit of the states ([`divergence_limit`]; ∞ unless set).
    pub(crate) limit: f64,
    /// Rows per chunk of [`StepContext::solve`] (0: the solvers' default).
    pub(crate) chunk: usize,
    /// The work counters of a [`StepContext::solve`] run (accepted and rejected steps).
    pub(crate) solver_stats: Option<Stats>,
}

impl<'a> StepContext<'a> {
    pub(crate) fn new(
        sde: &'a dyn Sde,
        score: &'a dyn Score,
        noise: KeyedNormal,
        record: &'a [f64],
        progress: Option<&'a (dyn Fn(u64) + Sync)>,
        total_steps: usize,
    ) -> Self {
        Self {
            sde,
            score,
            noise,
            draws: 0,
            steps: 0,
            record,
            records: Vec::new(),
            progress,
            total_steps: total_steps.max(1) as u64,
            reported: 0,
            limit: f64::INFINITY,
            chunk: 0,
            solver_stats: None,
        }
    }

    /// Integrates `x` from the first time of `steps` to its last with the solvers crate: the
    /// reverse SDE by Euler–Maruyama (noise keyed like [`StepContext::normal`]: draw k of a row
    /// is its step k) or the PF-ODE by a Runge–Kutta tableau, in independent row chunks. The
    /// record times not yet kept are kept on the way; the end state is checked.
    pub fn solve(
        &mut self,
        dynamics: Dynamics,
        method: Step,
        steps: &Steps,
        x: &mut Array2<f64>,
    ) -> Result<()> {
        let reverse = ReverseSde::new(self.sde, self.score);
        let (plug_in, pf) = match dynamics {
            Dynamics::ReverseSde { diffusion } => (reverse.with_diffusion(diffusion), None),
            Dynamics::ProbabilityFlow => (reverse, Some(reverse.probability_flow())),
        };
        let problem = match &pf {
            Some(pf) => Problem::Ode(pf),
            None => Problem::Sde(&plug_in, &self.noise),
        };
        let kept: Vec<f64> = self.records.iter().map(|r| r.0).collect();
        let opts = SolveOptions {
            chunk_size: self.chunk,
            record: self
                .record
                .iter()
                .copied()
                .filter(|r| !kept.contains(r))
                .collect(),
            progress: self.progress,
        };
        let start = std::mem::replace(x, Array2::zeros((0, 0)));
        let n = start.nrows() as u64;
        let sol = solve(problem, method, steps, start, &opts)?;
        let done = sol.stats.accepted / sol.stats.particles.max(1);
        self.steps += done;
        self.reported = n;
        self.records.extend(sol.records);
        self.solver_stats = Some(sol.stats);
        *x = sol.x;
        // The solvers catch non-finite states at every step; a finite divergence shows in the
        // end state.
        let t_end = match steps {
            Steps::Grid(g) => *g.times().last().expect("a grid has points"),
            Steps::Adaptive { t1, .. } => *t1,
        };
        check_state(done, t_end, x, self.limit)
    }

    /// `∇log p_t(x)` for every row.
    pub fn score(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        par_score(self.score, Time::Shared(t), x)
    }

    /// The ε-prediction `ε̂ = −s(t) ∇log p_t(x)`.
    pub fn eps(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        par_eps(self.score, self.sde, Time::Shared(t), x)
    }

    /// Tweedie's denoiser `x̂₀ = (x + s² ∇log p_t(x)) / m`; where m = 0, from the field's
    /// velocity ([`StepContext::x0_eps`]).
    pub fn x0(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        let k = self.sde.marginal(t);
        if k.mean == 0.0 {
            return self.x0_eps(t, x).0;
        }
        let mut s = self.score(t, x);
        Zip::from(&mut s)
            .and(&x)
            .for_each(|s, &x| *s = convert::x0_from_score(*s, x, k));
        s
    }

    /// `(x̂₀, ε̂)` from one evaluation of the field's velocity ([`Score::velocity`];
    /// [`convert::x0_from_velocity`], [`convert::eps_from_velocity`]): regular where m = 0. A
    /// field that gives only a score yields NaN there, which stops the run at this step.
    pub fn x0_eps(&self, t: f64, x: ArrayView2<f64>) -> (Array2<f64>, Array2<f64>) {
        let p = self.sde.point(t);
        let mut u = Array2::zeros(x.raw_dim());
        if !self.score.velocity(Time::Shared(t), x, u.view_mut()) {
            u.fill(f64::NAN);
        }
        let mut x0 = u.clone();
        Zip::from(&mut x0)
            .and(&x)
            .for_each(|v, &x| *v = convert::x0_from_velocity(*v, x, p));
        Zip::from(&mut u)
            .and(&x)
            .for_each(|v, &x| *v = convert::eps_from_velocity(*v, x, p));
        (x0, u)
    }

    /// The kernel at t.
    pub fn marginal(&self, t: f64) -> Marginal {
        self.sde.marginal(t)
    }

    /// A fresh `n × d` block of N(0, 1) draws, keyed by (seed, row, draw number).
    pub fn normal(&mut self, n: usize, d: usize) -> Array2<f64> {
        let draw = self.draws;
        self.draws += 1;
        let mut z = Array2::zeros((n, d));
        let key = self.noise;
        z.axis_chunks_iter_mut(Axis(0), BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(b, mut z)| {
                for (i, mut row) in z.rows_mut().into_iter().enumerate() {
                    key.fill_row(
                        (b * BLOCK + i) as u64,
                        draw,
                        row.as_slice_mut().expect("standard layout"),
                    );
                }
            });
        z
    }

    /// Ends a step that left the state at time `t`: checks that every value is finite, keeps
    /// the state if `t` is a record time, and reports progress.
    pub fn finish_step(&mut self, t: f64, x: &Array2<f64>) -> Result<()> {
        let step = self.steps;
        self.steps += 1;
        check_state(step, t, x, self.limit)?;
        self.visit(t, x);
        if let Some(p) = self.progress {
            let n = x.nrows() as u64;
            let done = (n * self.steps.min(self.total_steps)) / self.total_steps;
            p(done - self.reported);
            self.reported = done;
        }
        Ok(())
    }

    /// Steps finished so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Keeps the state if `t` is one of the record times.
    pub(crate) fn visit(&mut self, t: f64, x: &Array2<f64>) {
        let scale = t.abs().max(1e-300);
        for &r in self.record {
            if (r - t).abs() <= 1e-12 * scale && !self.records.iter().any(|(s, _)| *s == r) {
                self.records.push((r, x.clone()));
            }
        }
    }

    /// Checks that every record time was visited.
    pub(crate) fn check_records(&self) -> Result<()> {
        for &r in self.record {
            if !self.records.iter().any(|(s, _)| *s == r) {
                return Err(SolveError::Invalid(format!(
                    "record time {r} is not a point of the sampler's time grid"
                ))
                .into());
            }
        }
        Ok(())
    }
}
