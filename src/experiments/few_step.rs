//! The regime the newer samplers exist for: 5–20 NFE with the exact score, on the VP path and
//! on the rectified (flow-matching) path, on each sampler's own grid and on the grid optimised
//! for it at that NFE ([`crate::sample::schedules::GridProblem`]). Two measures: the endpoint
//! error against the exact flow from the same prior draws, and MMD² (Gaussian kernel, median
//! bandwidth) of the samples against exact data draws.
//!
//! Claims of the papers checked here: UniPC beats DPM-Solver++(2M) at ≤ 10 NFE (Zhao et al.
//! 2023, Tables 1–2); on a flow-matching path DPM-Solver++ does worse than Euler below 15 steps
//! (NVlabs/Sana #91, #110); an optimised grid beats the sampler's own.

use super::cells::Cells;
use super::samplers_vs_nfe::steps_for;
use super::{Claim, Experiment, Num, Outputs, Scale, Sci};
use crate::data::{GaussianMixture, REFERENCE_DOMAIN};
use crate::plot::{Chart, Series};
use crate::sample::convergence::{endpoint_error, EndpointOracle};
use crate::sample::schedules::{GridProblem, OnTimes};
use crate::sample::{integrate_with, RunSpec, Sampler};
use crate::score::MixtureScore;
use crate::sde::{Sde, SdeSpec};
use crate::stats::two_sample::mmd_test;
use crate::{invalid, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Prior draws shared by every sampler (and the optimiser's objective).
    pub particles: usize,
    /// Exact data draws for MMD².
    pub reference_draws: usize,
    /// The data are rescaled to this per-coordinate std (image-like concentration).
    pub data_std: f64,
    /// NFE budgets.
    pub nfe: Vec<usize>,
    /// The paths compared.
    pub paths: Vec<SdeSpec>,
    /// The samplers, names or tables; each runs at the budgets it can spend exactly.
    pub samplers: Vec<Sampler>,
    /// The optimiser's evaluation budget per (sampler, path, NFE).
    pub optimiser_evals: Scale<usize>,
    /// NFE range of the UniPC and Sana claims.
    pub claim_nfe: [usize; 2],
    /// The power control's wrong model: components this many times wider.
    pub wrong_widen: f64,
}

/// One row of `few-step.csv`.
#[derive(Serialize)]
struct Row {
    path: String,
    sampler: String,
    grid: &'static str,
    nfe: Num,
    endpoint_error: Sci,
    mmd2: Sci,
}

/// The grids each (path, sampler, NFE) runs on, in the order of its rows.
const GRIDS: [&str; 2] = ["own", "optimised"];

/// One cell: a sampler on a path at an NFE budget (its own grid and the grid optimised for
/// it), or the power control (UniPC with a wrong model on the first path).
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Indices into `paths` and `samplers`, and the NFE.
    Point {
        path: usize,
        sampler: usize,
        nfe: usize,
    },
    Power,
}

/// What a cell measures.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    /// (endpoint error, MMD²) on each of [`GRIDS`], in that order; None: the sampler cannot
    /// spend exactly this NFE.
    Point(Option<[(f64, f64); 2]>),
    /// The wrong model's UniPC endpoint error at NFE `claim_nfe[1]`.
    Power(f64),
}

/// One path's SDE and exact score, its prior draws and their RK45 solution at ε.
pub struct OnPath {
    sde: Arc<dyn Sde>,
    score: MixtureScore,
    x_t: Array2<f64>,
    reference: Array2<f64>,
}

/// The rescaled mixture, its exact draws (for MMD²) and every path's set-up.
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    exact: Array2<f64>,
    paths: Vec<OnPath>,
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = Vec::new();
        for path in 0..self.paths.len() {
            for sampler in 0..self.samplers.len() {
                cells.extend(
                    self.nfe
                        .iter()
                        .map(|&nfe| Cell::Point { path, sampler, nfe }),
                );
            }
        }
        cells.push(Cell::Power);
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let (data, raw) = exp.exact_data()?;
        let mixture = Arc::new(raw.scaled(self.data_std / raw.coordinate_std())?);
        let exact = mixture
            .sample(self.reference_draws, o.seed ^ 0x5eed, REFERENCE_DOMAIN)
            .0;
        let mut paths = Vec::new();
        for spec in &self.paths {
            let sde = spec.build(|| mixture.diameter())?;
            let score = MixtureScore::new(mixture.clone(), sde.clone());
            let x_t = sde.prior_sample(self.particles, data.dim(), o.seed);
            let reference = EndpointOracle::new(sde.as_ref(), &score, x_t.clone())?.reference;
            paths.push(OnPath {
                sde,
                score,
                x_t,
                reference,
            });
        }
        Ok(Shared {
            mixture,
            exact,
            paths,
        })
    }

    fn compute(
        &self,
        _: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let (path, sampler, nfe) = match *cell {
            Cell::Point { path, sampler, nfe } => (path, sampler, nfe),
            // The power control: UniPC at `claim_nfe[1]` steps with the exact score of the
            // mixture with components `wrong_widen`× wider, on the first path.
            Cell::Power => {
                let on = &sh.paths[0];
                let wrong_score = MixtureScore::new(
                    Arc::new(sh.mixture.widened(self.wrong_widen)?),
                    on.sde.clone(),
                );
                let unipc: Sampler = "unipc".parse()?;
                let method = unipc.method(Some(on.sde.as_ref()))?;
                let run = RunSpec {
                    steps: self.claim_nfe[1],
                    n: self.particles,
                    denoise: Some(false),
                    ..Default::default()
                };
                let x = integrate_with(
                    on.sde.as_ref(),
                    &wrong_score,
                    on.x_t.clone(),
                    method.as_ref(),
                    &run,
                    None,
                )?
                .x;
                return Ok(Measured::Power(endpoint_error(&x, &on.reference)));
            }
        };
        let (on, s) = (&sh.paths[path], &self.samplers[sampler]);
        let sde = on.sde.as_ref();
        let method = s.method(Some(sde))?;
        let Some(steps) = steps_for(s, nfe)? else {
            return Ok(Measured::Point(None));
        };
        let eps = sde.default_eps();
        let own = method.grid(sde, eps, steps)?;
        let problem = GridProblem {
            sde,
            score: &on.score,
            method: method.as_ref(),
            steps,
            x_t: on.x_t.clone(),
            reference: on.reference.clone(),
            t0: sde.t_max(),
            t1: eps,
        };
        let (opt, _) = problem.optimise(&own, *self.optimiser_evals.at(o.quick))?;
        let mut measured = [(f64::NAN, f64::NAN); 2];
        for (k, (grid, times)) in [(GRIDS[0], own), (GRIDS[1], opt)].into_iter().enumerate() {
            let on_times = OnTimes {
                inner: method.as_ref(),
                times,
            };
            let run = RunSpec {
                steps,
                n: self.particles,
                denoise: Some(false),
                ..Default::default()
            };
            let x = integrate_with(sde, &on.score, on.x_t.clone(), &on_times, &run, None)?.x;
            let e = endpoint_error(&x, &on.reference);
            let mmd = mmd_test(x.view(), sh.exact.view(), 0, o.seed).statistic;
            o.nfe
                .push((format!("{} {} {grid}", sde.name(), s.brief()), nfe as f64));
            measured[k] = (e, mmd);
        }
        Ok(Measured::Point(Some(measured)))
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (_, raw) = exp.exact_data()?;
        let mixture = raw.scaled(p.data_std / raw.coordinate_std())?;
        let mut bad = f64::NAN;
        for (_, m) in &cells {
            if let Measured::Power(e) = m {
                bad = *e;
            }
        }
        let mut err: BTreeMap<(String, String, &str, usize), f64> = BTreeMap::new();
        let (mut rows, mut charts, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for (i, spec) in p.paths.iter().enumerate() {
            let sde = spec.build(|| mixture.diameter())?;
            names.push(sde.name());
            let mut series: BTreeMap<&str, Vec<Series>> = BTreeMap::new();
            for (j, s) in p.samplers.iter().enumerate() {
                let mut pts: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
                for (c, m) in &cells {
                    let (Cell::Point { path, sampler, nfe }, Measured::Point(Some(g))) = (c, m)
                    else {
                        continue;
                    };
                    if *path != i || *sampler != j {
                        continue;
                    }
                    let nfe = *nfe;
                    for (&grid, &(e, mmd)) in GRIDS.iter().zip(g.iter()) {
                        rows.push(Row {
                            path: sde.name().into(),
                            sampler: s.brief(),
                            grid,
                            nfe: Num(nfe as f64),
                            endpoint_error: Sci(e),
                            mmd2: Sci(mmd),
                        });
                        err.insert((sde.name().into(), s.name(), grid, nfe), e);
                        pts.entry(grid).or_default().push((nfe as f64, e));
                    }
                }
                for (grid, v) in pts {
                    series
                        .entry(grid)
                        .or_default()
                        .push(Series::line_points(s.name(), v));
                }
            }
            for (grid, series) in series.into_iter().rev() {
                charts.push(Chart {
                    title: format!("{} path, {grid} grids", sde.name()),
                    x_label: "NFE".into(),
                    y_label: "mean ‖x − x_RK45‖ at ε".into(),
                    log_x: true,
                    log_y: true,
                    series,
                    ..Default::default()
                });
            }
        }
        // Shared axes: the NFE range and every error.
        let (lo_e, hi_e) = err
            .values()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &e| (a.min(e), b.max(e)));
        let (n0, n1) = (
            *p.nfe.iter().min().unwrap_or(&1) as f64,
            *p.nfe.iter().max().unwrap_or(&1) as f64,
        );
        for c in &mut charts {
            c.limits = Some([(0.9 * n0, 1.1 * n1), (0.7 * lo_e, 1.5 * hi_e)]);
        }
        o.rows("few-step", &rows)?;
        o.grid("few-step", &charts, 2)?;

        let [lo, hi] = p.claim_nfe;
        let get = |path: &str, s: &str, grid: &str, n: usize| {
            err.iter()
                .find(|((a, b, c, d), _)| a == path && b == s && *c == grid && *d == n)
                .map(|(_, e)| *e)
                .ok_or_else(|| invalid!("{}: the claims need {s} on {path} at NFE {n}", exp.name))
        };
        let in_range: Vec<usize> = p
            .nfe
            .iter()
            .copied()
            .filter(|n| (lo..=hi).contains(n))
            .collect();
        let worst = |path: &str, a: &str, b: &str, ns: &[usize]| -> Result<f64> {
            ns.iter()
                .map(|&n| Ok(get(path, a, "own", n)? / get(path, b, "own", n)?))
                .try_fold(0.0f64, |m, r: Result<f64>| Ok(m.max(r?)))
        };
        let mut claims = Vec::new();
        let r = worst("vp", "unipc", "dpm-solver-pp2m", &in_range)?;
        claims.push(Claim::new(
            &format!("VP, NFE {lo}–{hi}: UniPC < DPM-Solver++(2M) (largest endpoint-error ratio)"),
            r < 1.0,
            r,
            "< 1",
        ));
        let r = worst("rectified", "pf-euler", "dpm-solver-pp2m", &in_range)?;
        claims.push(
            Claim::new(
                &format!("rectified, NFE {lo}–{hi}: Euler < DPM-Solver++(2M) as reported for flow models (largest ratio Euler/DPM++)"),
                r < 1.0,
                r,
                "< 1",
            )
            .report_only(),
        );
        // The optimised grid against each sampler's own, everywhere.
        let mut gain = f64::INFINITY;
        for ((path, s, grid, n), e) in &err {
            if *grid == "own" {
                gain = gain.min(e / get(path, s, "optimised", *n)?);
            }
        }
        claims.push(Claim::new(
            "the optimised grid is at least as good as the sampler's own at every (path, sampler, NFE) (smallest error ratio own/optimised)",
            gain >= 1.0,
            gain,
            "≥ 1",
        ));
        // Power: the UniPC statistic sees a wrong model lose.
        let r = bad / get(names[0], "dpm-solver-pp2m", "own", hi)?;
        claims.push(Claim::new(
            &format!(
                "power: UniPC with a wrong model (components {}× wider) loses to exact DPM-Solver++(2M) at NFE {hi} (error ratio)",
                p.wrong_widen
            ),
            r > 1.0,
            r,
            "> 1",
        ));
        Ok(claims)
    }
}
