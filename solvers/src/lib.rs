//! Generic batched SDE/ODE integrators over `ndarray` batches.
//!
//! A batch is an `n × d` array: one row per particle. The crate knows nothing about
//! diffusion models or scores; it integrates whatever drift and diffusion it is given,
//! forward or backward in time (a decreasing time grid is native, not a sign trick).
//!
//! One entry point, [`solve`], over three separate values (as in diffrax's `diffeqsolve`):
//! the problem ([`Problem`]: an ODE, or an SDE with its noise source), the method
//! ([`Method`]: Euler–Maruyama, or any explicit Runge–Kutta [`Tableau`] — [`EULER`], [`HEUN`],
//! [`RK4`], [`DOPRI5`] or your own) and the step policy ([`Steps`]: a fixed [`TimeGrid`], or
//! adaptive with [`Tolerances`] and per-particle step-size control).
//!
//! Every solver returns the final state, [`Stats`] (function evaluations, accepted and
//! rejected steps, summed over particles) and the state at requested record times.
//!
//! Particles are integrated in independent chunks on the rayon pool. Noise comes from a
//! [`Noise`] source keyed by (global row, step), and adaptive steps are controlled per
//! particle, so results are identical whatever the chunk size or thread count.
//!
//! ```
//! use ndarray::{array, ArrayView2, ArrayViewMut2, Zip};
//! use scoresde_solvers::{solve, Method, OdeSystem, Problem, SolveOptions, Steps, Time, TimeGrid, RK4};
//!
//! /// dx/dt = −x
//! struct Decay;
//! impl OdeSystem for Decay {
//!     fn dim(&self) -> usize { 1 }
//!     fn rhs(&self, _t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
//!         Zip::from(&mut out).and(&x).for_each(|o, &x| *o = -x);
//!     }
//! }
//! // Backward in time from t = 1 to t = 0: x(0) = e · x(1).
//! let grid = TimeGrid::uniform(1.0, 0.0, 100).unwrap();
//! let sol = solve(Problem::Ode(&Decay), Method::Rk(&RK4), &Steps::Grid(grid), array![[1.0]], &SolveOptions::default()).unwrap();
//! assert!((sol.x[[0, 0]] - std::f64::consts::E).abs() < 1e-9);
//! assert_eq!(sol.stats.evals, 400);
//! ```

mod adaptive;
mod fixed;
mod noise;
mod tableau;

pub use adaptive::Tolerances;
pub use noise::{KeyedNormal, Noise};
pub use tableau::{Tableau, DOPRI5, EULER, HEUN, RK4};

/// What to integrate.
#[derive(Clone, Copy)]
pub enum Problem<'a> {
    /// `dx/dt = F(x, t)`.
    Ode(&'a dyn OdeSystem),
    /// `dx = f(x, t) dt + g(t) dw`, with the noise of (row, step) from the source.
    Sde(&'a dyn SdeSystem, &'a dyn Noise),
}

/// How a step is taken.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    /// Euler–Maruyama (SDEs): `x ← x + f Δ + g √|Δ| z`.
    EulerMaruyama,
    /// An explicit Runge–Kutta tableau (ODEs).
    Rk(&'static Tableau),
}

/// Where the steps fall.
#[derive(Clone, Debug)]
pub enum Steps {
    /// On the points of a grid (either direction).
    Grid(TimeGrid),
    /// From `t0` to `t1`, each particle's step chosen by the embedded error estimate; record
    /// times (in [`SolveOptions`]) are landed on exactly.
    Adaptive { t0: f64, t1: f64, tol: Tolerances },
}

/// Integrates `x0` (one row per particle) with `method` under the step policy `steps`.
/// Combinations that do not exist (Euler–Maruyama on an ODE, an adaptive step without an
/// embedded tableau) are errors, not panics.
pub fn solve(
    problem: Problem<'_>,
    method: Method,
    steps: &Steps,
    x0: Array2<f64>,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError> {
    match (problem, method, steps) {
        (Problem::Sde(sys, noise), Method::EulerMaruyama, Steps::Grid(g)) => {
            fixed::euler_maruyama(sys, x0, g, noise, opts)
        }
        (Problem::Ode(sys), Method::Rk(tab), Steps::Grid(g)) => {
            fixed::rk_fixed(sys, tab, x0, g, opts)
        }
        (Problem::Ode(sys), Method::Rk(tab), Steps::Adaptive { t0, t1, tol }) => {
            adaptive::rk_adaptive(sys, tab, x0, *t0, *t1, *tol, opts)
        }
        (Problem::Sde(..), Method::Rk(t), _) => Err(SolveError::Invalid(format!(
            "{} is an ODE method; an SDE needs Euler–Maruyama",
            t.name
        ))),
        (Problem::Ode(_), Method::EulerMaruyama, _) => Err(SolveError::Invalid(
            "Euler–Maruyama integrates an SDE, not an ODE".into(),
        )),
        (Problem::Sde(..), Method::EulerMaruyama, Steps::Adaptive { .. }) => Err(
            SolveError::Invalid("Euler–Maruyama runs on a fixed grid only".into()),
        ),
    }
}

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Times at which a batch is evaluated: one time shared by all rows, or one per row.
#[derive(Clone, Copy, Debug)]
pub enum Time<'a> {
    Shared(f64),
    PerRow(&'a [f64]),
}

impl Time<'_> {
    /// The time of row `i`.
    #[inline]
    pub fn at(&self, i: usize) -> f64 {
        match self {
            Time::Shared(t) => *t,
            Time::PerRow(ts) => ts[i],
        }
    }
}

/// An ODE `dx/dt = F(x, t)` evaluated on a batch.
pub trait OdeSystem: Sync {
    /// State dimension d.
    fn dim(&self) -> usize;
    /// Writes `F(x_i, t_i)` into row i of `out`.
    fn rhs(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>);
}

/// An SDE with additive noise, `dx = f(x, t) dt + g(t) dw`, evaluated on a batch.
pub trait SdeSystem: Sync {
    /// State dimension d.
    fn dim(&self) -> usize;
    /// Writes the drift `f(x_i, t)` into row i of `out`.
    fn drift(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>);
    /// The scalar diffusion coefficient g(t).
    fn diffusion(&self, t: f64) -> f64;
}

/// Work counters, summed over particles (so they do not depend on chunking).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of particles integrated.
    pub particles: u64,
    /// Row evaluations of the drift / right-hand side (one per particle per call).
    pub evals: u64,
    /// Accepted steps.
    pub accepted: u64,
    /// Rejected steps (adaptive solvers only).
    pub rejected: u64,
}

impl Stats {
    fn merge(self, o: Stats) -> Stats {
        Stats {
            particles: self.particles + o.particles,
            evals: self.evals + o.evals,
            accepted: self.accepted + o.accepted,
            rejected: self.rejected + o.rejected,
        }
    }
    /// Mean function evaluations per particle.
    pub fn evals_per_particle(&self) -> f64 {
        self.evals as f64 / self.particles.max(1) as f64
    }
}

/// What went wrong during integration.
#[derive(Debug, Clone, PartialEq)]
pub enum SolveError {
    /// The grid, tolerances or record times are unusable.
    Invalid(String),
    /// A particle's state became NaN or infinite.
    NonFinite { step: u64, t: f64, row: usize },
    /// An adaptive solver exceeded its step budget or its step size underflowed.
    StepFailure { row: usize, t: f64, reason: String },
}

impl std::fmt::Display for SolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SolveError::Invalid(m) => write!(f, "{m}"),
            SolveError::NonFinite { step, t, row } => write!(
                f,
                "state became non-finite at step {step} (t = {t:.6e}) in particle {row}"
            ),
            SolveError::StepFailure { row, t, reason } => {
                write!(
                    f,
                    "adaptive solver failed for particle {row} at t = {t:.6e}: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for SolveError {}

/// A strictly monotone time grid `t_0, …, t_N` (N steps). Decreasing grids integrate backward.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeGrid {
    times: Vec<f64>,
}

impl TimeGrid {
    /// `n_steps` equal steps from `t0` to `t1`; the last point is exactly `t1`.
    pub fn uniform(t0: f64, t1: f64, n_steps: usize) -> Result<Self, SolveError> {
        if n_steps == 0 {
            return Err(SolveError::Invalid(
                "a time grid needs at least one step".into(),
            ));
        }
        let h = (t1 - t0) / n_steps as f64;
        let mut times: Vec<f64> = (0..=n_steps).map(|i| t0 + h * i as f64).collect();
        times[n_steps] = t1;
        Self::new(times)
    }

    /// A grid from explicit times, which must be finite and strictly monotone.
    pub fn new(times: Vec<f64>) -> Result<Self, SolveError> {
        if times.len() < 2 {
            return Err(SolveError::Invalid(
                "a time grid needs at least two points".into(),
            ));
        }
        if times.iter().any(|t| !t.is_finite()) {
            return Err(SolveError::Invalid(
                "time grid contains a non-finite time".into(),
            ));
        }
        // Note f64::signum(0.0) = 1, so a repeated time is rejected explicitly.
        let dir = (times[1] - times[0]).signum();
        if times
            .windows(2)
            .any(|w| w[1] == w[0] || (w[1] - w[0]).signum() != dir)
        {
            return Err(SolveError::Invalid(
                "time grid is not strictly monotone".into(),
            ));
        }
        Ok(Self { times })
    }

    pub fn times(&self) -> &[f64] {
        &self.times
    }

    pub fn n_steps(&self) -> usize {
        self.times.len() - 1
    }

    /// For each record time, the grid index it falls on (error if it is not a grid point).
    fn record_indices(&self, record: &[f64]) -> Result<Vec<usize>, SolveError> {
        let scale = self.times.iter().fold(1e-300f64, |a, t| a.max(t.abs()));
        record
            .iter()
            .map(|&r| {
                self.times
                    .iter()
                    .position(|&t| (t - r).abs() <= 1e-12 * scale)
                    .ok_or_else(|| {
                        SolveError::Invalid(format!(
                            "record time {r} is not a point of the time grid"
                        ))
                    })
            })
            .collect()
    }
}

/// Options shared by all solvers.
#[derive(Clone, Default)]
pub struct SolveOptions<'a> {
    /// Rows per independent chunk (0: a default of 1024). Does not change results.
    pub chunk_size: usize,
    /// Times at which to record the state, in integration order.
    pub record: Vec<f64>,
    /// Called with the number of particles finished, as chunks complete.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl SolveOptions<'_> {
    fn chunk(&self) -> usize {
        if self.chunk_size == 0 {
            1024
        } else {
            self.chunk_size
        }
    }
}

/// The result of an integration.
#[derive(Clone, Debug)]
pub struct Solution {
    /// Final state, `n × d`.
    pub x: Array2<f64>,
    pub stats: Stats,
    /// `(time, state)` at each requested record time.
    pub records: Vec<(f64, Array2<f64>)>,
}

/// What one chunk returns: its work counters and its recorded states.
type ChunkResult = Result<(Stats, Vec<Array2<f64>>), SolveError>;

/// Runs `f(row0, chunk)` over independent row chunks of `x` on the rayon pool, concatenating
/// the per-chunk records in row order.
fn run_chunks<F>(
    mut x: Array2<f64>,
    opts: &SolveOptions<'_>,
    record_times: &[f64],
    f: F,
) -> Result<Solution, SolveError>
where
    F: Fn(usize, ArrayViewMut2<f64>) -> ChunkResult + Sync,
{
    let chunk = opts.chunk();
    let parts: Vec<ChunkResult> = x
        .axis_chunks_iter_mut(Axis(0), chunk)
        .into_par_iter()
        .enumerate()
        .map(|(c, view)| {
            let rows = view.nrows() as u64;
            let r = f(c * chunk, view);
            if let (Ok(_), Some(p)) = (&r, opts.progress) {
                p(rows);
            }
            r
        })
        .collect();
    let mut stats = Stats::default();
    let mut per_record: Vec<Vec<Array2<f64>>> = vec![Vec::new(); record_times.len()];
    for part in parts {
        let (s, recs) = part?;
        stats = stats.merge(s);
        for (slot, r) in per_record.iter_mut().zip(recs) {
            slot.push(r);
        }
    }
    let records = record_times
        .iter()
        .zip(per_record)
        .map(|(&t, parts)| {
            let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
            let joined = if views.is_empty() {
                Array2::zeros((0, x.ncols()))
            } else {
                ndarray::concatenate(Axis(0), &views).expect("chunks share their width")
            };
            (t, joined)
        })
        .collect();
    Ok(Solution { x, stats, records })
}

/// Index of the first row of `x` holding a non-finite value.
fn first_non_finite(x: ArrayView2<f64>) -> Option<usize> {
    x.rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
}
