//! Sampling by integrating the reverse-time SDE or the probability-flow ODE from the prior at
//! t_max down to ε, with the score evaluations (NFE) counted around the model.

use crate::score::{Counted, Score};
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{
    dopri5, euler_maruyama, ode_fixed, FixedMethod, KeyedNormal, SolveOptions, Stats, TimeGrid,
    Tolerances,
};
use std::time::{Duration, Instant};

/// Noise domain of the reverse-SDE solver noise.
pub const SOLVER_DOMAIN: u64 = 0x50_4C56;

/// Samplers available with any score.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Euler–Maruyama on the reverse-time SDE (NFE = steps).
    Em,
    /// Euler on the probability-flow ODE (NFE = steps).
    PfEuler,
    /// Heun (trapezoidal) on the PF-ODE (NFE = 2·steps).
    PfHeun,
    /// Classical RK4 on the PF-ODE (NFE = 4·steps).
    PfRk4,
    /// Adaptive Dormand–Prince 5(4) on the PF-ODE with rtol/atol (NFE reported per particle).
    PfRk45,
}

impl Sampler {
    /// NFE per particle that a fixed-grid sampler spends for `steps` steps (None: adaptive).
    pub fn nfe_formula(self, steps: usize) -> Option<u64> {
        let s = steps as u64;
        match self {
            Sampler::Em | Sampler::PfEuler => Some(s),
            Sampler::PfHeun => Some(2 * s),
            Sampler::PfRk4 => Some(4 * s),
            Sampler::PfRk45 => None,
        }
    }
}

/// What to sample and how.
#[derive(Clone, Debug)]
pub struct SampleSpec {
    pub sampler: Sampler,
    /// Steps of a fixed-grid sampler (ignored by `pf-rk45`).
    pub steps: usize,
    pub rtol: f64,
    pub atol: f64,
    /// Final time ε (None: the SDE's default).
    pub eps: Option<f64>,
    pub n: usize,
    pub seed: u64,
    /// Rows per chunk (0: default). Results do not depend on it.
    pub chunk: usize,
    /// Times at which to keep the state.
    pub record: Vec<f64>,
}

impl Default for SampleSpec {
    fn default() -> Self {
        Self {
            sampler: Sampler::Em,
            steps: 1000,
            rtol: 1e-5,
            atol: 1e-5,
            eps: None,
            n: 1000,
            seed: 0,
            chunk: 0,
            record: vec![],
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
    if spec.n == 0 {
        return Err(invalid!("--n must be at least 1"));
    }
    let x_t = sde.prior_sample(spec.n, score.dim(), spec.seed);
    integrate(sde, score, x_t, spec, progress)
}

/// Integrates from the given states at t_max down to ε with `spec`'s sampler.
pub fn integrate(
    sde: &dyn Sde,
    score: &dyn Score,
    x_t: Array2<f64>,
    spec: &SampleSpec,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<SampleRun> {
    let t_max = sde.t_max();
    let eps = spec.eps.unwrap_or(sde.default_eps());
    if !(eps > 0.0 && eps < t_max) {
        return Err(invalid!("--eps must lie in (0, {t_max}), got {eps}"));
    }
    if spec.sampler != Sampler::PfRk45 && spec.steps == 0 {
        return Err(invalid!("--steps must be at least 1"));
    }
    if x_t.ncols() != score.dim() {
        return Err(invalid!(
            "states have dimension {} but the score has {}",
            x_t.ncols(),
            score.dim()
        ));
    }
    let counted = Counted::new(score);
    let reverse = sde.reverse(&counted);
    let opts = SolveOptions {
        chunk_size: spec.chunk,
        record: spec.record.clone(),
        progress,
    };
    let grid = || TimeGrid::uniform(t_max, eps, spec.steps);
    let n = x_t.nrows();
    let start = Instant::now();
    let sol = match spec.sampler {
        Sampler::Em => euler_maruyama(
            &reverse,
            x_t,
            &grid()?,
            &KeyedNormal::new(spec.seed, SOLVER_DOMAIN),
            &opts,
        )?,
        Sampler::PfEuler => ode_fixed(
            &reverse.probability_flow(),
            FixedMethod::Euler,
            x_t,
            &grid()?,
            &opts,
        )?,
        Sampler::PfHeun => ode_fixed(
            &reverse.probability_flow(),
            FixedMethod::Heun,
            x_t,
            &grid()?,
            &opts,
        )?,
        Sampler::PfRk4 => ode_fixed(
            &reverse.probability_flow(),
            FixedMethod::Rk4,
            x_t,
            &grid()?,
            &opts,
        )?,
        Sampler::PfRk45 => {
            if !(spec.rtol > 0.0 && spec.atol > 0.0) {
                return Err(invalid!(
                    "--rtol and --atol must be positive (got {} and {})",
                    spec.rtol,
                    spec.atol
                ));
            }
            dopri5(
                &reverse.probability_flow(),
                x_t,
                t_max,
                eps,
                Tolerances::new(spec.rtol, spec.atol),
                &opts,
            )?
        }
    };
    Ok(SampleRun {
        x: sol.x,
        nfe: counted.rows() as f64 / n as f64,
        stats: sol.stats,
        wall: start.elapsed(),
        records: sol.records,
    })
}
