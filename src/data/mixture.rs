//! Gaussian mixtures `p₀ = Σ_k w_k N(μ_k, Σ_k)` in any dimension, with isotropic or full
//! covariances (each eigendecomposed once, `Σ_k = U_k Λ_k U_kᵀ`): construction, exact keyed
//! draws, and the diffused mixture `p_t = Σ_k w_k N(m μ_k, m² Σ_k + s² I)` of a linear SDE.
//! The exact score of `p_t` lives in [`crate::score::MixtureScore`].

use crate::sde::Marginal;
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2};
use ndarray_linalg::{Eigh, UPLO};
use rand::Rng;
use rand_distr::StandardNormal;
use scoresde_solvers::KeyedNormal;

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
                "standard deviation must be positive and finite, got {}",
                crate::error::num(std)
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
        if min.is_nan() || min <= 0.0 {
            return Err(Error::Data(format!(
                "covariance is not positive definite (smallest eigenvalue {min:.6e})"
            )));
        }
        if min <= 1e-12 * max {
            return Err(Error::Data(format!(
                "covariance is ill-conditioned: condition number {:.3e} > 1e12 (eigenvalues {min:.3e} … {max:.3e})",
                max / min
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

/// Class labels of a mixture's components: `names` (sorted, distinct) and each component's
/// index into them. The class-conditional p(x | c) is the mixture of the components labelled c,
/// their weights renormalised.
#[derive(Clone, Debug, PartialEq)]
pub struct Classes {
    pub names: Vec<String>,
    pub of_component: Vec<usize>,
}

/// A Gaussian mixture in any dimension d ≥ 1 with K ≥ 1 components, optionally class-labelled.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianMixture {
    pub(crate) weights: Vec<f64>,
    pub(crate) means: Array2<f64>,
    pub(crate) covs: Vec<Covariance>,
    pub(crate) classes: Option<std::sync::Arc<Classes>>,
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
            classes: None,
        })
    }

    /// The same mixture with component k labelled `labels[k]` (one label per component).
    pub fn with_classes<S: AsRef<str>>(mut self, labels: &[S]) -> Result<Self> {
        if labels.len() != self.n_components() {
            return Err(Error::Data(format!(
                "{} class labels for {} components",
                labels.len(),
                self.n_components()
            )));
        }
        if let Some(i) = labels.iter().position(|l| l.as_ref().trim().is_empty()) {
            return Err(Error::Data(format!("component {i}: empty class label")));
        }
        let mut names: Vec<String> = labels.iter().map(|l| l.as_ref().to_string()).collect();
        names.sort();
        names.dedup();
        let of_component = labels
            .iter()
            .map(|l| names.iter().position(|n| n == l.as_ref()).expect("listed"))
            .collect();
        self.classes = Some(std::sync::Arc::new(Classes {
            names,
            of_component,
        }));
        Ok(self)
    }

    /// The class labels, if the mixture has them.
    pub fn classes(&self) -> Option<&Classes> {
        self.classes.as_deref()
    }

    /// p(x | c): the components labelled `class`, weights renormalised (one-line errors for a
    /// mixture without classes and for an unknown class).
    pub fn conditional(&self, class: &str) -> Result<Self> {
        let classes = self
            .classes()
            .ok_or_else(|| Error::Data("the mixture has no class labels".into()))?;
        let c = classes
            .names
            .iter()
            .position(|n| n == class)
            .ok_or_else(|| {
                Error::Data(format!(
                    "unknown class '{class}' (classes: {})",
                    classes.names.join(", ")
                ))
            })?;
        let keep: Vec<usize> = (0..self.n_components())
            .filter(|&k| classes.of_component[k] == c)
            .collect();
        let means = self.means.select(ndarray::Axis(0), &keep);
        let weights = keep.iter().map(|&k| self.weights[k]).collect();
        let covs = keep.iter().map(|&k| self.covs[k].clone()).collect();
        let labels: Vec<&str> = keep.iter().map(|_| class).collect();
        Self::new(weights, means, covs)?.with_classes(&labels)
    }

    /// Carries `other`'s class labels over to a mixture built from its components.
    fn labelled_like(mut self, other: &Self) -> Self {
        self.classes = other.classes.clone();
        self
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
        Ok(Self::new(self.weights.clone(), self.means.clone(), covs)?.labelled_like(self))
    }

    /// The mixture of `c·x` for x from this one: means × c, covariances × c².
    pub fn scaled(&self, c: f64) -> Result<Self> {
        Ok(Self::new(
            self.weights.clone(),
            self.means.clone() * c,
            self.covs.clone(),
        )?
        .widened(c)?
        .labelled_like(self))
    }

    /// The data's standard deviation per coordinate, averaged over coordinates:
    /// `√(tr Cov(x) / d)` with `Cov(x) = Σ_k w_k (Σ_k + μ_k μ_kᵀ) − μ̄ μ̄ᵀ`.
    pub fn coordinate_std(&self) -> f64 {
        let (_, spread) = self.mean_and_spread();
        (spread / self.dim() as f64).sqrt()
    }

    /// The mean μ̄ and the spread `E‖x − μ̄‖² = tr Cov(x) = Σ_k w_k (tr Σ_k + ‖μ_k‖²) − ‖μ̄‖²`.
    pub fn mean_and_spread(&self) -> (ndarray::Array1<f64>, f64) {
        let d = self.dim();
        let mean = self
            .weights
            .iter()
            .zip(self.means.rows())
            .fold(ndarray::Array1::<f64>::zeros(d), |acc, (w, m)| {
                acc + &m * *w
            });
        let second: f64 = self
            .weights
            .iter()
            .zip(self.means.rows())
            .zip(&self.covs)
            .map(|((w, m), c)| w * (c.matrix(d).diag().sum() + m.dot(&m)))
            .sum();
        let spread = second - mean.dot(&mean);
        (mean, spread)
    }

    /// The same mixture with other weights (normalised).
    pub fn with_weights(&self, weights: Vec<f64>) -> Result<Self> {
        Ok(Self::new(weights, self.means.clone(), self.covs.clone())?.labelled_like(self))
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
        Ok(Self::new(self.weights.clone(), &self.means * k.mean, covs)?.labelled_like(self))
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

    /// `n` exact draws (the same points as [`GaussianMixture::sample`]) and their class indices
    /// into [`Classes::names`]; one-line error for a mixture without class labels.
    pub fn sample_labelled(
        &self,
        n: usize,
        seed: u64,
        domain: u64,
    ) -> Result<(Array2<f64>, Vec<usize>)> {
        let classes = self
            .classes()
            .ok_or_else(|| Error::Data("the mixture has no class labels".into()))?;
        let (x, comp) = self.sample(n, seed, domain);
        Ok((x, comp.iter().map(|&k| classes.of_component[k]).collect()))
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
