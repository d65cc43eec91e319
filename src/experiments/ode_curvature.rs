//! EDM Fig. 3 on its own toy (Karras et al. 2022, §3; papers.md §8.1): 1D data of two
//! near-Dirac peaks, the probability-flow ODE under the VP, VE (σ = √t) and σ(t) = t schedules
//! with the exact denoiser — trajectories with the local flow directions, and the number of
//! uniform-in-t Euler steps each schedule needs to reach a given endpoint error.

use super::cells::Cells;
use super::{Claim, Experiment, Num, Outputs, Scale, Sci};
use crate::data::GaussianMixture;
use crate::domain::Domain;
use crate::plot::{Chart, Series};
use crate::sample::convergence::endpoint_error;
use crate::sample::edm_form::{steps, Denoiser, EdmOde, Schedule, StepRule};
use crate::score::MixtureScore;
use crate::sde::{Marginal, Sde, VeSde};
use crate::{invalid, Result};
use ndarray::{array, Array2};
use scoresde_solvers::{
    solve, Method, OdeSystem, Problem, SolveOptions, Steps, Time, Tolerances, DOPRI5, EULER, RK4,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The data's components are narrowed by this factor (near-Dirac peaks).
    pub narrow: f64,
    /// Noise range of the trajectories: from σ_max down to σ_min.
    pub sigma_max: f64,
    pub sigma_min: f64,
    /// Particles of the endpoint-error measurement (draws of the data plus N(0, σ_max²)).
    pub particles: Scale<usize>,
    /// Endpoint error (mean |y − y_RK45|) the step counts are measured at.
    pub tolerance: f64,
    /// Largest Euler step count tried is 2^max_doublings.
    pub max_doublings: u32,
    /// Trajectories drawn per panel.
    pub trajectories: usize,
    /// The power control's wrong denoiser: the exact one of data with means × (1 + this).
    pub wrong_shift: f64,
}

/// One row of `steps.csv`.
#[derive(Serialize)]
struct Row {
    schedule: &'static str,
    steps: Num,
    endpoint_error: Sci,
}

/// The first step count reaching the tolerance (if any) and every (steps, error) tried.
type StepCurve = (Option<usize>, Vec<(f64, f64)>);

const SCHEDULES: [Schedule; 3] = [Schedule::VP, Schedule::Ve, Schedule::Linear];

/// One cell. `Schedule` and `Trajectories` index into `SCHEDULES`.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// RK45 on the VP ODE against the σ = t reference endpoints.
    Same,
    /// Euler steps uniform in t, doubling, for one schedule with the exact denoiser.
    Schedule(usize),
    /// The power controls: σ = t with the wrong denoiser (Euler step count and RK45 endpoints).
    Wrong,
    /// One schedule's trajectory panels (full range and zoomed).
    Trajectories(usize),
}

/// One trajectory panel's data: the schedule's t at σ = zoom, the half-height of the panel,
/// the trajectories (NaN-separated) and the arrows (pairs of points).
#[derive(Serialize, Deserialize)]
pub struct Flow {
    t_top: f64,
    top: f64,
    pts: Vec<(f64, f64)>,
    arrows: Vec<(f64, f64)>,
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    /// Mean |Δy| of the VP RK45 endpoints against the reference.
    Same(f64),
    /// The first step count under the tolerance and every (steps, error) tried.
    Curve {
        found: Option<usize>,
        pts: Vec<(f64, f64)>,
    },
    /// The wrong denoiser's first step count under the tolerance (if any) and its RK45
    /// endpoints' mean |Δy| to the reference.
    Wrong { found: Option<usize>, apart: f64 },
    /// The panels at zoom σ_max, then at zoom 1.
    Trajectories(Vec<Flow>),
}

/// The narrowed mixture, the VE SDE the denoiser lives in, its exact score, the particles'
/// data-scale starts and their RK45 (1e-11) endpoints under σ(t) = t.
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    ve: Arc<dyn Sde>,
    score: MixtureScore,
    y0: Array2<f64>,
    reference: Array2<f64>,
}

/// RK45 at 1e-11 over the whole range of `sch`.
fn tight(p: &Params, sch: Schedule) -> Steps {
    Steps::Adaptive {
        t0: sch.t_of_sigma(p.sigma_max),
        t1: sch.t_of_sigma(p.sigma_min),
        tol: Tolerances::new(1e-11, 1e-11),
    }
}

/// Euler steps, uniform in the schedule's t, doubling until the endpoint error < tolerance
/// (and on to four times the first count that reached it).
fn needed(
    p: &Params,
    ode: &EdmOde<'_>,
    y0: &Array2<f64>,
    reference: &Array2<f64>,
) -> Result<StepCurve> {
    let mut pts = Vec::new();
    let mut found = None;
    for k in 1..=p.max_doublings {
        let steps_n = 1usize << k;
        let grid = steps(
            ode.schedule,
            StepRule::UniformT,
            p.sigma_max,
            p.sigma_min,
            steps_n,
        )?;
        let err = endpoint_error(
            &ode.solve(&Steps::Grid(grid), Method::Rk(&EULER), y0)?.0,
            reference,
        );
        pts.push((steps_n as f64, err));
        if err < p.tolerance && found.is_none() {
            found = Some(steps_n);
        }
        if found.is_some_and(|f| steps_n >= 4 * f) {
            break;
        }
    }
    Ok((found, pts))
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = vec![Cell::Same];
        cells.extend((0..SCHEDULES.len()).map(Cell::Schedule));
        cells.push(Cell::Wrong);
        cells.extend((0..SCHEDULES.len()).map(Cell::Trajectories));
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let p = self;
        let (data, raw) = exp.exact_data()?;
        if data.dim() != 1 {
            return Err(invalid!(
                "{}: needs 1D data, got d = {}",
                exp.name,
                data.dim()
            ));
        }
        let mixture = Arc::new(raw.widened(p.narrow)?);
        // The denoiser in VE form (σ̃ = σ) over the whole range.
        let ve: Arc<dyn Sde> = Arc::new(VeSde::new(0.5 * p.sigma_min, p.sigma_max)?);
        let score = MixtureScore::new(mixture.clone(), ve.clone());
        let n = *p.particles.at(o.quick);
        let start = mixture.diffused_mixture(Marginal {
            mean: 1.0,
            std: p.sigma_max,
        })?;
        let y0 = start.sample(n, o.seed, Domain::Prior.key()).0;
        let reference = {
            let denoiser = Denoiser::new(ve.as_ref(), &score)?;
            let linear = EdmOde::new(Schedule::Linear, denoiser, p.sigma_max)?;
            linear
                .solve(&tight(p, Schedule::Linear), Method::Rk(&DOPRI5), &y0)?
                .0
        };
        Ok(Shared {
            mixture,
            ve,
            score,
            y0,
            reference,
        })
    }

    fn compute(
        &self,
        _: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let p = self;
        let denoiser = Denoiser::new(sh.ve.as_ref(), &sh.score)?;
        match *cell {
            // The schedules share one flow in (σ, x/s): RK45 on the VP ODE lands on the same
            // points.
            Cell::Same => {
                let vp = EdmOde::new(Schedule::VP, denoiser, p.sigma_max)?;
                let vp_end = vp
                    .solve(&tight(p, Schedule::VP), Method::Rk(&DOPRI5), &sh.y0)?
                    .0;
                Ok(Measured::Same(endpoint_error(&vp_end, &sh.reference)))
            }
            Cell::Schedule(i) => {
                let sch = SCHEDULES[i];
                let ode = EdmOde::new(sch, denoiser, p.sigma_max)?;
                let (found, pts) = needed(p, &ode, &sh.y0, &sh.reference)?;
                // "Never" counts as twice the largest step count tried.
                let beyond = (2usize << p.max_doublings) as f64;
                o.nfe.push((
                    format!("euler {} to error {}", sch.name(), p.tolerance),
                    found.map_or(beyond, |f| f as f64),
                ));
                Ok(Measured::Curve { found, pts })
            }
            // Power: σ = t with a slightly wrong denoiser (means × (1 + shift)) must not reach
            // the tolerance at any step count — the step count measures the flow, not only the
            // solver.
            Cell::Wrong => {
                let wrong_mixture = Arc::new(GaussianMixture::new(
                    sh.mixture.weights().to_vec(),
                    sh.mixture.means().to_owned() * (1.0 + p.wrong_shift),
                    sh.mixture.covariances().to_vec(),
                )?);
                let wrong_score = MixtureScore::new(wrong_mixture, sh.ve.clone());
                let wrong = EdmOde::new(
                    Schedule::Linear,
                    Denoiser::new(sh.ve.as_ref(), &wrong_score)?,
                    p.sigma_max,
                )?;
                let (found, _) = needed(p, &wrong, &sh.y0, &sh.reference)?;
                // Power for the shared-endpoint claim: the wrong denoiser's ODE lands elsewhere.
                let wrong_end = wrong
                    .solve(&tight(p, Schedule::Linear), Method::Rk(&DOPRI5), &sh.y0)?
                    .0;
                let apart = endpoint_error(&wrong_end, &sh.reference);
                Ok(Measured::Wrong { found, apart })
            }
            // Trajectories (RK4 on a fine ρ-grid) and flow directions, full range and zoomed.
            Cell::Trajectories(i) => {
                let ode = EdmOde::new(SCHEDULES[i], denoiser, p.sigma_max)?;
                let starts = starts(p);
                let mut flows = Vec::new();
                for zoom in [p.sigma_max, 1.0] {
                    flows.push(trajectory_flow(&ode, p, &starts, zoom)?);
                }
                Ok(Measured::Trajectories(flows))
            }
        }
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        // "Never" counts as twice the largest step count tried (keeps the statistics finite).
        let beyond = (2usize << p.max_doublings) as f64;
        let mut same = f64::NAN;
        let (mut wrong_found, mut apart) = (None, f64::NAN);
        let mut rows = Vec::new();
        let mut counts = vec![None; SCHEDULES.len()];
        let mut series = Vec::new();
        // Trajectory panels by zoom (σ_max, 1) then schedule.
        let mut flows: Vec<Vec<Option<Flow>>> = (0..2)
            .map(|_| (0..SCHEDULES.len()).map(|_| None).collect())
            .collect();
        for (cell, m) in cells {
            match (cell, m) {
                (Cell::Same, Measured::Same(s)) => same = s,
                (Cell::Schedule(i), Measured::Curve { found, pts }) => {
                    let sch = SCHEDULES[i];
                    for &(steps_n, err) in &pts {
                        rows.push(Row {
                            schedule: sch.name(),
                            steps: Num(steps_n),
                            endpoint_error: Sci(err),
                        });
                    }
                    series.push(Series::line_points(
                        format!(
                            "{} (error < {} at {})",
                            sch.name(),
                            p.tolerance,
                            found.map_or("never".into(), |f| f.to_string())
                        ),
                        pts,
                    ));
                    counts[i] = found;
                }
                (Cell::Wrong, Measured::Wrong { found, apart: a }) => {
                    wrong_found = found;
                    apart = a;
                }
                (Cell::Trajectories(i), Measured::Trajectories(fs)) => {
                    for (z, f) in fs.into_iter().enumerate().take(2) {
                        flows[z][i] = Some(f);
                    }
                }
                _ => {
                    return Err(invalid!(
                        "{}: a stored row does not match its cell",
                        exp.name
                    ))
                }
            }
        }
        let mut claims = vec![Claim::new(
            "the VP and σ = t ODEs map the same starts to the same endpoints (RK45, mean |Δy|)",
            same < 1e-6,
            same,
            "< 1e-6",
        )];
        o.rows("steps", &rows)?;
        let count = |i: usize| counts[i].map_or(beyond, |c| c as f64);
        for (i, sch) in SCHEDULES.iter().enumerate().take(2) {
            claims.push(Claim::new(
                &format!("σ(t) = t needs fewer Euler steps than {} to reach endpoint error {} (steps ratio σ = t / {})", sch.name(), p.tolerance, sch.name()),
                count(2) < count(i),
                count(2) / count(i),
                "< 1",
            ));
        }
        claims.push(Claim::new(
            &format!("power: the σ = t ODE with the wrong denoiser (means × {}) does not land on the reference endpoints (RK45, mean |Δy|)", 1.0 + p.wrong_shift),
            apart >= 1e-6,
            apart,
            "≥ 1e-6",
        ));
        claims.push(Claim::new(
            &format!(
                "power: σ(t) = t with a wrong denoiser (means × {}) never reaches endpoint error {} within 2^{} steps",
                1.0 + p.wrong_shift,
                p.tolerance,
                p.max_doublings
            ),
            wrong_found.is_none(),
            wrong_found.map_or(beyond, |f| f as f64),
            &format!("never (counted as {beyond})"),
        ));

        o.chart(
            "steps",
            &Chart {
                title: format!(
                    "Euler steps uniform in t vs endpoint error, exact denoiser, {} narrowed ×{}",
                    data.name(),
                    p.narrow
                ),
                x_label: "Euler steps N".into(),
                y_label: "mean |y − y_RK45| at σ_min".into(),
                log_x: true,
                log_y: true,
                series,
                ..Default::default()
            },
        )?;
        let mut charts = Vec::new();
        for (zoom, row) in [p.sigma_max, 1.0].into_iter().zip(flows) {
            for (sch, f) in SCHEDULES.into_iter().zip(row) {
                let f =
                    f.ok_or_else(|| invalid!("{}: no trajectories of {}", exp.name, sch.name()))?;
                charts.push(trajectory_chart(sch, zoom, f));
            }
        }
        o.grid("trajectories", &charts, 3)?;
        Ok(claims)
    }
}

/// The trajectories' data-scale starts at σ_max, spread evenly over [−σ_max, σ_max].
fn starts(p: &Params) -> Array2<f64> {
    Array2::from_shape_fn((p.trajectories, 1), |(i, _)| {
        2.0 * p.sigma_max * (i as f64 / (p.trajectories - 1).max(1) as f64 - 0.5)
    })
}

/// The data of one panel of EDM Fig. 3: state x against t for trajectories from `starts` (data
/// scale at σ_max), with arrows along the flow, over the t where σ(t) ∈ [0, `zoom`].
fn trajectory_flow(ode: &EdmOde<'_>, p: &Params, starts: &Array2<f64>, zoom: f64) -> Result<Flow> {
    let sch = ode.schedule;
    let grid = steps(sch, StepRule::Rho(7.0), p.sigma_max, p.sigma_min, 2000)?;
    let times = grid.times().to_vec();
    let sol = solve(
        Problem::Ode(ode),
        Method::Rk(&RK4),
        &Steps::Grid(grid),
        ode.to_state(times[0], starts),
        &SolveOptions {
            record: times.clone(),
            ..Default::default()
        },
    )?;
    // One series, the trajectories separated by NaN points (pen up), against the schedule's
    // own t: the curvature a solver stepping in t meets (EDM Fig. 3's horizontal axis).
    let t_top = sch.t_of_sigma(zoom);
    let mut pts = Vec::new();
    let mut top: f64 = 0.0;
    for i in 0..starts.nrows() {
        for (t, x) in sol.records.iter().filter(|(t, _)| *t <= t_top) {
            top = top.max(x[[i, 0]].abs());
            pts.push((*t, x[[i, 0]]));
        }
        pts.push((f64::NAN, f64::NAN));
    }
    let top = 1.05 * top.max(1e-12);
    // Arrows: the direction (dt, dx) of a step toward smaller t, of fixed length in axis units.
    let (xr, tr) = (2.0 * top, t_top);
    let mut arrows = Vec::new();
    for a in 1..=10 {
        let t = t_top * a as f64 / 10.5;
        for b in 1..=8 {
            let x = -top + xr * b as f64 / 9.0;
            let mut out = array![[0.0]];
            ode.rhs(Time::Shared(t), array![[x]].view(), out.view_mut());
            let dxdt = out[[0, 0]];
            let len = 0.04 / ((1.0 / tr).powi(2) + (dxdt / xr).powi(2)).sqrt();
            arrows.push((t, x));
            arrows.push((t - len, x - len * dxdt));
        }
    }
    Ok(Flow {
        t_top,
        top,
        pts,
        arrows,
    })
}

/// One panel of EDM Fig. 3 from its data.
fn trajectory_chart(sch: Schedule, zoom: f64, f: Flow) -> Chart {
    let Flow {
        t_top,
        top,
        pts,
        arrows,
    } = f;
    Chart {
        title: format!("{} ODE, σ(t) ∈ [0, {zoom}]", sch.name()),
        x_label: format!("t (σ(t) = {zoom} at t = {t_top:.3})"),
        y_label: "x (= s(t)·y)".into(),
        series: vec![
            Series::line("trajectories", pts),
            Series::arrows("flow direction (toward t = 0)", arrows),
        ],
        limits: Some([(0.0, t_top), (-top, top)]),
        ..Default::default()
    }
}
