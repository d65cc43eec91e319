//! Song et al. 2021 App. C / Fig. 5 on toy data (papers.md §4.6, §1.2): DDPM's discrete kernels
//! against the VP-SDE's continuous ones as N grows, and DDPM ancestral sampling against
//! reverse-SDE Euler–Maruyama at equal N (exact score).

use super::{loglog_slope, Claim, Experiment, Outputs};
use crate::data::REFERENCE_DOMAIN;
use crate::ddpm::DiscreteSchedule;
use crate::plot::{Chart, Mark, Series};
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::MixtureScore;
use crate::stats::two_sample::energy_distance;
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Schedule lengths N for the kernel comparison.
    pub kernel_steps: Vec<usize>,
    /// Step counts for the sampler comparison.
    pub sampler_steps: Vec<usize>,
    pub quick_sampler_steps: Vec<usize>,
    pub n: usize,
    pub quick_n: usize,
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let (data, mixture) = exp.exact_data()?;
    let sde = exp.sde.build(|| data.diameter())?;
    let vp = sde
        .as_vp()
        .ok_or_else(|| invalid!("{}: needs the VP SDE", exp.name))?;
    // Kernels: the discrete std √(1 − ᾱ_i) on its nominal grid vs the continuous s(t).
    let (mut rows, mut kernel_series, mut errs) = (vec![], vec![], vec![]);
    for &n in &p.kernel_steps {
        let s = DiscreteSchedule::from_vp(vp, n)?;
        let err = (1..=n)
            .map(|i| (s.alpha_bar(i) - vp.alpha_bar(s.nominal_time(i))).abs())
            .fold(0.0, f64::max);
        rows.push(format!("{n},{err:e}"));
        errs.push((n as f64, err));
        if n <= 100 {
            kernel_series.push(Series {
                label: format!("DDPM N = {n}: √(1 − ᾱ_i) at t_i"),
                points: (1..=n)
                    .map(|i| (s.nominal_time(i), s.marginal(i).std))
                    .collect(),
                mark: Mark::LineAndPoints,
            });
        }
    }
    kernel_series.push(Series {
        label: "VP-SDE s(t)".into(),
        points: (0..=200)
            .map(|k| {
                let t = vp.schedule.t_max() * k as f64 / 200.0;
                (t, sde.marginal(t).std)
            })
            .collect(),
        mark: Mark::Line,
    });
    o.csv("alpha-bar-error", "N,max_abs_alpha_bar_error", &rows)?;
    let slope = loglog_slope(
        &errs.iter().map(|e| e.0).collect::<Vec<_>>(),
        &errs.iter().map(|e| e.1).collect::<Vec<_>>(),
    );
    // Samplers: DDPM ancestral (N-step schedule) vs reverse EM with N steps.
    let score = MixtureScore::new(mixture.clone(), sde.clone());
    let n_pts = if o.quick { p.quick_n } else { p.n };
    let steps = if o.quick {
        &p.quick_sampler_steps
    } else {
        &p.sampler_steps
    };
    let reference = mixture.sample(n_pts, o.seed, REFERENCE_DOMAIN).0;
    let (mut srows, mut ddpm_pts, mut em_pts) = (vec![], vec![], vec![]);
    for &n in steps {
        for sampler in [Sampler::Ddpm, Sampler::Em] {
            let spec = SampleSpec {
                sampler,
                steps: n,
                n: n_pts,
                seed: o.seed,
                ..Default::default()
            };
            let run = sample(sde.as_ref(), &score, &spec, None)?;
            o.nfe.push((format!("{} N={n}", sampler.name()), run.nfe));
            let e = energy_distance(run.x.view(), reference.view());
            srows.push(format!("{},{n},{e:e}", sampler.name()));
            if sampler == Sampler::Ddpm {
                ddpm_pts.push((n as f64, e));
            } else {
                em_pts.push((n as f64, e));
            }
        }
    }
    o.csv("samplers", "sampler,N,energy_distance", &srows)?;
    o.panels(
        "ddpm-vs-vpsde",
        &[
            Chart {
                title: "Perturbation kernel std: DDPM vs VP-SDE".into(),
                x_label: "t".into(),
                y_label: "kernel std".into(),
                log_x: false,
                log_y: false,
                series: kernel_series,
            },
            Chart {
                title: format!("max |ᾱ_i − ᾱ(t_i)| vs N (slope {slope:.2})"),
                x_label: "N".into(),
                y_label: "max abs error".into(),
                log_x: true,
                log_y: true,
                series: vec![Series {
                    label: "DDPM vs VP-SDE".into(),
                    points: errs,
                    mark: Mark::LineAndPoints,
                }],
            },
            Chart {
                title: format!("Samplers vs N, {}", data.name()),
                x_label: "N (steps = NFE)".into(),
                y_label: "energy distance to exact draws".into(),
                log_x: true,
                log_y: false,
                series: vec![
                    Series {
                        label: "DDPM ancestral".into(),
                        points: ddpm_pts,
                        mark: Mark::LineAndPoints,
                    },
                    Series {
                        label: "reverse-SDE Euler–Maruyama".into(),
                        points: em_pts,
                        mark: Mark::LineAndPoints,
                    },
                ],
            },
        ],
    )?;
    Ok(vec![Claim::new(
        "max |ᾱ_i − ᾱ(t_i)| shrinks as N^-1 (log–log slope)",
        (slope + 1.0).abs() <= 0.2,
        slope,
        "−1 ± 0.2",
    )])
}
