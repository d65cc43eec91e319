//! Sampling time grids from t_max down to ε. Every grid starts exactly at t_max and ends exactly
//! at ε (the endpoints are set, not computed), and is strictly decreasing.

use crate::ddpm::DiscreteSchedule;
use crate::sde::Sde;
use crate::{invalid, Result};
use scoresde_solvers::TimeGrid;

/// How the points of a grid are spread between t_max and ε. In files and flags: `time`,
/// `logsnr`, `edm`, or `file:PATH` ([`GridFile`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Spacing {
    /// Uniform in t (Song et al. 2021).
    Time,
    /// Uniform in log-SNR, i.e. in DPM-Solver's λ = log(m/s) (Lu et al. 2022).
    Logsnr,
    /// EDM's ρ-schedule in σ̃ = s/m: `σ̃_i = (σ̃_max^{1/ρ} + i/(N−1)(σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ`
    /// (Karras et al. 2022, eq. 5).
    Edm,
    /// The points of a CSV file, whatever N asks ([`GridFile`]).
    File(GridFile),
}

impl std::fmt::Display for Spacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spacing::Time => f.write_str("time"),
            Spacing::Logsnr => f.write_str("logsnr"),
            Spacing::Edm => f.write_str("edm"),
            Spacing::File(g) => write!(f, "file:{}", g.path),
        }
    }
}

impl std::str::FromStr for Spacing {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "time" => Ok(Spacing::Time),
            "logsnr" => Ok(Spacing::Logsnr),
            "edm" => Ok(Spacing::Edm),
            _ => match s.strip_prefix("file:") {
                Some(path) => Ok(Spacing::File(GridFile::read(path)?)),
                None => Err(invalid!(
                    "unknown spacing '{s}' (known: time, logsnr, edm, file:PATH)"
                )),
            },
        }
    }
}

impl serde::Serialize for Spacing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Spacing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A time grid read from a CSV file with one column headed `t` (times), `sigma` (σ̃ = s/m, as
/// EDM and Align Your Steps list them) or `log_snr`, one point per row, from the noisy end:
/// t strictly decreasing (σ̃ decreasing, log-SNR increasing), inside (0, t_max] of the path.
/// The first point is where the prior draws are taken to be, the last is where sampling ends
/// (ε is not read). A sampler with N steps needs as many points as its grid for N.
#[derive(Clone, Debug, PartialEq)]
pub struct GridFile {
    pub path: String,
    column: GridColumn,
    values: std::sync::Arc<[f64]>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GridColumn {
    T,
    Sigma,
    LogSnr,
}

impl GridFile {
    /// Reads and checks the file's form (its values are checked against a path by
    /// [`GridFile::times`]).
    pub fn read(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid!("cannot read the grid file {path}: {e}"))?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let column = match lines.next() {
            Some("t") => GridColumn::T,
            Some("sigma") => GridColumn::Sigma,
            Some("log_snr") => GridColumn::LogSnr,
            other => {
                return Err(invalid!(
                "the grid file {path} must start with a header `t`, `sigma` or `log_snr`, got {:?}",
                other.unwrap_or("")
            ))
            }
        };
        let values = lines
            .enumerate()
            .map(|(i, l)| {
                l.parse::<f64>().map_err(|_| {
                    invalid!("the grid file {path}: row {} is not a number: {l:?}", i + 1)
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        if values.len() < 2 {
            return Err(invalid!(
                "the grid file {path} needs at least 2 points, got {}",
                values.len()
            ));
        }
        Ok(Self {
            path: path.to_string(),
            column,
            values: values.into(),
        })
    }

    /// The file's points as times on `sde`, checked: `points` of them, strictly decreasing,
    /// inside (0, t_max].
    pub fn times(&self, sde: &dyn Sde, points: usize) -> Result<Vec<f64>> {
        let path = &self.path;
        if self.values.len() != points {
            return Err(invalid!(
                "the grid file {path} has {} points but the sampler needs {points} for its steps: set steps to match",
                self.values.len()
            ));
        }
        let times: Vec<f64> = self
            .values
            .iter()
            .map(|&v| match self.column {
                GridColumn::T => v,
                GridColumn::Sigma if v == f64::INFINITY => sde.t_max(),
                GridColumn::Sigma => sde.t_of_sigma_tilde(v),
                GridColumn::LogSnr => sde.t_of_log_snr(v),
            })
            .collect();
        let t_max = sde.t_max();
        if let Some((i, v)) = self
            .values
            .iter()
            .zip(&times)
            .enumerate()
            .find(|(_, (_, t))| !(**t > 0.0 && **t <= t_max))
            .map(|(i, (v, _))| (i, v))
        {
            return Err(invalid!(
                "the grid file {path}: point {} ({}) lies outside the {} path's range (0, {}]",
                i + 1,
                crate::error::num(*v),
                sde.name(),
                crate::error::num(t_max)
            ));
        }
        if let Some(i) = times.windows(2).position(|w| w[1] >= w[0]) {
            return Err(invalid!(
                "the grid file {path} must run from the noisy end to the clean one, strictly (t decreasing): points {} and {} are not",
                i + 1,
                i + 2
            ));
        }
        Ok(times)
    }
}

/// `points ≥ 2` times from `t_max` to `eps`, spread by `spacing`.
pub fn time_grid(
    sde: &dyn Sde,
    spacing: &Spacing,
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
    if let Spacing::File(f) = spacing {
        return Ok(TimeGrid::new(f.times(sde, points)?)?);
    }
    if *spacing != Spacing::Time && !sde.log_snr(t_max).is_finite() && points > 2 {
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
        Spacing::File(_) => unreachable!("read above"),
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
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub spacing: Spacing,
    pub rho: f64,
}

impl Grid {
    /// `points` times from the SDE's t_max to `eps` ([`time_grid`]).
    pub fn times(&self, sde: &dyn Sde, eps: f64, points: usize) -> Result<Vec<f64>> {
        Ok(
            time_grid(sde, &self.spacing, self.rho, sde.t_max(), eps, points)?
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
