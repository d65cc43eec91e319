//! Song et al. 2021's predictor–corrector samplers (App. E–G; papers.md §1.5), written with the
//! exact forward transition of one step, `x_t = a x_{t'} + b z` ([`Sde::transition`]): for the
//! VP-SDE on DDPM's grid `a = √(1 − β_i)`, `b² = β_i`; for VE `a = 1`, `b² = σ_i² − σ_{i−1}²`.
//! DDPM's Algorithm 2 is the ancestral predictor on DDPM's grid.

use super::engine::StepContext;
use super::grid::{ddpm_times, Grid};
use super::options::{Corrector, Predictor};
use super::Method;
use crate::ddpm::Variance;
use crate::reverse::reverse_drift;
use crate::sde::Sde;
use crate::Result;
use ndarray::{Array2, Zip};

/// `pc`: N noise levels (N + 1 grid points), corrector then predictor at each.
#[derive(Clone, Debug)]
pub struct PcSampler {
    pub pc: Pc,
    pub grid: Grid,
}

impl Method for PcSampler {
    fn name(&self) -> String {
        "pc".into()
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        self.grid.times(sde, eps, steps + 1)
    }
    /// N (p + c n).
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(steps as u64 * self.pc.evals_per_step())
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        _: usize,
    ) -> Result<()> {
        run(ctx, x, t, &self.pc)
    }
}

/// DDPM's Algorithm 2 (Ho et al. 2020): the ancestral predictor on N points of DDPM's
/// `discrete`-step schedule (default M = N).
#[derive(Clone, Debug)]
pub struct Ddpm {
    pub variance: Variance,
    pub discrete: Option<usize>,
}

impl Method for Ddpm {
    fn name(&self) -> String {
        "ddpm".into()
    }
    fn grid(&self, sde: &dyn Sde, _: f64, steps: usize) -> Result<Vec<f64>> {
        ddpm_times(sde, self.discrete.unwrap_or(steps), steps, "ddpm")
    }
    /// N − 1.
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(steps.saturating_sub(1) as u64)
    }
    fn denoises_by_default(&self) -> bool {
        true
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        _: usize,
    ) -> Result<()> {
        let ancestral = Pc {
            predictor: Predictor::Ancestral,
            corrector: Corrector::None,
            corrector_steps: 0,
            snr: 0.0,
            variance: self.variance,
        };
        run(ctx, x, t, &ancestral)
    }
}

/// Settings of one PC run.
#[derive(Clone, Debug)]
pub struct Pc {
    pub predictor: Predictor,
    pub corrector: Corrector,
    pub corrector_steps: usize,
    pub snr: f64,
    pub variance: Variance,
}

impl Pc {
    /// Score evaluations per grid step.
    pub fn evals_per_step(&self) -> u64 {
        let p = u64::from(self.predictor != Predictor::None);
        let c = if self.corrector == Corrector::None {
            0
        } else {
            self.corrector_steps as u64
        };
        p + c
    }
}

/// Runs `pc` over the decreasing grid `times` (corrector at t_k, then predictor t_k → t_{k+1}).
fn run(eng: &mut StepContext<'_>, x: &mut Array2<f64>, times: &[f64], pc: &Pc) -> Result<()> {
    for w in times.windows(2) {
        let (t, t_next) = (w[0], w[1]);
        let tr = eng.sde.transition(t_next, t);
        if pc.corrector == Corrector::Langevin {
            // α_i = 1 − β_i for VP (= a²), 1 for VE.
            let alpha = tr.mean * tr.mean;
            for _ in 0..pc.corrector_steps {
                langevin_corrector(eng, x, t, alpha, pc.snr);
            }
        }
        predictor(eng, x, t, t_next, pc.predictor, pc.variance);
        eng.finish_step(t_next, x)?;
    }
    Ok(())
}

/// One predictor step from t to t' < t.
fn predictor(
    eng: &mut StepContext<'_>,
    x: &mut Array2<f64>,
    t: f64,
    t_next: f64,
    p: Predictor,
    variance: Variance,
) {
    if p == Predictor::None {
        return;
    }
    let (n, d) = x.dim();
    let tr = eng.sde.transition(t_next, t);
    let (a, b2) = (tr.mean, tr.std * tr.std);
    let s = eng.score(t, x.view());
    match p {
        Predictor::EulerMaruyama => {
            let dt = t - t_next;
            let (f, g) = (eng.sde.drift_coeff(t), eng.sde.diffusion(t));
            let z = eng.normal(n, d);
            let gs = g * dt.sqrt();
            Zip::from(x).and(&s).and(&z).for_each(|x, &s, &z| {
                *x += -reverse_drift(f, g * g, *x, s) * dt + gs * z;
            });
        }
        Predictor::ReverseDiffusion => {
            let z = eng.normal(n, d);
            let bs = b2.sqrt();
            Zip::from(x)
                .and(&s)
                .and(&z)
                .for_each(|x, &s, &z| *x = (2.0 - a) * *x + b2 * s + bs * z);
        }
        Predictor::Ancestral => {
            let var = match variance {
                Variance::Beta => b2,
                Variance::BetaTilde => {
                    let (k, k_next) = (eng.marginal(t), eng.marginal(t_next));
                    b2 * (k_next.std / k.std).powi(2)
                }
            };
            let z = eng.normal(n, d);
            let sd = var.sqrt();
            Zip::from(x)
                .and(&s)
                .and(&z)
                .for_each(|x, &s, &z| *x = (*x + b2 * s) / a + sd * z);
        }
        Predictor::ProbabilityFlow => {
            Zip::from(x)
                .and(&s)
                .for_each(|x, &s| *x = (2.0 - a) * *x + 0.5 * b2 * s);
        }
        Predictor::None => unreachable!("handled above"),
    }
}

/// Mean over rows of the row norms (summed in row order).
fn mean_row_norm(a: &Array2<f64>) -> f64 {
    let total: f64 = a.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum();
    total / a.nrows().max(1) as f64
}

/// Song et al.'s Langevin corrector at time t: `ε = 2α (r ‖z‖/‖s‖)²`, `x ← x + ε s + √(2ε) z`,
/// with the norms averaged over the batch (score_sde `LangevinCorrector`).
fn langevin_corrector(
    eng: &mut StepContext<'_>,
    x: &mut Array2<f64>,
    t: f64,
    alpha: f64,
    snr: f64,
) {
    let (n, d) = x.dim();
    let s = eng.score(t, x.view());
    let z = eng.normal(n, d);
    let (gn, zn) = (mean_row_norm(&s), mean_row_norm(&z));
    let step = if gn > 0.0 {
        2.0 * alpha * (snr * zn / gn).powi(2)
    } else {
        0.0
    };
    let sd = (2.0 * step).sqrt();
    Zip::from(x)
        .and(&s)
        .and(&z)
        .for_each(|x, &s, &z| *x += step * s + sd * z);
}
