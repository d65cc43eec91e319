//! Memorisation on real data no one here made: the 8×8 handwritten digits of UCI optdigits
//! (Alpaydin & Kaynak 1998, d = 64, [`crate::data::optdigits`]), split once by the seed into
//! nested training sets (the first N of a permutation) and held-out digits (its last
//! `held_out`, never trained on: the fresh data of the distance ratio).
//!
//! * The exact empirical score of N digits ([`crate::score::EmpiricalScore`], bandwidth 0)
//!   copies: PF-ODE samples with the final denoiser land on training digits (copy fraction 1);
//!   the smoothed empirical score (bandwidth = the median spacing / √d: a kernel draw moves a
//!   point by about one spacing) is the power control.
//! * Networks trained on N digits: the copy fraction and distance ratio of their samples along
//!   training and at the end, against N — few digits are memorised, many are not (Bonnaire,
//!   Urfin, Biroli & Mézard 2025: memorisation sets in after a training time that grows with N).

use super::cells::Cells;
use super::memorisation::{along_training, onset, Checkpoint, Onset, OnsetFit};
use super::{Claim, Experiment, Fixed, Outputs, Scale};
use crate::data::{optdigits, DATA_DOMAIN};
use crate::plot::{Chart, Heatmap, Panel, Series};
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::EmpiricalScore;
use crate::sde::Sde;
use crate::stats::memorisation::{copy_fraction, distance_ratio, spacing};
use crate::{invalid, Result};
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Digits held out of every training set.
    pub held_out: usize,
    /// Training-set sizes N of the empirical score.
    pub sizes: Scale<Vec<usize>>,
    /// Samples per (model, N).
    pub samples: usize,
    pub sampler: Sampler,
    pub steps: usize,
    /// A copy is closer to its training point than this fraction of that point's spacing.
    pub copy_fraction: f64,
    /// Networks trained on the first N training digits.
    pub trained: super::memorisation::Trained,
}

/// One row of `memorisation-digits.csv`.
#[derive(Serialize)]
struct Row {
    model: &'static str,
    n_train: usize,
    step: usize,
    copy_fraction: Fixed<4>,
    /// Six decimals: below 1e-6 the ratio of copies is rounding that differs between CPUs.
    distance_ratio: Fixed<6>,
}

/// The seeded split: nested training sets (prefixes of `train`) and the held-out digits.
fn split(x: &Array2<f64>, held_out: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed ^ DATA_DOMAIN));
    let (train, held) = order.split_at(x.nrows() - held_out);
    (x.select(Axis(0), train), x.select(Axis(0), held))
}

/// Up to `rows × cols` images of `x` as one heat map (tiles of 8 × 8 pixels, one blank cell
/// between them; pixels clamped to [−1, 1] so that every panel shares the colour scale).
fn mosaic(title: String, x: ArrayView2<f64>, rows: usize, cols: usize) -> Heatmap {
    let (w, h) = (cols * 9 - 1, rows * 9 - 1);
    let mut values = Array2::from_elem((w, h), f64::NAN);
    for (k, img) in x.rows().into_iter().take(rows * cols).enumerate() {
        let (tr, tc) = (k / cols, k % cols);
        for (p, &v) in img.iter().enumerate() {
            let (r, c) = (p / 8, p % 8);
            values[[tc * 9 + c, (rows - 1 - tr) * 9 + (7 - r)]] = v.clamp(-1.0, 1.0);
        }
    }
    Heatmap {
        title,
        value_label: "pixel (count / 8 − 1)".into(),
        x_range: (0.0, w as f64),
        y_range: (0.0, h as f64),
        values,
        ..Default::default()
    }
}

/// One cell: the exact or smoothed empirical score of N digits, or a network trained on the
/// i-th size.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    Empirical { n: usize, smoothed: bool },
    Network(usize),
}

/// What a cell measures: the copies along training (one evaluation, step 0, for the empirical
/// score) and the first 36 samples, for the mosaics.
#[derive(Serialize, Deserialize)]
pub struct Measured {
    evals: Vec<Checkpoint>,
    shown: Array2<f64>,
}

/// The SDE, the training pool and the held-out digits.
type Split = (Arc<dyn Sde>, Array2<f64>, Array2<f64>);

fn prepare(exp: &Experiment, p: &Params, o: &Outputs) -> Result<Split> {
    let quick = o.quick;
    let sde: Arc<dyn Sde> = exp.sde.build(|| 1.0)?;
    let (all, _) = optdigits()?;
    let sizes = p.sizes.at(quick);
    let net_sizes = p.trained.sizes.at(quick);
    let room = all.nrows().saturating_sub(p.held_out);
    let largest = sizes.iter().chain(net_sizes).copied().max().unwrap_or(0);
    if p.held_out == 0 || sizes.is_empty() || net_sizes.is_empty() || p.samples == 0 {
        return Err(invalid!(
            "{}: held_out, sizes, trained.sizes and samples must be non-empty and positive",
            exp.name
        ));
    }
    if sizes.iter().chain(net_sizes).any(|&n| n < 2) || largest > room {
        return Err(invalid!(
            "{}: training sets need 2 to {room} digits ({} of {} held out)",
            exp.name,
            p.held_out,
            all.nrows()
        ));
    }
    let (pool, held) = split(&all, p.held_out, o.seed);
    Ok((sde, pool, held))
}

/// The mosaics show 6 × 6 samples.
const SHOWN: usize = 36;

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Split;

    fn cells(&self, _: &Experiment, o: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = Vec::new();
        for &n in self.sizes.at(o.quick) {
            cells.push(Cell::Empirical { n, smoothed: false });
            cells.push(Cell::Empirical { n, smoothed: true });
        }
        cells.extend((0..self.trained.sizes.at(o.quick).len()).map(Cell::Network));
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Split> {
        prepare(exp, self, o)
    }

    fn compute(
        &self,
        exp: &Experiment,
        (sde, pool, held): &Split,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let p = self;
        let fresh = held.slice(ndarray::s![..p.samples.min(held.nrows()), ..]);
        let first = |x: &Array2<f64>| x.slice(ndarray::s![..SHOWN.min(x.nrows()), ..]).to_owned();
        match *cell {
            Cell::Empirical { n, smoothed } => {
                let train = pool.slice(ndarray::s![..n, ..]).to_owned();
                let gap = {
                    let mut g = spacing(train.view());
                    g.sort_by(f64::total_cmp);
                    g[g.len() / 2]
                };
                // Smoothing of per-coordinate width spacing/√d moves a point by about one
                // spacing.
                let (model, h) = if smoothed {
                    ("smoothed", gap / (pool.ncols() as f64).sqrt())
                } else {
                    ("empirical", 0.0)
                };
                let spec = SampleSpec {
                    sampler: p.sampler.clone(),
                    steps: p.steps,
                    n: p.samples,
                    seed: o.seed,
                    denoise: Some(true),
                    ..Default::default()
                };
                let emp = EmpiricalScore::new(train.clone(), h, sde.clone())?;
                let run = sample(sde.as_ref(), &emp, &spec, None)?;
                o.nfe.push((format!("{model} N={n}"), run.nfe));
                Ok(Measured {
                    evals: vec![Checkpoint {
                        step: 0,
                        copies: copy_fraction(run.x.view(), train.view(), p.copy_fraction),
                        ratio: distance_ratio(run.x.view(), train.view(), fresh),
                    }],
                    shown: first(&run.x),
                })
            }
            Cell::Network(i) => {
                let t = &p.trained;
                let n = t.sizes.at(o.quick)[i];
                let train = pool.slice(ndarray::s![..n, ..]).to_owned();
                let (evals, x) =
                    along_training(exp, t, o, t.net.clone(), (&train, fresh), p.copy_fraction)?;
                Ok(Measured {
                    evals,
                    shown: first(&x),
                })
            }
        }
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (_, pool, held) = prepare(exp, p, o)?;
        let sizes = p.sizes.at(o.quick).clone();
        let mut rows = Vec::new();
        let (mut exact_pts, mut smooth_pts, mut ratio_pts) = (Vec::new(), Vec::new(), Vec::new());
        let mut pictures = vec![Panel::from(mosaic(
            "held-out digits (never trained on)".into(),
            held.view(),
            6,
            6,
        ))];
        let (mut worst_copy, mut worst_smooth, mut worst_ratio) = (1.0f64, 0.0f64, 0.0f64);
        let mut networks = Vec::new();
        for (cell, m) in cells {
            let (n, smoothed) = match cell {
                Cell::Empirical { n, smoothed } => (n, smoothed),
                Cell::Network(i) => {
                    networks.push((i, m));
                    continue;
                }
            };
            let (copies, ratio) = (m.evals[0].copies, m.evals[0].ratio);
            rows.push(Row {
                model: if smoothed { "smoothed" } else { "empirical" },
                n_train: n,
                step: 0,
                copy_fraction: Fixed(copies),
                distance_ratio: Fixed(ratio),
            });
            if !smoothed {
                exact_pts.push((n as f64, copies));
                ratio_pts.push((n as f64, ratio));
                worst_copy = worst_copy.min(copies);
                worst_ratio = worst_ratio.max(ratio);
            } else {
                smooth_pts.push((n as f64, copies));
                worst_smooth = worst_smooth.max(copies);
            }
            if n == *sizes.last().expect("checked") {
                let what = if smoothed {
                    format!("smoothed empirical score, N = {n}")
                } else {
                    format!("exact empirical score, N = {n}")
                };
                pictures.push(mosaic(what, m.shown.view(), 6, 6).into());
            }
        }
        let net = trained(p, o.quick, &pool, networks, &mut rows, &mut pictures);
        o.rows("memorisation-digits", &rows)?;
        let series = vec![
            Series::line_points("exact empirical score", exact_pts),
            Series::line_points("smoothed (bandwidth = spacing / √d)", smooth_pts),
            Series::line_points("trained network (end of training)", net.end_copies.clone()),
        ];
        o.figure(
            "memorisation-digits",
            &[
                Chart {
                    title: "optdigits (d = 64): copy fraction against N".into(),
                    x_label: "training digits N".into(),
                    y_label: "share of samples that copy a training digit".into(),
                    log_x: true,
                    series,
                    ..Default::default()
                }
                .into(),
                Chart {
                    title: "trained networks: copies along training".into(),
                    x_label: "training step".into(),
                    y_label: "copy fraction of samples".into(),
                    series: net.along,
                    ..Default::default()
                }
                .into(),
            ],
            2,
        )?;
        o.figure("memorisation-digits-samples", &pictures, 3)?;
        let (first, last) = (net.end_copies[0], *net.end_copies.last().expect("checked"));
        let monotone = net.end_copies.windows(2).all(|w| w[1].1 <= w[0].1 + 0.05);
        let (n_small, n_big) = (first.0, last.0);
        let onsets: Vec<String> = net
            .onsets
            .iter()
            .map(|(n, k)| match k {
                Some(k) => format!("N = {n}: step {k}"),
                None => format!("N = {n}: none"),
            })
            .collect();
        let fit = OnsetFit::of(&net.onsets);
        Ok(vec![
            Claim::new(
                &format!("the exact empirical score of N digits copies them: copy fraction (nearest training digit within {:.3} of its spacing) at every N ∈ {sizes:?} (smallest)", p.copy_fraction),
                worst_copy >= 0.99,
                worst_copy,
                "≥ 0.99",
            ),
            Claim::new(
                "power: the smoothed empirical score (bandwidth = the median spacing / √64) does not copy (largest copy fraction)",
                worst_smooth < 0.5,
                worst_smooth,
                "< 0.5",
            ),
            Claim::new(
                "its copies lie far closer to the training digits than held-out digits do (largest distance ratio)",
                worst_ratio < 0.2,
                worst_ratio,
                "< 0.2",
            ),
            Claim::new(
                &format!("a network trained on N = {n_small} digits memorises them (copy fraction at the end of training)"),
                first.1 >= 0.5,
                first.1,
                "≥ 0.5",
            )
            .learned(o.quick),
            Claim::new(
                &format!("a network trained on N = {n_big} digits does not (copy fraction at the end of training)"),
                last.1 < 0.1,
                last.1,
                "< 0.1",
            )
            .learned(o.quick),
            Claim::new(
                "the trained networks' copy fraction does not grow with N (largest rise between neighbouring N)",
                monotone,
                net.end_copies
                    .windows(2)
                    .map(|w| w[1].1 - w[0].1)
                    .fold(f64::NEG_INFINITY, f64::max),
                "≤ 0.05",
            )
            .learned(o.quick),
            Claim::new(
                &format!("the onset of memorisation (first copy fraction ≥ ½ along training) comes later for more digits, as Bonnaire et al. 2025 find ({}; statistic: sizes that memorise)", onsets.join(", ")),
                fit.later,
                fit.found as f64,
                "non-decreasing in N",
            )
            .report_only(),
            Claim::new(
                &format!("samples of the network trained on N = {n_big} digits are as far from its training digits as held-out digits are (distance ratio)"),
                (0.7..=1.5).contains(&net.end_ratio),
                net.end_ratio,
                "∈ [0.7, 1.5]",
            )
            .learned(o.quick),
        ])
    }
}

/// What the trained part hands back: final (N, copy fraction) per N, the curves along
/// training and the largest N's final distance ratio.
struct Nets {
    end_copies: Vec<(f64, f64)>,
    along: Vec<Series>,
    end_ratio: f64,
    /// (N, the first evaluated step with a copy fraction ≥ ½), where there is one.
    onsets: Vec<Onset>,
}

fn trained(
    p: &Params,
    quick: bool,
    pool: &Array2<f64>,
    networks: Vec<(usize, Measured)>,
    rows: &mut Vec<Row>,
    pictures: &mut Vec<Panel>,
) -> Nets {
    let sizes = p.trained.sizes.at(quick);
    let mut out = Nets {
        end_copies: Vec::new(),
        along: Vec::new(),
        end_ratio: f64::NAN,
        onsets: Vec::new(),
    };
    for (i, m) in networks {
        let n = sizes[i];
        let (evals, x) = (m.evals, m.shown);
        if i == 0 {
            let what = format!("its N = {n} training digits");
            pictures.push(mosaic(what, pool.slice(ndarray::s![..n, ..]), 6, 6).into());
        }
        rows.extend(evals.iter().map(|c| Row {
            model: "network",
            n_train: n,
            step: c.step,
            copy_fraction: Fixed(c.copies),
            distance_ratio: Fixed(c.ratio),
        }));
        let end = evals.last().expect("at least one evaluation");
        out.end_copies.push((n as f64, end.copies));
        out.end_ratio = end.ratio;
        if i == 0 || i + 1 == sizes.len() {
            let what = format!("network trained on N = {n}");
            pictures.push(mosaic(what, x.view(), 6, 6).into());
        }
        let pts = evals.iter().map(|c| (c.step as f64, c.copies)).collect();
        out.along.push(Series::line_points(format!("N = {n}"), pts));
        out.onsets.push((n, onset(&evals)));
    }
    out
}
