//! The exact oracle: a Gaussian mixture `p₀ = Σ_k w_k N(μ_k, Σ_k)` diffused by a linear SDE is
//! again a Gaussian mixture, `p_t = Σ_k w_k N(m μ_k, C_k)` with `C_k = m² Σ_k + s² I`
//! (papers.md §1.3). Each covariance is eigendecomposed once, `Σ_k = U_k Λ_k U_kᵀ`, so at any t
//! `C_k⁻¹ = U_k diag(1/(m² λ + s²)) U_kᵀ` costs O(d) to form. Log-densities, responsibilities
//! and the score are computed with log-sum-exp.

use super::lanes::{self, LANES};
use super::{convert, Score};
use crate::data::{Covariance, GaussianMixture};
use crate::numerics::{exp_nonpos, exp_nonpos_lanes};
use crate::path::PathPoint;
use crate::sde::{Marginal, Sde};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use scoresde_solvers::Time;
use std::f64::consts::PI;
use std::sync::Arc;

impl GaussianMixture {
    /// The diffused mixture `p_t` for the kernel `x_t = m x₀ + s z` (s = 0, m = 1 gives p₀).
    pub fn at(&self, k: Marginal) -> Diffused<'_> {
        let d = self.dim();
        let (m2, s2) = (k.mean * k.mean, k.std * k.std);
        let nk = self.n_components();
        let mut lognorm = Vec::with_capacity(nk);
        let mut inv = Vec::with_capacity(nk * d);
        for (w, c) in self.weights.iter().zip(&self.covs) {
            match c {
                Covariance::Isotropic { var } => {
                    let cv = m2 * var + s2;
                    lognorm.push(w.ln() - 0.5 * d as f64 * (2.0 * PI * cv).ln());
                    inv.extend(std::iter::repeat_n(1.0 / cv, d));
                }
                Covariance::Full { eigvals, .. } => {
                    let mut ld = 0.0;
                    for &l in eigvals {
                        let cv = m2 * l + s2;
                        ld += (2.0 * PI * cv).ln();
                        inv.push(1.0 / cv);
                    }
                    lognorm.push(w.ln() - 0.5 * ld);
                }
            }
        }
        let scaled_means = &self.means * k.mean;
        let iso = self
            .covs
            .iter()
            .all(|c| matches!(c, Covariance::Isotropic { .. }))
            .then(|| IsoSoa {
                means_t: scaled_means.t().iter().copied().collect(),
                half_inv: (0..nk).map(|c| 0.5 * inv[c * d]).collect(),
            });
        Diffused {
            mix: self,
            scaled_means,
            lognorm,
            inv,
            iso,
            scaled_means_factor: k.mean,
        }
    }
}

/// Per-row scratch space for [`Diffused`] evaluations.
#[derive(Default)]
pub struct Scratch {
    e: Vec<f64>,
    y: Vec<f64>,
    /// A score buffer for [`MixtureScore`]'s velocity.
    sc: Vec<f64>,
}

/// A mixture at one time: `p_t = Σ_k w_k N(m μ_k, C_k)`, with the per-time constants formed.
pub struct Diffused<'a> {
    mix: &'a GaussianMixture,
    scaled_means: Array2<f64>,
    /// `log w_k − ½ log det(2π C_k)`.
    lognorm: Vec<f64>,
    /// Eigenvalues of `C_k⁻¹` (K × d, repeated for isotropic components).
    inv: Vec<f64>,
    /// Structure-of-arrays constants when every component is isotropic (the fast path).
    iso: Option<IsoSoa>,
    /// m(t).
    scaled_means_factor: f64,
}

/// Constants of an all-isotropic diffused mixture laid out for vectorised loops over k.
struct IsoSoa {
    /// Scaled means transposed: `means_t[j·K + k] = m μ_kj`.
    means_t: Vec<f64>,
    /// `½ / c_k` with `C_k = c_k I`.
    half_inv: Vec<f64>,
}

impl Diffused<'_> {
    /// Fills `scratch.e[k] = exp(ℓ_k − max ℓ)` and `scratch.y` (the whitening coordinates
    /// `U_kᵀ (x − m μ_k)`); returns `(max ℓ, Σ_k e_k)` so that `log p_t(x) = max + ln Σ`.
    fn logits(&self, x: ArrayView1<f64>, s: &mut Scratch) -> (f64, f64) {
        let (nk, d) = self.scaled_means.dim();
        s.e.resize(nk, 0.0);
        s.y.resize(nk * d, 0.0);
        let mut max = f64::NEG_INFINITY;
        for k in 0..nk {
            let mu = self.scaled_means.row(k);
            let inv = &self.inv[k * d..(k + 1) * d];
            let y = &mut s.y[k * d..(k + 1) * d];
            match &self.mix.covs[k] {
                Covariance::Isotropic { .. } => {
                    for j in 0..d {
                        y[j] = x[j] - mu[j];
                    }
                }
                Covariance::Full { eigvecs, .. } => {
                    for q in 0..d {
                        let mut acc = 0.0;
                        for j in 0..d {
                            acc += eigvecs[[j, q]] * (x[j] - mu[j]);
                        }
                        y[q] = acc;
                    }
                }
            }
            let quad: f64 = y.iter().zip(inv).map(|(y, i)| y * y * i).sum();
            let l = self.lognorm[k] - 0.5 * quad;
            s.e[k] = l;
            max = max.max(l);
        }
        let mut sum = 0.0;
        for e in s.e.iter_mut() {
            *e = exp_nonpos(*e - max);
            sum += *e;
        }
        (max, sum)
    }

    /// Scores of a row-major batch (`x.len() = n·d`) when every component is isotropic:
    /// `∇log p_t(x) = Σ_k r_k (m μ_k − x) / c_k`. Rows are processed in blocks of `LANES`,
    /// vectorised across rows; each lane performs exactly the operations of a single row, so
    /// results do not depend on how rows are blocked. Returns false (writing nothing) when the
    /// mixture has a full covariance.
    pub fn score_rows_isotropic(&self, x: &[f64], out: &mut [f64], s: &mut Scratch) -> bool {
        let Some(iso) = &self.iso else { return false };
        let (nk, d) = self.scaled_means.dim();
        s.e.resize(nk * LANES, 0.0);
        s.y.resize(2 * d * LANES, 0.0);
        let (xt, b) = s.y.split_at_mut(d * LANES);
        for (xb, ob) in x.chunks(d * LANES).zip(out.chunks_mut(d * LANES)) {
            let rows = xb.len() / d;
            // Transpose the block: xt[j·LANES + r]; unused lanes repeat row 0.
            for r in 0..LANES {
                let src = if r < rows { r } else { 0 };
                for j in 0..d {
                    xt[j * LANES + r] = xb[src * d + j];
                }
            }
            lanes::logits(xt, &iso.means_t, &self.lognorm, &iso.half_inv, &mut s.e);
            let mut max = [f64::NEG_INFINITY; LANES];
            for lk in s.e.chunks_exact(LANES) {
                for (mx, &l) in max.iter_mut().zip(lk) {
                    *mx = mx.max(l);
                }
            }
            // e_k = exp(ℓ_k − max), then w_k = 2 h_k e_k overwrites ℓ_k.
            let mut sum = [0.0; LANES];
            let mut a = [0.0; LANES];
            for (lk, &h) in s.e.chunks_exact_mut(LANES).zip(&iso.half_inv) {
                let mut e = [0.0; LANES];
                for ((e, &l), &mx) in e.iter_mut().zip(lk.iter()).zip(&max) {
                    *e = l - mx;
                }
                exp_nonpos_lanes(&mut e);
                for r in 0..LANES {
                    sum[r] += e[r];
                    lk[r] = 2.0 * h * e[r];
                    a[r] += lk[r];
                }
            }
            b.iter_mut().for_each(|v| *v = 0.0);
            lanes::accumulate(b, &s.e, &iso.means_t);
            for r in 0..rows {
                let norm = 1.0 / sum[r];
                for j in 0..d {
                    ob[r * d + j] = (b[j * LANES + r] - a[r] * xt[j * LANES + r]) * norm;
                }
            }
        }
        true
    }

    /// `log p_t(x)`.
    pub fn log_prob(&self, x: ArrayView1<f64>, s: &mut Scratch) -> f64 {
        let (max, sum) = self.logits(x, s);
        max + sum.ln()
    }

    /// Writes the responsibilities `r_k(x)` into `out`; returns `log p_t(x)`.
    pub fn responsibilities(&self, x: ArrayView1<f64>, s: &mut Scratch, out: &mut [f64]) -> f64 {
        let (max, sum) = self.logits(x, s);
        for (o, e) in out.iter_mut().zip(&s.e) {
            *o = e / sum;
        }
        max + sum.ln()
    }

    /// Writes `∇ log p_t(x) = −Σ_k r_k C_k⁻¹ (x − m μ_k)` into `out`.
    pub fn score(&self, x: ArrayView1<f64>, s: &mut Scratch, out: &mut [f64]) {
        let (_, sum) = self.logits(x, s);
        let d = out.len();
        out.iter_mut().for_each(|o| *o = 0.0);
        for k in 0..self.lognorm.len() {
            let r = s.e[k] / sum;
            let inv = &self.inv[k * d..(k + 1) * d];
            let y = &s.y[k * d..(k + 1) * d];
            match &self.mix.covs[k] {
                Covariance::Isotropic { .. } => {
                    let c = r * inv[0];
                    for j in 0..d {
                        out[j] -= c * y[j];
                    }
                }
                Covariance::Full { eigvecs, .. } => {
                    for q in 0..d {
                        let w = r * y[q] * inv[q];
                        for j in 0..d {
                            out[j] -= eigvecs[[j, q]] * w;
                        }
                    }
                }
            }
        }
    }

    /// Writes Tweedie's denoiser `E[x₀ | x_t = x] = Σ_k r_k (μ_k + m Σ_k C_k⁻¹ (x − m μ_k))`
    /// into `x0` (the posterior mean of each Gaussian component, weighted by its
    /// responsibility) and the score into `score`. Regular at m = 0, where it is `Σ_k w_k μ_k`,
    /// unlike `(x + s² ∇log p_t)/m`.
    pub fn denoise(&self, x: ArrayView1<f64>, s: &mut Scratch, x0: &mut [f64], score: &mut [f64]) {
        self.score(x, s, score);
        let d = x0.len();
        let sum: f64 = s.e.iter().sum();
        let m = self.scaled_means_factor;
        x0.iter_mut().for_each(|o| *o = 0.0);
        for k in 0..self.lognorm.len() {
            let r = s.e[k] / sum;
            let inv = &self.inv[k * d..(k + 1) * d];
            let y = &s.y[k * d..(k + 1) * d];
            for (o, &mu) in x0.iter_mut().zip(self.mix.means.row(k)) {
                *o += r * mu;
            }
            match &self.mix.covs[k] {
                Covariance::Isotropic { var } => {
                    let c = r * m * var * inv[0];
                    for j in 0..d {
                        x0[j] += c * y[j];
                    }
                }
                Covariance::Full {
                    eigvecs, eigvals, ..
                } => {
                    for q in 0..d {
                        let w = r * m * eigvals[q] * inv[q] * y[q];
                        for j in 0..d {
                            x0[j] += eigvecs[[j, q]] * w;
                        }
                    }
                }
            }
        }
    }

    /// Writes the score into `out` and returns the Laplacian `Δ log p_t(x)`: the trace of the
    /// Hessian `Σ_k r_k (g_k g_kᵀ − C_k⁻¹) − (Σ_k r_k g_k)(Σ_k r_k g_k)ᵀ`, i.e.
    /// `Σ_k r_k (‖g_k‖² − tr C_k⁻¹) − ‖∇log p_t‖²` with `g_k = −C_k⁻¹(x − m μ_k)` (papers.md §1.3).
    pub fn score_laplacian(&self, x: ArrayView1<f64>, s: &mut Scratch, out: &mut [f64]) -> f64 {
        self.score(x, s, out);
        let d = out.len();
        let sum: f64 = s.e.iter().sum();
        let mut lap = 0.0;
        for k in 0..self.lognorm.len() {
            let r = s.e[k] / sum;
            let inv = &self.inv[k * d..(k + 1) * d];
            let y = &s.y[k * d..(k + 1) * d];
            // In whitened coordinates g_k = −U diag(inv) y, so ‖g_k‖² = Σ_q (inv_q y_q)².
            let (g2, tr): (f64, f64) = y
                .iter()
                .zip(inv)
                .fold((0.0, 0.0), |(g, t), (y, i)| (g + (i * y) * (i * y), t + i));
            lap += r * (g2 - tr);
        }
        lap - out.iter().map(|v| v * v).sum::<f64>()
    }

    /// Index of the most responsible component.
    pub fn argmax_component(&self, x: ArrayView1<f64>, s: &mut Scratch) -> usize {
        self.logits(x, s);
        s.e.iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (k, &e)| if e > b.1 { (k, e) } else { b },
            )
            .0
    }
}

/// The exact score of a Gaussian mixture diffused by `sde`.
/// The exact quantities of a diffused mixture ([`MixtureScore::par_field`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `∇log p_t(x)`.
    Score,
    /// `log p_t(x)`.
    LogProb,
    /// Tweedie's denoiser `E[x₀ | x_t = x]`.
    Denoise,
    /// The optimal ε-prediction `−s(t) ∇log p_t(x)`.
    Eps,
    /// The flow velocity `E[ṁ x₀ + ṡ ε | x_t = x]`.
    Velocity,
}

#[derive(Clone, Debug)]
pub struct MixtureScore {
    pub mixture: Arc<GaussianMixture>,
    pub sde: Arc<dyn Sde>,
}

impl MixtureScore {
    pub fn new(mixture: Arc<GaussianMixture>, sde: Arc<dyn Sde>) -> Self {
        Self { mixture, sde }
    }

    /// The kernel at time t.
    fn kernel(&self, t: f64) -> Marginal {
        if t == 0.0 {
            Marginal {
                mean: 1.0,
                std: 0.0,
            }
        } else {
            self.sde.marginal(t)
        }
    }

    /// Applies `f(diffused, row, scratch, out_row)` to every row, forming p_t once per time.
    fn for_rows<F>(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>, f: F)
    where
        F: Fn(&Diffused<'_>, f64, Marginal, ArrayView1<f64>, &mut Scratch, &mut [f64]),
    {
        let mut s = Scratch::default();
        match t {
            Time::Shared(t) => {
                let k = self.kernel(t);
                let p = self.mixture.at(k);
                for (xr, mut o) in x.rows().into_iter().zip(out.rows_mut()) {
                    f(
                        &p,
                        t,
                        k,
                        xr,
                        &mut s,
                        o.as_slice_mut().expect("standard layout"),
                    );
                }
            }
            Time::PerRow(ts) => {
                for ((xr, mut o), &t) in x.rows().into_iter().zip(out.rows_mut()).zip(ts) {
                    let k = self.kernel(t);
                    f(
                        &self.mixture.at(k),
                        t,
                        k,
                        xr,
                        &mut s,
                        o.as_slice_mut().expect("standard layout"),
                    );
                }
            }
        }
    }

    /// One exact quantity for every row at a shared or per-row time, in parallel blocks of
    /// rows (results do not depend on the thread count): `n × d`, or `n × 1` for
    /// [`Field::LogProb`].
    pub fn par_field(&self, field: Field, t: Time<'_>, x: ArrayView2<f64>) -> Array2<f64> {
        use crate::numerics::BLOCK;
        use ndarray::Axis;
        use rayon::prelude::*;
        let cols = if field == Field::LogProb {
            1
        } else {
            x.ncols()
        };
        let mut out = Array2::zeros((x.nrows(), cols));
        x.axis_chunks_iter(Axis(0), BLOCK)
            .into_par_iter()
            .zip(out.axis_chunks_iter_mut(Axis(0), BLOCK).into_par_iter())
            .enumerate()
            .for_each(|(b, (x, o))| {
                let t = match t {
                    Time::Shared(t) => Time::Shared(t),
                    Time::PerRow(ts) => Time::PerRow(&ts[b * BLOCK..b * BLOCK + x.nrows()]),
                };
                self.field(field, t, x, o);
            });
        out
    }

    /// [`MixtureScore::par_field`] on one block, on the calling thread.
    fn field(&self, field: Field, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        match field {
            Field::Score => self.score(t, x, out),
            Field::Velocity => {
                self.velocity(t, x, out);
            }
            Field::LogProb => {
                self.for_rows(t, x, out, |p, _, _, xr, s, o| o[0] = p.log_prob(xr, s))
            }
            Field::Denoise => self.for_rows(t, x, out, |p, _, _, xr, s, o| {
                let mut sc = std::mem::take(&mut s.sc);
                sc.resize(o.len(), 0.0);
                p.denoise(xr, s, o, &mut sc);
                s.sc = sc;
            }),
            Field::Eps => self.for_rows(t, x, out, |p, _, k, xr, s, o| {
                p.score(xr, s, o);
                o.iter_mut()
                    .for_each(|v| *v = convert::eps_from_score(*v, k));
            }),
        }
    }

    /// `log p_t(x)` per row.
    pub fn log_prob(&self, t: f64, x: ArrayView2<f64>) -> Array1<f64> {
        let mut out = Array2::zeros((x.nrows(), 1));
        self.field(Field::LogProb, Time::Shared(t), x, out.view_mut());
        out.column(0).to_owned()
    }

    /// The Tweedie denoiser `E[x₀ | x_t = x]` per row (regular at m = 0).
    pub fn denoise(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        self.serial(Field::Denoise, t, x)
    }

    /// The exact velocity `E[ṁ x₀ + ṡ ε | x_t = x]` per row.
    pub fn velocity_at(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        self.serial(Field::Velocity, t, x)
    }

    /// The optimal ε-prediction `ε*(x, t) = −s(t) ∇log p_t(x)` per row.
    pub fn eps(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        self.serial(Field::Eps, t, x)
    }

    /// An `n × d` field at a shared time, on the calling thread.
    fn serial(&self, field: Field, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros(x.raw_dim());
        self.field(field, Time::Shared(t), x, out.view_mut());
        out
    }
}

impl Score for MixtureScore {
    fn dim(&self) -> usize {
        self.mixture.dim()
    }
    /// `u = ṁ x̂₀ + ṡ ε̂` with the regular denoiser and `ε̂ = −s ∇log p_t`.
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) -> bool {
        self.for_rows(t, x, out, |p, t, k, xr, s, o| {
            let mut sc = std::mem::take(&mut s.sc);
            sc.resize(o.len(), 0.0);
            p.denoise(xr, s, o, &mut sc);
            let pt = PathPoint::new(k, self.sde.rates(t));
            for (o, &sc) in o.iter_mut().zip(&sc) {
                *o = convert::velocity_from_x0_eps(*o, convert::eps_from_score(sc, k), pt);
            }
            s.sc = sc;
        });
        true
    }
    fn sde(&self) -> Option<&dyn Sde> {
        Some(self.sde.as_ref())
    }
    /// Exact: the trace of the analytic Hessian.
    fn score_divergence(
        &self,
        t: Time<'_>,
        x: ArrayView2<f64>,
        mut out: ArrayViewMut2<f64>,
        div: &mut [f64],
    ) {
        let mut s = Scratch::default();
        for (i, (xr, mut o)) in x.rows().into_iter().zip(out.rows_mut()).enumerate() {
            let k = self.kernel(t.at(i));
            div[i] = self.mixture.at(k).score_laplacian(
                xr,
                &mut s,
                o.as_slice_mut().expect("standard layout"),
            );
        }
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        if let (Time::Shared(t), Some(xs), Some(os)) = (t, x.as_slice(), out.as_slice_mut()) {
            let mut s = Scratch::default();
            if self
                .mixture
                .at(self.kernel(t))
                .score_rows_isotropic(xs, os, &mut s)
            {
                return;
            }
        }
        self.for_rows(t, x, out, |p, _, _, xr, s, o| p.score(xr, s, o));
    }
}
