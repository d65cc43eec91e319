//! −ELBO_T against T with the PF-ODE NLL (papers.md §4.4, §6, §7), exact ε* of a mixture:
//! with σ_t² = β_t the bound converges to the NLL; with β̃_t it stays above it by the
//! small-noise penalty [`beta_tilde_penalty`], which tends to ½d(γ + 1 − ln 2), not 0.

use super::cells::Cells;
use super::{Claim, Exact, Experiment, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::ddpm::DiscreteSchedule;
use crate::ddpm::Variance;
use crate::elbo::{beta_tilde_limit, beta_tilde_penalty, discrete_bound};
use crate::likelihood::{pf_ode_nll, NllSpec};
use crate::plot::{Chart, Series};
use crate::sde::{Sde, VpSde};
use crate::stats::mean_se;
use crate::{invalid, Result};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub points: Scale<usize>,
    /// Chain lengths T.
    pub steps: Scale<Vec<usize>>,
    /// The β̃ − β gap is compared with the small-noise penalty at every T ≥ this (below it the
    /// first steps' noise is not small against the data).
    pub penalty_from: usize,
    /// Allowed relative difference between the measured β̃ − β gap and the penalty.
    pub penalty_tolerance: f64,
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

/// One cell: the PF-ODE NLL of the points, or the discrete bound on a chain of `steps[step]`
/// steps (of the run's list) with one reverse variance.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    Nll,
    Bound {
        /// Index into `steps` (its full or quick list).
        step: usize,
        variance: Variance,
    },
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    /// The true NLL's mean over the points and the PF-ODE NLL's mean.
    Nll { true_mean: f64, nll_mean: f64 },
    /// The bound's mean and standard error, its gap to the true NLL (mean, standard error)
    /// and, for σ² = β, the bound per point (for the paired step-to-step comparison).
    Bound {
        total: f64,
        stderr: f64,
        gap: f64,
        gap_stderr: f64,
        per_point: Option<Array1<f64>>,
    },
}

/// The exact set-up, the points and their true NLL.
pub struct Shared {
    exact: Exact,
    x: Array2<f64>,
    truth: Array1<f64>,
}

/// The VP SDE the discrete bound needs.
fn vp_of<'a>(exp: &Experiment, sde: &'a dyn Sde) -> Result<&'a VpSde> {
    sde.as_vp()
        .ok_or_else(|| invalid!("{}: the discrete bound needs the VP SDE", exp.name))
}

fn variance_name(v: Variance) -> &'static str {
    if v == Variance::Beta {
        "beta"
    } else {
        "beta-tilde"
    }
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, exp: &Experiment, o: &Outputs) -> Result<Vec<Cell>> {
        let (_, sde) = exp.data_and_sde()?;
        vp_of(exp, sde.as_ref())?;
        let mut cells = vec![Cell::Nll];
        for step in 0..self.steps.at(o.quick).len() {
            for variance in [Variance::Beta, Variance::BetaTilde] {
                cells.push(Cell::Bound { step, variance });
            }
        }
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let exact = exp.exact()?;
        let n = *self.points.at(o.quick);
        let x = exact.mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
        let truth = -exact.score.log_prob(0.0, x.view());
        Ok(Shared { exact, x, truth })
    }

    fn compute(
        &self,
        _: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let (sde, score) = (sh.exact.sde.as_ref(), &sh.exact.score);
        match *cell {
            Cell::Nll => {
                let (true_mean, _) = mean_se(&sh.truth);
                let nll = pf_ode_nll(sde, score, sh.x.view(), &NllSpec::default())?;
                o.nfe.push(("pf-ode nll (rk45 1e-5)".into(), nll.nfe));
                Ok(Measured::Nll {
                    true_mean,
                    nll_mean: nll.mean(),
                })
            }
            Cell::Bound { step, variance } => {
                let t = self.steps.at(o.quick)[step];
                let b = discrete_bound(sde, score, sh.x.view(), t, variance, o.seed)?;
                let (gap, gap_stderr) = mean_se(&(&b.per_point - &sh.truth));
                o.nfe
                    .push((format!("elbo T={t} {}", variance_name(variance)), t as f64));
                Ok(Measured::Bound {
                    total: b.total(),
                    stderr: b.stderr(),
                    gap,
                    gap_stderr,
                    per_point: (variance == Variance::Beta).then_some(b.per_point),
                })
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
        let (data, sde) = exp.data_and_sde()?;
        let vp = vp_of(exp, sde.as_ref())?;
        let n = *p.points.at(o.quick);
        let steps = p.steps.at(o.quick);
        let d = data.dim();
        let mut claims = Vec::new();
        let (mut true_mean, mut nll_mean) = (f64::NAN, f64::NAN);
        let (mut rows, mut beta_pts, mut tilde_pts) = (Vec::new(), Vec::new(), Vec::new());
        let (mut penalty_pts, mut beta_bound) = (Vec::new(), 0.0);
        let mut prev: Option<Array1<f64>> = None;
        for (cell, m) in cells {
            let (step, variance, total, stderr, g, gse, per_point) = match (cell, m) {
                (
                    _,
                    Measured::Nll {
                        true_mean: tm,
                        nll_mean: nm,
                    },
                ) => {
                    true_mean = tm;
                    nll_mean = nm;
                    let nll_err = (nll_mean - true_mean).abs();
                    claims.push(Claim::new(
                        "PF-ODE NLL equals the true NLL (mean over points)",
                        nll_err < 0.01,
                        nll_err,
                        "< 0.01 nats",
                    ));
                    continue;
                }
                (
                    Cell::Bound { step, variance },
                    Measured::Bound {
                        total,
                        stderr,
                        gap,
                        gap_stderr,
                        per_point,
                    },
                ) => (step, variance, total, stderr, gap, gap_stderr, per_point),
                (Cell::Nll, Measured::Bound { .. }) => {
                    return Err(invalid!(
                        "{}: a stored cell holds another kind of row",
                        exp.name
                    ))
                }
            };
            let t = steps[step];
            let penalty = beta_tilde_penalty(&DiscreteSchedule::exact_vp(vp, t)?, d);
            if variance == Variance::Beta {
                // Once per T, as the β cell comes first.
                penalty_pts.push((t as f64, true_mean + penalty));
            }
            rows.push(Row {
                t,
                variance: variance_name(variance),
                neg_elbo: Sci(total),
                stderr: Sci(stderr),
                gap: Sci(g),
                gap_stderr: Sci(gse),
            });
            if variance == Variance::Beta {
                beta_bound = total;
                beta_pts.push((t as f64, total));
                claims.push(Claim::new(
                    &format!("−ELBO_{t} exceeds the true NLL beyond 3 standard errors (β)"),
                    g > 3.0 * gse,
                    g / gse,
                    "gap / se > 3",
                ));
                let per_point = per_point.ok_or_else(|| {
                    invalid!("{}: the β bound at T = {t} lacks its points", exp.name)
                })?;
                if let Some(prev) = &prev {
                    let (d, dse) = mean_se(&(prev - &per_point));
                    claims.push(Claim::new(
                        &format!("−ELBO does not increase from the previous T to T = {t} (β)"),
                        d > -3.0 * dse,
                        d,
                        &format!("> −3 se = {:.2e}", -3.0 * dse),
                    ));
                }
                prev = Some(per_point);
            } else {
                tilde_pts.push((t as f64, total));
                if t >= p.penalty_from {
                    let rel = (total - beta_bound) / penalty - 1.0;
                    claims.push(Claim::new(
                        &format!("T = {t}: the β̃ − β gap equals the small-noise penalty {penalty:.3} nats (relative difference)"),
                        rel.abs() <= p.penalty_tolerance,
                        rel,
                        &format!("± {}", p.penalty_tolerance),
                    ));
                    // Power: the β bound's gap to the NLL is not that penalty.
                    let rel_beta = (beta_bound - true_mean) / penalty - 1.0;
                    claims.push(Claim::new(
                        &format!("power: at T = {t} the β bound's gap to the NLL does not equal the β̃ penalty (relative difference)"),
                        rel_beta.abs() > p.penalty_tolerance,
                        rel_beta,
                        &format!("outside ± {}", p.penalty_tolerance),
                    ));
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
            // β̃ does not converge: its gap stays above ½d(γ + 1 − ln 2) (the penalty's limit,
            // approached from above), beyond 3 standard errors.
            let limit = beta_tilde_limit(d);
            let se = rows.last().map_or(0.0, |r: &Row| r.gap_stderr.0);
            claims.push(Claim::new(
                &format!("β̃ does not converge: gap −ELBO_{t} − NLL exceeds ½d(γ + 1 − ln 2) = {limit:.3} nats − 3 se"),
                et - true_mean > limit - 3.0 * se,
                et - true_mean,
                &format!("> {:.3}", limit - 3.0 * se),
            ));
            let limit_at = beta_tilde_penalty(&DiscreteSchedule::exact_vp(vp, 1_000_000)?, d);
            claims.push(Claim::new(
                "the penalty at T = 10⁶ equals ½d(γ + 1 − ln 2) (relative difference)",
                (limit_at / limit - 1.0).abs() < 0.005,
                limit_at / limit - 1.0,
                "± 0.005",
            ));
            // Power: at T = 1000 the penalty is still far from its limit (slow convergence).
            let at_1000 =
                beta_tilde_penalty(&DiscreteSchedule::exact_vp(vp, 1000)?, d) / limit - 1.0;
            claims.push(Claim::new(
                "power: the penalty at T = 1000 is not ½d(γ + 1 − ln 2) within ± 0.005 (relative difference)",
                at_1000.abs() >= 0.005,
                at_1000,
                "outside ± 0.005",
            ));
        }
        // The β̃ curve is not monotone in T (reported): the largest rise between successive T.
        let rise = tilde_pts
            .windows(2)
            .map(|w| w[1].1 - w[0].1)
            .fold(f64::NEG_INFINITY, f64::max);
        claims.push(
            Claim::new(
                "largest rise of −ELBO_T (β̃) between successive T, nats (> 0: not monotone)",
                true,
                rise,
                "report",
            )
            .report_only(),
        );
        o.rows("elbo", &rows)?;
        let (t0, t1) = (
            *steps.first().unwrap_or(&1) as f64,
            *steps.last().unwrap_or(&1) as f64,
        );
        let flat = |v: f64| vec![(t0, v), (t1, v)];
        o.chart(
            "elbo-vs-T",
            &Chart {
                title: format!(
                    "−ELBO_T vs T, exact ε*, {} ({} points): β → NLL, β̃ → NLL + ½d(γ+1−ln 2)",
                    data.name(),
                    n
                ),
                x_label: "T (steps of the discrete chain)".into(),
                y_label: "nats per point".into(),
                log_x: true,
                log_y: false,
                series: vec![
                    Series::line_points("−ELBO_T, σ² = β", beta_pts),
                    Series::line_points("−ELBO_T, σ² = β̃", tilde_pts),
                    Series::line("true NLL", flat(true_mean)),
                    Series::line("PF-ODE NLL", flat(nll_mean)),
                    Series::line("NLL + β̃ small-noise penalty", penalty_pts),
                    Series::line(
                        "NLL + ½d(γ+1−ln 2) (T → ∞)",
                        flat(true_mean + beta_tilde_limit(d)),
                    ),
                ],
                ..Default::default()
            },
        )?;
        Ok(claims)
    }
}
