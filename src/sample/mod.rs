//! Sampling: every sampler of the zoo, from the prior at t_max down to ε, with the score
//! evaluations (NFE) counted by a wrapper around the model and checked against each sampler's
//! own formula ([`Method::nfe`]) on every run.
//!
//! Every sampler is a [`Method`] value run over a [`StepContext`], built-in or yours alike:
//! * the reverse SDE and the PF-ODE handed to `scoresde-solvers` in row chunks: reverse
//!   Euler–Maruyama and the plug-in λ-family ([`ReverseEm`]), PF-ODE Euler / Heun / RK4 /
//!   adaptive RK45 ([`PfOde`], any Butcher tableau);
//! * whole-batch step maps: predictor–corrector ([`PcSampler`]), EDM Heun and stochastic
//!   ([`Edm`]), DPM-Solver-1/2/3 and ++(2M) ([`DpmSolver`], [`DpmSolverPp2m`]), DDIM and DDPM
//!   ([`Ddim`], [`Ddpm`]), plain and annealed Langevin ([`Langevin`]).
//!
//! [`Sampler`] ([`config`]) is the one table from names to settings structs to methods; a
//! sampler of your own implements [`Method`] and runs through [`sample_with`].
//!
//! Grids ([`grid`]) start exactly at t_max and end exactly at ε (DDPM's matched times excepted);
//! an optional final Tweedie step maps the state at ε to `x̂₀` (one more NFE).

mod chunked;
pub mod config;
pub mod convergence;
mod ddim;
mod deis;
mod dpm;
mod edm;
pub mod edm_form;
mod engine;
mod er_sde;
pub mod expint;
pub mod grid;
mod langevin;
mod method;
mod options;
mod pc;
mod sa_solver;
pub mod schedules;
mod seeds;
mod unipc;

pub use crate::ddpm::Variance;
pub use chunked::{PfOde, PfSteps, ReverseEm};
pub use config::Sampler;
pub use ddim::{ode_path as ddim_path, Ddim};
pub use deis::{Deis, DeisBasis, Ipndm};
pub use dpm::{DpmSolver, DpmSolverPp2m};
pub use edm::{Churn, Edm};
pub use engine::Dynamics;
pub use engine::StepContext;
pub use er_sde::{ErSde, NoiseScale};
pub use grid::{Grid, Spacing};
pub use langevin::Langevin;
pub use method::{integrate_with, sample_with, Method};
pub use options::{Corrector, Predictor};
pub use pc::{Ddpm, Pc, PcSampler};
pub use sa_solver::SaSolver;
pub use seeds::Seeds2;
pub use unipc::{BhVariant, UniPc};

use crate::score::{Counted, Score};
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{KeyedNormal, Stats};
use std::time::{Duration, Instant};

/// Noise domain of the reverse-SDE solver noise.
pub const SOLVER_DOMAIN: u64 = crate::domain::Domain::Solver.key();

/// What to sample and how: a built-in [`Sampler`] with its settings, and what every run shares.
#[derive(Clone, Debug)]
pub struct SampleSpec {
    pub sampler: Sampler,
    /// The sampler's N (ignored by `pf-rk45`; [`Method::nfe`] says what it costs).
    pub steps: usize,
    /// Final time ε (None: the SDE's default).
    pub eps: Option<f64>,
    pub n: usize,
    pub seed: u64,
    /// Rows per chunk of the solver-run samplers (0: default). Results do not depend on it.
    pub chunk: usize,
    /// Times at which to keep the state (0 keeps the denoised output).
    pub record: Vec<f64>,
    /// Final Tweedie denoising step (None: the sampler's default).
    pub denoise: Option<bool>,
}

impl SampleSpec {
    /// Adaptive RK45 on the PF-ODE at rtol = atol = `tol`, the other settings default.
    pub fn pf_rk45(tol: f64) -> Self {
        SampleSpec {
            sampler: Sampler::PfRk45(config::PfRk45 {
                rtol: tol,
                atol: tol,
            }),
            ..Default::default()
        }
    }

    /// The settings every sampler shares.
    pub fn run_spec(&self) -> RunSpec {
        RunSpec {
            steps: self.steps,
            eps: self.eps,
            n: self.n,
            seed: self.seed,
            chunk: self.chunk,
            record: self.record.clone(),
            denoise: self.denoise,
        }
    }

    /// Score evaluations per particle (None: adaptive), the final Tweedie step included.
    pub fn nfe(&self) -> Result<Option<u64>> {
        self.sampler.nfe(self.steps, self.denoise)
    }
}

/// What a run of any sampler needs besides the sampler: its N, the final time, the particles,
/// the seed, the record times and the final Tweedie step.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The sampler's N (its [`Method::nfe`] formula says what it costs).
    pub steps: usize,
    /// Final time ε (None: the SDE's default).
    pub eps: Option<f64>,
    pub n: usize,
    pub seed: u64,
    /// Rows per chunk of the solver-run samplers (0: default). Results do not depend on it.
    pub chunk: usize,
    /// Times at which to keep the whole state (each must be a point of the grid; 0 = output).
    pub record: Vec<f64>,
    /// Final Tweedie denoising step `x̂₀ = (x + s² ∇log p)/m` (None: the sampler's default).
    pub denoise: Option<bool>,
}

impl Default for RunSpec {
    fn default() -> Self {
        let s = SampleSpec::default();
        s.run_spec()
    }
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            sampler: Sampler::default(),
            steps: 1000,
            eps: None,
            n: 1000,
            seed: 0,
            chunk: 0,
            record: vec![],
            denoise: None,
        }
    }
}

/// The samples and what they cost.
#[derive(Clone, Debug)]
pub struct SampleRun {
    pub x: Array2<f64>,
    /// Score evaluations per particle, as counted around the model.
    pub nfe: f64,
    pub stats: Stats,
    pub wall: Duration,
    pub records: Vec<(f64, Array2<f64>)>,
}

/// Draws `spec.n` samples: prior draws at t_max (keyed by the seed), then the sampler to ε.
pub fn sample(
    sde: &dyn Sde,
    score: &dyn Score,
    spec: &SampleSpec,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<SampleRun> {
    let method = spec.sampler.method(Some(sde))?;
    sample_with(sde, score, method.as_ref(), &spec.run_spec(), progress)
}

/// Where m(t_max) = 0 (rectified, trigonometric paths) the score form of every update is
/// 0·∞: the field must give its velocity ([`Score::velocity`]). One probe row, not counted.
fn check_signal_free_start(sde: &dyn Sde, score: &dyn Score, t_max: f64) -> Result<()> {
    if sde.marginal(t_max).mean > 0.0 {
        return Ok(());
    }
    let x = ndarray::Array2::zeros((1, score.dim()));
    let mut u = x.clone();
    if score.velocity(
        scoresde_solvers::Time::Shared(t_max),
        x.view(),
        u.view_mut(),
    ) {
        return Ok(());
    }
    Err(invalid!(
        "the field gives only a score, which is singular where m = 0 (the {} path at t = {}): use a velocity model or the exact field, or a path with m(t_max) > 0",
        sde.name(),
        crate::error::num(t_max)
    ))
}

/// Integrates from the given states at t_max down to ε with `spec`'s sampler.
pub fn integrate(
    sde: &dyn Sde,
    score: &dyn Score,
    x_t: Array2<f64>,
    spec: &SampleSpec,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<SampleRun> {
    let method = spec.sampler.method(Some(sde))?;
    integrate_with(sde, score, x_t, method.as_ref(), &spec.run_spec(), progress)
}

/// What every sampler run shares: ε and the dimension checked, the model wrapped in an NFE
/// counter, `body` run from t_max, the optional final Tweedie step, the records at t = 0 and
/// in the order asked for, and the divergence check of the output.
fn drive(
    sde: &dyn Sde,
    score: &dyn Score,
    x_t: Array2<f64>,
    run: &RunSpec,
    body: impl FnOnce(&Counted<'_>, Array2<f64>, f64, &[f64], f64) -> Result<Finished>,
) -> Result<SampleRun> {
    let t_max = sde.t_max();
    let eps = run.eps.unwrap_or(sde.default_eps());
    if !(eps > 0.0 && eps < t_max) {
        return Err(invalid!(
            "`eps` must lie in (0, {t_max}), got {}",
            crate::error::num(eps)
        ));
    }
    if x_t.ncols() != score.dim() {
        return Err(invalid!(
            "states have dimension {} but the score has {}",
            x_t.ncols(),
            score.dim()
        ));
    }
    crate::score::check_sde(score, sde)?;
    check_signal_free_start(sde, score, t_max)?;
    let counted = Counted::new(score);
    let n = x_t.nrows();
    let start = Instant::now();
    // Record times other than 0 (the denoised output) go to the sampler.
    let record: Vec<f64> = run.record.iter().copied().filter(|&r| r != 0.0).collect();
    let limit = engine::divergence_limit(sde, &x_t);
    let (mut x, t_end, stats, mut records) =
        crate::interrupt::check(body(&counted, x_t, eps, &record, limit))?;
    if run.denoise.unwrap_or(false) {
        let eng = StepContext::new(
            sde,
            &counted,
            KeyedNormal::new(run.seed, SOLVER_DOMAIN),
            &[],
            None,
            1,
        );
        x = eng.x0(t_end, x.view());
        engine::check_state(stats.accepted / stats.particles.max(1), 0.0, &x, limit)?;
    }
    if run.record.contains(&0.0) {
        records.push((0.0, x.clone()));
    }
    // Records in the order they were asked for.
    records.sort_by(|a, b| {
        let pos = |t: f64| run.record.iter().position(|&r| r == t);
        pos(a.0).cmp(&pos(b.0))
    });
    Ok(SampleRun {
        x,
        nfe: counted.model_rows() as f64 / n as f64,
        stats,
        wall: start.elapsed(),
        records,
    })
}

/// A sampler's final state, its time, work counters and records.
pub(crate) type Finished = (Array2<f64>, f64, Stats, Vec<(f64, Array2<f64>)>);
