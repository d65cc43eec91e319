//! The newer samplers' convergence orders with the exact score (Zhao et al. 2023, Thm 3.1/3.3
//! for UniPC; Zhang & Chen 2022 for DEIS and iPNDM; Xue et al. 2023 at τ = 0; Gonzalez et al.
//! 2023 at η = 0): endpoint error against NFE from N = n0 doubling, and the fitted order of
//! each against the one it states ([`crate::sample::convergence::FittedOrder::holds`]).

use super::{Claim, Exact, Experiment, Fixed, Num, Outputs, Scale, Sci};
use crate::plot::{Chart, Series};
use crate::sample::convergence::EndpointOracle;
use crate::sample::Sampler;
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Particles (prior draws shared by every sampler).
    pub particles: Scale<usize>,
    /// The deterministic samplers, names or tables.
    pub samplers: Vec<Sampler>,
    /// N doubles from `n0` to `n_max`.
    pub n0: usize,
    pub n_max: Scale<usize>,
    /// Errors below this are not fitted (the reference is RK45 at 1e-13).
    pub floor: f64,
    /// Allowed distance of the fitted order from the stated band.
    pub tolerance: f64,
    /// Power control: this sampler with this (wrong) order claimed must be refuted.
    pub wrong: (Sampler, u32),
}

/// One row of `errors.csv`.
#[derive(Serialize)]
struct Row {
    sampler: String,
    steps: usize,
    nfe: Num,
    endpoint_error: Sci,
}

/// One row of `orders.csv`.
#[derive(Serialize)]
struct OrderRow {
    sampler: String,
    order_at: u32,
    bulk: u32,
    fitted: Fixed<2>,
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        data, sde, score, ..
    } = exp.exact()?;
    let x_t = sde.prior_sample(*p.particles.at(o.quick), data.dim(), o.seed);
    let oracle = EndpointOracle::with_tolerance(sde.as_ref(), &score, x_t, 1e-13)?;
    let n_max = *p.n_max.at(o.quick);
    let (mut rows, mut orders, mut series, mut claims) = (vec![], vec![], vec![], vec![]);
    let fit = |s: &Sampler| {
        let method = s.method(Some(sde.as_ref()))?;
        oracle
            .fitted_order(method.as_ref(), p.n0, n_max, p.floor)?
            .ok_or_else(|| {
                invalid!(
                    "{}: {} has no stated order or no three errors in [{}, 0.1] up to N = {n_max}",
                    exp.name,
                    s.brief(),
                    p.floor
                )
            })
    };
    for s in &p.samplers {
        let f = fit(s)?;
        for &(steps, nfe, err) in &f.points {
            rows.push(Row {
                sampler: s.brief(),
                steps,
                nfe: Num(nfe),
                endpoint_error: Sci(err),
            });
            o.nfe.push((format!("{} steps={steps}", s.brief()), nfe));
        }
        orders.push(OrderRow {
            sampler: s.brief(),
            order_at: f.order_at,
            bulk: f.bulk,
            fitted: Fixed(f.slope),
        });
        let band = if f.order_at == f.bulk {
            format!("{} ± {}", f.order_at, p.tolerance)
        } else {
            format!("[{} − {t}, {} + {t}]", f.order_at, f.bulk, t = p.tolerance)
        };
        claims.push(Claim::new(
            &format!("{} converges at its stated order (fitted)", s.brief()),
            f.holds(p.tolerance),
            f.slope,
            &band,
        ));
        series.push(Series::line_points(
            format!("{} ({:.2})", s.brief(), f.slope),
            f.points.iter().map(|q| (q.1, q.2)).collect(),
        ));
    }
    // Power: the same fit refutes a wrong claim.
    let (wrong, claimed) = &p.wrong;
    let f = fit(wrong)?;
    claims.push(Claim::new(
        &format!(
            "power: {} claimed at order {claimed} is refuted (fitted order outside ± {})",
            wrong.brief(),
            p.tolerance
        ),
        (f.slope - *claimed as f64).abs() > p.tolerance,
        f.slope,
        &format!("∉ {claimed} ± {}", p.tolerance),
    ));
    o.rows("errors", &rows)?;
    o.rows("orders", &orders)?;
    o.chart(
        "errors",
        &Chart {
            title: format!(
                "Newer samplers: endpoint error vs NFE, exact score, {} ({} path)",
                data.name(),
                sde.name()
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

super::cells::legacy_cells!();
