//! Time grids as objects of study: the published Align Your Steps σ lists (Sabour, Fidler &
//! Kreis 2024) with their log-linear interpolation, the tangent law of Sun, Poor & Zhang 2026
//! for Gaussian data, and grids optimised against the exact endpoint with the oracle in the
//! loop ([`GridProblem`]). Any grid runs with any sampler through [`OnTimes`], or from a file
//! (`spacing = "file:GRID.csv"`, [`super::grid::GridFile`]).

use super::engine::StepContext;
use super::{integrate_with, Method, RunSpec};
use crate::numerics::nelder_mead;
use crate::score::Score;
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::Array2;

/// Align Your Steps' 10-step σ list for Stable Diffusion 1.5, σ = √((1 − ᾱ)/ᾱ) from σ_max to
/// σ_min (NVIDIA's list as ComfyUI `nodes_align_your_steps.py` ships it; diffusers'
/// `AysSchedules` rounds it to three decimals and ends on 0).
pub const AYS_SD15: [f64; 11] = [
    14.6146412293,
    6.4745760956,
    3.8636745985,
    2.6946151520,
    1.8841921177,
    1.3943805092,
    0.9642583904,
    0.6523686016,
    0.3977456272,
    0.1515232662,
    0.0291671582,
];

/// Align Your Steps' 10-step σ list for SDXL (as [`AYS_SD15`]).
pub const AYS_SDXL: [f64; 11] = [
    14.6146412293,
    6.3184485287,
    3.7681790315,
    2.1811480769,
    1.3405244945,
    0.8620721141,
    0.5550693289,
    0.3798540708,
    0.2332364134,
    0.1114188177,
    0.0291671582,
];

/// A decreasing σ list resampled to `points` by linear interpolation of log σ against an
/// equally spaced index, the rule the AYS authors publish (`loglinear_interp`).
pub fn loglinear_interp(sigmas: &[f64], points: usize) -> Vec<f64> {
    let k = sigmas.len();
    if points < 2 || k < 2 {
        return sigmas.to_vec();
    }
    (0..points)
        .map(|i| {
            let x = i as f64 / (points - 1) as f64 * (k - 1) as f64;
            let j = (x.floor() as usize).min(k - 2);
            let f = x - j as f64;
            ((1.0 - f) * sigmas[j].ln() + f * sigmas[j + 1].ln()).exp()
        })
        .collect()
}

/// The tangent law (Sun, Poor & Zhang 2026) for data N(0, c² I): σ̃_i = c tan θ_i with θ equally
/// spaced between arctan(σ̃_max/c) and arctan(σ̃_min/c). For DDIM (Euler in σ̃ on x/m) each step
/// multiplies the state by `1 + (tan θ' − tan θ) sin θ cos θ` where the flow multiplies it by
/// `cos θ/cos θ'`: the log-ratio is −δ²/2 + O(δ³) with δ = θ − θ', so the end's variance error
/// ∝ Σ δ² is least, for a fixed Σ δ, at equal δ.
pub fn tangent_law(c: f64, sigma_max: f64, sigma_min: f64, points: usize) -> Vec<f64> {
    let (a, b) = ((sigma_max / c).atan(), (sigma_min / c).atan());
    (0..points)
        .map(|i| c * (a + (b - a) * i as f64 / (points - 1) as f64).tan())
        .collect()
}

/// A σ̃ list (decreasing) as times on `sde`, its ends set exactly to `t0` and `t1`.
pub fn times_of_sigmas(sde: &dyn Sde, sigmas: &[f64], t0: f64, t1: f64) -> Vec<f64> {
    let n = sigmas.len();
    sigmas
        .iter()
        .enumerate()
        .map(|(i, &v)| match i {
            0 => t0,
            _ if i + 1 == n => t1,
            _ => sde.t_of_sigma_tilde(v),
        })
        .collect()
}

/// A sampler run on given times instead of its own grid (same count: checked).
pub struct OnTimes<'a> {
    pub inner: &'a dyn Method,
    pub times: Vec<f64>,
}

impl Method for OnTimes<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        let own = self.inner.grid(sde, eps, steps)?.len();
        if own != self.times.len() {
            return Err(invalid!(
                "{} with {steps} steps needs {own} grid points, got {}",
                self.inner.name(),
                self.times.len()
            ));
        }
        Ok(self.times.clone())
    }
    fn nfe(&self, steps: usize) -> Option<u64> {
        self.inner.nfe(steps)
    }
    fn order(&self) -> Option<u32> {
        self.inner.order()
    }
    fn order_at(&self, steps: usize) -> Option<u32> {
        self.inner.order_at(steps)
    }
    fn reads_steps(&self) -> bool {
        self.inner.reads_steps()
    }
    fn denoises_by_default(&self) -> bool {
        self.inner.denoises_by_default()
    }
    fn step_count(&self, steps: usize, times: &[f64]) -> usize {
        self.inner.step_count(steps, times)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        times: &[f64],
        steps: usize,
    ) -> Result<()> {
        self.inner.run(ctx, x, times, steps)
    }
}

/// `points` times from `t0` down to `t1` equally spaced in λ = ½ log-SNR (in t where λ(t0) is
/// infinite).
pub fn lambda_uniform(sde: &dyn Sde, t0: f64, t1: f64, points: usize) -> Vec<f64> {
    let (l0, l1) = (sde.log_snr(t0), sde.log_snr(t1));
    (0..points)
        .map(|i| {
            let f = i as f64 / (points - 1) as f64;
            if i == 0 {
                t0
            } else if i + 1 == points {
                t1
            } else if l0.is_finite() {
                sde.t_of_log_snr(l0 + (l1 - l0) * f)
            } else {
                t0 + (t1 - t0) * f
            }
        })
        .collect()
}

/// The endpoint error of a sampler with N steps on a grid from `t0` to `t1`, against a
/// reference solve from the same states: the objective of grid optimisation.
pub struct GridProblem<'a> {
    pub sde: &'a dyn Sde,
    pub score: &'a dyn Score,
    pub method: &'a dyn Method,
    pub steps: usize,
    pub x_t: Array2<f64>,
    /// The exact flow's states at `t1` from `x_t` at `t0`.
    pub reference: Array2<f64>,
    pub t0: f64,
    pub t1: f64,
}

/// Steps of the fine RK4 solve behind [`GridProblem::new`]'s reference (λ-uniform; error
/// below 1e-11 on the mixtures here).
pub const REFERENCE_STEPS: usize = 4000;

impl<'a> GridProblem<'a> {
    /// The problem with its reference: classical RK4 on the PF-ODE over [`REFERENCE_STEPS`]
    /// λ-uniform steps from `t0` to `t1`.
    pub fn new(
        sde: &'a dyn Sde,
        score: &'a dyn Score,
        method: &'a dyn Method,
        steps: usize,
        x_t: Array2<f64>,
        t0: f64,
        t1: f64,
    ) -> Result<Self> {
        if !(t0 > t1 && t1 > 0.0 && t0 <= sde.t_max()) {
            return Err(invalid!(
                "a grid runs from t0 down to t1 inside (0, {}], got {t0} to {t1}",
                sde.t_max()
            ));
        }
        let rk4 = super::config::Sampler::PfRk4(Default::default()).method(Some(sde))?;
        let fine = OnTimes {
            inner: rk4.as_ref(),
            times: lambda_uniform(sde, t0, t1, REFERENCE_STEPS + 1),
        };
        let reference = run(sde, score, &fine, REFERENCE_STEPS, x_t.clone(), t1)?;
        Ok(Self {
            sde,
            score,
            method,
            steps,
            x_t,
            reference,
            t0,
            t1,
        })
    }

    /// The number of points the sampler's grid has for N = `steps`.
    pub fn points(&self) -> Result<usize> {
        Ok(self.method.grid(self.sde, self.t1, self.steps)?.len())
    }

    /// The mean endpoint error on `times` (first t0, last t1, decreasing).
    pub fn error(&self, times: &[f64]) -> Result<f64> {
        let on = OnTimes {
            inner: self.method,
            times: times.to_vec(),
        };
        let x = run(
            self.sde,
            self.score,
            &on,
            self.steps,
            self.x_t.clone(),
            self.t1,
        )?;
        Ok(super::convergence::endpoint_error(&x, &self.reference))
    }

    /// The grid that minimises [`GridProblem::error`], from `start` (its interior points
    /// move; the ends stay): Nelder–Mead on the log-increments of λ (of t where λ(t0) = −∞),
    /// so every candidate is a decreasing grid, at most `max_evals` runs. Returns the grid and
    /// its error.
    pub fn optimise(&self, start: &[f64], max_evals: usize) -> Result<(Vec<f64>, f64)> {
        let use_lambda = self.sde.log_snr(self.t0).is_finite();
        let coord = |t: f64| {
            if use_lambda {
                0.5 * self.sde.log_snr(t)
            } else {
                t
            }
        };
        let (u0, u1) = (coord(self.t0), coord(self.t1));
        let times_of = |z: &[f64]| -> Vec<f64> {
            // Increments ∝ e^{z_j}, z_0 = 0 fixed.
            let w: Vec<f64> = std::iter::once(0.0)
                .chain(z.iter().copied())
                .map(f64::exp)
                .collect();
            let total: f64 = w.iter().sum();
            let mut acc = 0.0;
            let mut t = vec![self.t0];
            for wj in &w[..w.len() - 1] {
                acc += wj / total;
                let u = u0 + (u1 - u0) * acc;
                t.push(if use_lambda {
                    self.sde.t_of_log_snr(2.0 * u)
                } else {
                    u
                });
            }
            t.push(self.t1);
            t
        };
        let inc: Vec<f64> = start
            .windows(2)
            .map(|w| coord(w[1]) - coord(w[0]))
            .collect();
        if start.len() < 3
            || inc
                .iter()
                .any(|d| (*d * (u1 - u0)).partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
        {
            return Err(invalid!(
                "the start grid must run from t0 to t1 strictly monotonically with an interior point"
            ));
        }
        let z0: Vec<f64> = inc[1..].iter().map(|d| (d / inc[0]).ln()).collect();
        let objective = |z: &[f64]| -> f64 {
            let t = times_of(z);
            if t.windows(2)
                .any(|w| w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Less))
            {
                return f64::INFINITY;
            }
            self.error(&t).map_or(f64::INFINITY, |e| e.max(1e-300).ln())
        };
        let (z, _) = nelder_mead(objective, &z0, 0.5, max_evals);
        // A second pass from the first's optimum with a fresh simplex.
        let (z, _) = nelder_mead(objective, &z, 0.2, max_evals / 2);
        let t = times_of(&z);
        let e = self.error(&t)?;
        Ok((t, e))
    }
}

/// Runs `method` from `x_t` (at its grid's first time) to `t1`, denoising off.
fn run(
    sde: &dyn Sde,
    score: &dyn Score,
    method: &dyn Method,
    steps: usize,
    x_t: Array2<f64>,
    t1: f64,
) -> Result<Array2<f64>> {
    let spec = RunSpec {
        steps,
        eps: Some(t1),
        n: x_t.nrows(),
        denoise: Some(false),
        ..Default::default()
    };
    Ok(integrate_with(sde, score, x_t, method, &spec, None)?.x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AYS rule keeps the list at its own length and interpolates log σ linearly between.
    #[test]
    fn loglinear_interp_is_the_published_rule() {
        let same = loglinear_interp(&AYS_SD15, 11);
        for (a, b) in same.iter().zip(AYS_SD15) {
            assert!((a / b - 1.0).abs() < 1e-14, "{a} vs {b}");
        }
        let s = loglinear_interp(&AYS_SD15, 21);
        assert!((s[1] - (AYS_SD15[0] * AYS_SD15[1]).sqrt()).abs() < 1e-12);
        assert!((s[20] / AYS_SD15[10] - 1.0).abs() < 1e-14);
    }
}
