//! Song et al. 2021 Fig. 3 on toy data: NFE and sample quality of the adaptive RK45 PF-ODE
//! solver against its tolerance (papers.md §4.5).

use super::{Claim, Experiment, Outputs};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Mark, Series};
use crate::sample::{integrate, SampleSpec, Sampler};
use crate::score::MixtureScore;
use crate::stats::two_sample::energy_distance;
use crate::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Samples per tolerance.
    pub n: usize,
    pub quick_n: usize,
    /// rtol = atol values, loosest first.
    pub tolerances: Vec<f64>,
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let (data, mixture) = exp.exact_data()?;
    let sde = exp.sde.build(|| data.diameter())?;
    let score = MixtureScore::new(mixture.clone(), sde.clone());
    let n = if o.quick { p.quick_n } else { p.n };
    let x_t = sde.prior_sample(n, data.dim(), o.seed);
    let reference_draws = mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
    let rk = |tol: f64| SampleSpec {
        sampler: Sampler::PfRk45,
        rtol: tol,
        atol: tol,
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
        rows.push(format!("{tol:e},{},{err:e},{en:e}", run.nfe));
        o.nfe.push((format!("pf-rk45 tol={tol:e}"), run.nfe));
        nfe_pts.push((tol, run.nfe));
        err_pts.push((tol, err));
        en_pts.push((tol, en));
    }
    o.csv(
        "adaptive",
        "tolerance,nfe,endpoint_error,energy_distance",
        &rows,
    )?;
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
                series: vec![Series {
                    label: "NFE".into(),
                    points: nfe_pts,
                    mark: Mark::LineAndPoints,
                }],
                ..Default::default()
            },
            Chart {
                title: "Sample error vs tolerance".into(),
                x_label: "rtol = atol".into(),
                y_label: "error".into(),
                log_x: true,
                log_y: true,
                series: vec![
                    Series {
                        label: "endpoint error vs RK45 at 1e-10".into(),
                        points: err_pts,
                        mark: Mark::LineAndPoints,
                    },
                    Series {
                        label: format!("energy distance to exact draws (floor {floor:.1e})"),
                        points: en_pts,
                        mark: Mark::LineAndPoints,
                    },
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
