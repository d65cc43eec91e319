//! DDIM Table 2 on toy data (Song, Meng & Ermon 2021, §5.4; papers.md §10.2): encode points
//! with the deterministic DDIM ODE in S steps of the T-step DDPM schedule, decode them in the
//! same S steps, and measure the per-dimension reconstruction MSE — with the exact ε* and a
//! learned ε. Decoding with η = 1 (DDPM) instead does not reconstruct.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{loglog_slope, Claim, Exact, Experiment, Num, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::config::Ddim as DdimSettings;
use crate::sample::grid::ddpm_times;
use crate::sample::{ddim_path, integrate, SampleSpec, Sampler};
use crate::score::{MixtureScore, Score};
use crate::sde::Sde;
use crate::Result;
use ndarray::Array2;
use scoresde_solvers::KeyedNormal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Points reconstructed.
    pub n: Scale<usize>,
    /// Length T of the DDPM schedule the sub-sequences are taken from.
    pub schedule_steps: usize,
    /// Lengths S of DDIM's linear sub-sequences τ of the schedule (τ₁ = 1, τ_S = T): the points
    /// start at level τ₁ and take S − 1 steps each way.
    pub steps: Vec<usize>,
    /// Allowed range of the fitted log–log slope of MSE against S.
    pub slope_range: [f64; 2],
    /// The power control's wrong decoder: the exact ε of the mixture with components this many
    /// times wider.
    pub wrong_widen: f64,
    /// The learned ε.
    pub model: ModelSpec,
}

/// One row of `reconstruction.csv`.
#[derive(Serialize)]
struct Row {
    model: String,
    decoder: &'static str,
    steps: Num,
    mse_per_dim: Sci,
}

/// Per-dimension mean squared error.
fn mse(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a - b).mapv(|v| v * v).mean().unwrap_or(f64::NAN)
}

/// An encoder–decoder pair, in the order of the curves, the CSV rows and the claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arm {
    /// Exact ε* both ways, DDIM (η = 0) decoder.
    Exact,
    /// The learned ε both ways, DDIM decoder.
    Learned,
    /// Exact ε* both ways, DDPM (η = 1) decoder.
    Eta1,
    /// Power control: exact encoder, the widened mixture's exact ε as decoder.
    Power,
}

const ARMS: [Arm; 4] = [Arm::Exact, Arm::Learned, Arm::Eta1, Arm::Power];

impl Arm {
    /// The arm's name in the CSV, the legend, the NFE log and the claims.
    fn name(self, p: &Params) -> String {
        match self {
            Arm::Exact => "exact ε*".into(),
            Arm::Learned => p.model.label.clone(),
            Arm::Eta1 => "exact ε*, η = 1 decoder".into(),
            Arm::Power => "power: exact encoder, wrong decoder".into(),
        }
    }

    /// Whether the arm decodes with DDIM η = 1.
    fn stochastic(self) -> bool {
        self == Arm::Eta1
    }
}

/// One cell: an arm encoding and decoding in `steps[step]` levels of τ. Its row is the
/// per-dimension reconstruction MSE.
#[derive(Serialize, Deserialize)]
pub struct Cell {
    arm: Arm,
    /// Index into `steps`.
    step: usize,
}

/// The exact set-up, the points (data diffused to the schedule's first level) and the power
/// control's wrong ε.
pub struct Shared {
    exact: Exact,
    x0: Array2<f64>,
    wrong: MixtureScore,
}

impl Cells for Params {
    type Cell = Cell;
    /// The per-dimension MSE.
    type Row = f64;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        Ok(ARMS
            .iter()
            .flat_map(|&arm| (0..self.steps.len()).map(move |step| Cell { arm, step }))
            .collect())
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let Exact {
            data,
            mixture,
            sde,
            score,
        } = exp.exact()?;
        let n = *self.n.at(o.quick);
        let seed = o.seed;
        // The points: data diffused to the schedule's first level t̃₁ (DDIM's x at τ's bottom).
        let bottom = ddpm_times(sde.as_ref(), self.schedule_steps, 2, "ddim")?[1];
        let k = sde.marginal(bottom);
        let x0 = mixture.sample(n, seed, REFERENCE_DOMAIN).0 * k.mean
            + KeyedNormal::new(seed, REFERENCE_DOMAIN).matrix(n, mixture.dim(), 1) * k.std;
        let wrong = MixtureScore::new(Arc::new(mixture.widened(self.wrong_widen)?), sde.clone());
        let exact = Exact {
            data,
            mixture,
            sde,
            score,
        };
        Ok(Shared { exact, x0, wrong })
    }

    fn compute(&self, exp: &Experiment, sh: &Shared, c: &Cell, o: &mut Outputs) -> Result<f64> {
        let sde = sh.exact.sde.as_ref();
        let score: &dyn Score = &sh.exact.score;
        let net;
        let (enc, dec): (&dyn Score, &dyn Score) = match c.arm {
            Arm::Exact | Arm::Eta1 => (score, score),
            Arm::Learned => {
                net = self.model.trained(exp, o)?;
                (&net, &net)
            }
            Arm::Power => (score, &sh.wrong),
        };
        let s = self.steps[c.step];
        let down = ddpm_times(sde, self.schedule_steps, s, "ddim")?;
        let up: Vec<f64> = down.iter().rev().copied().collect();
        let x_t = ddim_path(sde, enc, sh.x0.clone(), &up);
        let back = if c.arm.stochastic() {
            decode_eta1(sde, dec, x_t, self.schedule_steps, s, o.seed)?
        } else {
            ddim_path(sde, dec, x_t, &down)
        };
        let e = mse(&back, &sh.x0);
        o.nfe
            .push((format!("{} S={s}", c.arm.name(self)), 2.0 * (s - 1) as f64));
        Ok(e)
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, f64)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let mut rows = Vec::new();
        let mut curves: Vec<(String, Vec<(f64, f64)>)> =
            ARMS.iter().map(|a| (a.name(p), Vec::new())).collect();
        for (c, e) in cells {
            let s = p.steps[c.step];
            let stochastic = c.arm.stochastic();
            rows.push(Row {
                model: c.arm.name(p),
                decoder: if stochastic {
                    "ddpm (η = 1)"
                } else {
                    "ddim (η = 0)"
                },
                steps: Num(s as f64),
                mse_per_dim: Sci(e),
            });
            let i = ARMS.iter().position(|&a| a == c.arm).expect("an arm");
            curves[i].1.push((s as f64, e));
        }
        o.rows("reconstruction", &rows)?;

        let mut claims = Vec::new();
        let [lo, hi] = p.slope_range;
        let slope_of = |pts: &[(f64, f64)]| {
            let (x, y): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
            loglog_slope(&x, &y)
        };
        // The largest ratio MSE(S_{i+1})/MSE(S_i): < 1 means strictly decreasing.
        let rise = |pts: &[(f64, f64)]| pts.windows(2).map(|w| w[1].1 / w[0].1).fold(0.0, f64::max);
        for (i, (name, pts)) in curves.iter().enumerate() {
            let slope = slope_of(pts);
            let r = rise(pts);
            let monotone = r < 1.0;
            let in_range = (lo..=hi).contains(&slope);
            let claim = Claim::new(
                &format!("{name}: MSE falls monotonically in S (largest successive ratio {r:.3}) with log–log slope in [{lo}, {hi}]"),
                monotone && in_range,
                slope,
                &format!("[{lo}, {hi}], monotone"),
            );
            claims.push(match i {
                0 => claim,
                1 => claim.learned(o.quick),
                2 => Claim::new(
                    &format!("{name}: the η = 1 \"reconstruction\" does not converge (MSE at the largest S over the smallest)"),
                    pts.last().map_or(0.0, |p| p.1) > 0.5 * pts[0].1,
                    pts.last().map_or(f64::NAN, |p| p.1) / pts[0].1,
                    "> 0.5",
                )
                .report_only(),
                _ => Claim::new(
                    &format!("{name} (components {}× wider): the reconstruction claim fails (slope outside [{lo}, {hi}] or not monotone)", p.wrong_widen),
                    !(monotone && in_range),
                    slope,
                    &format!("outside [{lo}, {hi}] or not monotone"),
                ),
            });
        }
        o.chart(
            "reconstruction",
            &Chart {
                title: format!(
                    "DDIM encode–decode MSE per dimension vs S ({}, T = {})",
                    exp.data, p.schedule_steps
                ),
                x_label: "S (levels of τ; S − 1 steps each way)".into(),
                y_label: "MSE per dimension".into(),
                log_x: true,
                log_y: true,
                series: curves
                    .into_iter()
                    .map(|(name, pts)| {
                        let label = format!("{name} (slope {:.2})", slope_of(&pts));
                        Series::line_points(label, pts)
                    })
                    .collect(),
                ..Default::default()
            },
        )?;
        Ok(claims)
    }
}

/// Decodes with DDIM η = 1 (DDPM's posterior variance) on `points` of the T-step schedule.
fn decode_eta1(
    sde: &dyn Sde,
    score: &dyn Score,
    x_t: Array2<f64>,
    schedule_steps: usize,
    points: usize,
    seed: u64,
) -> Result<Array2<f64>> {
    let spec = SampleSpec {
        sampler: Sampler::Ddim(DdimSettings {
            eta: 1.0,
            discrete: Some(schedule_steps),
            ..Default::default()
        }),
        steps: points,
        seed,
        denoise: Some(false),
        ..Default::default()
    };
    Ok(integrate(sde, score, x_t, &spec, None)?.x)
}
