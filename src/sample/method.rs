//! Samplers as values: the [`Method`] trait, what a sampler written outside the crate
//! implements to run through the same entry point as the built-in ones — prior draws keyed by
//! the seed, the model counted (NFE), noise keyed by (seed, particle, draw), record times,
//! progress, the non-finite and divergence checks after every step and the final Tweedie step.

use super::engine::StepContext;
use super::{drive, Finished, RunSpec, SampleRun, SOLVER_DOMAIN};
use crate::score::{Counted, Score};
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{KeyedNormal, Stats};

/// A step-map sampler: its time grid, its NFE formula and its steps over a [`StepContext`].
pub trait Method: Sync {
    /// Name in messages.
    fn name(&self) -> String;
    /// The times it visits for N = `steps`: first `sde.t_max()`, last ε, decreasing
    /// (`sample::grid::time_grid` builds the usual spacings).
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>>;
    /// Model evaluations per particle for N = `steps`, the final Tweedie step excluded;
    /// checked against the count after every run. None: adaptive (counted, not declared).
    fn nfe(&self, steps: usize) -> Option<u64>;
    /// The convergence order of a deterministic fixed-step method in its NFE (error ∝ NFE^−p
    /// against the exact flow); None for stochastic or adaptive methods.
    fn order(&self) -> Option<u32> {
        None
    }
    /// The asymptotic order at N = `steps` where it differs from [`Method::order`]: a split that
    /// ends on a lower-order step, or a bounded number of lower-order steps (multistep warm-up,
    /// lower-order final steps), each of which caps the global order at its local order + 1.
    fn order_at(&self, steps: usize) -> Option<u32> {
        let _ = steps;
        self.order()
    }
    /// Whether N (`steps`) changes anything (an adaptive method reads tolerances instead).
    fn reads_steps(&self) -> bool {
        true
    }
    /// Whether the final Tweedie step is on when [`RunSpec::denoise`] is unset.
    fn denoises_by_default(&self) -> bool {
        false
    }
    /// Steps the run will finish (progress): one per grid interval unless overridden.
    fn step_count(&self, steps: usize, times: &[f64]) -> usize {
        let _ = steps;
        times.len().saturating_sub(1)
    }
    /// Moves `x` along `times` (from `times[0]` to the last) for N = `steps`, evaluating the
    /// model only through `ctx` and calling [`StepContext::finish_step`] after every step.
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        times: &[f64],
        steps: usize,
    ) -> Result<()>;
}

/// The grid (N + 1 points of the sampler's `grid` setting) and NFE formula (N) of a sampler
/// that takes one model evaluation per step; expands inside an `impl Method`.
macro_rules! one_evaluation_per_step {
    () => {
        fn grid(
            &self,
            sde: &dyn $crate::sde::Sde,
            eps: f64,
            steps: usize,
        ) -> $crate::Result<Vec<f64>> {
            self.grid.times(sde, eps, steps + 1)
        }
        /// N: one evaluation per step.
        fn nfe(&self, steps: usize) -> Option<u64> {
            Some(steps as u64)
        }
    };
}
pub(crate) use one_evaluation_per_step;

/// Draws `run.n` samples with `method`: prior draws at t_max keyed by the seed, then
/// [`integrate_with`].
pub fn sample_with(
    sde: &dyn Sde,
    score: &dyn Score,
    method: &dyn Method,
    run: &RunSpec,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<SampleRun> {
    crate::error::check_points("n", run.n, score.dim())?;
    let x_t = sde.prior_sample(run.n, score.dim(), run.seed);
    integrate_with(sde, score, x_t, method, run, progress)
}

/// Integrates the states `x_t` at t_max down to ε with `method`.
pub fn integrate_with(
    sde: &dyn Sde,
    score: &dyn Score,
    x_t: Array2<f64>,
    method: &dyn Method,
    run: &RunSpec,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<SampleRun> {
    if method.reads_steps() {
        crate::error::check_range("steps", run.steps, crate::error::MAX_STEPS)?;
    }
    // Steps × levels or × corrector steps: the work per particle is bounded as steps are.
    if let Some(nfe) = method.nfe(run.steps) {
        if nfe > crate::error::MAX_STEPS as u64 {
            return Err(invalid!(
                "{} with {} steps makes {nfe} score evaluations per particle, more than the limit {}: use fewer steps, levels or corrector steps",
                method.name(),
                run.steps,
                crate::error::MAX_STEPS
            ));
        }
    }
    let run = RunSpec {
        denoise: Some(run.denoise.unwrap_or(method.denoises_by_default())),
        ..run.clone()
    };
    drive(sde, score, x_t, &run, |counted, x, eps, _, limit| {
        run_method(sde, counted, x, method, &run, eps, limit, progress)
    })
}

/// Runs `method` from the states `x` at t_max: its grid (checked: positive, non-increasing),
/// a fresh [`StepContext`], the records, and its declared NFE against the count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_method(
    sde: &dyn Sde,
    counted: &Counted<'_>,
    mut x: Array2<f64>,
    method: &dyn Method,
    run: &RunSpec,
    eps: f64,
    limit: f64,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<Finished> {
    let times = method.grid(sde, eps, run.steps)?;
    // DDPM's matched times may start just beyond t_max (t̃_1000 = 1.0034, linear schedule).
    let valid = |t: &f64| t.is_finite() && *t > 0.0;
    if times.is_empty() || !times.iter().all(valid) || times.windows(2).any(|w| w[1] > w[0]) {
        return Err(invalid!(
            "{}: its grid must be positive and non-increasing (got {} points from {:?} to {:?})",
            method.name(),
            times.len(),
            times.first(),
            times.last()
        ));
    }
    let record: Vec<f64> = run.record.iter().copied().filter(|&r| r != 0.0).collect();
    let mut ctx = StepContext::new(
        sde,
        counted,
        KeyedNormal::new(run.seed, SOLVER_DOMAIN),
        &record,
        progress,
        method.step_count(run.steps, &times),
    );
    ctx.limit = limit;
    // A whole-batch field is called once per stage: one chunk of all rows.
    ctx.chunk = if counted.whole_batch() {
        x.nrows()
    } else {
        run.chunk
    };
    ctx.visit(times[0], &x);
    method.run(&mut ctx, &mut x, &times, run.steps)?;
    ctx.check_records()?;
    let particles = x.nrows() as u64;
    let per_particle = counted.rows() / particles.max(1);
    if let Some(declared) = method.nfe(run.steps) {
        if per_particle != declared {
            return Err(invalid!(
                "{}: declared {declared} model evaluations per particle for steps = {} but made {per_particle}",
                method.name(),
                run.steps
            ));
        }
    }
    let stats = match ctx.solver_stats {
        Some(s) => Stats {
            evals: counted.rows(),
            ..s
        },
        None => Stats {
            particles,
            evals: counted.rows(),
            accepted: particles * ctx.steps(),
            rejected: 0,
        },
    };
    let t_end = *times.last().expect("non-empty");
    Ok((x, t_end, stats, ctx.records))
}
