//! Sampling: every sampler of the zoo, from the prior at t_max down to ε, with the score
//! evaluations (NFE) counted by a wrapper around the model and checked against each sampler's
//! formula ([`Sampler::nfe`]).
//!
//! * Chunked solvers of `scoresde-solvers`: reverse-SDE Euler–Maruyama and the plug-in
//!   λ-family, PF-ODE Euler / Heun (trapezoid in t) / RK4 / adaptive RK45.
//! * Whole-batch step maps, each a [`Method`] value run over a [`StepContext`]:
//!   predictor–corrector ([`PcSampler`]), EDM Heun and stochastic ([`Edm`]), DPM-Solver-1/2/3
//!   and ++(2M) ([`DpmSolver`], [`DpmSolverPp2m`]), DDIM and DDPM ([`Ddim`], [`Ddpm`]), plain
//!   and annealed Langevin ([`Langevin`]). [`Sampler::method`] maps the names to them; a
//!   sampler of your own implements [`Method`] and runs through [`sample_with`].
//!
//! Grids ([`grid`]) start exactly at t_max and end exactly at ε (DDPM's matched times excepted);
//! an optional final Tweedie step maps the state at ε to `x̂₀` (one more NFE).

pub mod convergence;
mod ddim;
mod dpm;
mod edm;
mod engine;
pub mod grid;
mod langevin;
mod method;
mod options;
mod pc;

pub use crate::ddpm::Variance;
pub use ddim::Ddim;
pub use dpm::{DpmSolver, DpmSolverPp2m};
pub use edm::{Churn, Edm};
pub use engine::StepContext;
pub use grid::{Grid, Spacing};
pub use langevin::Langevin;
pub use method::{integrate_with, sample_with, Method};
pub use options::{Corrector, Predictor, SamplerOptions};
pub use pc::{Ddpm, Pc, PcSampler};

use crate::reverse::Reverse;
use crate::score::{Counted, Score};
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{
    solve, KeyedNormal, Method as Step, Problem, SolveOptions, Stats, Steps, TimeGrid, Tolerances,
    DOPRI5, EULER, HEUN, RK4,
};
use std::time::{Duration, Instant};

/// Noise domain of the reverse-SDE solver noise.
pub const SOLVER_DOMAIN: u64 = crate::domain::Domain::Solver.key();

/// Samplers available with any score. What `--steps` N means differs by family; see
/// [`Sampler::nfe`] for the evaluations each spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Euler–Maruyama on the reverse-time SDE, N steps.
    Em,
    /// Euler on the probability-flow ODE, N steps.
    PfEuler,
    /// Heun (trapezoid in t) on the PF-ODE, N steps.
    PfHeun,
    /// Classical RK4 on the PF-ODE, N steps.
    PfRk4,
    /// Adaptive Dormand–Prince 5(4) on the PF-ODE with rtol/atol (NFE reported per particle).
    PfRk45,
    /// Euler–Maruyama on Huang et al.'s plug-in reverse SDE with --lambda, N steps.
    PlugIn,
    /// Predictor–corrector (--predictor, --corrector, --corrector-steps, --snr), N levels.
    Pc,
    /// EDM Algorithm 1 (Heun in σ̃ = s/m), N grid points (EDM's N).
    EdmHeun,
    /// EDM Algorithm 2 (--s-churn, --s-tmin, --s-tmax, --s-noise), N grid points.
    EdmSde,
    /// DPM-Solver-1 (= DDIM), N = NFE budget.
    #[cfg_attr(feature = "cli", value(name = "dpm-solver-1"))]
    #[serde(rename = "dpm-solver-1")]
    DpmSolver1,
    /// DPM-Solver-2 (single-step, r₁ = ½), N = NFE budget.
    #[cfg_attr(feature = "cli", value(name = "dpm-solver-2"))]
    #[serde(rename = "dpm-solver-2")]
    DpmSolver2,
    /// DPM-Solver-3 (single-step, r₁ = ⅓, r₂ = ⅔), N = NFE budget.
    #[cfg_attr(feature = "cli", value(name = "dpm-solver-3"))]
    #[serde(rename = "dpm-solver-3")]
    DpmSolver3,
    /// DPM-Solver++(2M), multistep, N steps.
    #[cfg_attr(feature = "cli", value(name = "dpm-solver-pp2m"))]
    #[serde(rename = "dpm-solver-pp2m")]
    DpmSolverPp2m,
    /// DDIM with --eta, N grid points (with --discrete M: a sub-sequence of DDPM's M steps).
    Ddim,
    /// DDPM ancestral sampling (Ho et al. Algorithm 2) on the N-step schedule (--variance).
    Ddpm,
    /// Plain Langevin dynamics at t = ε, N iterations of step --step-size.
    Langevin,
    /// Annealed Langevin (NCSN), N iterations at each of --levels noise levels.
    AnnealedLangevin,
}

impl Sampler {
    /// The CLI name.
    pub fn name(self) -> String {
        crate::io::variant_name(&self)
    }

    /// Whether the final Tweedie step is on by default (the step-map sampler's own default).
    pub fn denoises_by_default(self) -> bool {
        self.method(&SamplerOptions::default(), None)
            .is_some_and(|m| m.denoises_by_default())
    }

    /// The settings this sampler reads, as field names of [`SampleSpec`] (`steps`, `rtol`,
    /// `atol`) and [`SamplerOptions`], given the other settings `o` (ρ only on an EDM grid, the
    /// variance only for an ancestral predictor…). A setting outside this list changes
    /// nothing: front ends refuse it rather than ignore it.
    pub fn reads(self, o: &SamplerOptions) -> Vec<&'static str> {
        let mut r = vec!["denoise"];
        let grid = |r: &mut Vec<&'static str>, default: Spacing| {
            r.push("spacing");
            if o.spacing.unwrap_or(default) == Spacing::Edm {
                r.push("rho");
            }
        };
        match self {
            Sampler::PfRk45 => r.extend(["rtol", "atol"]),
            Sampler::Langevin => r.extend(["steps", "step_size"]),
            Sampler::AnnealedLangevin => {
                r.extend(["steps", "step_size", "levels"]);
                grid(&mut r, Spacing::Time);
            }
            Sampler::Ddpm => {
                r.extend(["steps", "discrete", "variance"]);
            }
            Sampler::Ddim => {
                r.extend(["steps", "eta", "discrete"]);
                if o.discrete.is_none() {
                    grid(&mut r, Spacing::Time);
                }
            }
            Sampler::EdmHeun | Sampler::EdmSde => {
                r.push("steps");
                grid(&mut r, Spacing::Edm);
                if self == Sampler::EdmSde {
                    r.extend(["s_churn", "s_tmin", "s_tmax", "s_noise"]);
                }
            }
            Sampler::DpmSolver1
            | Sampler::DpmSolver2
            | Sampler::DpmSolver3
            | Sampler::DpmSolverPp2m => {
                r.push("steps");
                grid(&mut r, Spacing::Logsnr);
            }
            Sampler::Pc => {
                r.extend(["steps", "predictor", "corrector"]);
                if o.corrector != Corrector::None {
                    r.extend(["corrector_steps", "snr"]);
                }
                if o.predictor == Predictor::Ancestral {
                    r.push("variance");
                }
                grid(&mut r, Spacing::Time);
            }
            Sampler::PlugIn => {
                r.extend(["steps", "lambda"]);
                grid(&mut r, Spacing::Time);
            }
            Sampler::Em | Sampler::PfEuler | Sampler::PfHeun | Sampler::PfRk4 => {
                r.push("steps");
                grid(&mut r, Spacing::Time);
            }
        }
        r
    }

    /// The step-map sampler this name stands for, with its settings from `o` (the variance of
    /// PC's ancestral predictor defaults by `sde`: β̃ for VE); None for the samplers run by the
    /// chunked solvers (em, plug-in, pf-euler/heun/rk4/rk45).
    pub fn method(self, o: &SamplerOptions, sde: Option<&dyn Sde>) -> Option<Box<dyn Method>> {
        let grid = |default| Grid {
            spacing: o.spacing.unwrap_or(default),
            rho: o.rho,
        };
        Some(match self {
            Sampler::Pc => Box::new(pc::PcSampler {
                pc: pc_settings(o, sde),
                grid: grid(Spacing::Time),
            }),
            Sampler::Ddpm => Box::new(pc::Ddpm {
                variance: o.variance.unwrap_or(Variance::Beta),
                discrete: o.discrete,
            }),
            Sampler::EdmHeun | Sampler::EdmSde => Box::new(edm::Edm {
                churn: edm::Churn {
                    s_churn: o.s_churn,
                    s_tmin: o.s_tmin,
                    s_tmax: o.s_tmax,
                    s_noise: o.s_noise,
                },
                grid: grid(Spacing::Edm),
                stochastic: self == Sampler::EdmSde,
            }),
            Sampler::DpmSolver1 | Sampler::DpmSolver2 | Sampler::DpmSolver3 => {
                Box::new(dpm::DpmSolver {
                    order: match self {
                        Sampler::DpmSolver1 => 1,
                        Sampler::DpmSolver2 => 2,
                        _ => 3,
                    },
                    grid: grid(Spacing::Logsnr),
                })
            }
            Sampler::DpmSolverPp2m => Box::new(dpm::DpmSolverPp2m {
                grid: grid(Spacing::Logsnr),
            }),
            Sampler::Ddim => Box::new(ddim::Ddim {
                eta: o.eta,
                discrete: o.discrete,
                grid: grid(Spacing::Time),
            }),
            Sampler::Langevin => Box::new(langevin::Langevin {
                step_size: o.step_size,
                annealed: None,
            }),
            Sampler::AnnealedLangevin => Box::new(langevin::Langevin {
                step_size: o.step_size,
                annealed: Some((o.levels, grid(Spacing::Time))),
            }),
            Sampler::Em
            | Sampler::PlugIn
            | Sampler::PfEuler
            | Sampler::PfHeun
            | Sampler::PfRk4
            | Sampler::PfRk45 => return None,
        })
    }

    /// Score evaluations per particle for `steps` = N (None: adaptive). With d = 1 when the
    /// final denoising step is on:
    /// em, pf-euler, plug-in, dpm-solver-pp2m: N + d; pf-heun: 2N + d; pf-rk4: 4N + d;
    /// pc: N (p + c n) + d (p, c = 1 when the predictor / corrector is on, n corrector steps);
    /// edm-heun, edm-sde: 2(N − 1) + d (EDM's 2N − 1 with its default denoising);
    /// dpm-solver-k: N + d; ddim, ddpm: (N − 1) + d (= N with the default denoising);
    /// langevin: N + d; annealed-langevin: L N + d.
    pub fn nfe(self, steps: usize, opts: &SamplerOptions) -> Option<u64> {
        let n = steps as u64;
        let d = u64::from(opts.denoise.unwrap_or(self.denoises_by_default()));
        let own = match self {
            Sampler::Em | Sampler::PfEuler | Sampler::PlugIn => n,
            Sampler::PfHeun => 2 * n,
            Sampler::PfRk4 => 4 * n,
            Sampler::PfRk45 => return None,
            s => s.method(opts, None).expect("a step-map sampler").nfe(steps),
        };
        Some(d + own)
    }
}

/// The PC settings of `opts` (the variance default depends on the SDE).
fn pc_settings(opts: &SamplerOptions, sde: Option<&dyn Sde>) -> pc::Pc {
    pc::Pc {
        predictor: opts.predictor,
        corrector: opts.corrector,
        corrector_steps: opts.corrector_steps,
        snr: opts.snr,
        variance: opts.variance.unwrap_or(match sde {
            Some(s) if s.name() == "ve" => Variance::BetaTilde,
            _ => Variance::Beta,
        }),
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
    /// Times at which to keep the state (0 keeps the denoised output).
    pub record: Vec<f64>,
    /// Settings beyond the step count.
    pub options: SamplerOptions,
}

impl SampleSpec {
    /// The settings every sampler shares (the final denoising as configured, or unset).
    pub fn run_spec(&self) -> RunSpec {
        RunSpec {
            steps: self.steps,
            eps: self.eps,
            n: self.n,
            seed: self.seed,
            record: self.record.clone(),
            denoise: self.options.denoise,
        }
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
            sampler: Sampler::Em,
            steps: 1000,
            rtol: 1e-5,
            atol: 1e-5,
            eps: None,
            n: 1000,
            seed: 0,
            chunk: 0,
            record: vec![],
            options: SamplerOptions::default(),
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
    crate::error::check_points("n", spec.n, score.dim())?;
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
    if spec.sampler != Sampler::PfRk45 {
        crate::error::check_range("steps", spec.steps, crate::error::MAX_STEPS)?;
    }
    check_options(spec.sampler, &spec.options)?;
    let run = RunSpec {
        denoise: Some(
            spec.options
                .denoise
                .unwrap_or(spec.sampler.denoises_by_default()),
        ),
        ..spec.run_spec()
    };
    drive(sde, score, x_t, &run, |counted, x_t, eps, record, limit| {
        match spec.sampler {
            Sampler::Em
            | Sampler::PfEuler
            | Sampler::PfHeun
            | Sampler::PfRk4
            | Sampler::PfRk45
            | Sampler::PlugIn => {
                let sol = solve_chunked(sde, counted, x_t, spec, eps, record, progress)?;
                // The solvers catch non-finite states at every step; a finite divergence
                // shows in the end state.
                let steps = sol.stats.accepted / sol.stats.particles.max(1);
                engine::check_state(steps, eps, &sol.x, limit)?;
                Ok((sol.x, eps, sol.stats, sol.records))
            }
            s => {
                let method = s
                    .method(&spec.options, Some(sde))
                    .expect("a step-map sampler");
                method::run_method(
                    sde,
                    counted,
                    x_t,
                    method.as_ref(),
                    &run,
                    eps,
                    limit,
                    progress,
                )
            }
        }
    })
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
        return Err(invalid!("`eps` must lie in (0, {t_max}), got {eps}"));
    }
    if x_t.ncols() != score.dim() {
        return Err(invalid!(
            "states have dimension {} but the score has {}",
            x_t.ncols(),
            score.dim()
        ));
    }
    crate::score::check_sde(score, sde)?;
    let counted = Counted::new(score);
    let n = x_t.nrows();
    let start = Instant::now();
    // Record times other than 0 (the denoised output) go to the sampler.
    let record: Vec<f64> = run.record.iter().copied().filter(|&r| r != 0.0).collect();
    let limit = engine::divergence_limit(sde, &x_t);
    let (mut x, t_end, stats, mut records) = body(&counted, x_t, eps, &record, limit)?;
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
        nfe: counted.rows() as f64 / n as f64,
        stats,
        wall: start.elapsed(),
        records,
    })
}

/// Rejects settings a sampler cannot use.
fn check_options(sampler: Sampler, o: &SamplerOptions) -> Result<()> {
    if !(0.0..=1.0).contains(&o.lambda) {
        return Err(invalid!("`lambda` must lie in [0, 1], got {}", o.lambda));
    }
    if !(o.eta >= 0.0 && o.eta.is_finite()) {
        return Err(invalid!("`eta` must be non-negative, got {}", o.eta));
    }
    if !(o.snr > 0.0 && o.snr.is_finite()) {
        return Err(invalid!("`snr` must be positive, got {}", o.snr));
    }
    if !(o.step_size > 0.0 && o.step_size.is_finite()) {
        return Err(invalid!(
            "`step_size` must be positive, got {}",
            o.step_size
        ));
    }
    if !(o.s_churn >= 0.0 && o.s_noise >= 0.0 && o.s_tmin <= o.s_tmax) {
        return Err(invalid!(
            "EDM churn needs `s_churn` ≥ 0, `s_noise` ≥ 0 and `s_tmin` ≤ `s_tmax`"
        ));
    }
    let corrects = o.corrector != Corrector::None && o.corrector_steps > 0;
    if sampler == Sampler::Pc && o.predictor == Predictor::None && !corrects {
        return Err(invalid!(
            "`sampler` pc with `predictor` none needs a corrector with `corrector_steps` ≥ 1: as configured it does no work"
        ));
    }
    if sampler == Sampler::AnnealedLangevin && o.levels == 0 {
        return Err(invalid!("`levels` must be at least 1"));
    }
    Ok(())
}

/// The samplers run by the chunked solvers of `scoresde-solvers`.
fn solve_chunked(
    sde: &dyn Sde,
    counted: &Counted<'_>,
    x_t: Array2<f64>,
    spec: &SampleSpec,
    eps: f64,
    record: &[f64],
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<scoresde_solvers::Solution> {
    let t_max = sde.t_max();
    let reverse = sde.reverse(counted);
    let opts = SolveOptions {
        chunk_size: spec.chunk,
        record: record.to_vec(),
        progress,
    };
    let grid = || -> Result<Steps> {
        let spacing = spec.options.spacing.unwrap_or(Spacing::Time);
        let g: TimeGrid =
            grid::time_grid(sde, spacing, spec.options.rho, t_max, eps, spec.steps + 1)?;
        Ok(Steps::Grid(g))
    };
    let noise = KeyedNormal::new(spec.seed, SOLVER_DOMAIN);
    let pf = reverse.probability_flow();
    let plug_in = reverse.with_lambda(spec.options.lambda);
    let (problem, method, steps) = match spec.sampler {
        Sampler::Em => (Problem::Sde(&reverse, &noise), Step::EulerMaruyama, grid()?),
        Sampler::PlugIn => (Problem::Sde(&plug_in, &noise), Step::EulerMaruyama, grid()?),
        Sampler::PfEuler => (Problem::Ode(&pf), Step::Rk(&EULER), grid()?),
        Sampler::PfHeun => (Problem::Ode(&pf), Step::Rk(&HEUN), grid()?),
        Sampler::PfRk4 => (Problem::Ode(&pf), Step::Rk(&RK4), grid()?),
        Sampler::PfRk45 => {
            if !(spec.rtol > 0.0 && spec.atol > 0.0) {
                return Err(invalid!(
                    "`rtol` and `atol` must be positive (got {} and {})",
                    spec.rtol,
                    spec.atol
                ));
            }
            let tol = Tolerances::new(spec.rtol, spec.atol);
            let adaptive = Steps::Adaptive {
                t0: t_max,
                t1: eps,
                tol,
            };
            (Problem::Ode(&pf), Step::Rk(&DOPRI5), adaptive)
        }
        _ => unreachable!("step-map samplers run in step_map"),
    };
    Ok(solve(problem, method, &steps, x_t, &opts)?)
}

/// A sampler's final state, its time, work counters and records.
pub(crate) type Finished = (Array2<f64>, f64, Stats, Vec<(f64, Array2<f64>)>);
