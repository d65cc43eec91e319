//! What an optimised time grid gains over the standard ones, per sampler and NFE, with the exact
//! score: uniform in t, uniform in λ, EDM's ρ = 7 (Karras et al. 2022, eq. 5), the published
//! Align Your Steps σ lists log-linearly interpolated (Sabour, Fidler & Kreis 2024), the tangent
//! law at the data's scale (Sun, Poor & Zhang 2026), and the grid the optimiser finds
//! ([`crate::sample::schedules::GridProblem`]). Every grid spans AYS's own σ range, so the
//! published lists are used as published; the x_T are prior draws placed at its σ_max.

use super::{Claim, Experiment, Num, Outputs, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::grid::{time_grid, Spacing};
use crate::sample::schedules::{
    lambda_uniform, loglinear_interp, tangent_law, times_of_sigmas, GridProblem, OnTimes, AYS_SD15,
    AYS_SDXL,
};
use crate::sample::{integrate_with, Method, RunSpec, Sampler};
use crate::score::MixtureScore;
use crate::sde::Sde;
use crate::stats::two_sample::energy_distance;
use crate::{invalid, Result};
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

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let (data, raw) = exp.exact_data()?;
    let mixture = Arc::new(raw.scaled(p.data_std / raw.coordinate_std())?);
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
    let x_t = sde.prior_sample(p.particles, data.dim(), o.seed);
    let mut err: BTreeMap<(String, usize, &str), f64> = BTreeMap::new();
    let (mut rows, mut charts) = (Vec::new(), Vec::new());
    let mut optimised: BTreeMap<(String, usize), Vec<f64>> = BTreeMap::new();
    for s in &p.samplers {
        let method = s.method(Some(sde.as_ref()))?;
        if method.order().is_none() {
            return Err(invalid!("{}: {} is not deterministic", exp.name, s.brief()));
        }
        let mut pts: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for &steps in &p.steps {
            let problem = GridProblem::new(
                sde.as_ref(),
                &score,
                method.as_ref(),
                steps,
                x_t.clone(),
                t0,
                t1,
            )?;
            let points = problem.points()?;
            let mut grids = standard(sde.as_ref(), p.data_std, t0, t1, points)?;
            let (opt, _) = problem.optimise(&grids[1].1, p.optimiser_evals)?;
            optimised.insert((s.name(), steps), opt.clone());
            grids.push(("optimised", opt));
            let nfe = method.nfe(steps).unwrap_or(0) as f64;
            for (grid, times) in grids {
                let e = problem.error(&times)?;
                rows.push(Row {
                    sampler: s.brief(),
                    steps,
                    nfe: Num(nfe),
                    grid,
                    endpoint_error: Sci(e),
                });
                o.nfe
                    .push((format!("{} {grid} steps={steps}", s.brief()), nfe));
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
    let wrong = MixtureScore::new(Arc::new(mixture.widened(p.wrong_widen)?), sde.clone());
    let s = &p.samplers[0];
    let n = p.steps[p.steps.len() - 1];
    let method = s.method(Some(sde.as_ref()))?;
    let wrong_problem = GridProblem::new(
        sde.as_ref(),
        &wrong,
        method.as_ref(),
        n,
        x_t.clone(),
        t0,
        t1,
    )?;
    let start = lambda_uniform(sde.as_ref(), t0, t1, wrong_problem.points()?);
    let (bad_grid, _) = wrong_problem.optimise(&start, p.optimiser_evals)?;
    let right = GridProblem::new(
        sde.as_ref(),
        &score,
        method.as_ref(),
        n,
        x_t.clone(),
        t0,
        t1,
    )?;
    let r = right.error(&bad_grid)? / err[&(s.name(), n, "optimised")];
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
    // AYS ends on σ = 0.029 (NVIDIA) or 0 (diffusers): with the exact score, σ = 0 is a final
    // denoising step. Energy distance to exact data draws, both ends.
    let exact = mixture
        .sample(p.reference_draws, o.seed ^ 0xa75, REFERENCE_DOMAIN)
        .0;
    let ddim = s.method(Some(sde.as_ref()))?;
    let ays = standard(sde.as_ref(), p.data_std, t0, t1, right.points()?)?
        .into_iter()
        .find(|g| g.0 == "ays-sd15")
        .expect("listed")
        .1;
    let end = |denoise| -> Result<f64> {
        let x = run_on(
            sde.as_ref(),
            &score,
            ddim.as_ref(),
            n,
            ays.clone(),
            &x_t,
            denoise,
        )?;
        Ok(energy_distance(x.view(), exact.view()))
    };
    let (at_min, at_zero) = (end(false)?, end(true)?);
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

super::cells::legacy_cells!();
