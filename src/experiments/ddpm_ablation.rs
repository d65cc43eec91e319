//! DDPM Table 2 on toy data (Ho et al. 2020, §4.2; papers.md §6.2): six arms with one network
//! and one budget — μ̃-prediction with the bound L (learned and fixed Σ) and with
//! ‖μ̃ − μ_θ‖²; ε-prediction with L (learned and fixed Σ) and with L_simple. Per arm: the test
//! −ELBO in bits/dim (± SE), sample quality against exact draws, and a stability flag.

use super::cells::Cells;
use super::{Claim, Exact, Experiment, Fixed, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::nn::NetConfig;
use crate::plot::{Chart, Series};
use crate::stats::mean_se;
use crate::stats::two_sample::{energy_distance, knn_fraction};
use crate::train::ddpm::{train, Arm, Chain, DdpmModel, Heads, Objective, Param, Sigma};
use crate::train::{TrainConfig, TrainData};
use crate::{invalid, Result};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Length T of the chain.
    pub chain_steps: usize,
    /// The arms, each with a label.
    pub arms: Vec<LabelledArm>,
    /// Optimiser steps (the same for every arm).
    pub train_steps: Scale<usize>,
    #[serde(default)]
    pub net: NetConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// Test points of the bound.
    pub test_points: Scale<usize>,
    /// Samples per arm (and exact draws).
    pub samples: Scale<usize>,
    /// Labels of the L_simple arm, of the ε-on-L arm and of the μ̃-on-MSE arm the claims compare.
    pub simple: String,
    pub bound: String,
    pub mu_mse: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledArm {
    pub label: String,
    #[serde(flatten)]
    pub arm: Arm,
}

/// One row of `ablation.csv`.
#[derive(Serialize)]
struct Row {
    arm: String,
    parameterization: &'static str,
    objective: &'static str,
    variance: &'static str,
    stable: bool,
    neg_elbo_bits_per_dim: Fixed<4>,
    stderr: Fixed<4>,
    energy_distance: Sci,
    knn_fraction: Fixed<3>,
    mode_chi2: Fixed<2>,
    note: String,
}

/// χ² of the samples' nearest-mode counts against the mixture weights.
fn mode_chi2(x: &Array2<f64>, means: ndarray::ArrayView2<f64>, weights: &[f64]) -> f64 {
    let mut counts = vec![0.0; weights.len()];
    for r in x.rows() {
        let k = means
            .rows()
            .into_iter()
            .enumerate()
            .map(|(k, m)| (k, (&r - &m).mapv(|v| v * v).sum()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(k, _)| k);
        counts[k] += 1.0;
    }
    let n = x.nrows() as f64;
    counts
        .iter()
        .zip(weights)
        .map(|(o, w)| (o - n * w).powi(2) / (n * w))
        .sum()
}

/// What one arm's cell computes.
#[derive(Serialize, Deserialize)]
pub struct Outcome {
    /// Per test point (None: unstable).
    bound: Option<Array1<f64>>,
    /// Energy distance, kNN fraction and mode χ² of its samples against exact draws (None:
    /// unstable).
    quality: Option<(f64, f64, f64)>,
    note: String,
    /// The power control's bound of the exact μ̃ in this arm (the `mu_mse` arm only).
    power: Option<Array1<f64>>,
}

impl Cells for Params {
    /// Index into `arms`.
    type Cell = usize;
    type Row = Outcome;
    type Shared = ();

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<usize>> {
        Ok((0..self.arms.len()).collect())
    }

    fn shared(&self, _: &Experiment, _: &Outputs) -> Result<()> {
        Ok(())
    }

    fn compute(&self, exp: &Experiment, _: &(), &i: &usize, o: &mut Outputs) -> Result<Outcome> {
        let p = self;
        let Exact {
            data,
            mixture,
            sde,
            score,
        } = exp.exact()?;
        let vp = sde
            .as_vp()
            .ok_or_else(|| invalid!("{}: the DDPM chain needs the VP SDE", exp.name))?;
        let chain = Chain::new(vp, p.chain_steps)?;
        let train_data = TrainData::from_spec(&exp.data)?;
        let d = data.dim();
        let cfg = config(p, o.quick);
        let (n_test, n_samp) = (*p.test_points.at(o.quick), *p.samples.at(o.quick));
        let test = mixture.sample(n_test, o.seed, REFERENCE_DOMAIN).0;
        let exact = mixture.sample(n_samp, o.seed + 1, REFERENCE_DOMAIN).0;
        let weights = mixture.weights().to_vec();
        let evaluate = |m: &DdpmModel| -> Outcome {
            let b = m.bound(test.view(), o.seed);
            let s = m.sample(n_samp, d, o.seed);
            let ok_b = b.iter().all(|v| v.is_finite());
            let ok_s = s.iter().all(|v| v.is_finite());
            Outcome {
                note: match (ok_b, ok_s) {
                    (true, true) => String::new(),
                    (false, _) => "non-finite bound".into(),
                    (_, false) => "non-finite samples".into(),
                },
                bound: ok_b.then_some(b),
                quality: ok_s.then(|| {
                    (
                        energy_distance(s.view(), exact.view()),
                        knn_fraction(s.view(), exact.view(), 10),
                        mode_chi2(&s, mixture.means(), &weights),
                    )
                }),
                power: None,
            }
        };
        let la = &p.arms[i];
        let started = std::time::Instant::now();
        let out = match train(la.arm, chain.clone(), &train_data, p.net.clone(), &cfg) {
            Ok(model) => {
                let mut res = evaluate(&model);
                if la.label == p.mu_mse {
                    // The power control's μ̃ model: the exact one (oracle μ̃*), same arm.
                    let exact = DdpmModel {
                        heads: Heads::Exact(Arc::new(score.clone()), sde.clone()),
                        ..model
                    };
                    res.power = Some(exact.bound(test.view(), o.seed));
                }
                res
            }
            // Divergence is the finding, not a crash.
            Err(e) => Outcome {
                bound: None,
                quality: None,
                note: e.to_string(),
                power: None,
            },
        };
        o.nfe.push((
            format!(
                "{} (train + eval {:.1} s)",
                la.label,
                started.elapsed().as_secs_f64()
            ),
            p.chain_steps as f64,
        ));
        Ok(out)
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(usize, Outcome)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        let bits = 1.0 / (data.dim() as f64 * std::f64::consts::LN_2);
        let cfg = config(p, o.quick);
        let outcomes: Vec<Outcome> = cells.into_iter().map(|c| c.1).collect();
        let power = outcomes.iter().find_map(|c| c.power.clone());
        let mut rows = Vec::new();
        // (arm index, −ELBO bits/dim, energy distance) per parameterisation, for the chart.
        let mut points: [Vec<(f64, f64, f64)>; 2] = [Vec::new(), Vec::new()];
        for (i, (la, out)) in p.arms.iter().zip(&outcomes).enumerate() {
            let (m, se) = out.bound.as_ref().map_or((f64::NAN, f64::NAN), mean_se);
            let (e, k, c) = out.quality.unwrap_or((f64::NAN, f64::NAN, f64::NAN));
            rows.push(Row {
                arm: la.label.clone(),
                parameterization: match la.arm.param {
                    Param::Eps => "eps",
                    Param::MuTilde => "mu-tilde",
                },
                objective: match la.arm.objective {
                    Objective::Bound => "L",
                    Objective::Mse => "mse",
                },
                variance: match la.arm.sigma {
                    Sigma::Beta => "fixed beta",
                    Sigma::BetaTilde => "fixed beta-tilde",
                    Sigma::Learned => "learned diagonal",
                },
                stable: out.note.is_empty(),
                neg_elbo_bits_per_dim: Fixed(m * bits),
                stderr: Fixed(se * bits),
                energy_distance: Sci(e),
                knn_fraction: Fixed(k),
                mode_chi2: Fixed(c),
                note: out.note.clone(),
            });
            if m.is_finite() {
                points[usize::from(la.arm.param == Param::Eps)].push((i as f64 + 1.0, m * bits, e));
            }
        }
        o.rows("ablation", &rows)?;

        let mut claims = Vec::new();
        let find = |label: &str| {
            p.arms
                .iter()
                .position(|a| a.label == label)
                .ok_or_else(|| invalid!("{}: no arm labelled '{label}'", exp.name))
        };
        let (bi, si, mi) = (find(&p.bound)?, find(&p.simple)?, find(&p.mu_mse)?);
        let paired = |a: &Array1<f64>, b: &Array1<f64>| mean_se(&((a - b) * bits));
        // Ho et al. §4.2: ε-prediction with L_simple is far better than μ̃-prediction with the
        // unweighted ‖μ̃ − μ_θ‖² (Table 2's "–"): asserted on the test bound, paired, 3 se.
        match (&outcomes[si].bound, &outcomes[mi].bound) {
            (Some(simple), Some(mu)) => {
                let (diff, se) = paired(simple, mu);
                claims.push(
                    Claim::new(
                        &format!(
                            "'{}' reaches a lower test −ELBO than '{}' (paired difference, bits/dim)",
                            p.simple, p.mu_mse
                        ),
                        diff + 3.0 * se < 0.0,
                        diff,
                        &format!("< −3 se = {:.4}", -3.0 * se),
                    )
                    .learned(o.quick),
                );
                if let Some(exact_mu) = &power {
                    let (wd, wse) = paired(simple, exact_mu);
                    claims.push(Claim::new(
                        &format!("power: '{}' does not beat the exact μ̃ (oracle) in the same arm (paired difference)", p.simple),
                        wd + 3.0 * wse >= 0.0,
                        wd,
                        &format!("≥ −3 se = {:.4}", -3.0 * wse),
                    ));
                }
            }
            _ => claims.push(Claim::new(
                &format!(
                    "'{}' and '{}' trained stably (needed for the bound comparison)",
                    p.simple, p.mu_mse
                ),
                false,
                f64::NAN,
                "both stable",
            )),
        }
        // Ho et al.'s NLL finding (L 3.70 < L_simple 3.75): reported — on toy data it does not
        // hold robustly (the sign depends on the budget and the data; see the README).
        if let (Some(l), Some(simple)) = (&outcomes[bi].bound, &outcomes[si].bound) {
            let (diff, se) = paired(l, simple);
            claims.push(
                Claim::new(
                    &format!("'{}' − '{}' test −ELBO, bits/dim (paired; < −2 se: L wins as in Ho et al.'s 3.70 vs 3.75)", p.bound, p.simple),
                    diff + 2.0 * se < 0.0,
                    diff,
                    &format!("< −2 se = {:.4}", -2.0 * se),
                )
                .report_only(),
            );
        }
        // Every L arm against L_simple (reported), sample-quality ordering and stability.
        for (la, out) in p.arms.iter().zip(&outcomes) {
            if la.arm.objective == Objective::Bound && la.label != p.bound {
                if let (Some(l), Some(simple)) = (&out.bound, &outcomes[si].bound) {
                    let (diff, se) = paired(l, simple);
                    claims.push(
                        Claim::new(
                            &format!(
                                "'{}' − '{}' test −ELBO, bits/dim (paired; < 0: L wins)",
                                la.label, p.simple
                            ),
                            diff < 0.0,
                            diff,
                            &format!("< 0 (se {se:.4})"),
                        )
                        .report_only(),
                    );
                }
            }
            claims.push(
                Claim::new(
                    &format!(
                        "'{}' trained and sampled stably{}",
                        la.label,
                        if out.note.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", out.note)
                        }
                    ),
                    out.note.is_empty(),
                    if out.note.is_empty() { 1.0 } else { 0.0 },
                    "stable",
                )
                .report_only(),
            );
        }
        let best = rows
            .iter()
            .filter(|r| r.energy_distance.0.is_finite())
            .min_by(|a, b| a.energy_distance.0.total_cmp(&b.energy_distance.0))
            .map(|r| r.arm.clone())
            .unwrap_or_default();
        claims.push(
            Claim::new(
                &format!(
                    "best sample quality (lowest energy distance): '{best}' (Ho et al.: L_simple)"
                ),
                best == p.simple,
                rows.iter()
                    .find(|r| r.arm == best)
                    .map_or(f64::NAN, |r| r.energy_distance.0),
                &format!("'{}' best", p.simple),
            )
            .report_only(),
        );
        let arms_axis = "arm (row of ablation.csv)".to_string();
        let panel =
            |title: String, y_label: &str, log_y: bool, pick: fn(&(f64, f64, f64)) -> f64| Chart {
                title,
                x_label: arms_axis.clone(),
                y_label: y_label.into(),
                log_y,
                series: ["μ̃ prediction", "ε prediction"]
                    .iter()
                    .zip(&points)
                    .map(|(name, pts)| {
                        Series::line_points(*name, pts.iter().map(|q| (q.0, pick(q))).collect())
                    })
                    .collect(),
                ..Default::default()
            };
        o.panels(
            "ablation",
            &[
                panel(
                    format!(
                        "Test −ELBO, {} (T = {}, {} steps)",
                        data.name(),
                        p.chain_steps,
                        cfg.steps
                    ),
                    "−ELBO, bits/dim (unstable arms absent)",
                    true,
                    |q| q.1,
                ),
                panel(
                    "Sample quality".into(),
                    "energy distance to exact draws",
                    false,
                    |q| q.2,
                ),
            ],
        )?;
        Ok(claims)
    }
}

/// The training settings of every arm (steps and warm-up cut under `--quick`).
fn config(p: &Params, quick: bool) -> TrainConfig {
    TrainConfig {
        steps: *p.train_steps.at(quick),
        warmup: p.train.warmup.min(*p.train_steps.at(quick) / 4),
        ..p.train.clone()
    }
}
