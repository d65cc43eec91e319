//! User mixtures from TOML:
//!
//! ```toml
//! [[components]]
//! weight = 0.3
//! mean = [-2.0, 1.0]
//! cov = [[0.30, 0.10], [0.10, 0.20]]   # or: std = 0.5 (isotropic)
//! class = "a"                            # optional: on every component or on none
//! ```

use super::{Covariance, GaussianMixture};
use crate::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MixtureFile {
    components: Vec<ComponentSpec>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ComponentSpec {
    weight: f64,
    mean: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cov: Option<Vec<Vec<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<String>,
}

/// The mixture as a file [`parse_mixture_toml`] reads back (weights, means and covariances in
/// shortest round-trip decimal; an isotropic component as its `std`).
pub fn mixture_toml(m: &GaussianMixture) -> String {
    let d = m.dim();
    let classes = m.classes();
    let components = (0..m.n_components())
        .map(|k| {
            let (cov, std) = match &m.covariances()[k] {
                Covariance::Isotropic { var } => (None, Some(var.sqrt())),
                c => (
                    Some(c.matrix(d).outer_iter().map(|r| r.to_vec()).collect()),
                    None,
                ),
            };
            ComponentSpec {
                weight: m.weights()[k],
                mean: m.means().row(k).to_vec(),
                cov,
                std,
                class: classes.map(|c| c.names[c.of_component[k]].clone()),
            }
        })
        .collect();
    toml::to_string(&MixtureFile { components }).expect("a mixture serialises")
}

/// Largest |mean coordinate|, std and covariance entry a mixture file may hold: beyond them the
/// diffused densities under- or overflow f64 (std 1e200, means at 1e300 gave −inf and NaN).
pub const MAX_MEAN: f64 = 1e6;
pub const STD_RANGE: (f64, f64) = (1e-6, 1e6);
/// Largest weight (weights are relative: normalised after reading).
pub const MAX_WEIGHT: f64 = 1e12;

/// Parses and validates a mixture: positive weights, equal mean lengths, and for each component
/// exactly one of `std` (isotropic) or `cov` (symmetric positive definite), every number within
/// the ranges above.
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
        if let Some(m) = c.mean.iter().find(|m| !(-MAX_MEAN..=MAX_MEAN).contains(*m)) {
            return Err(Error::Data(format!(
                "component {i}: mean coordinate {m:e} outside [−{MAX_MEAN:e}, {MAX_MEAN:e}]"
            )));
        }
        if !(c.weight > 0.0 && c.weight <= MAX_WEIGHT) {
            return Err(Error::Data(format!(
                "component {i}: weight must be positive and at most {MAX_WEIGHT:e}, got {:e}",
                c.weight
            )));
        }
        let (lo, hi) = STD_RANGE;
        let std_ok = |s: f64| (lo..=hi).contains(&s);
        if let Some(s) = c.std.filter(|&s| !std_ok(s)) {
            return Err(Error::Data(format!(
                "component {i}: std {s:e} outside [{lo:e}, {hi:e}]"
            )));
        }
        if let Some(v) = c
            .cov
            .iter()
            .flatten()
            .flatten()
            .find(|v| !(-hi * hi..=hi * hi).contains(*v))
        {
            return Err(Error::Data(format!(
                "component {i}: covariance entry {v:e} outside [−{:e}, {:e}]",
                hi * hi,
                hi * hi
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
                let c = Covariance::full(m).map_err(at)?;
                // The std limits hold for cov: its standard deviations are √eigenvalues.
                if let Covariance::Full { eigvals, .. } = &c {
                    let lo_eig = eigvals.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi_eig = eigvals.iter().copied().fold(0.0, f64::max);
                    if !(lo_eig >= lo * lo && hi_eig <= hi * hi) {
                        return Err(Error::Data(format!(
                            "component {i}: covariance's standard deviations (√eigenvalues) span [{:.3e}, {:.3e}], outside [{lo:e}, {hi:e}]",
                            lo_eig.sqrt(),
                            hi_eig.sqrt()
                        )));
                    }
                }
                c
            }
        });
    }
    let mixture = GaussianMixture::new(weights, means, covs)?;
    let labelled = file.components.iter().filter(|c| c.class.is_some()).count();
    if labelled == 0 {
        return Ok(mixture);
    }
    if let Some(i) = file.components.iter().position(|c| c.class.is_none()) {
        return Err(Error::Data(format!(
            "component {i} has no `class` but {labelled} others have one: label every component or none"
        )));
    }
    let labels: Vec<&str> = file
        .components
        .iter()
        .map(|c| c.class.as_deref().unwrap_or_default())
        .collect();
    mixture.with_classes(&labels)
}

/// One line: "malformed mixture TOML at line L, column C: message".
pub(crate) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    format!("malformed mixture TOML{}", crate::io::toml_error(text, e))
}
