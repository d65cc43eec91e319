//! Sohl-Dickstein et al. 2015 Fig. 1 (papers.md §5): the forward trajectory q and the learned
//! reverse trajectory p of a T-step Gaussian diffusion on the Swiss roll at t = 0, T/2, T, and
//! the reverse drift μ_θ(x, t) − x; Table 1's K − L_null in bits.
//!
//! The chain is DDPM's (β_i = β(t_i)/T of the VP-SDE, [`DiscreteSchedule::from_vp`]); the model
//! is an ε-network trained by denoising score matching in the run, sampled by DDPM's ancestral
//! rule on the same T steps.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{scatter, Claim, Experiment, Num, Outputs, Scale, Sci};
use crate::data::DATA_DOMAIN;
use crate::ddpm::DiscreteSchedule;
use crate::domain::Domain;
use crate::elbo::discrete_bound;
use crate::nn::NetScore;
use crate::plot::{Chart, Series};
use crate::sample::{integrate, SampleSpec, Sampler, Variance};
use crate::score::par_eps;
use crate::stats::two_sample::{mmd_test, EnergyReference};
use crate::train::TrainData;
use crate::{invalid, Result};
use ndarray::{Array2, Axis};
use scoresde_solvers::{KeyedNormal, Time};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub model: ModelSpec,
    /// Diffusion steps T of the chain (Sohl-Dickstein et al.: 40).
    pub steps: usize,
    /// Samples per panel and for the tests (and under `--quick`).
    pub n: Scale<usize>,
    /// Arrows per side of the drift grid over [−extent, extent]².
    pub arrows: usize,
    pub extent: f64,
    /// Level of the two-sample test of the final samples against held-out data.
    pub alpha: f64,
    pub permutations: usize,
    /// Least K − L_null (bits) asserted (the paper's 6.45 bits is for a less noisy roll).
    pub min_bits_over_null: f64,
}

/// One row of `drift.csv`.
#[derive(Serialize)]
struct DriftRow {
    step: usize,
    x0: Num,
    x1: Num,
    drift0: Sci,
    drift1: Sci,
}

/// One row of `samples.csv`.
#[derive(Serialize)]
struct SampleRow {
    set: &'static str,
    x0: Num,
    x1: Num,
}

/// One cell; each loads the model (the first, `Trajectories`, trains it when not cached).
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Forward q draws and the reverse p samples (DDPM ancestral), with the sample tests.
    Trajectories,
    /// The reverse drift on the grid at steps 1, T/2 and T, with the drift claims' statistics.
    Drift,
    /// Table 1: the discrete bound K on held-out data, and L_null.
    Bound,
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Computed {
    Trajectories {
        /// q at t = 0 (the data draws), T/2 and T.
        forward: Vec<Array2<f64>>,
        /// p at t = 0 (the model's samples), T/2 and T.
        reverse: Vec<Array2<f64>>,
        /// MMD test p-value of the samples against held-out data.
        mmd_p: f64,
        /// Energy distance of the samples, and of other data, to held-out data.
        e_model: f64,
        e_floor: f64,
    },
    Drift {
        /// μ_θ(x, i) − x on the grid at i = 1, T/2, T.
        drifts: Vec<Array2<f64>>,
        /// Mean cosine of the drift at t = 1 with the direction to the nearest held-out point.
        mean_cos: f64,
        /// Mean |drift| at t = T inside r < extent/4 over outside r > 3·extent/4.
        ratio: f64,
    },
    /// K and L_null in bits.
    Bound { k_bits: f64, l_null: f64 },
}

/// The trained (or cached) network and its DDPM chain of T steps.
fn net_and_chain(
    exp: &Experiment,
    p: &Params,
    o: &mut Outputs,
) -> Result<(NetScore, DiscreteSchedule)> {
    let net = p.model.trained(exp, o)?;
    let chain = {
        let vp = net
            .sde()
            .as_vp()
            .ok_or_else(|| invalid!("{}: the Swiss-roll chain needs the VP SDE", exp.name))?;
        DiscreteSchedule::from_vp(vp, p.steps)?
    };
    Ok((net, chain))
}

/// The drift grid's points, `arrows` per side over [−extent, extent]².
fn drift_grid(p: &Params) -> Vec<(f64, f64)> {
    let k = p.arrows;
    (0..k * k)
        .map(|m| {
            let (a, b) = (m % k, m / k);
            let at = |j: usize| -p.extent + 2.0 * p.extent * (j as f64 + 0.5) / k as f64;
            (at(a), at(b))
        })
        .collect()
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Computed;
    /// The training data (2D).
    type Shared = TrainData;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        Ok(vec![Cell::Trajectories, Cell::Drift, Cell::Bound])
    }

    fn shared(&self, exp: &Experiment, _: &Outputs) -> Result<TrainData> {
        let data = TrainData::from_spec(&exp.data)?;
        if data.dim() != 2 {
            return Err(invalid!("{}: needs 2D data", exp.name));
        }
        Ok(data)
    }

    fn compute(
        &self,
        exp: &Experiment,
        data: &TrainData,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Computed> {
        let p = self;
        let (net, chain) = net_and_chain(exp, p, o)?;
        let sde = net.sde().clone();
        let n = *p.n.at(o.quick);
        let big_t = p.steps;
        let mid = big_t / 2;
        // Held-out data of the tests, the bound and the drift's direction claim.
        let held = data.draw(n, o.seed + 7, DATA_DOMAIN);
        match cell {
            Cell::Trajectories => {
                // Forward q: exact draws of q(x_i | x_0) from fresh data.
                let x0 = data.draw(n, o.seed, DATA_DOMAIN);
                let z = KeyedNormal::new(o.seed, Domain::SwissRollForward.key()).matrix(n, 2, 0);
                let fwd_at = |i: usize| -> Array2<f64> {
                    let k = chain.marginal(i);
                    &x0 * k.mean + &z * k.std
                };
                let forward: Vec<Array2<f64>> = [0, mid, big_t]
                    .into_iter()
                    .map(|i| if i == 0 { x0.clone() } else { fwd_at(i) })
                    .collect();
                // Reverse p: DDPM ancestral sampling on the same T steps, recorded at t̃_T,
                // t̃_{T/2} and the output (time 0: x₀ = Tweedie's denoised x₁, Algorithm 2's
                // last step).
                let (t_top, t_mid) = (chain.time(big_t), chain.time(mid));
                let spec = SampleSpec {
                    sampler: Sampler::Ddpm(Default::default()),
                    steps: big_t,
                    n,
                    seed: o.seed,
                    record: vec![t_top, t_mid, 0.0],
                    ..Default::default()
                };
                let run = integrate(
                    sde.as_ref(),
                    &net,
                    sde.prior_sample(n, 2, o.seed),
                    &spec,
                    None,
                )?;
                o.nfe
                    .push((format!("ddpm ancestral, T = {big_t}"), run.nfe));
                let rec = |t: f64| {
                    &run.records
                        .iter()
                        .find(|(s, _)| (s - t).abs() < 1e-12)
                        .expect("recorded")
                        .1
                };
                let reverse: Vec<Array2<f64>> = [0.0, t_mid, t_top]
                    .into_iter()
                    .map(|t| rec(t).clone())
                    .collect();
                // Final samples against held-out data, and the data-vs-data energy floor.
                let other = data.draw(n, o.seed + 8, DATA_DOMAIN);
                let model = rec(0.0);
                let mmd_p = mmd_test(model.view(), held.view(), p.permutations, o.seed).p_value;
                let held_ref = EnergyReference::new(held.clone());
                let (e_model, e_floor) = (
                    held_ref.distance(model.view()),
                    held_ref.distance(other.view()),
                );
                Ok(Computed::Trajectories {
                    forward,
                    reverse,
                    mmd_p,
                    e_model,
                    e_floor,
                })
            }
            Cell::Drift => {
                // Drift of one reverse step, μ_θ(x_i, i) − x_i, on a grid.
                let grid = drift_grid(p);
                let gx = Array2::from_shape_fn((grid.len(), 2), |(r, c)| {
                    if c == 0 {
                        grid[r].0
                    } else {
                        grid[r].1
                    }
                });
                let drift = |i: usize| -> Array2<f64> {
                    let t = chain.time(i);
                    let eps = par_eps(&net, sde.as_ref(), Time::Shared(t), gx.view());
                    let m = chain.marginal(i);
                    let post = chain.posterior(i);
                    let x0_hat = (&gx - &(&eps * m.std)) / m.mean;
                    &x0_hat * post.coef_x0 + &gx * post.coef_xt - &gx
                };
                let drifts = vec![drift(1), drift(mid), drift(big_t)];
                // The drift near t = 0 points toward the roll: cosine with the direction to
                // the nearest data point, over grid points at least 0.2 away from it.
                let cloud = &held;
                let mut cos = vec![];
                for (g, r) in grid.iter().zip(drifts[0].rows()) {
                    let (mut best, mut dir) = (f64::INFINITY, (0.0, 0.0));
                    for c in cloud.rows() {
                        let (dx, dy) = (c[0] - g.0, c[1] - g.1);
                        let d2 = dx * dx + dy * dy;
                        if d2 < best {
                            best = d2;
                            dir = (dx, dy);
                        }
                    }
                    let norm = (r[0] * r[0] + r[1] * r[1]).sqrt();
                    if best.sqrt() > 0.2 && norm > 0.0 {
                        cos.push((r[0] * dir.0 + r[1] * dir.1) / (norm * best.sqrt()));
                    }
                }
                let mean_cos = cos.iter().sum::<f64>() / cos.len().max(1) as f64;
                // At t = T the drift is small around the origin compared with the edge of the
                // grid.
                let norms = |r: ndarray::ArrayView1<f64>| r.dot(&r).sqrt();
                let (mut inner, mut outer) = (vec![], vec![]);
                for (g, r) in grid.iter().zip(drifts[2].rows()) {
                    let rad = (g.0 * g.0 + g.1 * g.1).sqrt();
                    if rad < 0.25 * p.extent {
                        inner.push(norms(r));
                    } else if rad > 0.75 * p.extent {
                        outer.push(norms(r));
                    }
                }
                let ratio = (inner.iter().sum::<f64>() / inner.len().max(1) as f64)
                    / (outer.iter().sum::<f64>() / outer.len().max(1) as f64);
                Ok(Computed::Drift {
                    drifts,
                    mean_cos,
                    ratio,
                })
            }
            Cell::Bound => {
                // K = −(−ELBO_T) in bits per sample; L_null = log-likelihood (bits) under the
                // isotropic Gaussian fitted to the data.
                let bound = discrete_bound(
                    sde.as_ref(),
                    &net,
                    held.view(),
                    big_t,
                    Variance::Beta,
                    o.seed,
                )?;
                let k_bits = -bound.per_point.mean().unwrap_or(f64::NAN) / std::f64::consts::LN_2;
                let mean = held.mean_axis(Axis(0)).expect("n > 0");
                let var = (&held - &mean).mapv(|v| v * v).mean().unwrap_or(f64::NAN);
                // d/2 · log2(2πe σ²) with d = 2.
                let l_null = -(2.0 * std::f64::consts::PI * std::f64::consts::E * var).log2();
                Ok(Computed::Bound { k_bits, l_null })
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
        let n = *p.n.at(o.quick);
        let k = p.arrows;
        let big_t = p.steps;
        let mid = big_t / 2;
        let grid = drift_grid(p);
        let (mut traj, mut drift, mut bound) = (None, None, None);
        for (_, c) in cells {
            match c {
                Computed::Trajectories { .. } => traj = Some(c),
                Computed::Drift { .. } => drift = Some(c),
                Computed::Bound { .. } => bound = Some(c),
            }
        }
        let missing = |what: &str| invalid!("{}: no {what} row", exp.name);
        let Some(Computed::Trajectories {
            forward,
            reverse,
            mmd_p: pv,
            e_model,
            e_floor,
        }) = traj
        else {
            return Err(missing("trajectories"));
        };
        let Some(Computed::Drift {
            drifts,
            mean_cos,
            ratio,
        }) = drift
        else {
            return Err(missing("drift"));
        };
        let Some(Computed::Bound { k_bits, l_null }) = bound else {
            return Err(missing("bound"));
        };

        let mut charts = vec![];
        for (x, label) in forward.iter().zip([
            "t = 0".to_string(),
            format!("t = T/2 = {mid}"),
            format!("t = T = {big_t}"),
        ]) {
            charts.push(scatter(format!("forward q, {label}"), x));
        }
        for (x, label) in reverse.iter().zip([
            "t = 0".to_string(),
            format!("t = T/2 = {mid}"),
            format!("t = T = {big_t}"),
        ]) {
            charts.push(scatter(format!("reverse p, {label}"), x));
        }
        let mut rows = vec![];
        for (d, (i, label)) in drifts
            .iter()
            .zip([(1, "t = 1"), (mid, "t = T/2"), (big_t, "t = T")])
        {
            // Arrows scaled to at most 0.9 of a grid cell.
            let longest = d
                .rows()
                .into_iter()
                .map(|r| r.dot(&r).sqrt())
                .fold(0.0, f64::max);
            let scale = 0.9 * 2.0 * p.extent / k as f64 / longest.max(1e-300);
            let mut pts = vec![];
            for (g, r) in grid.iter().zip(d.rows()) {
                pts.push(*g);
                pts.push((g.0 + scale * r[0], g.1 + scale * r[1]));
                rows.push(DriftRow {
                    step: i,
                    x0: Num(g.0),
                    x1: Num(g.1),
                    drift0: Sci(r[0]),
                    drift1: Sci(r[1]),
                });
            }
            charts.push(Chart {
                title: format!("drift μθ(x, t) − x, {label} (arrows ×{scale:.1})"),
                x_label: "x₀".into(),
                y_label: "x₁".into(),
                series: vec![Series::arrows("", pts)],
                ..Default::default()
            });
        }
        o.grid("swiss-roll", &charts, 3)?;
        o.rows("drift", &rows)?;
        let mut samples = vec![];
        for (set, x) in [("data", &forward[0]), ("model", &reverse[0])] {
            for r in x.rows() {
                samples.push(SampleRow {
                    set,
                    x0: Num(r[0]),
                    x1: Num(r[1]),
                });
            }
        }
        o.rows("samples", &samples)?;

        let mut claims = vec![];
        claims.push(
            Claim::new(
                &format!(
                    "reverse samples at t = 0 vs held-out data: MMD test does not reject (n = {n})"
                ),
                pv >= p.alpha,
                pv,
                &format!("p ≥ {}", p.alpha),
            )
            .report_only(),
        );
        claims.push(Claim::new(
            "reverse samples at t = 0: energy distance to held-out data within 5× the data-vs-data floor",
            e_model < 5.0 * e_floor.max(1e-12),
            e_model / e_floor,
            "ratio < 5",
        ));
        claims.push(Claim::new(
            &format!("Table 1: K − L_null > {} bits (K = {k_bits:.2}, L_null = {l_null:.2} bits; paper 6.45)", p.min_bits_over_null),
            k_bits - l_null > p.min_bits_over_null,
            k_bits - l_null,
            &format!("> {} bits", p.min_bits_over_null),
        ));
        claims.push(Claim::new(
            "the drift at t = 1 points toward the roll (mean cosine with the direction to the nearest data point)",
            mean_cos > 0.5,
            mean_cos,
            "> 0.5",
        ));
        claims.push(
            Claim::new(
                "the drift at t = T is ≈ 0 around the origin (mean |drift| inside r < extent/4 over outside r > 3·extent/4)",
                ratio < 0.5,
                ratio,
                "< 0.5",
            )
            .report_only(),
        );
        Ok(claims.into_iter().map(|c| c.learned(o.quick)).collect())
    }
}
