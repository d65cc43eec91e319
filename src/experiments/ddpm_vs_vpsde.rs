//! Song et al. 2021 App. C / Fig. 5 on toy data (papers.md §4.6, §1.2): DDPM's discrete kernels
//! against the VP-SDE's continuous ones as N grows, and DDPM ancestral sampling against
//! reverse-SDE Euler–Maruyama at equal N, with the exact score and with a DDPM-trained
//! (discrete grid) and a VP-trained (continuous t) network, each sampled both ways.

use super::model::ModelSpec;
use super::{loglog_slope, Claim, Experiment, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::ddpm::DiscreteSchedule;
use crate::plot::{Chart, Series};
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::{MixtureScore, Score};
use crate::sde::Sde;
use crate::stats::two_sample::energy_distance;
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Schedule lengths N for the kernel comparison.
    pub kernel_steps: Vec<usize>,
    /// Step counts for the sampler comparison.
    pub sampler_steps: Scale<Vec<usize>>,
    pub n: Scale<usize>,
    /// A discrete-trained and a continuous-trained model, each sampled by both samplers at
    /// `trained_steps`.
    pub models: Vec<ModelSpec>,
    pub trained_steps: Scale<Vec<usize>>,
    /// Asserted at the largest N: energy distance below `max_ratio` × the data-vs-data floor.
    pub max_ratio: f64,
    /// Sampling seeds averaged (1 under `--quick`).
    pub seeds: usize,
}

/// One row of `alpha-bar-error.csv`.
#[derive(Serialize)]
struct KernelRow {
    #[serde(rename = "N")]
    n: usize,
    max_abs_alpha_bar_error: Sci,
}

/// One row of `samplers.csv` (the floor row has no sampler and no N).
#[derive(Serialize)]
struct SamplerRow {
    score: String,
    sampler: Option<String>,
    #[serde(rename = "N")]
    n: Option<usize>,
    mean_energy_distance: Sci,
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
        rows.push(KernelRow {
            n,
            max_abs_alpha_bar_error: Sci(err),
        });
        errs.push((n as f64, err));
        if n <= 100 {
            kernel_series.push(Series::line_points(
                format!("DDPM N = {n}: √(1 − ᾱ_i) at t_i"),
                (1..=n)
                    .map(|i| (s.nominal_time(i), s.marginal(i).std))
                    .collect(),
            ));
        }
    }
    kernel_series.push(Series::line(
        "VP-SDE s(t)",
        (0..=200)
            .map(|k| {
                let t = vp.schedule.t_max() * k as f64 / 200.0;
                (t, sde.marginal(t).std)
            })
            .collect(),
    ));
    o.rows("alpha-bar-error", &rows)?;
    let slope = loglog_slope(
        &errs.iter().map(|e| e.0).collect::<Vec<_>>(),
        &errs.iter().map(|e| e.1).collect::<Vec<_>>(),
    );
    // Samplers: DDPM ancestral (N-step schedule) vs reverse EM with N steps.
    let score = MixtureScore::new(mixture.clone(), sde.clone());
    let n_pts = *p.n.at(o.quick);
    let steps = p.sampler_steps.at(o.quick);
    // Energy distances are averaged over `seeds` sampling seeds, each with its own reference
    // draws; the floor is the same average for independent exact draws.
    let seeds: Vec<u64> = (0..if o.quick { 1 } else { p.seeds } as u64)
        .map(|k| o.seed + 1000 * k)
        .collect();
    let references: Vec<_> = seeds
        .iter()
        .map(|&s| mixture.sample(n_pts, s, REFERENCE_DOMAIN).0)
        .collect();
    let floor = seeds
        .iter()
        .zip(&references)
        .map(|(&s, r)| {
            energy_distance(
                mixture.sample(n_pts, s + 1, REFERENCE_DOMAIN).0.view(),
                r.view(),
            )
        })
        .sum::<f64>()
        / seeds.len() as f64;
    let mut srows = vec![];
    // Mean energy distance of `sampler` with `score` at each N in `steps`, as (N, E) points.
    let mut sweep = |label: &str,
                     sde: &dyn Sde,
                     score: &dyn Score,
                     sampler: &Sampler,
                     steps: &[usize],
                     o: &mut Outputs|
     -> Result<Vec<(f64, f64)>> {
        let mut pts = vec![];
        for &n in steps {
            let mut e = 0.0;
            for (&seed, reference) in seeds.iter().zip(&references) {
                let spec = SampleSpec {
                    sampler: sampler.clone(),
                    steps: n,
                    n: n_pts,
                    seed,
                    ..Default::default()
                };
                let run = sample(sde, score, &spec, None)?;
                if seed == o.seed {
                    o.nfe
                        .push((format!("{label}: {} N={n}", sampler.name()), run.nfe));
                }
                e += energy_distance(run.x.view(), reference.view()) / seeds.len() as f64;
            }
            srows.push(SamplerRow {
                score: label.into(),
                sampler: Some(sampler.name()),
                n: Some(n),
                mean_energy_distance: Sci(e),
            });
            pts.push((n as f64, e));
        }
        Ok(pts)
    };
    let (ddpm, em) = (Sampler::Ddpm(Default::default()), Sampler::default());
    let ddpm_pts = sweep("exact score", sde.as_ref(), &score, &ddpm, steps, o)?;
    let em_pts = sweep("exact score", sde.as_ref(), &score, &em, steps, o)?;
    let trained_steps = p.trained_steps.at(o.quick);
    let (mut trained_series, mut claims) = (vec![], vec![]);
    for spec in &p.models {
        let net = spec.trained(exp, o)?;
        let net_sde = net.sde().clone();
        if net_sde.as_vp().is_none() {
            return Err(invalid!(
                "{}: model '{}' must be a VP model",
                exp.name,
                spec.label
            ));
        }
        for (sampler, name) in [(&ddpm, "DDPM ancestral"), (&em, "reverse EM")] {
            let pts = sweep(
                &spec.label,
                net_sde.as_ref(),
                &net,
                sampler,
                trained_steps,
                o,
            )?;
            if let Some(&(n, e)) = pts.last() {
                claims.push(
                    Claim::new(
                        &format!(
                            "{} sampled by {name} at N = {n}: energy distance within {}× the data-vs-data floor (n = {n_pts}, mean over seeds {seeds:?})",
                            spec.label, p.max_ratio
                        ),
                        e < p.max_ratio * floor,
                        e / floor,
                        &format!("< {}", p.max_ratio),
                    )
                    .learned(o.quick),
                );
            }
            trained_series.push(Series::line_points(format!("{}, {name}", spec.label), pts));
        }
    }
    if let (Some(lo), Some(hi)) = (trained_steps.iter().min(), trained_steps.iter().max()) {
        trained_series.push(Series::line(
            "data vs data (floor)",
            vec![(*lo as f64, floor), (*hi as f64, floor)],
        ));
    }
    srows.push(SamplerRow {
        score: "data vs data (floor)".into(),
        sampler: None,
        n: None,
        mean_energy_distance: Sci(floor),
    });
    o.rows("samplers", &srows)?;
    // The two sampler panels share axes: x whole decades of N, y the range of every value.
    let all: Vec<(f64, f64)> = [&ddpm_pts, &em_pts]
        .into_iter()
        .chain(trained_series.iter().map(|s| &s.points))
        .flatten()
        .copied()
        .collect();
    let fold = |f: fn(&(f64, f64)) -> f64| {
        all.iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    let ((n_lo, n_hi), (e_lo, e_hi)) = (fold(|p| p.0), fold(|p| p.1));
    let pad = 0.05 * (e_hi - e_lo);
    let limits = Some([
        (
            10f64.powf(n_lo.log10().floor()),
            10f64.powf(n_hi.log10().ceil()),
        ),
        (e_lo - pad, e_hi + pad),
    ]);
    o.grid(
        "ddpm-vs-vpsde",
        &[
            Chart {
                title: "Perturbation kernel std: DDPM vs VP-SDE".into(),
                x_label: "t".into(),
                y_label: "kernel std".into(),
                log_x: false,
                log_y: false,
                series: kernel_series,
                ..Default::default()
            },
            Chart {
                title: format!("max |ᾱ_i − ᾱ(t_i)| vs N (slope {slope:.2})"),
                x_label: "N".into(),
                y_label: "max abs error".into(),
                log_x: true,
                log_y: true,
                series: vec![Series::line_points("DDPM vs VP-SDE", errs)],
                ..Default::default()
            },
            Chart {
                title: format!("Exact score: samplers vs N, {}", data.name()),
                x_label: "N (steps = NFE)".into(),
                y_label: format!("energy distance (mean of {} seeds)", seeds.len()),
                log_x: true,
                log_y: false,
                series: vec![
                    Series::line_points("DDPM ancestral", ddpm_pts),
                    Series::line_points("reverse-SDE Euler–Maruyama", em_pts),
                ],
                limits,
            },
            Chart {
                title: "Trained on DDPM's grid vs continuous t".into(),
                x_label: "N (steps = NFE)".into(),
                y_label: format!("energy distance (mean of {} seeds)", seeds.len()),
                log_x: true,
                log_y: false,
                series: trained_series,
                limits,
            },
        ],
        2,
    )?;
    claims.push(Claim::new(
        "max |ᾱ_i − ᾱ(t_i)| shrinks as N^-1 (log–log slope)",
        (slope + 1.0).abs() <= 0.2,
        slope,
        "−1 ± 0.2",
    ));
    Ok(claims)
}

super::cells::legacy_cells!();
