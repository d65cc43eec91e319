//! The exact oracle: a Gaussian mixture `p₀ = Σ_k w_k N(μ_k, Σ_k)` diffused by a linear SDE is
//! again a Gaussian mixture, `p_t = Σ_k w_k N(m μ_k, C_k)` with `C_k = m² Σ_k + s² I`
//! (papers.md §1.3). Each covariance is eigendecomposed once, `Σ_k = U_k Λ_k U_kᵀ`, so at any t
//! `C_k⁻¹ = U_k diag(1/(m² λ + s²)) U_kᵀ` costs O(d) to form. Log-densities, responsibilities
//! and the score are computed with log-sum-exp.

use super::{convert, Score};
use crate::numerics::{exp_nonpos, exp_nonpos_lanes};
use crate::sde::{Marginal, Sde};
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use ndarray_linalg::{Eigh, UPLO};
use rand::Rng;
use rand_distr::StandardNormal;
use scoresde_solvers::{KeyedNormal, Time};
use std::f64::consts::PI;
use std::sync::Arc;

/// Covariance of one component.
#[derive(Clone, Debug, PartialEq)]
pub enum Covariance {
    /// `σ² I`.
    Isotropic { var: f64 },
    /// A full SPD matrix with its eigendecomposition (eigenvectors in columns).
    Full {
        matrix: Array2<f64>,
        eigvals: Array1<f64>,
        eigvecs: Array2<f64>,
    },
}

impl Covariance {
    /// Isotropic covariance with standard deviation `std`.
    pub fn isotropic(std: f64) -> Result<Self> {
        if !(std > 0.0 && std.is_finite()) {
            return Err(Error::Data(format!(
                "standard deviation must be positive and finite, got {std}"
            )));
        }
        Ok(Covariance::Isotropic { var: std * std })
    }

    /// A full covariance; must be symmetric positive definite.
    pub fn full(matrix: Array2<f64>) -> Result<Self> {
        let (r, c) = matrix.dim();
        if r != c {
            return Err(Error::Data(format!("covariance is {r}×{c}, not square")));
        }
        if matrix.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data("covariance has a non-finite entry".into()));
        }
        let scale = matrix.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for i in 0..r {
            for j in 0..i {
                if (matrix[[i, j]] - matrix[[j, i]]).abs() > 1e-10 * scale {
                    return Err(Error::Data(format!(
                        "covariance is not symmetric: entry ({i},{j}) = {} but ({j},{i}) = {}",
                        matrix[[i, j]],
                        matrix[[j, i]]
                    )));
                }
            }
        }
        let (eigvals, eigvecs) = matrix
            .eigh(UPLO::Lower)
            .map_err(|e| Error::Data(format!("eigendecomposition of covariance failed: {e}")))?;
        let min = eigvals.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = eigvals.iter().cloned().fold(0.0, f64::max);
        if !(min > 1e-12 * max && min > 0.0) {
            return Err(Error::Data(format!(
                "covariance is not positive definite (smallest eigenvalue {min:.6e})"
            )));
        }
        Ok(Covariance::Full {
            matrix,
            eigvals,
            eigvecs,
        })
    }

    /// The covariance as a d × d matrix.
    pub fn matrix(&self, d: usize) -> Array2<f64> {
        match self {
            Covariance::Isotropic { var } => Array2::eye(d) * *var,
            Covariance::Full { matrix, .. } => matrix.clone(),
        }
    }
}

/// A Gaussian mixture in any dimension d ≥ 1 with K ≥ 1 components.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianMixture {
    weights: Vec<f64>,
    means: Array2<f64>,
    covs: Vec<Covariance>,
}

impl GaussianMixture {
    /// Weights must be positive (they are normalised); means are the rows of `means` (K × d).
    pub fn new(weights: Vec<f64>, means: Array2<f64>, covs: Vec<Covariance>) -> Result<Self> {
        let (k, d) = means.dim();
        if k == 0 || d == 0 {
            return Err(Error::Data(
                "a mixture needs at least one component of dimension ≥ 1".into(),
            ));
        }
        if weights.len() != k || covs.len() != k {
            return Err(Error::Data(format!(
                "mixture has {k} means but {} weights and {} covariances",
                weights.len(),
                covs.len()
            )));
        }
        if let Some(i) = weights.iter().position(|w| !(*w > 0.0 && w.is_finite())) {
            return Err(Error::Data(format!(
                "component {i}: weight must be positive, got {}",
                weights[i]
            )));
        }
        if means.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data("a mean has a non-finite entry".into()));
        }
        for (i, c) in covs.iter().enumerate() {
            if let Covariance::Full { matrix, .. } = c {
                if matrix.nrows() != d {
                    return Err(Error::Data(format!(
                        "component {i}: covariance is {}×{} but the mean has length {d}",
                        matrix.nrows(),
                        matrix.ncols()
                    )));
                }
            }
        }
        let total: f64 = weights.iter().sum();
        let weights = weights.into_iter().map(|w| w / total).collect();
        Ok(Self {
            weights,
            means,
            covs,
        })
    }

    /// Equal-or-given weights, isotropic components with standard deviations `stds`.
    pub fn isotropic(weights: Vec<f64>, means: Array2<f64>, stds: &[f64]) -> Result<Self> {
        let covs = stds
            .iter()
            .map(|&s| Covariance::isotropic(s))
            .collect::<Result<Vec<_>>>()?;
        Self::new(weights, means, covs)
    }

    pub fn dim(&self) -> usize {
        self.means.ncols()
    }
    pub fn n_components(&self) -> usize {
        self.means.nrows()
    }
    /// Normalised weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    pub fn means(&self) -> ArrayView2<'_, f64> {
        self.means.view()
    }
    pub fn covariances(&self) -> &[Covariance] {
        &self.covs
    }

    /// The same mixture with every covariance scaled by `factor²` (component stds × `factor`):
    /// the "blurred model" of the spread statistics' power controls.
    pub fn widened(&self, factor: f64) -> Result<Self> {
        let d = self.dim();
        let covs = self
            .covs
            .iter()
            .map(|c| match c {
                Covariance::Isotropic { var } => Ok(Covariance::Isotropic {
                    var: var * factor * factor,
                }),
                Covariance::Full { .. } => Covariance::full(c.matrix(d) * (factor * factor)),
            })
            .collect::<Result<_>>()?;
        Self::new(self.weights.clone(), self.means.clone(), covs)
    }

    /// The same mixture with other weights (normalised).
    pub fn with_weights(&self, weights: Vec<f64>) -> Result<Self> {
        Self::new(weights, self.means.clone(), self.covs.clone())
    }

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
        }
    }

    /// `p_t` as a mixture in its own right: means `m μ_k`, covariances `m² Σ_k + s² I` (for exact
    /// draws from, or CDFs of, a diffused marginal).
    pub fn diffused_mixture(&self, k: Marginal) -> Result<Self> {
        let d = self.dim();
        let (m2, s2) = (k.mean * k.mean, k.std * k.std);
        let covs = self
            .covs
            .iter()
            .map(|c| match c {
                Covariance::Isotropic { var } => Ok(Covariance::Isotropic { var: m2 * var + s2 }),
                Covariance::Full { matrix, .. } => {
                    Covariance::full(matrix * m2 + Array2::<f64>::eye(d) * s2)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(self.weights.clone(), &self.means * k.mean, covs)
    }

    /// `n` exact draws and their component labels, keyed by (seed, domain, row).
    pub fn sample(&self, n: usize, seed: u64, domain: u64) -> (Array2<f64>, Vec<usize>) {
        let d = self.dim();
        let key = KeyedNormal::new(seed, domain);
        let mut x = Array2::zeros((n, d));
        let mut labels = Vec::with_capacity(n);
        let mut z = vec![0.0; d];
        for (i, mut row) in x.rows_mut().into_iter().enumerate() {
            let mut rng = key.rng(i as u64, 0);
            let u: f64 = rng.random();
            let mut k = 0;
            let mut acc = self.weights[0];
            while u >= acc && k + 1 < self.weights.len() {
                k += 1;
                acc += self.weights[k];
            }
            labels.push(k);
            z.iter_mut().for_each(|v| *v = rng.sample(StandardNormal));
            let mu = self.means.row(k);
            match &self.covs[k] {
                Covariance::Isotropic { var } => {
                    let sd = var.sqrt();
                    for j in 0..d {
                        row[j] = mu[j] + sd * z[j];
                    }
                }
                Covariance::Full {
                    eigvals, eigvecs, ..
                } => {
                    for j in 0..d {
                        let mut acc = mu[j];
                        for q in 0..d {
                            acc += eigvecs[[j, q]] * eigvals[q].sqrt() * z[q];
                        }
                        row[j] = acc;
                    }
                }
            }
        }
        (x, labels)
    }

    /// The marginal of coordinate `j` as 1D components `(weight, mean, std)`.
    pub fn marginal_1d(&self, j: usize) -> Vec<(f64, f64, f64)> {
        let d = self.dim();
        self.covs
            .iter()
            .enumerate()
            .map(|(k, c)| {
                (
                    self.weights[k],
                    self.means[[k, j]],
                    c.matrix(d)[[j, j]].sqrt(),
                )
            })
            .collect()
    }

    /// The largest distance between two component means plus six times the largest component
    /// standard deviation: a diameter of the data, e.g. for choosing the VE σ_max.
    pub fn diameter(&self) -> f64 {
        let d = self.dim();
        let mut far = 0.0f64;
        for a in self.means.rows() {
            for b in self.means.rows() {
                far = far.max((&a - &b).mapv(|v| v * v).sum().sqrt());
            }
        }
        let sd = self.covs.iter().fold(0.0f64, |acc, c| match c {
            Covariance::Isotropic { var } => acc.max(var.sqrt()),
            Covariance::Full { eigvals, .. } => acc.max(eigvals[d - 1].sqrt()),
        });
        far + 6.0 * sd
    }
}

/// Per-row scratch space for [`Diffused`] evaluations.
#[derive(Default)]
pub struct Scratch {
    e: Vec<f64>,
    y: Vec<f64>,
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
        const LANES: usize = 8;
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
            let mut max = [f64::NEG_INFINITY; LANES];
            for ((k, lk), &h) in s.e.chunks_exact_mut(LANES).enumerate().zip(&iso.half_inv) {
                let mut l = [self.lognorm[k]; LANES];
                for (j, xj) in xt.chunks_exact(LANES).enumerate() {
                    let m = iso.means_t[j * nk + k];
                    for (l, &xv) in l.iter_mut().zip(xj) {
                        let t = xv - m;
                        *l -= h * t * t;
                    }
                }
                for (mx, &l) in max.iter_mut().zip(&l) {
                    *mx = mx.max(l);
                }
                lk.copy_from_slice(&l);
            }
            let mut sum = [0.0; LANES];
            let mut a = [0.0; LANES];
            b.iter_mut().for_each(|v| *v = 0.0);
            for ((k, lk), &h) in s.e.chunks_exact(LANES).enumerate().zip(&iso.half_inv) {
                let mut e = [0.0; LANES];
                for ((e, &l), &mx) in e.iter_mut().zip(lk).zip(&max) {
                    *e = l - mx;
                }
                exp_nonpos_lanes(&mut e);
                let mut w = [0.0; LANES];
                for r in 0..LANES {
                    sum[r] += e[r];
                    w[r] = 2.0 * h * e[r];
                    a[r] += w[r];
                }
                for (j, bj) in b.chunks_exact_mut(LANES).enumerate() {
                    let m = iso.means_t[j * nk + k];
                    for (bv, &wv) in bj.iter_mut().zip(&w) {
                        *bv += wv * m;
                    }
                }
            }
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
        F: Fn(&Diffused<'_>, Marginal, ArrayView1<f64>, &mut Scratch, &mut [f64]),
    {
        let mut s = Scratch::default();
        match t {
            Time::Shared(t) => {
                let k = self.kernel(t);
                let p = self.mixture.at(k);
                for (xr, mut o) in x.rows().into_iter().zip(out.rows_mut()) {
                    f(
                        &p,
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
                        k,
                        xr,
                        &mut s,
                        o.as_slice_mut().expect("standard layout"),
                    );
                }
            }
        }
    }

    /// `log p_t(x)` per row.
    pub fn log_prob(&self, t: f64, x: ArrayView2<f64>) -> Array1<f64> {
        let mut out = Array2::zeros((x.nrows(), 1));
        self.for_rows(Time::Shared(t), x, out.view_mut(), |p, _, xr, s, o| {
            o[0] = p.log_prob(xr, s)
        });
        out.column(0).to_owned()
    }

    /// The Tweedie denoiser `E[x₀ | x_t = x]` per row.
    pub fn denoise(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros(x.raw_dim());
        self.for_rows(Time::Shared(t), x, out.view_mut(), |p, k, xr, s, o| {
            p.score(xr, s, o);
            for (o, &xv) in o.iter_mut().zip(xr) {
                *o = convert::x0_from_score(*o, xv, k);
            }
        });
        out
    }

    /// The optimal ε-prediction `ε*(x, t) = −s(t) ∇log p_t(x)` per row.
    pub fn eps(&self, t: f64, x: ArrayView2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros(x.raw_dim());
        self.for_rows(Time::Shared(t), x, out.view_mut(), |p, k, xr, s, o| {
            p.score(xr, s, o);
            o.iter_mut()
                .for_each(|v| *v = convert::eps_from_score(*v, k));
        });
        out
    }
}

impl Score for MixtureScore {
    fn dim(&self) -> usize {
        self.mixture.dim()
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
        self.for_rows(t, x, out, |p, _, xr, s, o| p.score(xr, s, o));
    }
}
