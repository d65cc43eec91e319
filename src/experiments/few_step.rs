//! The regime the newer samplers exist for: 5–20 NFE with the exact score, on the VP path and
//! on the rectified (flow-matching) path, on each sampler's own grid and on the grid optimised
//! for it at that NFE ([`crate::sample::schedules::GridProblem`]). Two measures: the endpoint
//! error against the exact flow from the same prior draws, and MMD² (Gaussian kernel, median
//! bandwidth) of the samples against exact data draws.
//!
//! Claims of the papers checked here: UniPC beats DPM-Solver++(2M) at ≤ 10 NFE (Zhao et al.
//! 2023, Tables 1–2); on a flow-matching path DPM-Solver++ does worse than Euler below 15 steps
//! (NVlabs/Sana #91, #110); an optimised grid beats the sampler's own.

use super::samplers_vs_nfe::steps_for;
use super::{Claim, Experiment, Num, Outputs, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::convergence::EndpointOracle;
use crate::sample::schedules::{GridProblem, OnTimes};
use crate::sample::{integrate_with, RunSpec, Sampler};
use crate::score::MixtureScore;
use crate::sde::SdeSpec;
use crate::stats::two_sample::mmd_test;
use crate::{invalid, Result};
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
    pub optimiser_evals: usize,
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

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let (data, raw) = exp.exact_data()?;
    let mixture = Arc::new(raw.scaled(p.data_std / raw.coordinate_std())?);
    let exact = mixture
        .sample(p.reference_draws, o.seed ^ 0x5eed, REFERENCE_DOMAIN)
        .0;
    let mut err: BTreeMap<(String, String, &str, usize), f64> = BTreeMap::new();
    let (mut rows, mut charts) = (Vec::new(), Vec::new());
    for spec in &p.paths {
        let sde = spec.build(|| mixture.diameter())?;
        let score = MixtureScore::new(mixture.clone(), sde.clone());
        let x_t = sde.prior_sample(p.particles, data.dim(), o.seed);
        let oracle = EndpointOracle::new(sde.as_ref(), &score, x_t.clone())?;
        let eps = sde.default_eps();
        let mut series: BTreeMap<&str, Vec<Series>> = BTreeMap::new();
        for s in &p.samplers {
            let method = s.method(Some(sde.as_ref()))?;
            let mut pts: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
            for &nfe in &p.nfe {
                let Some(steps) = steps_for(s, nfe)? else {
                    continue;
                };
                let own = method.grid(sde.as_ref(), eps, steps)?;
                let problem = GridProblem {
                    sde: sde.as_ref(),
                    score: &score,
                    method: method.as_ref(),
                    steps,
                    x_t: x_t.clone(),
                    reference: oracle.reference.clone(),
                    t0: sde.t_max(),
                    t1: eps,
                };
                let (opt, _) = problem.optimise(&own, p.optimiser_evals)?;
                for (grid, times) in [("own", own), ("optimised", opt)] {
                    let on = OnTimes {
                        inner: method.as_ref(),
                        times,
                    };
                    let run = RunSpec {
                        steps,
                        n: p.particles,
                        denoise: Some(false),
                        ..Default::default()
                    };
                    let x = integrate_with(sde.as_ref(), &score, x_t.clone(), &on, &run, None)?.x;
                    let e = oracle.error(&x);
                    let mmd = mmd_test(x.view(), exact.view(), 0, o.seed).statistic;
                    rows.push(Row {
                        path: sde.name().into(),
                        sampler: s.brief(),
                        grid,
                        nfe: Num(nfe as f64),
                        endpoint_error: Sci(e),
                        mmd2: Sci(mmd),
                    });
                    o.nfe
                        .push((format!("{} {} {grid}", sde.name(), s.brief()), nfe as f64));
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
    let sde = p.paths[0].build(|| mixture.diameter())?;
    let exact_score = MixtureScore::new(mixture.clone(), sde.clone());
    let wrong_score = MixtureScore::new(Arc::new(mixture.widened(p.wrong_widen)?), sde.clone());
    let x_t = sde.prior_sample(p.particles, data.dim(), o.seed);
    let oracle = EndpointOracle::new(sde.as_ref(), &exact_score, x_t.clone())?;
    let unipc: Sampler = "unipc".parse()?;
    let method = unipc.method(Some(sde.as_ref()))?;
    let run = RunSpec {
        steps: hi,
        n: p.particles,
        denoise: Some(false),
        ..Default::default()
    };
    let bad = oracle
        .error(&integrate_with(sde.as_ref(), &wrong_score, x_t, method.as_ref(), &run, None)?.x);
    let r = bad / get(sde.name(), "dpm-solver-pp2m", "own", hi)?;
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

super::cells::legacy_cells!();
