//! DDIM (Song, Meng & Ermon 2021, eq. 12) for any SDE with Gaussian kernels: from t to t' < t,
//! `x_{t'} = m' x̂₀ + √(s'² − σ_η²) ε̂ + σ_η z` with `x̂₀ = (x − s ε̂)/m` and
//! `σ_η = η (s'/s) b`, where `b² = s² − (m/m')² s'²` is the forward step variance (for VP:
//! `σ_η = η √((1 − ᾱ')/(1 − ᾱ)) √(1 − ᾱ/ᾱ')`). η = 0 is deterministic (= DPM-Solver-1),
//! η = 1 has DDPM's posterior variance β̃.

use super::engine::StepContext;
use super::expint::{ddim_move, ddim_move_from};
use super::grid::{ddpm_times, Grid};
use super::Method;
use crate::score::{par_eps, Score};
use crate::sde::Sde;
use crate::Result;
use ndarray::Array2;
use scoresde_solvers::Time;

/// DDIM with noise scale η, on `grid` or on N points of DDPM's `discrete`-step schedule.
#[derive(Clone, Debug)]
pub struct Ddim {
    pub eta: f64,
    pub discrete: Option<usize>,
    pub grid: Grid,
}

impl Method for Ddim {
    fn name(&self) -> String {
        "ddim".into()
    }
    /// N grid points.
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        match self.discrete {
            Some(m) => ddpm_times(sde, m, steps, "ddim"),
            None => self.grid.times(sde, eps, steps),
        }
    }
    /// N − 1.
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(steps.saturating_sub(1) as u64)
    }
    /// η = 0: the exponential-integrator first-order step (= DPM-Solver-1); stochastic else.
    fn order(&self) -> Option<u32> {
        (self.eta == 0.0).then_some(1)
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
        run(ctx, x, t, self.eta)
    }
}

fn run(eng: &mut StepContext<'_>, x: &mut Array2<f64>, times: &[f64], eta: f64) -> Result<()> {
    let (n, d) = x.dim();
    for w in times.windows(2) {
        let (t, t_next) = (w[0], w[1]);
        let (k, k_next) = (eng.marginal(t), eng.marginal(t_next));
        let b = eng.sde.transition(t_next, t).std;
        let sig = eta * k_next.std / k.std * b;
        let c_eps = (k_next.std * k_next.std - sig * sig).max(0.0).sqrt();
        let z_of = |eng: &mut StepContext<'_>| (sig > 0.0).then(|| eng.normal(n, d));
        let z;
        if k.mean > 0.0 {
            let eps = eng.eps(t, x.view());
            z = z_of(eng);
            ddim_move(x, &eps, k, k_next.mean, c_eps);
        } else {
            // m = 0: x̂₀ and ε̂ from the field's velocity.
            let (x0, eps) = eng.x0_eps(t, x.view());
            z = z_of(eng);
            ddim_move_from(x, &x0, &eps, k_next.mean, c_eps);
        }
        if let Some(z) = z {
            x.scaled_add(sig, &z);
        }
        eng.finish_step(t_next, x)?;
    }
    Ok(())
}

/// DDIM's deterministic (η = 0) path through `times`, in either order: with increasing times it
/// is DDIM's encoder x₀ → x_T (Song, Meng & Ermon 2021, §5.4), with decreasing ones the sampler.
pub fn ode_path(
    sde: &dyn Sde,
    score: &dyn Score,
    mut x: Array2<f64>,
    times: &[f64],
) -> Array2<f64> {
    for w in times.windows(2) {
        let (k, k_next) = (sde.marginal(w[0]), sde.marginal(w[1]));
        let eps = par_eps(score, sde, Time::Shared(w[0]), x.view());
        ddim_move(&mut x, &eps, k, k_next.mean, k_next.std);
    }
    x
}
