//! Song et al. 2021 Fig. 3 on toy data: NFE and sample quality of the adaptive RK45 PF-ODE
//! solver against its tolerance (papers.md §4.5).

use super::{Claim, Exact, Experiment, Num, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::{config, integrate, SampleSpec, Sampler};
use crate::stats::two_sample::energy_distance;
use crate::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Samples per tolerance.
    pub n: Scale<usize>,
    /// rtol = atol values, loosest first.
    pub tolerances: Vec<f64>,
}

/// One row of `adaptive.csv`.
#[derive(Serialize)]
struct Row {
    tolerance: Sci,
    nfe: Num,
    endpoint_error: Sci,
    energy_distance: Sci,
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        data,
        mixture,
        sde,
        score,
    } = exp.exact()?;
    let n = *p.n.at(o.quick);
    let x_t = sde.prior_sample(n, data.dim(), o.seed);
    let reference_draws = mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
    let rk = |tol: f64| SampleSpec {
        sampler: Sampler::PfRk45(config::PfRk45 {
            rtol: tol,
            atol: tol,
        }),
        ..Default::default()
    };
    let exact_path = integrate(sde.as_ref(), &score, x_t.clone(), &rk(1e-10), None)?.x;
    let floor = energy_distance(exact_path.view(), reference_draws.view());
    let (mut rows, mut nfe_pts, mut err_pts, mut en_pts) = (vec![], vec![], vec![], vec![]);
    for &tol in &p.tolerances {
        let run = integrate(sde.as_ref(), &score, x_t.clone(), &rk(tol), None)?;
        let err = (&run.x - &exact_path)
            .rows()
            .into_iter()
            .map(|r| r.dot(&r).sqrt())
            .sum::<f64>()
            / n as f64;
        let en = energy_distance(run.x.view(), reference_draws.view());
        rows.push(Row {
            tolerance: Sci(tol),
            nfe: Num(run.nfe),
            endpoint_error: Sci(err),
            energy_distance: Sci(en),
        });
        o.nfe.push((format!("pf-rk45 tol={tol:e}"), run.nfe));
        nfe_pts.push((tol, run.nfe));
        err_pts.push((tol, err));
        en_pts.push((tol, en));
    }
    o.rows("adaptive", &rows)?;
    let monotone = nfe_pts.windows(2).all(|w| w[1].1 >= w[0].1);
    let loose = err_pts.first().map_or(f64::NAN, |p| p.1);
    let tight = err_pts.last().map_or(f64::NAN, |p| p.1);
    o.panels(
        "adaptive",
        &[
            Chart {
                title: format!("RK45 NFE vs tolerance, {}", data.name()),
                x_label: "rtol = atol".into(),
                y_label: "NFE per sample (mean)".into(),
                log_x: true,
                log_y: true,
                series: vec![Series::line_points("NFE", nfe_pts)],
                ..Default::default()
            },
            Chart {
                title: "Sample error vs tolerance".into(),
                x_label: "rtol = atol".into(),
                y_label: "error".into(),
                log_x: true,
                log_y: true,
                series: vec![
                    Series::line_points("endpoint error vs RK45 at 1e-10", err_pts),
                    Series::line_points(
                        format!("energy distance to exact draws (floor {floor:.1e})"),
                        en_pts,
                    ),
                ],
                ..Default::default()
            },
        ],
    )?;
    Ok(vec![
        Claim::new(
            "NFE grows as the tolerance tightens",
            monotone,
            f64::from(u8::from(monotone)),
            "monotone",
        ),
        Claim::new(
            "loosest tolerance has a larger endpoint error than the tightest (ratio)",
            loose > 10.0 * tight,
            loose / tight,
            "> 10",
        ),
    ])
}

super::cells::legacy_cells!();
