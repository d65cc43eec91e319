//! User mixtures from TOML:
//!
//! ```toml
//! [[components]]
//! weight = 0.3
//! mean = [-2.0, 1.0]
//! cov = [[0.30, 0.10], [0.10, 0.20]]   # or: std = 0.5 (isotropic)
//! ```

use crate::score::{Covariance, GaussianMixture};
use crate::{Error, Result};
use ndarray::Array2;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixtureFile {
    components: Vec<ComponentSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentSpec {
    weight: f64,
    mean: Vec<f64>,
    cov: Option<Vec<Vec<f64>>>,
    std: Option<f64>,
}

/// Parses and validates a mixture: positive weights, equal mean lengths, and for each component
/// exactly one of `std` (isotropic) or `cov` (symmetric positive definite).
pub fn parse_mixture_toml(text: &str) -> Result<GaussianMixture> {
    let file: MixtureFile = toml::from_str(text).map_err(|e| Error::Data(toml_error(text, &e)))?;
    if file.components.is_empty() {
        return Err(Error::Data("mixture has no [[components]]".into()));
    }
    let d = file.components[0].mean.len();
    let mut means = Array2::zeros((file.components.len(), d));
    let mut weights = Vec::new();
    let mut covs = Vec::new();
    for (i, c) in file.components.iter().enumerate() {
        let at = |e: Error| Error::Data(format!("component {i}: {e}"));
        if c.mean.len() != d {
            return Err(Error::Data(format!(
                "component {i}: mean has length {} but component 0's has length {d}",
                c.mean.len()
            )));
        }
        means.row_mut(i).assign(&ndarray::ArrayView1::from(&c.mean));
        weights.push(c.weight);
        covs.push(match (&c.cov, c.std) {
            (Some(_), Some(_)) => {
                return Err(Error::Data(format!(
                    "component {i}: give either cov or std, not both"
                )))
            }
            (None, None) => {
                return Err(Error::Data(format!(
                    "component {i}: needs cov (a matrix) or std (a number)"
                )))
            }
            (None, Some(s)) => Covariance::isotropic(s).map_err(at)?,
            (Some(rows), None) => {
                if rows.len() != d || rows.iter().any(|r| r.len() != d) {
                    return Err(Error::Data(format!(
                        "component {i}: cov must be {d}×{d} to match the mean"
                    )));
                }
                let m = Array2::from_shape_fn((d, d), |(a, b)| rows[a][b]);
                Covariance::full(m).map_err(at)?
            }
        });
    }
    GaussianMixture::new(weights, means, covs)
}

/// One line: "malformed mixture TOML at line L, column C: message".
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    format!("malformed mixture TOML{}", crate::io::toml_error(text, e))
}
