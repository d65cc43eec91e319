//! Toy data: builtin datasets (papers.md §2) and user mixtures from TOML files.
//!
//! Every draw is keyed by (seed, row), so `n` draws are a prefix of `n + 1` draws and do not
//! depend on threads or batching.

mod mixture;
mod mixture_file;
mod optdigits;
pub mod prior_gap;
mod toy;
mod tree;

pub use mixture::{Classes, Covariance, GaussianMixture};
pub use mixture_file::{mixture_toml, parse_mixture_toml};
pub use optdigits::{optdigits, OPTDIGITS_DIM};
pub use toy::Toy;
pub use tree::tree_mixture;

use crate::{Error, Result};
use ndarray::{array, Array2, ArrayView2};
use std::path::Path;
use std::sync::Arc;

/// Noise domain of exact data draws (`scoresde data`).
pub const DATA_DOMAIN: u64 = crate::domain::Domain::Data.key();
/// Noise domain of the reference draws a test compares against (independent of `DATA_DOMAIN`).
pub const REFERENCE_DOMAIN: u64 = crate::domain::Domain::Reference.key();
/// Noise domain of the exact null sample sets of the test battery's Monte Carlo tests.
pub const NULL_DOMAIN: u64 = crate::domain::Domain::Null.key();

/// Names of the builtin datasets, with a one-line description each.
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "8gaussians",
        "8 equal Gaussians on a circle of radius 2.83, std 0.354 (FFJORD scale); exact mixture",
    ),
    (
        "25gaussians",
        "5×5 grid, spacing 0.707, std 0.05 (WGAN-GP grid, wider components); exact mixture",
    ),
    (
        "ncsn",
        "1/5 N((-5,-5), I) + 4/5 N((5,5), I) (Song & Ermon 2019); exact mixture",
    ),
    (
        "bimodal-1d",
        "1D: 1/2 N(-1, 0.15²) + 1/2 N(1, 0.15²); exact mixture",
    ),
    ("moons", "two moons, noise 0.1, ×2, shifted (FFJORD)"),
    ("swissroll", "2D Swiss roll, noise 1.0, /5 (FFJORD)"),
    (
        "checkerboard",
        "uniform on 8 squares of side 2 in [-4, 4]² (FFJORD)",
    ),
    (
        "rings",
        "4 concentric rings of radii 3, 2.25, 1.5, 0.75, noise 0.08 (FFJORD)",
    ),
    ("pinwheel", "5-arm pinwheel (FFJORD)"),
    ("2spirals", "two interleaved spirals (FFJORD)"),
];

/// A data distribution: an exact Gaussian mixture, or a toy generator without a closed form.
#[derive(Clone, Debug)]
pub enum Dataset {
    Mixture {
        name: String,
        mixture: Arc<GaussianMixture>,
    },
    Toy(Toy),
}

impl Dataset {
    /// A builtin name (see [`BUILTINS`]) or the path of a mixture TOML file.
    pub fn from_spec(spec: &str) -> Result<Self> {
        if let Some(d) = Self::builtin(spec)? {
            return Ok(d);
        }
        let path = Path::new(spec);
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let mixture = parse_mixture_toml(&text)
                .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
            return Ok(Dataset::Mixture {
                name: spec.to_string(),
                mixture: Arc::new(mixture),
            });
        }
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.0).collect();
        Err(Error::Data(format!(
            "unknown dataset '{spec}': expected one of {} or a mixture file ending in .toml",
            names.join(", ")
        )))
    }

    fn builtin(name: &str) -> Result<Option<Self>> {
        let mixture = match name {
            "8gaussians" => {
                let s = std::f64::consts::FRAC_1_SQRT_2;
                let dirs = [
                    [1.0, 0.0],
                    [-1.0, 0.0],
                    [0.0, 1.0],
                    [0.0, -1.0],
                    [s, s],
                    [s, -s],
                    [-s, s],
                    [-s, -s],
                ];
                // FFJORD: centre·4 + 0.5 N(0, I), all divided by 1.414.
                let means = Array2::from_shape_fn((8, 2), |(k, j)| 4.0 * dirs[k][j] / 1.414);
                // Classes: four 90° sectors from −22.5° (E+NE, N+NW, W+SW, S+SE).
                let sector = |k: usize| {
                    let a = dirs[k][1].atan2(dirs[k][0]).to_degrees() + 22.5;
                    format!("sector-{}", (a.rem_euclid(360.0) / 90.0).floor() as usize)
                };
                let labels: Vec<String> = (0..8).map(sector).collect();
                GaussianMixture::isotropic(vec![1.0; 8], means, &[0.5 / 1.414; 8])?
                    .with_classes(&labels)?
            }
            "25gaussians" => {
                let means = Array2::from_shape_fn((25, 2), |(k, j)| {
                    let idx = if j == 0 { k / 5 } else { k % 5 } as f64;
                    (2.0 * idx - 4.0) / 2.828
                });
                // Classes: the five rows (equal y).
                let labels: Vec<String> = (0..25).map(|k| format!("row-{}", k % 5)).collect();
                GaussianMixture::isotropic(vec![1.0; 25], means, &[0.05; 25])?
                    .with_classes(&labels)?
            }
            "ncsn" => GaussianMixture::isotropic(
                vec![0.2, 0.8],
                array![[-5.0, -5.0], [5.0, 5.0]],
                &[1.0, 1.0],
            )?,
            "bimodal-1d" => {
                GaussianMixture::isotropic(vec![0.5, 0.5], array![[-1.0], [1.0]], &[0.15, 0.15])?
            }
            other => return Ok(Toy::from_name(other).map(Dataset::Toy)),
        };
        Ok(Some(Dataset::Mixture {
            name: name.to_string(),
            mixture: Arc::new(mixture),
        }))
    }

    pub fn name(&self) -> &str {
        match self {
            Dataset::Mixture { name, .. } => name,
            Dataset::Toy(t) => t.name(),
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Dataset::Mixture { mixture, .. } => mixture.dim(),
            Dataset::Toy(_) => 2,
        }
    }

    /// The exact mixture, where the data is one.
    pub fn mixture(&self) -> Option<&Arc<GaussianMixture>> {
        match self {
            Dataset::Mixture { mixture, .. } => Some(mixture),
            Dataset::Toy(_) => None,
        }
    }

    /// The exact mixture, or an error naming the dataset where it has none.
    pub fn exact_mixture(&self) -> crate::Result<&Arc<GaussianMixture>> {
        self.mixture().ok_or_else(|| {
            crate::Error::Data(format!(
                "dataset '{}' has no exact score (it is not a Gaussian mixture)",
                self.name()
            ))
        })
    }

    /// `n` exact draws keyed by (seed, domain, row).
    pub fn sample(&self, n: usize, seed: u64, domain: u64) -> Array2<f64> {
        match self {
            Dataset::Mixture { mixture, .. } => mixture.sample(n, seed, domain).0,
            Dataset::Toy(t) => t.sample(n, seed, domain),
        }
    }

    /// A diameter of the data (largest pairwise distance, estimated where not closed-form).
    pub fn diameter(&self) -> f64 {
        match self {
            Dataset::Mixture { mixture, .. } => mixture.diameter(),
            Dataset::Toy(t) => point_diameter(t.sample(2000, 0, DATA_DOMAIN).view()),
        }
    }
}

/// Largest pairwise distance among (at most about 2000 evenly spaced) rows of `x`.
pub fn point_diameter(x: ArrayView2<f64>) -> f64 {
    let step = (x.nrows() / 2000).max(1);
    let rows: Vec<_> = x.rows().into_iter().step_by(step).collect();
    let mut far = 0.0f64;
    for a in &rows {
        for b in &rows {
            far = far.max((a - b).mapv(|v| v * v).sum().sqrt());
        }
    }
    far
}
