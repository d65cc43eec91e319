//! Song et al. 2021 Fig. 2 on 1D bimodal data (papers.md §4.2): the exact p_t(x) as a heat map
//! with forward-SDE, reverse-SDE and probability-flow ODE paths over it, for each SDE; the
//! marginals of all four processes tested against the exact p_t CDF; PF-ODE paths checked for
//! crossings; and the PF-ODE round trip 0 → T → 0 against the step count.

use super::cells::Cells;
use super::{loglog_slope, Claim, Experiment, Fixed, Num, Outputs, Scale, SciP};
use crate::data::GaussianMixture;
use crate::data::{DATA_DOMAIN, REFERENCE_DOMAIN};
use crate::domain::Domain;
use crate::plot::{Chart, Heatmap, Overlay, Panel, Series, PALETTE};
use crate::reverse::{ReverseSde, WrongReverse};
use crate::score::MixtureScore;
use crate::sde::{Forward, Sde, SdeSpec};
use crate::stats::ks::{ks_test, mixture_cdf};
use crate::{invalid, Result};
use ndarray::{Array1, Array2};
use plotters::style::{RGBColor, WHITE};
use scoresde_solvers::{
    solve, KeyedNormal, Method, Problem, SdeSystem, Solution, SolveOptions, Steps, TimeGrid, RK4,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The SDEs, one row of panels each.
    pub sdes: Vec<SdeSpec>,
    /// Heat-map cells along x and along t.
    pub grid_x: usize,
    pub grid_t: usize,
    /// Euler–Maruyama steps over [0, T] (a multiple of `ode_steps`).
    pub steps: usize,
    /// RK4 steps of the PF-ODE over [0, T].
    pub ode_steps: usize,
    /// Paths drawn: SDE and ODE.
    pub sde_paths: usize,
    pub ode_paths: usize,
    /// Particles per process in the KS tests (and under `--quick`).
    pub n: Scale<usize>,
    /// Times of the KS tests, as fractions of T (snapped to the ODE grid).
    pub test_times: Vec<f64>,
    /// Family-wise level, Bonferroni-split over every KS test.
    pub alpha: f64,
    /// Step counts of the PF-ODE round trip 0 → T → 0 (RK4).
    pub roundtrip_steps: Vec<usize>,
    /// Largest round-trip error accepted at the finest step count.
    pub roundtrip_tolerance: f64,
}

/// Per-particle paths `(t, x)` from a solution that recorded every grid time.
fn paths(sol: &Solution) -> Vec<Vec<(f64, f64)>> {
    let n = sol.x.nrows();
    (0..n)
        .map(|i| sol.records.iter().map(|(t, x)| (*t, x[[i, 0]])).collect())
        .collect()
}

/// Grid from `from` to `to` in `steps` steps, and its solve options recording at `record`
/// (None: at every grid time, for drawing paths).
fn grid_and_options(
    from: f64,
    to: f64,
    steps: usize,
    record: Option<Vec<f64>>,
) -> Result<(TimeGrid, SolveOptions<'static>)> {
    let grid = TimeGrid::uniform(from, to, steps)?;
    let record = record.unwrap_or_else(|| grid.times().to_vec());
    Ok((
        grid,
        SolveOptions {
            record,
            ..Default::default()
        },
    ))
}

/// Euler–Maruyama for `sys` from `from` to `to` (either direction).
fn em(
    sys: &dyn SdeSystem,
    x: Array2<f64>,
    (from, to, steps): (f64, f64, usize),
    noise: KeyedNormal,
    record: Option<Vec<f64>>,
) -> Result<Solution> {
    let (grid, opts) = grid_and_options(from, to, steps, record)?;
    Ok(solve(
        Problem::Sde(sys, &noise),
        Method::EulerMaruyama,
        &Steps::Grid(grid),
        x,
        &opts,
    )?)
}

/// Column of `n` points.
fn column(v: &[f64]) -> Array2<f64> {
    Array2::from_shape_vec((v.len(), 1), v.to_vec()).expect("n × 1")
}

/// The `q`-quantile of a 1D mixture (bisection on its CDF).
fn quantile(comps: &[(f64, f64, f64)], q: f64) -> f64 {
    let (mut lo, mut hi) = (-1e3, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mixture_cdf(comps, mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

struct Run<'a> {
    sde: Arc<dyn Sde>,
    mixture: &'a GaussianMixture,
    score: MixtureScore,
    t_max: f64,
}

impl Run<'_> {
    fn p_t(&self, t: f64) -> Result<GaussianMixture> {
        self.mixture.diffused_mixture(self.sde.marginal(t))
    }

    fn forward_sde(
        &self,
        x0: Array2<f64>,
        steps: usize,
        seed: u64,
        record: Option<Vec<f64>>,
    ) -> Result<Solution> {
        let sys = Forward {
            sde: self.sde.as_ref(),
            dim: 1,
        };
        em(
            &sys,
            x0,
            (0.0, self.t_max, steps),
            KeyedNormal::new(seed, Domain::TrajectoryForward.key()),
            record,
        )
    }

    fn reverse_sde(
        &self,
        xt: Array2<f64>,
        steps: usize,
        seed: u64,
        record: Option<Vec<f64>>,
    ) -> Result<Solution> {
        let sys = ReverseSde::new(self.sde.as_ref(), &self.score);
        em(
            &sys,
            xt,
            (self.t_max, 0.0, steps),
            KeyedNormal::new(seed, Domain::TrajectoryReverse.key()),
            record,
        )
    }

    /// The negative control [`WrongReverse`], from t_max down to 0.
    fn wrong_reverse(
        &self,
        xt: Array2<f64>,
        steps: usize,
        seed: u64,
        record: Option<Vec<f64>>,
    ) -> Result<Solution> {
        let sys = WrongReverse(ReverseSde::new(self.sde.as_ref(), &self.score));
        em(
            &sys,
            xt,
            (self.t_max, 0.0, steps),
            KeyedNormal::new(seed, Domain::TrajectoryWrong.key()),
            record,
        )
    }

    /// PF-ODE by RK4 from `from` to `to` (either direction).
    fn ode(
        &self,
        x: Array2<f64>,
        from: f64,
        to: f64,
        steps: usize,
        record: Option<Vec<f64>>,
    ) -> Result<Solution> {
        let pf = ReverseSde::new(self.sde.as_ref(), &self.score).probability_flow();
        let (grid, opts) = grid_and_options(from, to, steps, record)?;
        Ok(solve(
            Problem::Ode(&pf),
            Method::Rk(&RK4),
            &Steps::Grid(grid),
            x,
            &opts,
        )?)
    }
}

fn heat_overlay(label: &str, paths: Vec<Vec<(f64, f64)>>, color: RGBColor, width: u32) -> Overlay {
    Overlay {
        label: label.into(),
        paths,
        color,
        width,
    }
}

/// One row of `ks.csv`.
#[derive(Serialize)]
struct KsRow {
    sde: String,
    method: String,
    t: Num,
    ks_statistic: Fixed<6>,
    p_value: SciP<6>,
}

/// One row of `roundtrip.csv`.
#[derive(Serialize)]
struct RoundTripRow {
    sde: String,
    steps: usize,
    max_error: SciP<6>,
}

/// One row of `log-density.csv`.
#[derive(Serialize)]
struct HeatRow {
    sde: String,
    t: Fixed<5>,
    x: Fixed<5>,
    log_p: Fixed<5>,
}

/// One row of `densities.csv`.
#[derive(Serialize)]
struct DensityRow {
    sde: String,
    x: Fixed<5>,
    p0: SciP<6>,
    #[serde(rename = "pT")]
    p_t: SciP<6>,
}

/// One row of `paths.csv`.
#[derive(Serialize)]
struct PathRow {
    sde: String,
    process: &'static str,
    path: usize,
    t: Fixed<5>,
    x: Fixed<6>,
}

/// The processes of the KS tests, in the order of `ks.csv` at each test time.
const PROCESSES: [&str; 4] = [
    "forward SDE",
    "reverse SDE",
    "forward PF-ODE",
    "reverse PF-ODE",
];

/// PF-ODE paths of the crossing check and the round trip (quantiles of p₀).
const CROSSING_PATHS: usize = 200;

/// What part of one SDE's work a cell does.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub enum Part {
    /// The heat map of log p_t, the drawn paths and the densities p₀, p_T.
    Figure,
    /// The KS tests of the four processes and of the wrong reverse process.
    Ks,
    /// The PF-ODE crossing check and the round trip against the step count.
    Flow,
}

/// One cell: a part of the work on `sdes[sde]`.
#[derive(Serialize, Deserialize)]
pub struct Cell {
    sde: usize,
    part: Part,
}

/// What the figure part computes.
#[derive(Serialize, Deserialize)]
pub struct Figure {
    /// Half-width of the x range covering every p_t.
    half: f64,
    /// Cell centres along x and along t.
    xs: Vec<f64>,
    ts: Vec<f64>,
    /// log p_t(x) at (ts[i], xs[j]), unclipped, at index i · xs.len() + j.
    log_p: Vec<f64>,
    /// Drawn paths (t, x): forward SDE, reverse SDE, forward PF-ODE, reverse PF-ODE.
    paths: [Vec<Vec<(f64, f64)>>; 4],
    /// (x, p₀(x)) and (x, p_T(x)) on `xs`.
    p0: Vec<(f64, f64)>,
    p_t: Vec<(f64, f64)>,
}

/// What the KS part computes.
#[derive(Serialize, Deserialize)]
pub struct Ks {
    /// The test times (snapped to the ODE grid).
    times: Vec<f64>,
    /// (D, p-value) per test time and process, at index time · 4 + process ([`PROCESSES`]).
    tests: Vec<(f64, f64)>,
    /// (D, p-value) of the wrong reverse process at `times[0]`.
    wrong: (f64, f64),
}

/// What the flow part computes.
#[derive(Serialize, Deserialize)]
pub struct Flow {
    /// Order violations among the PF-ODE paths from [`CROSSING_PATHS`] quantiles of p₀.
    crossings: usize,
    /// Largest round-trip error per entry of `roundtrip_steps`.
    roundtrip: Vec<f64>,
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Computed {
    Figure(Figure),
    Ks(Ks),
    Flow(Flow),
}

/// The data's exact mixture and the SDEs of `sdes`.
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    sdes: Vec<Arc<dyn Sde>>,
}

impl Shared {
    /// The exact set-up on `sdes[si]`.
    fn run(&self, si: usize) -> Run<'_> {
        let sde = self.sdes[si].clone();
        Run {
            sde: sde.clone(),
            mixture: &self.mixture,
            score: MixtureScore::new(self.mixture.clone(), sde.clone()),
            t_max: sde.t_max(),
        }
    }
}

/// The state recorded at time `t` in `sol`.
fn recorded(sol: &Solution, t: f64) -> &Array2<f64> {
    &sol.records
        .iter()
        .find(|(s, _)| (s - t).abs() < 1e-9)
        .expect("recorded")
        .1
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Computed;
    type Shared = Shared;

    fn cells(&self, exp: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        if data.dim() != 1 {
            return Err(invalid!(
                "{}: needs 1D data (got dimension {})",
                exp.name,
                data.dim()
            ));
        }
        if p.ode_steps == 0 || !p.steps.is_multiple_of(p.ode_steps) {
            return Err(invalid!(
                "{}: steps ({}) must be a multiple of ode_steps ({})",
                exp.name,
                p.steps,
                p.ode_steps
            ));
        }
        super::check_times("test_times", &p.test_times, 1.0)?;
        let mut cells = Vec::new();
        for sde in 0..p.sdes.len() {
            for part in [Part::Figure, Part::Ks, Part::Flow] {
                cells.push(Cell { sde, part });
            }
        }
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, _: &Outputs) -> Result<Shared> {
        let (data, mixture) = exp.exact_data()?;
        let sdes = self
            .sdes
            .iter()
            .map(|spec| spec.build(|| data.diameter()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Shared { mixture, sdes })
    }

    fn compute(
        &self,
        _: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Computed> {
        let p = self;
        let si = cell.sde;
        let r = sh.run(si);
        let t_max = r.t_max;
        let mixture = &sh.mixture;
        let comps0 = mixture.marginal_1d(0);
        let seed = o.seed + 1000 * si as u64;
        match cell.part {
            Part::Figure => {
                // Heat map of log p_t(x) on cell centres, x range covering every p_t.
                let half = (0..=20)
                    .map(|k| {
                        let pt = r.p_t(t_max * k as f64 / 20.0)?;
                        Ok(pt
                            .marginal_1d(0)
                            .iter()
                            .map(|(_, m, s)| m.abs() + 3.5 * s)
                            .fold(0.0, f64::max))
                    })
                    .collect::<Result<Vec<f64>>>()?
                    .into_iter()
                    .fold(0.0, f64::max);
                let (nx, nt) = (p.grid_x, p.grid_t);
                let xs: Vec<f64> = (0..nx)
                    .map(|j| -half + (j as f64 + 0.5) * 2.0 * half / nx as f64)
                    .collect();
                let (mut ts, mut log_p) = (Vec::with_capacity(nt), Vec::with_capacity(nt * nx));
                for i in 0..nt {
                    let t = (i as f64 + 0.5) * t_max / nt as f64;
                    let lp: Array1<f64> = r.score.log_prob(t, column(&xs).view());
                    ts.push(t);
                    log_p.extend(lp.iter().copied());
                }
                // Drawn paths: forward SDE from data, reverse SDE from exact p_T, PF-ODE both
                // ways.
                let x0 = mixture.sample(p.sde_paths, seed, DATA_DOMAIN).0;
                let fwd = r.forward_sde(x0, p.steps, seed, None)?;
                let xt = r.p_t(t_max)?.sample(p.sde_paths, seed, REFERENCE_DOMAIN).0;
                let rev = r.reverse_sde(xt, p.steps, seed, None)?;
                let q: Vec<f64> = (0..p.ode_paths)
                    .map(|k| quantile(&comps0, (k as f64 + 0.5) / p.ode_paths as f64))
                    .collect();
                let ode_f = r.ode(column(&q), 0.0, t_max, p.ode_steps, None)?;
                let ode_b = r.ode(ode_f.x.clone(), t_max, 0.0, p.ode_steps, None)?;
                // Densities p_0 and p_T.
                let dens = |t: f64| -> Vec<(f64, f64)> {
                    let lp = r.score.log_prob(t, column(&xs).view());
                    xs.iter()
                        .zip(lp.iter())
                        .map(|(&x, &l)| (x, l.exp()))
                        .collect()
                };
                let (p0, p_t) = (dens(0.0), dens(t_max));
                Ok(Computed::Figure(Figure {
                    half,
                    xs,
                    ts,
                    log_p,
                    paths: [paths(&fwd), paths(&rev), paths(&ode_f), paths(&ode_b)],
                    p0,
                    p_t,
                }))
            }
            // KS tests of all four processes at the test times, n particles each.
            Part::Ks => {
                let n = *p.n.at(o.quick);
                let name = r.sde.name();
                let h = t_max / p.ode_steps as f64;
                let times: Vec<f64> = p
                    .test_times
                    .iter()
                    .map(|f| ((f * t_max / h).round() * h).clamp(h, t_max))
                    .collect();
                let mut down = times.clone();
                down.reverse();
                let x0 = mixture.sample(n, seed + 1, DATA_DOMAIN).0;
                let xt = r.p_t(t_max)?.sample(n, seed + 1, REFERENCE_DOMAIN).0;
                // In the order of PROCESSES.
                let sols = [
                    r.forward_sde(x0.clone(), p.steps, seed + 1, Some(times.clone()))?,
                    r.reverse_sde(xt.clone(), p.steps, seed + 1, Some(down.clone()))?,
                    r.ode(x0, 0.0, t_max, p.ode_steps, Some(times.clone()))?,
                    r.ode(xt.clone(), t_max, 0.0, p.ode_steps, Some(down.clone()))?,
                ];
                let wrong = r.wrong_reverse(xt.clone(), p.steps, seed + 1, Some(down))?;
                o.nfe
                    .push((format!("{name} reverse SDE (EM)"), p.steps as f64));
                o.nfe
                    .push((format!("{name} PF-ODE (RK4)"), 4.0 * p.ode_steps as f64));
                let mut tests = Vec::with_capacity(times.len() * sols.len());
                for &t in &times {
                    let comps = r.p_t(t)?.marginal_1d(0);
                    for sol in &sols {
                        let v: Vec<f64> = recorded(sol, t).column(0).to_vec();
                        tests.push(ks_test(&v, |x| mixture_cdf(&comps, x)));
                    }
                }
                // Power: the wrong reverse process at the earliest test time.
                let wrong = {
                    let t = times[0];
                    let comps = r.p_t(t)?.marginal_1d(0);
                    let x = recorded(&wrong, t);
                    ks_test(&x.column(0).to_vec(), |x| mixture_cdf(&comps, x))
                };
                Ok(Computed::Ks(Ks {
                    times,
                    tests,
                    wrong,
                }))
            }
            Part::Flow => {
                // PF-ODE paths from the quantiles, order kept throughout?
                let m = CROSSING_PATHS;
                let qs: Vec<f64> = (0..m)
                    .map(|k| quantile(&comps0, (k as f64 + 0.5) / m as f64))
                    .collect();
                let sol = r.ode(column(&qs), 0.0, t_max, p.ode_steps, None)?;
                let crossings: usize = sol
                    .records
                    .iter()
                    .map(|(_, x)| {
                        x.column(0)
                            .windows(2)
                            .into_iter()
                            .filter(|w| w[1] <= w[0])
                            .count()
                    })
                    .sum();
                // Round trip 0 → T → 0 with RK4 against the step count.
                let mut roundtrip = vec![];
                for &k in &p.roundtrip_steps {
                    let f = r.ode(column(&qs), 0.0, t_max, k, Some(vec![]))?;
                    let b = r.ode(f.x, t_max, 0.0, k, Some(vec![]))?;
                    let err = qs
                        .iter()
                        .zip(b.x.column(0))
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f64::max);
                    roundtrip.push(err);
                }
                Ok(Computed::Flow(Flow {
                    crossings,
                    roundtrip,
                }))
            }
        }
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Computed)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        let n = *p.n.at(o.quick);
        let n_tests = p.sdes.len() * 4 * p.test_times.len();
        let level = p.alpha / n_tests.max(1) as f64;
        let mut figures: Vec<Option<Figure>> = (0..p.sdes.len()).map(|_| None).collect();
        let mut ks_parts: Vec<Option<Ks>> = (0..p.sdes.len()).map(|_| None).collect();
        let mut flows: Vec<Option<Flow>> = (0..p.sdes.len()).map(|_| None).collect();
        for (cell, computed) in cells {
            match (cell.part, computed) {
                (Part::Figure, Computed::Figure(f)) => figures[cell.sde] = Some(f),
                (Part::Ks, Computed::Ks(k)) => ks_parts[cell.sde] = Some(k),
                (Part::Flow, Computed::Flow(f)) => flows[cell.sde] = Some(f),
                _ => {
                    return Err(invalid!(
                        "{}: a stored cell holds another kind of row",
                        exp.name
                    ))
                }
            }
        }
        let missing = || invalid!("{}: a cell of an SDE is missing", exp.name);
        let (mut claims, mut panels) = (vec![], vec![]);
        let (mut ks_rows, mut rt_rows, mut heat_rows, mut path_rows, mut dens_rows) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut rt_chart = Chart {
            title: "PF-ODE round trip 0 → T → 0 (RK4)".into(),
            x_label: "steps each way".into(),
            y_label: "max |x₀ − x̂₀|".into(),
            log_x: true,
            log_y: true,
            ..Default::default()
        };
        for (si, spec) in p.sdes.iter().enumerate() {
            let sde = spec.build(|| data.diameter())?;
            let name = sde.name().to_string();
            let t_max = sde.t_max();
            let fig = figures[si].take().ok_or_else(missing)?;
            let tests = ks_parts[si].take().ok_or_else(missing)?;
            let flow = flows[si].take().ok_or_else(missing)?;

            // The heat map: log p_t, clipped at −6 in the figure.
            let half = fig.half;
            let (nx, nt) = (fig.xs.len(), fig.ts.len());
            let mut logp = Array2::<f64>::zeros((nt, nx));
            for (i, &t) in fig.ts.iter().enumerate() {
                for (j, &x) in fig.xs.iter().enumerate() {
                    let lp = fig.log_p[i * nx + j];
                    logp[[i, j]] = lp.max(-6.0);
                    heat_rows.push(HeatRow {
                        sde: name.to_string(),
                        t: Fixed(t),
                        x: Fixed(x),
                        log_p: Fixed(lp),
                    });
                }
            }
            for (kind, drawn) in ["forward-sde", "reverse-sde", "forward-ode", "reverse-ode"]
                .into_iter()
                .zip(&fig.paths)
            {
                for (k, path) in drawn.iter().enumerate() {
                    let stride = (path.len() / 200).max(1);
                    for (t, x) in path.iter().step_by(stride) {
                        path_rows.push(PathRow {
                            sde: name.to_string(),
                            process: kind,
                            path: k,
                            t: Fixed(*t),
                            x: Fixed(*x),
                        });
                    }
                }
            }
            let sde_col = PALETTE[1];
            let heat = |title: String,
                        sde_label: &str,
                        sde_paths: &[Vec<(f64, f64)>],
                        ode: &[Vec<(f64, f64)>]| Heatmap {
                title,
                x_label: "t".into(),
                y_label: "x".into(),
                value_label: "log pₜ(x) (clipped at −6)".into(),
                x_range: (0.0, t_max),
                y_range: (-half, half),
                values: logp.clone(),
                overlays: vec![
                    heat_overlay(sde_label, sde_paths.to_vec(), sde_col, 1),
                    heat_overlay(
                        "probability-flow ODE",
                        ode.to_vec(),
                        RGBColor(WHITE.0, WHITE.1, WHITE.2),
                        2,
                    ),
                ],
            };
            // Densities p_0 and p_T.
            for ((x, a), (_, b)) in fig.p0.iter().zip(&fig.p_t) {
                dens_rows.push(DensityRow {
                    sde: name.to_string(),
                    x: Fixed(*x),
                    p0: SciP(*a),
                    p_t: SciP(*b),
                });
            }
            panels.push(Panel::from(Chart {
                title: format!("{name}: data p₀ and prior p_T"),
                x_label: "x".into(),
                y_label: "density".into(),
                series: vec![
                    Series::line("p₀ (data)", fig.p0.clone()),
                    Series::line(format!("p_T (T = {t_max})"), fig.p_t.clone()),
                ],
                ..Default::default()
            }));
            panels.push(
                heat(
                    format!("{name}: forward SDE, p₀ → p_T"),
                    "forward SDE (EM)",
                    &fig.paths[0][..],
                    &fig.paths[2][..],
                )
                .into(),
            );
            panels.push(
                heat(
                    format!("{name}: reverse SDE, p_T → p₀"),
                    "reverse SDE (EM)",
                    &fig.paths[1][..],
                    &fig.paths[3][..],
                )
                .into(),
            );

            // KS tests of all four processes at the test times, n particles each.
            for (ti, &t) in tests.times.iter().enumerate() {
                for (mi, method) in PROCESSES.into_iter().enumerate() {
                    let (d, pv) = tests.tests[ti * PROCESSES.len() + mi];
                    ks_rows.push(KsRow {
                        sde: name.to_string(),
                        method: method.to_string(),
                        t: Num(t),
                        ks_statistic: Fixed(d),
                        p_value: SciP(pv),
                    });
                    claims.push(Claim::new(
                        &format!(
                            "{name}: {method} marginal at t = {t} matches the exact p_t (KS, n = {n})"
                        ),
                        pv >= level,
                        pv,
                        &format!("p ≥ {level:.2e} (α = {} / {n_tests})", p.alpha),
                    ));
                }
            }

            // Power: the wrong reverse process must be rejected at the earliest test time.
            {
                let t = tests.times[0];
                let (d, pv) = tests.wrong;
                ks_rows.push(KsRow {
                    sde: name.to_string(),
                    method: "wrong reverse (control)".into(),
                    t: Num(t),
                    ks_statistic: Fixed(d),
                    p_value: SciP(pv),
                });
                claims.push(Claim::new(
                    &format!("{name}: power — a wrong reverse process (PF drift + SDE noise) is rejected at t = {t} (KS, n = {n})"),
                    pv < level,
                    pv,
                    &format!("p < {level:.2e}"),
                ));
            }

            // PF-ODE paths never cross: the order of 200 paths from the quantiles is kept
            // throughout.
            let m = CROSSING_PATHS;
            let crossings = flow.crossings;
            claims.push(Claim::new(
                &format!("{name}: PF-ODE paths from {m} quantiles of p₀ never cross (order kept at all {} grid times)", p.ode_steps + 1),
                crossings == 0,
                crossings as f64,
                "0 order violations",
            ));

            // Round trip 0 → T → 0 with RK4 against the step count.
            let errs = flow.roundtrip;
            for (&k, &err) in p.roundtrip_steps.iter().zip(&errs) {
                rt_rows.push(RoundTripRow {
                    sde: name.to_string(),
                    steps: k,
                    max_error: SciP(err),
                });
            }
            let ks: Vec<f64> = p.roundtrip_steps.iter().map(|&k| k as f64).collect();
            let decreasing = errs.windows(2).all(|w| w[1] < w[0]);
            let last = *errs.last().unwrap_or(&f64::NAN);
            claims.push(Claim::new(
                &format!(
                    "{name}: PF-ODE round-trip error falls at every refinement (slope {:.2})",
                    loglog_slope(&ks, &errs)
                ),
                decreasing,
                errs.first().copied().unwrap_or(f64::NAN) / last,
                "strictly decreasing in the step count",
            ));
            claims.push(Claim::new(
                &format!(
                    "{name}: PF-ODE round trip at {} steps is an identity",
                    ks.last().copied().unwrap_or(0.0)
                ),
                last < p.roundtrip_tolerance,
                last,
                &format!("max error < {:e}", p.roundtrip_tolerance),
            ));
            rt_chart.series.push(Series::line_points(
                name.clone(),
                ks.iter().copied().zip(errs).collect(),
            ));
        }
        o.figure("trajectories", &panels, 3)?;
        o.chart("roundtrip", &rt_chart)?;
        o.rows("ks", &ks_rows)?;
        o.rows("roundtrip", &rt_rows)?;
        o.rows("log-density", &heat_rows)?;
        o.rows("densities", &dens_rows)?;
        o.rows("paths", &path_rows)?;
        Ok(claims)
    }
}
