//! EDM's general probability-flow ODE (Karras et al. 2022, eq. 4 with Table 1's schedules):
//! for a noise schedule σ(t) and a scaling s(t),
//! `dx/dt = (ṡ/s) x + (σ̇/σ)(x − s D(x/s; σ))`, with `D(y; σ) = E[y₀ | y]` the denoiser of data
//! plus N(0, σ² I) noise. Every schedule has the same trajectories in `(σ, x/s)`; what differs
//! is how curved they are in `t`, and so how many steps a solver needs (EDM §3, Figs. 2–3).

use crate::score::Score;
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};
use scoresde_solvers::{solve, Method, OdeSystem, Problem, SolveOptions, Steps, Time, TimeGrid};

/// σ(t) and s(t) of EDM Table 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Song et al.'s VP: `σ(t) = √(e^{½β_d t² + β_min t} − 1)`, `s(t) = 1/√(1 + σ(t)²)`.
    Vp { beta_d: f64, beta_min: f64 },
    /// VE in EDM's form: `σ(t) = √t`, `s = 1`.
    Ve,
    /// EDM / DDIM: `σ(t) = t`, `s = 1` (straight trajectories where D is constant).
    Linear,
}

impl Schedule {
    /// The VP schedule of Song et al. 2021 (β from 0.1 to 20).
    pub const VP: Schedule = Schedule::Vp {
        beta_d: 19.9,
        beta_min: 0.1,
    };

    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Vp { .. } => "VP",
            Schedule::Ve => "VE",
            Schedule::Linear => "σ(t) = t",
        }
    }

    /// `(σ, σ̇, s, ṡ)` at t.
    pub fn at(&self, t: f64) -> (f64, f64, f64, f64) {
        match *self {
            Schedule::Vp { beta_d, beta_min } => {
                let q = 0.5 * beta_d * t * t + beta_min * t;
                let dq = beta_d * t + beta_min;
                let sigma = q.exp_m1().sqrt();
                let s = (-0.5 * q).exp();
                (sigma, dq * q.exp() / (2.0 * sigma), s, -0.5 * dq * s)
            }
            Schedule::Ve => (t.sqrt(), 0.5 / t.sqrt(), 1.0, 0.0),
            Schedule::Linear => (t, 1.0, 1.0, 0.0),
        }
    }

    /// σ(t).
    pub fn sigma(&self, t: f64) -> f64 {
        self.at(t).0
    }

    /// s(t).
    pub fn scale(&self, t: f64) -> f64 {
        self.at(t).2
    }

    /// The inverse of σ(t).
    pub fn t_of_sigma(&self, sigma: f64) -> f64 {
        match *self {
            Schedule::Vp { beta_d, beta_min } => {
                let q = (sigma * sigma).ln_1p();
                ((beta_min * beta_min + 2.0 * beta_d * q).sqrt() - beta_min) / beta_d
            }
            Schedule::Ve => sigma * sigma,
            Schedule::Linear => sigma,
        }
    }
}

/// Where the N steps from σ_max down to σ_min fall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepRule {
    /// Uniform in the schedule's t.
    UniformT,
    /// EDM eq. 5: `σ_i = (σ_max^{1/ρ} + i/N (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ`.
    Rho(f64),
}

/// The N + 1 times of `rule` on `schedule` from σ_max down to σ_min.
pub fn steps(
    schedule: Schedule,
    rule: StepRule,
    sigma_max: f64,
    sigma_min: f64,
    n: usize,
) -> Result<TimeGrid> {
    if !(sigma_min > 0.0 && sigma_min < sigma_max && sigma_max.is_finite()) {
        return Err(invalid!(
            "EDM steps need 0 < `sigma_min` < `sigma_max` < ∞, got {} and {}",
            crate::error::num(sigma_min),
            crate::error::num(sigma_max)
        ));
    }
    if n == 0 {
        return Err(invalid!("EDM steps need at least 1 step"));
    }
    let (t0, t1) = (
        schedule.t_of_sigma(sigma_max),
        schedule.t_of_sigma(sigma_min),
    );
    let times = (0..=n)
        .map(|i| {
            let f = i as f64 / n as f64;
            match rule {
                StepRule::UniformT => t0 + (t1 - t0) * f,
                StepRule::Rho(rho) => {
                    let (a, b) = (sigma_max.powf(1.0 / rho), sigma_min.powf(1.0 / rho));
                    schedule.t_of_sigma((a + (b - a) * f).powf(rho))
                }
            }
        })
        .collect();
    Ok(TimeGrid::new(times)?)
}

/// `D(y; σ)` from a score of `sde`: at the time with σ̃(t) = σ, `x = m y` and Tweedie's
/// `D = (x + s² ∇log p_t(x))/m`.
#[derive(Clone, Copy)]
pub struct Denoiser<'a> {
    sde: &'a dyn Sde,
    score: &'a dyn Score,
}

impl<'a> Denoiser<'a> {
    /// Refuses a score of another SDE.
    pub fn new(sde: &'a dyn Sde, score: &'a dyn Score) -> Result<Self> {
        crate::score::check_sde(score, sde)?;
        Ok(Self { sde, score })
    }

    /// The largest σ it can denoise at: σ̃(t_max).
    pub fn sigma_max(&self) -> f64 {
        self.sde.sigma_tilde(self.sde.t_max())
    }

    /// `D(y; σ)` per row of `y` into `out`.
    pub fn denoise(&self, sigma: f64, y: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        let t = self.sde.t_of_sigma_tilde(sigma);
        let k = self.sde.marginal(t);
        let x = y.mapv(|v| v * k.mean);
        self.score.score(Time::Shared(t), x.view(), out.view_mut());
        let s2 = k.std * k.std;
        Zip::from(&mut out)
            .and(&x)
            .for_each(|o, &x| *o = (x + s2 * *o) / k.mean);
    }
}

/// EDM eq. 4 on a schedule with a denoiser, for the solvers crate.
pub struct EdmOde<'a> {
    pub schedule: Schedule,
    pub denoiser: Denoiser<'a>,
}

impl<'a> EdmOde<'a> {
    /// Refuses σ_max beyond the denoiser's range.
    pub fn new(schedule: Schedule, denoiser: Denoiser<'a>, sigma_max: f64) -> Result<Self> {
        if sigma_max > denoiser.sigma_max() * (1.0 + 1e-12) {
            return Err(invalid!(
                "`sigma_max` {sigma_max} lies beyond the denoiser's largest noise level {}",
                denoiser.sigma_max()
            ));
        }
        Ok(Self { schedule, denoiser })
    }

    /// The state `x = s(t) y` at t of the data-scale points `y`.
    pub fn to_state(&self, t: f64, y: &Array2<f64>) -> Array2<f64> {
        y * self.schedule.scale(t)
    }

    /// `y = x/s(t)`.
    pub fn to_data(&self, t: f64, x: &Array2<f64>) -> Array2<f64> {
        x / self.schedule.scale(t)
    }

    /// Integrates from data-scale starts `y0` at the first time of `steps` to its last with
    /// the solvers crate: the data-scale endpoints and the evaluations per particle.
    pub fn solve(
        &self,
        steps: &Steps,
        method: Method,
        y0: &Array2<f64>,
    ) -> Result<(Array2<f64>, f64)> {
        let (t0, t1) = match steps {
            Steps::Grid(g) => (g.times()[0], *g.times().last().unwrap_or(&0.0)),
            Steps::Adaptive { t0, t1, .. } => (*t0, *t1),
        };
        let sol = solve(
            Problem::Ode(self),
            method,
            steps,
            self.to_state(t0, y0),
            &SolveOptions::default(),
        )?;
        Ok((self.to_data(t1, &sol.x), sol.stats.evals_per_particle()))
    }
}

impl OdeSystem for EdmOde<'_> {
    fn dim(&self) -> usize {
        self.denoiser.score.dim()
    }
    fn rhs(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        match t {
            Time::Shared(t) => self.rhs_at(t, x, out),
            // Adaptive solves step each row at its own time.
            Time::PerRow(ts) => {
                for (i, &t) in ts.iter().enumerate() {
                    let r = ndarray::s![i..i + 1, ..];
                    self.rhs_at(t, x.slice(r), out.slice_mut(r));
                }
            }
        }
    }
}

impl EdmOde<'_> {
    fn rhs_at(&self, t: f64, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        let (sigma, dsigma, s, ds) = self.schedule.at(t);
        let y = x.mapv(|v| v / s);
        self.denoiser.denoise(sigma, y.view(), out.view_mut());
        let (a, b) = (ds / s, dsigma / sigma);
        Zip::from(&mut out)
            .and(&x)
            .for_each(|o, &x| *o = a * x + b * (x - s * *o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// σ̇ and ṡ agree with central differences; t(σ(t)) = t.
    #[test]
    fn schedules_are_consistent() {
        for sch in [Schedule::VP, Schedule::Ve, Schedule::Linear] {
            for t in [0.01, 0.1, 0.5, 1.0] {
                let (sigma, ds, s, dsc) = sch.at(t);
                let h = 1e-6;
                let num = (sch.sigma(t + h) - sch.sigma(t - h)) / (2.0 * h);
                let nums = (sch.scale(t + h) - sch.scale(t - h)) / (2.0 * h);
                assert!((num - ds).abs() < 1e-5 * ds.abs().max(1.0), "{sch:?} σ̇");
                assert!((nums - dsc).abs() < 1e-6, "{sch:?} ṡ");
                assert!((sch.t_of_sigma(sigma) - t).abs() < 1e-9, "{sch:?} t(σ)");
                assert!(s > 0.0);
            }
        }
    }
}
