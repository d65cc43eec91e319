//! The exact field of a finite training set diffused along a path: the empirical distribution
//! p̂ = (1/N) Σᵢ δ(x − x⁽ⁱ⁾), or its kernel-smoothed version (1/N) Σᵢ N(x⁽ⁱ⁾, h² I), pushed
//! through the path's kernel, p_t = (1/N) Σᵢ N(m x⁽ⁱ⁾, v I) with v = s² + m² h². With the
//! posterior weights wᵢ(x) = softmax_i(−‖x − m x⁽ⁱ⁾‖² / 2v) and x̄ = Σᵢ wᵢ x⁽ⁱ⁾:
//!
//! * score ∇log p_t(x) = (m x̄ − x)/v;
//! * denoiser E[x₀ | x_t = x] = x̄ + (m h²/v)(x − m x̄) (= x̄, a convex combination of training
//!   points, for h = 0: the ideal denoiser that memorises; Biroli et al. 2024, Kadkhodaie et
//!   al. 2024);
//! * velocity u = ṁ x̂₀ + ṡ ε̂ with ε̂ = (x − m x̂₀)/s (Bertrand et al. 2025's closed-form
//!   empirical velocity Σ wᵢ (x⁽ⁱ⁾ − x)/(1 − t) on the rectified path);
//! * log p_t(x) = logsumexp_i(−‖x − m x⁽ⁱ⁾‖² / 2v) − log N − (d/2) log 2πv.
//!
//! The softmax over points is streamed: blocks of training points, the inner products of a
//! block of rows with them as one matrix product, a running maximum and a running weighted sum
//! (a second product), so memory is O(rows × block) whatever N. Cost per evaluated row:
//! 4 N d flops plus N exponentials.

use super::Score;
use crate::sde::Sde;
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use scoresde_solvers::Time;
use std::sync::Arc;

/// Training points per streamed block.
const POINTS: usize = 1024;
/// Rows per parallel block.
const ROWS: usize = 64;

/// The diffused empirical (or kernel-smoothed) distribution of a training set.
pub struct EmpiricalScore {
    points: Arc<Array2<f64>>,
    /// ‖x⁽ⁱ⁾‖².
    norms: Array1<f64>,
    bandwidth: f64,
    sde: Arc<dyn Sde>,
}

/// What one streamed pass over the points gives for a row at one time.
#[derive(Clone, Debug, Default)]
pub struct Posterior {
    /// The posterior mean of the training point, x̄ = Σ wᵢ x⁽ⁱ⁾.
    pub mean: Vec<f64>,
    /// logsumexp_i(−‖x − m x⁽ⁱ⁾‖² / 2v).
    pub log_sum: f64,
    /// The most probable training point and its weight wᵢ.
    pub top: usize,
    pub top_weight: f64,
}

impl EmpiricalScore {
    /// The training set's rows as point masses (`bandwidth` 0) or Gaussians of standard
    /// deviation `bandwidth`, diffused by `sde`. One-line errors for no points, a non-finite
    /// coordinate, duplicate points (the empirical law would weigh them twice) and a negative
    /// or non-finite bandwidth.
    pub fn new(points: Array2<f64>, bandwidth: f64, sde: Arc<dyn Sde>) -> Result<Self> {
        let (n, d) = points.dim();
        if n == 0 || d == 0 {
            return Err(Error::Data(format!(
                "the training set needs at least one point of dimension ≥ 1, got {n} × {d}"
            )));
        }
        if let Some(i) = points.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "training point {} has a non-finite coordinate",
                i / d
            )));
        }
        if !(bandwidth >= 0.0 && bandwidth.is_finite()) {
            return Err(Error::Data(format!(
                "the bandwidth must be finite and ≥ 0, got {}",
                crate::error::num(bandwidth)
            )));
        }
        let mut order: Vec<usize> = (0..n).collect();
        let key = |i: usize| points.row(i).to_vec();
        order.sort_by(|&a, &b| {
            key(a)
                .iter()
                .zip(key(b).iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if let Some(w) = order
            .windows(2)
            .find(|w| points.row(w[0]) == points.row(w[1]))
        {
            return Err(Error::Data(format!(
                "training points {} and {} are equal (remove duplicates)",
                w[0].min(w[1]),
                w[0].max(w[1])
            )));
        }
        let norms = points.map_axis(Axis(1), |r| r.dot(&r));
        Ok(Self {
            points: Arc::new(points),
            norms,
            bandwidth,
            sde,
        })
    }

    pub fn points(&self) -> &Array2<f64> {
        &self.points
    }

    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// (m, v = s² + m²h²) at t.
    fn kernel(&self, t: f64) -> (f64, f64) {
        let k = self.sde.marginal(t);
        let h2 = self.bandwidth * self.bandwidth;
        (k.mean, k.std * k.std + k.mean * k.mean * h2)
    }

    /// The posterior over training points of each row of `x` at its time: one streamed pass.
    pub fn posterior(&self, t: Time<'_>, x: ArrayView2<f64>) -> Vec<Posterior> {
        let mut out = vec![Posterior::default(); x.nrows()];
        out.par_chunks_mut(ROWS)
            .zip(x.axis_chunks_iter(Axis(0), ROWS).into_par_iter())
            .enumerate()
            .for_each(|(b, (o, xb))| {
                let mv: Vec<(f64, f64)> = (0..xb.nrows())
                    .map(|i| self.kernel(t.at(b * ROWS + i)))
                    .collect();
                self.block(xb, &mv, o);
            });
        out
    }

    /// The streamed softmax of a block of rows against every point: logits
    /// `ℓᵢ = (2m⟨x, x⁽ⁱ⁾⟩ − m²‖x⁽ⁱ⁾‖²)/2v` (−‖x‖²/2v added back in `log_sum`).
    fn block(&self, x: ArrayView2<f64>, mv: &[(f64, f64)], out: &mut [Posterior]) {
        let (r, d) = x.dim();
        let n = self.points.nrows();
        let mut max = vec![f64::NEG_INFINITY; r];
        let mut sum = vec![0.0; r];
        let mut acc = Array2::<f64>::zeros((r, d));
        let mut top = vec![(0usize, f64::NEG_INFINITY); r];
        let mut start = 0;
        while start < n {
            let end = (start + POINTS).min(n);
            let pts = self.points.slice(ndarray::s![start..end, ..]);
            let mut l = x.dot(&pts.t());
            for (i, mut row) in l.rows_mut().into_iter().enumerate() {
                let (m, v) = mv[i];
                for (j, lv) in row.iter_mut().enumerate() {
                    *lv = (2.0 * m * *lv - m * m * self.norms[start + j]) / (2.0 * v);
                }
                let (jmax, bmax) =
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, f64::NEG_INFINITY),
                            |a, (j, &v)| if v > a.1 { (j, v) } else { a },
                        );
                if bmax > top[i].1 {
                    top[i] = (start + jmax, bmax);
                }
                let new = max[i].max(bmax);
                let scale = (max[i] - new).exp();
                sum[i] *= scale;
                acc.row_mut(i).mapv_inplace(|a| a * scale);
                max[i] = new;
                row.mapv_inplace(|v| (v - new).exp());
                sum[i] += row.sum();
            }
            acc += &l.dot(&pts);
            start = end;
        }
        for (i, o) in out.iter_mut().enumerate() {
            let (_, v) = mv[i];
            let xx = x.row(i).dot(&x.row(i));
            o.mean = acc.row(i).iter().map(|a| a / sum[i]).collect();
            o.log_sum = max[i] + sum[i].ln() - xx / (2.0 * v);
            o.top = top[i].0;
            o.top_weight = (top[i].1 - max[i]).exp() / sum[i];
        }
    }

    /// log p_t(x) of each row.
    pub fn log_prob(&self, t: Time<'_>, x: ArrayView2<f64>) -> Vec<f64> {
        let (n, d) = (self.points.nrows() as f64, self.points.ncols() as f64);
        self.posterior(t, x)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (_, v) = self.kernel(t.at(i));
                p.log_sum - n.ln() - 0.5 * d * (std::f64::consts::TAU * v).ln()
            })
            .collect()
    }

    /// `out[i][j] = f(m, v, x̄_j, x_j)` for each row i at its time: the one pass from the
    /// posterior mean to a field.
    fn map_mean(
        &self,
        t: Time<'_>,
        x: ArrayView2<f64>,
        mut out: ArrayViewMut2<f64>,
        f: impl Fn(f64, f64, f64, f64) -> f64,
    ) {
        for (i, (p, (mut o, xr))) in self
            .posterior(t, x)
            .iter()
            .zip(out.rows_mut().into_iter().zip(x.rows()))
            .enumerate()
        {
            let (m, v) = self.kernel(t.at(i));
            for ((o, &b), &xv) in o.iter_mut().zip(&p.mean).zip(xr) {
                *o = f(m, v, b, xv);
            }
        }
    }

    /// The denoiser E[x₀ | x_t = x] of each row.
    pub fn denoise(&self, t: Time<'_>, x: ArrayView2<f64>) -> Array2<f64> {
        let h2 = self.bandwidth * self.bandwidth;
        let mut out = Array2::zeros(x.raw_dim());
        self.map_mean(t, x, out.view_mut(), |m, v, b, xv| {
            b + m * h2 / v * (xv - m * b)
        });
        out
    }
}

impl Score for EmpiricalScore {
    fn dim(&self) -> usize {
        self.points.ncols()
    }
    fn sde(&self) -> Option<&dyn Sde> {
        Some(self.sde.as_ref())
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        self.map_mean(t, x, out, |m, v, b, xv| (m * b - xv) / v);
    }
    /// `u = ṁ x̂₀ + ṡ ε̂`, ε̂ = (x − m x̂₀)/s, regular where m = 0 (s > 0 there).
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> bool {
        let x0 = self.denoise(t, x);
        for (i, ((mut o, xr), x0r)) in out
            .rows_mut()
            .into_iter()
            .zip(x.rows())
            .zip(x0.rows())
            .enumerate()
        {
            let ti = t.at(i);
            let (k, r) = (self.sde.marginal(ti), self.sde.rates(ti));
            for ((o, &xv), &a) in o.iter_mut().zip(xr).zip(x0r) {
                let eps = (xv - k.mean * a) / k.std;
                *o = r.dmean * a + r.dstd * eps;
            }
        }
        true
    }
}
