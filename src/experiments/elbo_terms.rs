//! DDPM's ELBO term by term (papers.md §6.1, §6.3): L_{t−1} against t for the exact ε* and a
//! trained DDPM, σ_t² = β_t against β̃_t, with L_T and L_0; and DDPM Fig. 5 — rate (cumulative
//! L_T + … + L_t, bits/dim) and distortion (RMSE of x̂₀ from x_t) against reverse steps.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{Claim, Experiment, Outputs, Scale, Sci};
use crate::data::{Dataset, REFERENCE_DOMAIN};
use crate::ddpm::DiscreteSchedule;
use crate::ddpm::Variance;
use crate::domain::Domain;
use crate::elbo::{discrete_bound, Bound, TermKind};
use crate::plot::{Chart, Series};
use crate::score::{par_eps, MixtureScore, Score};
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{KeyedNormal, Time};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub model: ModelSpec,
    /// Chain length T.
    pub steps: usize,
    pub points: Scale<usize>,
    /// Distortion is evaluated every this many steps.
    pub distortion_every: usize,
    /// A mixture with small components, where most of the rate must arrive late (exact ε*).
    pub sharp_data: String,
    /// Least fraction of the rate arriving in the last 10% of reverse steps on `sharp_data`.
    pub sharp_fraction: f64,
}

/// Rate (bits/dim) after reverse step k = 0 … T−1: L_T + L_{T−1} + … + L_{T−k}, i.e. at x_i
/// (i = T − k) everything sent so far. L_0 is a decoder log-density, not a KL, and is left out
/// (on continuous data it can be negative).
fn rate(b: &Bound, big_t: usize) -> Vec<f64> {
    let mut per_step = vec![0.0; big_t];
    for t in &b.terms {
        let k = match t.kind {
            TermKind::Prior => 0,
            TermKind::Denoise => big_t + 1 - t.step,
            TermKind::Recon => continue,
        };
        per_step[k] += t.nats / (b.dim as f64 * std::f64::consts::LN_2);
    }
    per_step
        .iter()
        .scan(0.0, |acc, v| {
            *acc += v;
            Some(*acc)
        })
        .collect()
}

/// RMSE per coordinate of x̂₀ = (x_i − √(1−ᾱ_i) ε̂)/√ᾱ_i at steps i, with common noise.
fn distortion(
    sde: &dyn Sde,
    score: &dyn Score,
    chain: &DiscreteSchedule,
    x0: &Array2<f64>,
    steps: &[usize],
    seed: u64,
) -> Vec<f64> {
    let (n, d) = x0.dim();
    let z = KeyedNormal::new(seed, Domain::RateDistortion.key()).matrix(n, d, 0);
    steps
        .iter()
        .map(|&i| {
            let k = chain.marginal(i);
            let xt = x0 * k.mean + &z * k.std;
            let eps = par_eps(score, sde, Time::Shared(chain.time(i)), xt.view());
            let x0_hat = (&xt - &(eps * k.std)) / k.mean;
            ((&x0_hat - x0).mapv(|v| v * v).sum() / (n * d) as f64).sqrt()
        })
        .collect()
}

/// Fraction of the final rate that arrives in the last 10% of reverse steps.
fn late_fraction(r: &[f64]) -> f64 {
    let total = *r.last().unwrap_or(&f64::NAN);
    let at90 = r[(r.len() * 9) / 10 - 1];
    (total - at90) / total
}

/// The steps i (from T down) the distortion is evaluated at.
fn distortion_steps(p: &Params) -> Vec<usize> {
    let big_t = p.steps;
    (1..=big_t)
        .rev()
        .filter(|i| (i - 1) % p.distortion_every == 0 || *i == big_t)
        .collect()
}

/// One row of `terms.csv`.
#[derive(Serialize)]
struct TermRow {
    model: String,
    variance: &'static str,
    term: &'static str,
    t: usize,
    nats: Sci,
    stderr: Sci,
}

/// One row of `rate-distortion.csv`.
#[derive(Serialize)]
struct RdRow {
    model: String,
    reverse_steps: usize,
    rate_bits_per_dim: Sci,
    rmse: Sci,
}

/// The model of a bound: the exact ε* of the data's mixture, or the trained network.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Model {
    Exact,
    Trained,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Exact => "exact",
            Model::Trained => "trained",
        }
    }
}

/// One cell: the discrete bound of a model with a reverse variance on the data (with rate and
/// distortion for σ² = β), or the exact bound's rate on `sharp_data`.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    Bound(Model, Variance),
    Sharp,
}

/// Which term of the bound (stored form of [`TermKind`]).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Prior,
    Denoise,
    Recon,
}

/// One term of a bound: its kind, step t, mean (nats) and standard error.
#[derive(Serialize, Deserialize)]
pub struct StoredTerm {
    kind: Kind,
    step: usize,
    nats: f64,
    stderr: f64,
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Computed {
    /// The bound's terms in order; for σ² = β also the rate after each reverse step and the
    /// distortion at [`distortion_steps`].
    Bound {
        terms: Vec<StoredTerm>,
        rate_distortion: Option<(Vec<f64>, Vec<f64>)>,
    },
    /// `sharp_data`'s name and the exact bound's rate after each reverse step.
    Sharp { name: String, rate: Vec<f64> },
}

/// The test points of the data, the SDE, its DDPM chain of T steps and the exact score.
pub struct Shared {
    x: Array2<f64>,
    sde: Arc<dyn Sde>,
    chain: DiscreteSchedule,
    oracle: MixtureScore,
}

fn variance_name(v: Variance) -> &'static str {
    match v {
        Variance::Beta => "β",
        Variance::BetaTilde => "β̃",
    }
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Computed;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = Vec::new();
        for model in [Model::Exact, Model::Trained] {
            for variance in [Variance::Beta, Variance::BetaTilde] {
                cells.push(Cell::Bound(model, variance));
            }
        }
        cells.push(Cell::Sharp);
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let p = self;
        let (data, mixture) = exp.exact_data()?;
        let n = *p.points.at(o.quick);
        let x = mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
        let sde = exp.sde.build(|| data.diameter())?;
        let chain = {
            let vp = sde
                .as_vp()
                .ok_or_else(|| invalid!("{}: the discrete ELBO needs the VP SDE", exp.name))?;
            DiscreteSchedule::exact_vp(vp, p.steps)?
        };
        let oracle = MixtureScore::new(mixture, sde.clone());
        Ok(Shared {
            x,
            sde,
            chain,
            oracle,
        })
    }

    fn compute(
        &self,
        exp: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Computed> {
        let p = self;
        let big_t = p.steps;
        match *cell {
            Cell::Bound(model, variance) => {
                let net;
                let (score, msde): (&dyn Score, &dyn Sde) = match model {
                    Model::Exact => (&sh.oracle, sh.sde.as_ref()),
                    Model::Trained => {
                        net = p.model.trained(exp, o)?;
                        (&net, net.sde().as_ref())
                    }
                };
                let b = discrete_bound(msde, score, sh.x.view(), big_t, variance, o.seed)?;
                let terms = b
                    .terms
                    .iter()
                    .map(|t| StoredTerm {
                        kind: match t.kind {
                            TermKind::Prior => Kind::Prior,
                            TermKind::Denoise => Kind::Denoise,
                            TermKind::Recon => Kind::Recon,
                        },
                        step: t.step,
                        nats: t.nats,
                        stderr: t.stderr,
                    })
                    .collect();
                let rate_distortion = if variance == Variance::Beta {
                    let r = rate(&b, big_t);
                    let dist =
                        distortion(msde, score, &sh.chain, &sh.x, &distortion_steps(p), o.seed);
                    Some((r, dist))
                } else {
                    None
                };
                Ok(Computed::Bound {
                    terms,
                    rate_distortion,
                })
            }
            // Where the claim is asserted: a mixture with small components, exact ε*.
            Cell::Sharp => {
                let n = *p.points.at(o.quick);
                let sharp = Dataset::from_spec(&p.sharp_data)?;
                let sm = sharp
                    .mixture()
                    .ok_or_else(|| {
                        invalid!(
                            "{}: sharp_data '{}' must be a mixture",
                            exp.name,
                            p.sharp_data
                        )
                    })?
                    .clone();
                let xs = sm.sample(n, o.seed, REFERENCE_DOMAIN).0;
                let sscore = MixtureScore::new(sm, sh.sde.clone());
                let sb = discrete_bound(
                    sh.sde.as_ref(),
                    &sscore,
                    xs.view(),
                    big_t,
                    Variance::Beta,
                    o.seed,
                )?;
                Ok(Computed::Sharp {
                    name: sharp.name().to_string(),
                    rate: rate(&sb, big_t),
                })
            }
        }
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Computed)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        let n = *p.points.at(o.quick);
        let big_t = p.steps;
        let dsteps = distortion_steps(p);
        let (mut term_series, mut rows, mut rd_rows) = (vec![], vec![], vec![]);
        let (mut rate_series, mut dist_series, mut rd_series) = (vec![], vec![], vec![]);
        let mut claims = vec![];
        for (cell, computed) in cells {
            match (cell, computed) {
                (
                    Cell::Bound(model, variance),
                    Computed::Bound {
                        terms,
                        rate_distortion,
                    },
                ) => {
                    let (name, vname) = (model.name(), variance_name(variance));
                    let mut pts = vec![];
                    for t in &terms {
                        let kind = match t.kind {
                            Kind::Prior => "L_T",
                            Kind::Denoise => "L_t-1",
                            Kind::Recon => "L_0",
                        };
                        rows.push(TermRow {
                            model: name.to_string(),
                            variance: vname,
                            term: kind,
                            t: t.step,
                            nats: Sci(t.nats),
                            stderr: Sci(t.stderr),
                        });
                        if t.kind == Kind::Denoise {
                            pts.push((t.step as f64, t.nats));
                        }
                    }
                    let l0 = terms
                        .iter()
                        .find(|t| t.kind == Kind::Recon)
                        .map_or(f64::NAN, |t| t.nats);
                    let lt = terms
                        .iter()
                        .find(|t| t.kind == Kind::Prior)
                        .map_or(f64::NAN, |t| t.nats);
                    term_series.push(Series::line(
                        format!("{name}, σ² = {vname} (L_0 = {l0:.3}, L_T = {lt:.1e})"),
                        pts,
                    ));
                    let Some((r, dist)) = rate_distortion else {
                        continue;
                    };
                    let k_of = |i: usize| (big_t - i) as f64;
                    rate_series.push(Series::line(
                        name,
                        r.iter().enumerate().map(|(k, v)| (k as f64, *v)).collect(),
                    ));
                    dist_series.push(Series::line_points(
                        name,
                        dsteps
                            .iter()
                            .zip(&dist)
                            .map(|(&i, &v)| (k_of(i), v))
                            .collect(),
                    ));
                    rd_series.push(Series::line_points(
                        name,
                        dsteps
                            .iter()
                            .zip(&dist)
                            .map(|(&i, &v)| (r[big_t - i], v))
                            .collect(),
                    ));
                    for (&i, &v) in dsteps.iter().zip(&dist) {
                        rd_rows.push(RdRow {
                            model: name.to_string(),
                            reverse_steps: big_t - i,
                            rate_bits_per_dim: Sci(r[big_t - i]),
                            rmse: Sci(v),
                        });
                    }
                    let rising = r.windows(2).filter(|w| w[1] < w[0] - 1e-12).count();
                    claims.push(Claim::new(
                        &format!("{name}: rate is non-decreasing in reverse steps (every KL term estimate ≥ 0)"),
                        rising == 0,
                        rising as f64,
                        "0 decreases",
                    ).learned(o.quick && name == "trained"));
                    let ups = dist.windows(2).filter(|w| w[1] > w[0] * 1.02).count();
                    claims.push(
                        Claim::new(
                            &format!(
                                "{name}: distortion is non-increasing in reverse steps (2% tolerance)"
                            ),
                            ups == 0,
                            ups as f64,
                            "0 increases",
                        )
                        .learned(o.quick && name == "trained"),
                    );
                    let f = late_fraction(&r);
                    claims.push(
                        Claim::new(
                            &format!(
                                "{name} on {}: fraction of the rate in the last 10% of reverse steps",
                                data.name()
                            ),
                            f > p.sharp_fraction,
                            f,
                            &format!("> {}", p.sharp_fraction),
                        )
                        .report_only(),
                    );
                }
                (Cell::Sharp, Computed::Sharp { name, rate: sr }) => {
                    let f = late_fraction(&sr);
                    claims.push(Claim::new(
                        &format!(
                            "exact on {name}: most of the rate arrives in the last 10% of reverse steps (paper ≈ 0.93)"
                        ),
                        f > p.sharp_fraction,
                        f,
                        &format!("> {}", p.sharp_fraction),
                    ));
                    rate_series.push(Series::line(
                        format!("exact, {name}"),
                        sr.iter().enumerate().map(|(k, v)| (k as f64, *v)).collect(),
                    ));
                }
                _ => {
                    return Err(invalid!(
                        "{}: a stored row does not match its cell",
                        exp.name
                    ))
                }
            }
        }
        let term_chart = Chart {
            title: format!("L_t−1 against t, T = {big_t}, {} ({n} points)", data.name()),
            x_label: "t".into(),
            y_label: "L_t−1 (nats per point)".into(),
            log_y: true,
            series: term_series,
            ..Default::default()
        };
        let rate_chart = Chart {
            title: "rate against reverse steps".into(),
            x_label: "reverse steps (T − t)".into(),
            y_label: "rate (bits/dim)".into(),
            series: rate_series,
            ..Default::default()
        };
        let dist_chart = Chart {
            title: format!("distortion against reverse steps, {}", data.name()),
            x_label: "reverse steps (T − t)".into(),
            y_label: "RMSE of x̂₀ (data units)".into(),
            series: dist_series,
            ..Default::default()
        };
        let rd_chart = Chart {
            title: "distortion against rate".into(),
            x_label: "rate (bits/dim)".into(),
            y_label: "RMSE of x̂₀".into(),
            series: rd_series,
            ..Default::default()
        };
        o.chart("terms", &term_chart)?;
        o.grid("rate-distortion", &[rate_chart, dist_chart, rd_chart], 3)?;
        o.rows("terms", &rows)?;
        o.rows("rate-distortion", &rd_rows)?;
        Ok(claims)
    }
}
