//! Samplers as values: the [`Method`] trait, what a sampler written outside the crate
//! implements to run through the same entry point as the built-in ones — prior draws keyed by
//! the seed, the model counted (NFE), noise keyed by (seed, particle, draw), record times,
//! progress, the non-finite and divergence checks after every step and the final Tweedie step.

use super::engine::StepContext;
use super::{drive, RunSpec, SampleRun, SOLVER_DOMAIN};
use crate::score::Score;
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
    /// Model evaluations per particle for N = `steps`, the final Tweedie step excluded.
    /// Checked against the count after every run.
    fn nfe(&self, steps: usize) -> u64;
    /// Whether the final Tweedie step is on when [`RunSpec::denoise`] is unset.
    fn denoises_by_default(&self) -> bool {
        false
    }
    /// Moves `x` along `times` (from `times[0]` to the last), evaluating the model only through
    /// `ctx` and calling [`StepContext::finish_step`] after every step.
    fn run(&self, ctx: &mut StepContext<'_>, x: &mut Array2<f64>, times: &[f64]) -> Result<()>;
}

/// Draws `run.n` samples with `method`: prior draws at t_max keyed by the seed, then
/// [`integrate_with`].
pub fn sample_with(
    sde: &dyn Sde,
    score: &dyn Score,
    method: &dyn Method,
    run: &RunSpec,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<SampleRun> {
    crate::error::check_points("--n", run.n, score.dim())?;
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
    crate::error::check_range("steps", run.steps, crate::error::MAX_STEPS)?;
    let run = RunSpec {
        denoise: Some(run.denoise.unwrap_or(method.denoises_by_default())),
        ..run.clone()
    };
    drive(
        sde,
        score,
        x_t,
        &run,
        |counted, mut x, eps, record, limit| {
            let times = method.grid(sde, eps, run.steps)?;
            if times.len() < 2 || times[0] != sde.t_max() || *times.last().expect("len ≥ 2") != eps
            {
                return Err(invalid!(
                "{}: its grid must run from t_max = {} to eps = {eps} (got {} points from {:?} to {:?})",
                method.name(),
                sde.t_max(),
                times.len(),
                times.first(),
                times.last()
            ));
            }
            let mut ctx = StepContext::new(
                sde,
                counted,
                KeyedNormal::new(run.seed, SOLVER_DOMAIN),
                record,
                progress,
                times.len() - 1,
            );
            ctx.limit = limit;
            ctx.visit(times[0], &x);
            method.run(&mut ctx, &mut x, &times)?;
            ctx.check_records()?;
            let particles = x.nrows() as u64;
            let per_particle = counted.rows() / particles.max(1);
            let declared = method.nfe(run.steps);
            if per_particle != declared {
                return Err(invalid!(
                "{}: declared {declared} model evaluations per particle for steps = {} but made {per_particle}",
                method.name(),
                run.steps
            ));
            }
            let stats = Stats {
                particles,
                evals: counted.rows(),
                accepted: particles * ctx.steps(),
                rejected: 0,
            };
            let t_end = *times.last().expect("len ≥ 2");
            Ok((x, t_end, stats, ctx.records))
        },
    )
}
