//! What an optimised time grid gains over the standard ones, per sampler and NFE, with the exact
//! score: uniform in t, uniform in λ, EDM's ρ = 7 (Karras et al. 2022, eq. 5), the published
//! Align Your Steps σ lists log-linearly interpolated (Sabour, Fidler & Kreis 2024), the tangent
//! law at the data's scale (Sun, Poor & Zhang 2026), and the grid the optimiser finds
//! ([`crate::sample::schedules::GridProblem`]). Every grid spans AYS's own σ range, so the
//! published lists are used as published; the x_T are prior draws placed at its σ_max.

use super::cells::Cells;
use super::{Claim, Experiment, Num, Outputs, Sci};
use crate::data::{GaussianMixture, REFERENCE_DOMAIN};
use crate::plot::{Chart, Series};
use crate::sample::grid::{time_grid, Spacing};
use crate::sample::schedules::{
    lambda_uniform, loglinear_interp, tangent_law, times_of_sigmas, GridProblem, OnTimes, AYS_SD15,
    AYS_SDXL,
};
use crate::sample::{integrate_with, Method, RunSpec, Sampler};
use crate::score::MixtureScore;
use crate::sde::Sde;
use crate::stats::two_sample::EnergyReference;
use crate::{invalid, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Prior draws (the optimiser's objective and every error).
    pub particles: usize,
    /// The data are rescaled to this per-coordinate std.
    pub data_std: f64,
    /// The deterministic samplers (distinct names).
    pub samplers: Vec<Sampler>,
    /// Steps N per sampler run.
    pub steps: Vec<usize>,
    /// The optimiser's evaluation budget per (sampler, N).
    pub optimiser_evals: usize,
    /// Exact data draws for the end-point question (σ_min = 0.029 against a final denoising).
    pub reference_draws: usize,
    /// The power control's wrong model: components this many times wider.
    pub wrong_widen: f64,
}

/// One row of `schedules.csv`.
#[derive(Serialize)]
struct Row {
    sampler: String,
    steps: usize,
    nfe: Num,
    grid: &'static str,
    endpoint_error: Sci,
}

/// The grids of a (sampler, N) cell, in the order [`standard`] lists them, then the optimised.
const GRIDS: [&str; 7] = [
    "uniform-t",
    "uniform-λ",
    "edm-ρ7",
    "ays-sd15",
    "ays-sdxl",
    "tangent",
    "optimised",
];

/// The standard grids of `points` times from t0 to t1.
fn standard(
    sde: &dyn Sde,
    c: f64,
    t0: f64,
    t1: f64,
    points: usize,
) -> Result<Vec<(&'static str, Vec<f64>)>> {
    let from_sigma = |s: Vec<f64>| times_of_sigmas(sde, &s, t0, t1);
    let tg = |spacing: Spacing| -> Result<Vec<f64>> {
        Ok(time_grid(sde, &spacing, 7.0, t0, t1, points)?
            .times()
            .to_vec())
    };
    Ok(vec![
        ("uniform-t", tg(Spacing::Time)?),
        ("uniform-λ", lambda_uniform(sde, t0, t1, points)),
        ("edm-ρ7", tg(Spacing::Edm)?),
        ("ays-sd15", from_sigma(loglinear_interp(&AYS_SD15, points))),
        ("ays-sdxl", from_sigma(loglinear_interp(&AYS_SDXL, points))),
        (
            "tangent",
            from_sigma(tangent_law(
                c,
                sde.sigma_tilde(t0),
                sde.sigma_tilde(t1),
                points,
            )),
        ),
    ])
}

/// `method` from `x_t` on `times`, denoising as asked.
fn run_on(
    sde: &dyn Sde,
    score: &MixtureScore,
    method: &dyn Method,
    steps: usize,
    times: Vec<f64>,
    x_t: &ndarray::Array2<f64>,
    denoise: bool,
) -> Result<ndarray::Array2<f64>> {
    let t1 = *times.last().expect("a grid");
    let on = OnTimes {
        inner: method,
        times,
    };
    let run = RunSpec {
        steps,
        eps: Some(t1),
        n: x_t.nrows(),
        denoise: Some(denoise),
        ..Default::default()
    };
    Ok(integrate_with(sde, score, x_t.clone(), &on, &run, None)?.x)
}

/// One cell: a sampler at N steps on every grid (the optimiser's run included), the power
/// control (a grid optimised for a wrong model), or AYS's two ends.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Indices into `samplers` and `steps`.
    Point(usize, usize),
    /// The first sampler at the last N, on the grid optimised for the wrong model.
    Power,
    /// The first sampler at the last N on the AYS SD1.5 grid, ending on σ_min and on σ = 0.
    AysEnd,
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    /// The NFE and the endpoint error on each grid, in [`GRIDS`] order.
    Point { nfe: f64, errors: Vec<f64> },
    /// The right model's endpoint error on the wrong model's optimised grid.
    Power(f64),
    /// Energy distances to exact data draws, ending on σ_min and denoised to σ = 0.
    AysEnd { at_min: f64, at_zero: f64 },
}

/// The rescaled mixture, its (VP) SDE and exact score, AYS's time range, the prior draws and
/// the exact flow's states at t1 from them (the reference of every [`GridProblem`] here).
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    sde: Arc<dyn Sde>,
    score: MixtureScore,
    t0: f64,
    t1: f64,
    x_t: Array2<f64>,
    reference: Array2<f64>,
}

impl Shared {
    /// The grid problem of `method` at `steps` with the exact score: what `GridProblem::new`
    /// builds, its reference (which depends on neither the method nor N) computed once.
    fn problem<'a>(&'a self, method: &'a dyn Method, steps: usize) -> GridProblem<'a> {
        GridProblem {
            sde: self.sde.as_ref(),
            score: &self.score,
            method,
            steps,
            x_t: self.x_t.clone(),
            reference: self.reference.clone(),
            t0: self.t0,
            t1: self.t1,
        }
    }
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = Vec::new();
        for i in 0..self.samplers.len() {
            cells.extend((0..self.steps.len()).map(|j| Cell::Point(i, j)));
        }
        cells.push(Cell::Power);
        cells.push(Cell::AysEnd);
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let (data, raw) = exp.exact_data()?;
        let mixture = Arc::new(raw.scaled(self.data_std / raw.coordinate_std())?);
        let sde = exp.sde.build(|| mixture.diameter())?;
        if sde.name() != "vp" {
            return Err(invalid!(
                "{}: the AYS lists are VP σ lists: use the vp path",
                exp.name
            ));
        }
        let score = MixtureScore::new(mixture.clone(), sde.clone());
        let (t0, t1) = (
            sde.t_of_sigma_tilde(AYS_SD15[0]),
            sde.t_of_sigma_tilde(AYS_SD15[AYS_SD15.len() - 1]),
        );
        let x_t = sde.prior_sample(self.particles, data.dim(), o.seed);
        // GridProblem::new checks the range and solves for the reference; any method will do.
        let method = self.samplers[0].method(Some(sde.as_ref()))?;
        let reference = GridProblem::new(
            sde.as_ref(),
            &score,
            method.as_ref(),
            self.steps[0],
            x_t.clone(),
            t0,
            t1,
        )?
        .reference;
        Ok(Shared {
            mixture,
            sde,
            score,
            t0,
            t1,
            x_t,
            reference,
        })
    }

    fn compute(
        &self,
        exp: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let sde = sh.sde.as_ref();
        match *cell {
            Cell::Point(i, j) => {
                let (s, steps) = (&self.samplers[i], self.steps[j]);
                let method = s.method(Some(sde))?;
                if method.order().is_none() {
                    return Err(invalid!("{}: {} is not deterministic", exp.name, s.brief()));
                }
                let problem = sh.problem(method.as_ref(), steps);
                let points = problem.points()?;
                let mut grids = standard(sde, self.data_std, sh.t0, sh.t1, points)?;
                let (opt, _) = problem.optimise(&grids[1].1, self.optimiser_evals)?;
                grids.push(("optimised", opt));
                debug_assert!(grids.iter().map(|g| g.0).eq(GRIDS.iter().copied()));
                let nfe = method.nfe(steps).unwrap_or(0) as f64;
                let mut errors = Vec::with_capacity(grids.len());
                for (grid, times) in grids {
                    errors.push(problem.error(&times)?);
                    o.nfe
                        .push((format!("{} {grid} steps={steps}", s.brief()), nfe));
                }
                Ok(Measured::Point { nfe, errors })
            }
            // Power: a grid optimised for a wrong model, run on the right model.
            Cell::Power => {
                let wrong = MixtureScore::new(
                    Arc::new(sh.mixture.widened(self.wrong_widen)?),
                    sh.sde.clone(),
                );
                let n = self.steps[self.steps.len() - 1];
                let method = self.samplers[0].method(Some(sde))?;
                let wrong_problem = GridProblem::new(
                    sde,
                    &wrong,
                    method.as_ref(),
                    n,
                    sh.x_t.clone(),
                    sh.t0,
                    sh.t1,
                )?;
                let start = lambda_uniform(sde, sh.t0, sh.t1, wrong_problem.points()?);
                let (bad_grid, _) = wrong_problem.optimise(&start, self.optimiser_evals)?;
                let right = sh.problem(method.as_ref(), n);
                Ok(Measured::Power(right.error(&bad_grid)?))
            }
            // AYS ends on σ = 0.029 (NVIDIA) or 0 (diffusers): with the exact score, σ = 0 is a
            // final denoising step. Energy distance to exact data draws, both ends.
            Cell::AysEnd => {
                let n = self.steps[self.steps.len() - 1];
                let exact = EnergyReference::new(
                    sh.mixture
                        .sample(self.reference_draws, o.seed ^ 0xa75, REFERENCE_DOMAIN)
                        .0,
                );
                let ddim = self.samplers[0].method(Some(sde))?;
                let points = sh.problem(ddim.as_ref(), n).points()?;
                let ays = standard(sde, self.data_std, sh.t0, sh.t1, points)?
                    .into_iter()
                    .find(|g| g.0 == "ays-sd15")
                    .expect("listed")
                    .1;
                let end = |denoise| -> Result<f64> {
                    let x = run_on(
                        sde,
                        &sh.score,
                        ddim.as_ref(),
                        n,
                        ays.clone(),
                        &sh.x_t,
                        denoise,
                    )?;
                    Ok(exact.distance(x.view()))
                };
                let (at_min, at_zero) = (end(false)?, end(true)?);
                Ok(Measured::AysEnd { at_min, at_zero })
            }
        }
    }

    fn render(
        &self,
        _: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let mut err: BTreeMap<(String, usize, &str), f64> = BTreeMap::new();
        let (mut rows, mut charts) = (Vec::new(), Vec::new());
        for (i, s) in p.samplers.iter().enumerate() {
            let mut pts: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
            for (cell, m) in &cells {
                let (Cell::Point(k, j), Measured::Point { nfe, errors }) = (cell, m) else {
                    continue;
                };
                if *k != i {
                    continue;
                }
                let (steps, nfe) = (p.steps[*j], *nfe);
                for (&grid, &e) in GRIDS.iter().zip(errors) {
                    rows.push(Row {
                        sampler: s.brief(),
                        steps,
                        nfe: Num(nfe),
                        grid,
                        endpoint_error: Sci(e),
                    });
                    err.insert((s.name(), steps, grid), e);
                    pts.entry(grid).or_default().push((nfe, e));
                }
            }
            charts.push(Chart {
                title: format!("{} on AYS's σ range", s.name()),
                x_label: "NFE".into(),
                y_label: "mean ‖x − x_exact‖ at σ_min".into(),
                log_x: true,
                log_y: true,
                series: pts
                    .into_iter()
                    .map(|(grid, v)| Series::line_points(grid, v))
                    .collect(),
                ..Default::default()
            });
        }
        let (mut power, mut at_min, mut at_zero) = (f64::NAN, f64::NAN, f64::NAN);
        for (_, m) in &cells {
            match m {
                Measured::Power(e) => power = *e,
                Measured::AysEnd {
                    at_min: a,
                    at_zero: z,
                } => {
                    at_min = *a;
                    at_zero = *z;
                }
                Measured::Point { .. } => {}
            }
        }
        let (lo, hi) = err
            .values()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &e| (a.min(e), b.max(e)));
        let nfes: Vec<f64> = rows.iter().map(|r| r.nfe.0).collect();
        let (n0, n1) = nfes
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &n| (a.min(n), b.max(n)));
        for c in &mut charts {
            c.limits = Some([(0.9 * n0, 1.1 * n1), (0.7 * lo, 1.5 * hi)]);
        }
        o.rows("schedules", &rows)?;
        o.grid("schedules", &charts, 3)?;

        let mut claims = Vec::new();
        // Optimised against the best standard grid, everywhere.
        let mut worst_gain = f64::INFINITY;
        let mut ays_vs = 0.0f64;
        for s in &p.samplers {
            for &n in &p.steps {
                let e = |g: &str| err[&(s.name(), n, g)];
                let best = [
                    "uniform-t",
                    "uniform-λ",
                    "edm-ρ7",
                    "ays-sd15",
                    "ays-sdxl",
                    "tangent",
                ]
                .iter()
                .map(|g| e(g))
                .fold(f64::INFINITY, f64::min);
                worst_gain = worst_gain.min(best / e("optimised"));
                ays_vs = ays_vs.max(e("ays-sd15") / e("edm-ρ7").min(e("uniform-λ")));
            }
        }
        claims.push(Claim::new(
            "the optimised grid beats the best standard grid at every (sampler, N) (smallest gain best/optimised)",
            worst_gain > 1.0,
            worst_gain,
            "> 1",
        ));
        claims.push(
            Claim::new(
                "AYS (SD1.5 list) beats both EDM ρ = 7 and uniform-λ at every (sampler, N) (largest ratio AYS/best of the two)",
                ays_vs < 1.0,
                ays_vs,
                "< 1",
            )
            .report_only(),
        );
        // Power: a grid optimised for a wrong model loses, on the right model, to the right one's.
        let s = &p.samplers[0];
        let n = p.steps[p.steps.len() - 1];
        let r = power / err[&(s.name(), n, "optimised")];
        claims.push(Claim::new(
            &format!(
                "power: the grid optimised for a wrong model (components {}× wider) loses to the right one's, {} N = {n} (error ratio)",
                p.wrong_widen,
                s.name()
            ),
            r > 1.0,
            r,
            "> 1",
        ));
        o.csv(
            "ays-end",
            "end,energy_distance",
            &[
                format!("sigma_min=0.0292,{at_min:e}"),
                format!("sigma=0 (denoised),{at_zero:e}"),
            ],
        )?;
        claims.push(
            Claim::new(
                &format!("AYS ending on σ = 0 (a final denoising) is closer to the data than ending on σ = 0.029, {} N = {n} (ratio of energy distances 0/0.029)", s.name()),
                at_zero < at_min,
                at_zero / at_min,
                "< 1",
            )
            .report_only(),
        );
        Ok(claims)
    }
}
