//! Song et al. 2021 App. C / Fig. 5 on toy data (papers.md §4.6, §1.2): DDPM's discrete kernels
//! against the VP-SDE's continuous ones as N grows, and DDPM ancestral sampling against
//! reverse-SDE Euler–Maruyama at equal N, with the exact score and with a DDPM-trained
//! (discrete grid) and a VP-trained (continuous t) network, each sampled both ways.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{loglog_slope, Claim, Experiment, Outputs, Scale, Sci};
use crate::data::{GaussianMixture, REFERENCE_DOMAIN};
use crate::ddpm::DiscreteSchedule;
use crate::plot::{Chart, Series};
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::{MixtureScore, Score};
use crate::sde::Sde;
use crate::stats::two_sample::EnergyReference;
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// The two samplers compared, in this order: DDPM ancestral (N-step schedule) and reverse EM
/// with N steps, with their names in the trained panel's legend.
fn samplers() -> [(Sampler, &'static str); 2] {
    [
        (Sampler::Ddpm(Default::default()), "DDPM ancestral"),
        (Sampler::default(), "reverse EM"),
    ]
}

/// One cell: one kernel length, the data-vs-data floor, or one sampler at one N with the exact
/// score or a trained model.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Index into `kernel_steps`.
    Kernel(usize),
    /// Energy distance between independent exact draws, averaged over the seeds.
    Floor,
    /// `samplers()[sampler]` at N = `steps` with the exact score (`model` None) or with
    /// `models[i]`.
    Sweep {
        model: Option<usize>,
        sampler: usize,
        steps: usize,
    },
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    /// max |ᾱ_i − ᾱ(t_i)|, and for N ≤ 100 the discrete kernel std √(1 − ᾱ_i) at each t_i.
    Kernel(f64, Option<Vec<(f64, f64)>>),
    Floor(f64),
    /// Energy distance to the reference draws, averaged over the seeds.
    Energy(f64),
}

/// The exact set-up, the sampling seeds and each seed's reference draws.
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    sde: Arc<dyn Sde>,
    score: MixtureScore,
    seeds: Vec<u64>,
    /// Exact draws per seed, with their energy self-terms.
    references: Vec<EnergyReference>,
}

impl Params {
    /// Energy distances are averaged over `seeds` sampling seeds, each with its own reference
    /// draws; the floor is the same average for independent exact draws.
    fn seed_list(&self, o: &Outputs) -> Vec<u64> {
        (0..if o.quick { 1 } else { self.seeds } as u64)
            .map(|k| o.seed + 1000 * k)
            .collect()
    }
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, o: &Outputs) -> Result<Vec<Cell>> {
        let mut cells: Vec<Cell> = (0..self.kernel_steps.len()).map(Cell::Kernel).collect();
        cells.push(Cell::Floor);
        let mut sweeps = |model: Option<usize>, steps: &[usize]| {
            for sampler in 0..2 {
                cells.extend(steps.iter().map(|&steps| Cell::Sweep {
                    model,
                    sampler,
                    steps,
                }));
            }
        };
        sweeps(None, self.sampler_steps.at(o.quick));
        for i in 0..self.models.len() {
            sweeps(Some(i), self.trained_steps.at(o.quick));
        }
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let (data, mixture) = exp.exact_data()?;
        let sde = exp.sde.build(|| data.diameter())?;
        if sde.as_vp().is_none() {
            return Err(invalid!("{}: needs the VP SDE", exp.name));
        }
        let score = MixtureScore::new(mixture.clone(), sde.clone());
        let n_pts = *self.n.at(o.quick);
        let seeds = self.seed_list(o);
        let references: Vec<_> = seeds
            .iter()
            .map(|&s| EnergyReference::new(mixture.sample(n_pts, s, REFERENCE_DOMAIN).0))
            .collect();
        Ok(Shared {
            mixture,
            sde,
            score,
            seeds,
            references,
        })
    }

    fn compute(
        &self,
        exp: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let n_pts = *self.n.at(o.quick);
        let (model, sampler, n) = match *cell {
            // Kernels: the discrete std √(1 − ᾱ_i) on its nominal grid vs the continuous s(t).
            Cell::Kernel(k) => {
                let vp = sh
                    .sde
                    .as_vp()
                    .ok_or_else(|| invalid!("{}: needs the VP SDE", exp.name))?;
                let n = self.kernel_steps[k];
                let s = DiscreteSchedule::from_vp(vp, n)?;
                let err = (1..=n)
                    .map(|i| (s.alpha_bar(i) - vp.alpha_bar(s.nominal_time(i))).abs())
                    .fold(0.0, f64::max);
                let kernel: Option<Vec<(f64, f64)>> = (n <= 100).then(|| {
                    (1..=n)
                        .map(|i| (s.nominal_time(i), s.marginal(i).std))
                        .collect()
                });
                return Ok(Measured::Kernel(err, kernel));
            }
            Cell::Floor => {
                let floor = sh
                    .seeds
                    .iter()
                    .zip(&sh.references)
                    .map(|(&s, r)| {
                        r.distance(sh.mixture.sample(n_pts, s + 1, REFERENCE_DOMAIN).0.view())
                    })
                    .sum::<f64>()
                    / sh.seeds.len() as f64;
                return Ok(Measured::Floor(floor));
            }
            Cell::Sweep {
                model,
                sampler,
                steps,
            } => (model, sampler, steps),
        };
        let arms = samplers();
        let sampler = &arms[sampler].0;
        // Mean energy distance of `sampler` with `score` at N = n.
        let energy =
            |label: &str, sde: &dyn Sde, score: &dyn Score, o: &mut Outputs| -> Result<f64> {
                let mut e = 0.0;
                for (&seed, reference) in sh.seeds.iter().zip(&sh.references) {
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
                    e += reference.distance(run.x.view()) / sh.seeds.len() as f64;
                }
                Ok(e)
            };
        let Some(i) = model else {
            return Ok(Measured::Energy(energy(
                "exact score",
                sh.sde.as_ref(),
                &sh.score,
                o,
            )?));
        };
        let spec = &self.models[i];
        let net = spec.trained(exp, o)?;
        let net_sde = net.sde().clone();
        if net_sde.as_vp().is_none() {
            return Err(invalid!(
                "{}: model '{}' must be a VP model",
                exp.name,
                spec.label
            ));
        }
        Ok(Measured::Energy(energy(
            &spec.label,
            net_sde.as_ref(),
            &net,
            o,
        )?))
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, sde) = exp.data_and_sde()?;
        let vp = sde
            .as_vp()
            .ok_or_else(|| invalid!("{}: needs the VP SDE", exp.name))?;
        let n_pts = *p.n.at(o.quick);
        let seeds = p.seed_list(o);
        let arms = samplers();
        let mut floor = f64::NAN;
        let (mut rows, mut kernel_series, mut errs) = (vec![], vec![], vec![]);
        let mut srows = vec![];
        for (cell, m) in &cells {
            match (cell, m) {
                (Cell::Kernel(k), Measured::Kernel(err, kernel)) => {
                    let n = p.kernel_steps[*k];
                    rows.push(KernelRow {
                        n,
                        max_abs_alpha_bar_error: Sci(*err),
                    });
                    errs.push((n as f64, *err));
                    if let Some(points) = kernel {
                        kernel_series.push(Series::line_points(
                            format!("DDPM N = {n}: √(1 − ᾱ_i) at t_i"),
                            points.clone(),
                        ));
                    }
                }
                (Cell::Floor, Measured::Floor(f)) => floor = *f,
                (
                    Cell::Sweep {
                        model,
                        sampler,
                        steps,
                    },
                    Measured::Energy(e),
                ) => srows.push(SamplerRow {
                    score: match model {
                        None => "exact score".into(),
                        Some(i) => p.models[*i].label.clone(),
                    },
                    sampler: Some(arms[*sampler].0.name()),
                    n: Some(*steps),
                    mean_energy_distance: Sci(*e),
                }),
                _ => {}
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
        // The (N, E) points of one sampler with the exact score or one model, in cells order.
        let points = |of: Option<usize>, k: usize| -> Vec<(f64, f64)> {
            cells
                .iter()
                .filter_map(|(c, m)| match (c, m) {
                    (
                        Cell::Sweep {
                            model,
                            sampler,
                            steps,
                        },
                        Measured::Energy(e),
                    ) if *model == of && *sampler == k => Some((*steps as f64, *e)),
                    _ => None,
                })
                .collect()
        };
        let (ddpm_pts, em_pts) = (points(None, 0), points(None, 1));
        let trained_steps = p.trained_steps.at(o.quick);
        let (mut trained_series, mut claims) = (vec![], vec![]);
        for (i, spec) in p.models.iter().enumerate() {
            for (k, (_, name)) in arms.iter().enumerate() {
                let pts = points(Some(i), k);
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
}
