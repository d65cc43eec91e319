//! −ELBO_T against T converging to the true NLL, with the PF-ODE NLL (papers.md §4.4, §6, §7):
//! the exact ε* of a mixture, σ_t² = β_t and β̃_t.

use super::{Sci, Exact, Scale, Claim, Experiment, Outputs};
use crate::data::REFERENCE_DOMAIN;
use crate::elbo::discrete_bound;
use crate::likelihood::{pf_ode_nll, NllSpec};
use crate::plot::{Chart, Series};
use crate::ddpm::Variance;
use crate::stats::mean_se;
use crate::Result;
use ndarray::Array1;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub points: Scale<usize>,
    /// Chain lengths T.
    pub steps: Scale<Vec<usize>>,
}

/// One row of `elbo.csv`.
#[derive(Serialize)]
struct Row {
    #[serde(rename = "T")]
    t: usize,
    variance: &'static str,
    neg_elbo: Sci,
    stderr: Sci,
    gap: Sci,
    gap_stderr: Sci,
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        data,
        mixture,
        sde,
        score,
    } = exp.exact()?;
    let n = *p.points.at(o.quick);
    let steps = p.steps.at(o.quick);
    let x = mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
    let truth = -score.log_prob(0.0, x.view());
    let (true_mean, _) = mean_se(&truth);
    let nll = pf_ode_nll(sde.as_ref(), &score, x.view(), &NllSpec::default())?;
    o.nfe.push(("pf-ode nll (rk45 1e-5)".into(), nll.nfe));
    let nll_err = (nll.mean() - true_mean).abs();
    let mut claims = vec![Claim::new(
        "PF-ODE NLL equals the true NLL (mean over points)",
        nll_err < 0.01,
        nll_err,
        "< 0.01 nats",
    )];
    let (mut rows, mut beta_pts, mut tilde_pts) = (Vec::new(), Vec::new(), Vec::new());
    let mut prev: Option<Array1<f64>> = None;
    for &t in steps {
        for variance in [Variance::Beta, Variance::BetaTilde] {
            let b = discrete_bound(sde.as_ref(), &score, x.view(), t, variance, o.seed)?;
            let (g, gse) = mean_se(&(&b.per_point - &truth));
            let name = if variance == Variance::Beta {
                "beta"
            } else {
                "beta-tilde"
            };
            rows.push(Row {
                t,
                variance: name,
                neg_elbo: Sci(b.total()),
                stderr: Sci(b.stderr()),
                gap: Sci(g),
                gap_stderr: Sci(gse),
            });
            o.nfe.push((format!("elbo T={t} {name}"), t as f64));
            if variance == Variance::Beta {
                beta_pts.push((t as f64, b.total()));
                claims.push(Claim::new(
                    &format!("−ELBO_{t} exceeds the true NLL beyond 3 standard errors (β)"),
                    g > 3.0 * gse,
                    g / gse,
                    "gap / se > 3",
                ));
                if let Some(prev) = &prev {
                    let (d, dse) = mean_se(&(prev - &b.per_point));
                    claims.push(Claim::new(
                        &format!("−ELBO does not increase from the previous T to T = {t} (β)"),
                        d > -3.0 * dse,
                        d,
                        &format!("> −3 se = {:.2e}", -3.0 * dse),
                    ));
                }
                prev = Some(b.per_point.clone());
            } else {
                tilde_pts.push((t as f64, b.total()));
            }
        }
    }
    if let (Some(&(t, e)), Some(&(_, et))) = (beta_pts.last(), tilde_pts.last()) {
        claims.push(
            Claim::new(
                &format!("gap −ELBO_{t} − NLL (β), nats (reported)"),
                true,
                e - true_mean,
                "report",
            )
            .report_only(),
        );
        claims.push(
            Claim::new(
                &format!("β̃ gives a looser bound than β at T = {t}"),
                et >= e,
                et - e,
                "≥ 0",
            )
            .report_only(),
        );
    }
    o.rows("elbo", &rows)?;
    let (t0, t1) = (
        *steps.first().unwrap_or(&1) as f64,
        *steps.last().unwrap_or(&1) as f64,
    );
    let flat = |v: f64| vec![(t0, v), (t1, v)];
    o.chart(
        "elbo-vs-T",
        &Chart {
            title: format!("−ELBO_T → NLL, exact ε*, {} ({} points)", data.name(), n),
            x_label: "T (steps of the discrete chain)".into(),
            y_label: "nats per point".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series::line_points("−ELBO_T, σ² = β", beta_pts),
                Series::line_points("−ELBO_T, σ² = β̃", tilde_pts),
                Series::line("true NLL", flat(true_mean)),
                Series::line("PF-ODE NLL", flat(nll.mean())),
            ],
            ..Default::default()
        },
    )?;
    Ok(claims)
}
