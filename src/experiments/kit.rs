//! What every experiment repeats, in one place: the exact set-up (data, mixture, SDE and exact
//! score), sizes that differ under `--quick`, and typed CSV rows.

use super::Experiment;
use crate::data::Dataset;
use crate::data::GaussianMixture;
use crate::score::MixtureScore;
use crate::sde::Sde;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The exact side of an experiment: its mixture data diffused by its SDE.
pub struct Exact {
    pub data: Dataset,
    pub mixture: Arc<GaussianMixture>,
    pub sde: Arc<dyn Sde>,
    /// The exact score of `mixture` under `sde` (the oracle).
    pub score: MixtureScore,
}

impl Experiment {
    /// The dataset and its exact mixture (every experiment here needs the exact score).
    pub fn exact_data(&self) -> Result<(Dataset, Arc<GaussianMixture>)> {
        let data = Dataset::from_spec(&self.data)?;
        let mixture = data.exact_mixture()?.clone();
        Ok((data, mixture))
    }

    /// Data, mixture, SDE (VE's σ_max defaults to the data diameter) and exact score.
    pub fn exact(&self) -> Result<Exact> {
        let (data, mixture) = self.exact_data()?;
        let sde = self.sde.build(|| data.diameter())?;
        let score = MixtureScore::new(mixture.clone(), sde.clone());
        Ok(Exact {
            data,
            mixture,
            sde,
            score,
        })
    }
}

/// A size of a full run and of a `--quick` run, as one value: `n = { full = 2000, quick = 400 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale<T> {
    pub full: T,
    pub quick: T,
}

impl<T> Scale<T> {
    /// The size for this run.
    pub fn at(&self, quick: bool) -> &T {
        if quick {
            &self.quick
        } else {
            &self.full
        }
    }
}

/// A float written as `{:e}` in CSV files (`1.5e-3`), the figures' number format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sci(pub f64);

impl Serialize for Sci {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:e}", self.0))
    }
}

/// A float written as Rust's shortest `{}` form in CSV files (`24`, `0.5`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}
