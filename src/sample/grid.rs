//! Sampling time grids from t_max down to ε. Every grid starts exactly at t_max and ends exactly
//! at ε (the endpoints are set, not computed), and is strictly decreasing.

use crate::ddpm::DiscreteSchedule;
use crate::sde::Sde;
use crate::{invalid, Result};
use scoresde_solvers::TimeGrid;

/// How the points of a grid are spread between t_max and ε.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Spacing {
    /// Uniform in t (Song et al. 2021).
    Time,
    /// Uniform in log-SNR, i.e. in DPM-Solver's λ = log(m/s) (Lu et al. 2022).
    Logsnr,
    /// EDM's ρ-schedule in σ̃ = s/m: `σ̃_i = (σ̃_max^{1/ρ} + i/(N−1)(σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ`
    /// (Karras et al. 2022, eq. 5).
    Edm,
}

/// `points ≥ 2` times from `t_max` to `eps`, spread by `spacing`.
pub fn time_grid(
    sde: &dyn Sde,
    spacing: Spacing,
    rho: f64,
    t_max: f64,
    eps: f64,
    points: usize,
) -> Result<TimeGrid> {
    if points < 2 {
        return Err(invalid!(
            "a sampling grid needs at least 2 points (1 step), got {points}"
        ));
    }
    if spacing != Spacing::Time && !sde.log_snr(t_max).is_finite() && points > 2 {
        // m(t_max) = 0 (rectified, trigonometric): λ and σ̃ are infinite there. The first step
        // is the uniform-in-t one; the other points are spaced from its end.
        let t1 = t_max + (eps - t_max) / (points - 1) as f64;
        let mut times = vec![t_max];
        times.extend_from_slice(time_grid(sde, spacing, rho, t1, eps, points - 1)?.times());
        return Ok(TimeGrid::new(times)?);
    }
    let last = (points - 1) as f64;
    let mut times: Vec<f64> = match spacing {
        Spacing::Time => (0..points)
            .map(|i| t_max + (eps - t_max) * i as f64 / last)
            .collect(),
        Spacing::Logsnr => {
            let (l0, l1) = (sde.log_snr(t_max), sde.log_snr(eps));
            (0..points)
                .map(|i| sde.t_of_log_snr(l0 + (l1 - l0) * i as f64 / last))
                .collect()
        }
        Spacing::Edm => {
            if !(rho > 0.0 && rho.is_finite()) {
                return Err(invalid!(
                    "`rho` must be positive, got {}",
                    crate::error::num(rho)
                ));
            }
            let (a, b) = (
                sde.sigma_tilde(t_max).powf(1.0 / rho),
                sde.sigma_tilde(eps).powf(1.0 / rho),
            );
            (0..points)
                .map(|i| sde.t_of_sigma_tilde((a + (b - a) * i as f64 / last).powf(rho)))
                .collect()
        }
    };
    times[0] = t_max;
    times[points - 1] = eps;
    TimeGrid::new(times).map_err(|e| {
        invalid!(
            "{e}: {points} points between {} and {} are too many for this spacing",
            crate::error::num(t_max),
            crate::error::num(eps)
        )
    })
}

/// DDPM's grid: the SDE times `t̃_i` whose continuous ᾱ equals the discrete ᾱ_i of an N-step
/// schedule, at `points` indices spread linearly from i = N down to i = 1 (DDIM's linear
/// sub-sequence τ; all N when points = N).
pub fn ddpm_grid(schedule: &DiscreteSchedule, points: usize) -> Result<TimeGrid> {
    let n = schedule.len();
    if points < 2 || points > n {
        return Err(invalid!(
            "a sub-sequence of a {n}-step DDPM schedule needs 2 … {n} points, got {points}"
        ));
    }
    let last = (points - 1) as f64;
    let times = (0..points)
        .map(|j| {
            let i = n as f64 - (n - 1) as f64 * j as f64 / last;
            schedule.time(i.round() as usize)
        })
        .collect();
    Ok(TimeGrid::new(times)?)
}

/// A sampler's grid setting: the spacing and EDM's ρ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    pub spacing: Spacing,
    pub rho: f64,
}

impl Grid {
    /// `points` times from the SDE's t_max to `eps` ([`time_grid`]).
    pub fn times(&self, sde: &dyn Sde, eps: f64, points: usize) -> Result<Vec<f64>> {
        Ok(
            time_grid(sde, self.spacing, self.rho, sde.t_max(), eps, points)?
                .times()
                .to_vec(),
        )
    }
}

/// Refuses to run sampler `who` from t_max on a path where m(t_max) = 0 (rectified and
/// trigonometric paths): its update divides by m or by σ̃ = s/m there (`why`).
pub fn refuse_signal_free_start(sde: &dyn Sde, who: &str, why: &str) -> Result<()> {
    if sde.marginal(sde.t_max()).mean > 0.0 {
        return Ok(());
    }
    Err(invalid!(
        "`sampler` {who} cannot start on the {} path, where m(t_max) = 0: {why}; use em, ddim, dpm-solver-pp2m, pc or a pf-* sampler",
        sde.name()
    ))
}

/// DDPM's `n`-step schedule on the VP-SDE `sde`; `who` names the sampler in the error.
pub fn ddpm_schedule(sde: &dyn Sde, n: usize, who: &str) -> Result<DiscreteSchedule> {
    let vp = sde.as_vp().ok_or_else(|| {
        invalid!(
            "`sampler` {who} on a discrete schedule needs the VP SDE (got {})",
            sde.name()
        )
    })?;
    DiscreteSchedule::from_vp(vp, n)
}

/// The times of `points` indices of DDPM's `n`-step schedule on `sde` ([`ddpm_grid`]).
pub fn ddpm_times(sde: &dyn Sde, n: usize, points: usize, who: &str) -> Result<Vec<f64>> {
    Ok(ddpm_grid(&ddpm_schedule(sde, n, who)?, points)?
        .times()
        .to_vec())
}
