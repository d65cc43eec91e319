//! Training data: fresh draws from a builtin or mixture dataset, or rows resampled from a CSV.

use crate::data::{point_diameter, Dataset};
use crate::io::read_csv;
use crate::{Error, Result};
use ndarray::{Array2, Axis};
use rand::Rng;
use scoresde_solvers::KeyedNormal;
use std::path::Path;

/// Where training points come from.
#[derive(Clone, Debug)]
pub enum TrainData {
    /// A generator with fresh iid draws each batch.
    Dataset(Dataset),
    /// A fixed point set, resampled uniformly with replacement.
    Points { name: String, x: Array2<f64> },
}

impl TrainData {
    /// A builtin name, a mixture `.toml` or a `.csv` of points (header `x0,x1,…`).
    pub fn from_spec(spec: &str) -> Result<Self> {
        if spec.is_empty() {
            return Err(Error::Data("no training data given (`data`)".into()));
        }
        if Path::new(spec).extension().is_some_and(|e| e == "csv") {
            let x = read_csv(spec)?;
            if x.nrows() == 0 {
                return Err(Error::Data(format!("{spec}: no points")));
            }
            return Ok(TrainData::Points {
                name: spec.to_string(),
                x,
            });
        }
        Ok(TrainData::Dataset(Dataset::from_spec(spec)?))
    }

    pub fn dim(&self) -> usize {
        match self {
            TrainData::Dataset(d) => d.dim(),
            TrainData::Points { x, .. } => x.ncols(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            TrainData::Dataset(d) => d.name(),
            TrainData::Points { name, .. } => name,
        }
    }

    /// The dataset, when the data is a generator (and so possibly an exact mixture).
    pub fn dataset(&self) -> Option<&Dataset> {
        match self {
            TrainData::Dataset(d) => Some(d),
            TrainData::Points { .. } => None,
        }
    }

    /// `n` points keyed by (seed, domain, row).
    pub fn draw(&self, n: usize, seed: u64, domain: u64) -> Array2<f64> {
        match self {
            TrainData::Dataset(d) => d.sample(n, seed, domain),
            TrainData::Points { x, .. } => {
                let key = KeyedNormal::new(seed, domain);
                let idx: Vec<usize> = (0..n)
                    .map(|i| key.rng(i as u64, 0).random_range(0..x.nrows()))
                    .collect();
                x.select(Axis(0), &idx)
            }
        }
    }

    /// The class names of class-labelled data (a labelled mixture), else `None`.
    pub fn class_names(&self) -> Option<&[String]> {
        self.dataset()?
            .mixture()?
            .classes()
            .map(|c| c.names.as_slice())
    }

    /// `n` points and their class indices, keyed as [`TrainData::draw`] (the same points);
    /// one-line error for data without class labels.
    pub fn draw_labelled(
        &self,
        n: usize,
        seed: u64,
        domain: u64,
    ) -> Result<(Array2<f64>, Vec<usize>)> {
        match self.dataset().and_then(|d| d.mixture()) {
            Some(m) if m.classes().is_some() => m.sample_labelled(n, seed, domain),
            _ => Err(no_classes(self.name())),
        }
    }

    /// The data's standard deviation `√(tr Cov / d)` from 20 000 fixed draws (EDM's σ_data).
    pub fn std(&self) -> f64 {
        let x = self.draw(20_000, 0, crate::domain::Domain::TrainScale.key());
        let var = x.var_axis(ndarray::Axis(0), 1.0).sum() / self.dim() as f64;
        var.sqrt()
    }

    /// Largest pairwise distance (VE's default σ_max).
    pub fn diameter(&self) -> f64 {
        match self {
            TrainData::Dataset(d) => d.diameter(),
            TrainData::Points { x, .. } => point_diameter(x.view()),
        }
    }
}

/// The error for conditional training on data without class labels.
pub fn no_classes(name: &str) -> Error {
    Error::Data(format!(
        "conditional training needs class-labelled data (a mixture with `class` on its components); '{name}' has no class labels"
    ))
}
