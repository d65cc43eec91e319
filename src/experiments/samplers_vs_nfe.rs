//! EDM Fig. 2 / DPM-Solver on toy data: endpoint error at ε against NFE for every deterministic
//! sampler with the exact score, and the fitted convergence orders (papers.md §8.2, §9).

use super::{Num, Sci, Exact, Scale, loglog_slope, Claim, Experiment, Outputs};

use crate::plot::{Chart, Mark, Series};
use crate::sample::convergence::EndpointOracle;
use crate::sample::{integrate, SampleSpec, Sampler, SamplerOptions};
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Particles (prior draws shared by every sampler).
    pub particles: usize,
    /// NFE budgets (multiples of 12 keep every order's steps whole).
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

/// The theoretical order of a deterministic fixed-step sampler.
fn order(s: Sampler) -> Option<f64> {
    Some(match s {
        Sampler::PfEuler | Sampler::DpmSolver1 | Sampler::Ddim => 1.0,
        Sampler::PfHeun | Sampler::EdmHeun | Sampler::DpmSolver2 | Sampler::DpmSolverPp2m => 2.0,
        Sampler::DpmSolver3 => 3.0,
        Sampler::PfRk4 => 4.0,
        _ => return None,
    })
}

/// The `--steps` that spends exactly `nfe` evaluations, read off [`Sampler::nfe`].
fn steps_for(s: Sampler, nfe: usize, options: &SamplerOptions) -> Option<usize> {
    (1..=nfe + 1).find(|&k| s.nfe(k, options) == Some(nfe as u64))
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        data, sde, score, ..
    } = exp.exact()?;
    let x_t = sde.prior_sample(p.particles, data.dim(), o.seed);
    let oracle = EndpointOracle::new(sde.as_ref(), &score, x_t)?;
    let budgets = p.nfe.at(o.quick);
    let (mut rows, mut series, mut claims) = (Vec::new(), Vec::new(), Vec::new());
    for &s in &p.samplers {
        let order = order(s).ok_or_else(|| {
            invalid!(
                "{}: sampler {} is not a deterministic fixed-step sampler",
                exp.name,
                s.name()
            )
        })?;
        let options = SamplerOptions {
            denoise: Some(false),
            ..Default::default()
        };
        let mut pts = Vec::new();
        for &nfe in budgets {
            let steps = steps_for(s, nfe, &options).ok_or_else(|| {
                invalid!("{}: {} cannot spend exactly {nfe} NFE", exp.name, s.name())
            })?;
            let spec = SampleSpec {
                sampler: s,
                steps,
                options: options.clone(),
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
        series.push(Series {
            label: format!("{} (slope {slope:.2})", s.name()),
            points: pts,
            mark: Mark::LineAndPoints,
        });
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
