//! EDM Fig. 2 / DPM-Solver on toy data: endpoint error at ε against NFE for every deterministic
//! sampler with the exact score, and the fitted convergence orders (papers.md §8.2, §9).

use super::{loglog_slope, Claim, Exact, Experiment, Num, Outputs, Scale, Sci};

use crate::plot::{Chart, Series};
use crate::sample::convergence::EndpointOracle;
use crate::sample::{integrate, SampleSpec, Sampler};
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Particles (prior draws shared by every sampler).
    pub particles: usize,
    /// NFE budgets; a sampler whose split loses its order at a budget (DPM-Solver-3 off
    /// NFE ≡ 2 mod 3) runs at the next budget where it keeps it.
    pub nfe: Scale<Vec<usize>>,
    /// Sampler names as on the CLI.
    pub samplers: Vec<Sampler>,
    /// Largest NFE values used to fit each slope (the asymptotic range).
    pub fit_last: usize,
    /// Allowed |slope + order| for the convergence-order claims.
    pub tolerance: f64,
}

/// One row of `errors.csv`.
#[derive(Serialize)]
struct Row {
    sampler: String,
    nfe: Num,
    endpoint_error: Sci,
}

/// The `steps` that spend exactly `nfe` evaluations (no final denoising), read off the
/// sampler's own NFE formula.
pub(super) fn steps_for(s: &Sampler, nfe: usize) -> Result<Option<usize>> {
    for k in 1..=nfe + 1 {
        if s.nfe(k, Some(false))? == Some(nfe as u64) {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        data, sde, score, ..
    } = exp.exact()?;
    let x_t = sde.prior_sample(p.particles, data.dim(), o.seed);
    let oracle = EndpointOracle::new(sde.as_ref(), &score, x_t)?;
    let budgets = p.nfe.at(o.quick);
    let (mut rows, mut series, mut claims) = (Vec::new(), Vec::new(), Vec::new());
    for s in &p.samplers {
        let method = s.method(Some(sde.as_ref()))?;
        let order = method.order().ok_or_else(|| {
            invalid!(
                "{}: sampler {} is not a deterministic fixed-step sampler",
                exp.name,
                s.name()
            )
        })? as f64;
        let mut pts = Vec::new();
        for &budget in budgets {
            // The first budget ≥ `budget` it can spend exactly at its full order (DPM-Solver-3
            // ends on a first-order step unless NFE ≡ 2 mod 3).
            let mut found = None;
            for nfe in budget..budget + 3 {
                if let Some(steps) = steps_for(s, nfe)? {
                    if method.order_at(steps) == Some(order as u32) {
                        found = Some(steps);
                        break;
                    }
                }
            }
            let steps = found.ok_or_else(|| {
                invalid!(
                    "{}: {} cannot spend {budget} … {} NFE at order {order}",
                    exp.name,
                    s.name(),
                    budget + 2
                )
            })?;
            let spec = SampleSpec {
                sampler: s.clone(),
                steps,
                denoise: Some(false),
                ..Default::default()
            };
            let run = integrate(sde.as_ref(), &score, oracle.x_t.clone(), &spec, None)?;
            let err = oracle.error(&run.x);
            rows.push(Row {
                sampler: s.name(),
                nfe: Num(run.nfe),
                endpoint_error: Sci(err),
            });
            o.nfe.push((format!("{} steps={steps}", s.name()), run.nfe));
            pts.push((run.nfe, err));
        }
        let k = p.fit_last.min(pts.len()).max(2);
        let tail = &pts[pts.len() - k..];
        let slope = loglog_slope(
            &tail.iter().map(|p| p.0).collect::<Vec<_>>(),
            &tail.iter().map(|p| p.1).collect::<Vec<_>>(),
        );
        claims.push(Claim::new(
            &format!(
                "{} converges at order {order}: slope of log error vs log NFE",
                s.name()
            ),
            (slope + order).abs() <= p.tolerance,
            slope,
            &format!("{} ± {}", -order, p.tolerance),
        ));
        series.push(Series::line_points(
            format!("{} (slope {slope:.2})", s.name()),
            pts,
        ));
    }
    o.rows("errors", &rows)?;
    o.chart(
        "errors",
        &Chart {
            title: format!(
                "Endpoint error vs NFE, exact score, {} ({} SDE, {} particles)",
                data.name(),
                sde.name(),
                p.particles
            ),
            x_label: "NFE (score evaluations per sample)".into(),
            y_label: "mean ‖x − x_RK45‖ at ε".into(),
            log_x: true,
            log_y: true,
            series,
            ..Default::default()
        },
    )?;
    Ok(claims)
}
