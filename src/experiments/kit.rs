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

    /// The dataset and the SDE (VE's σ_max defaults to the data diameter), without the exact
    /// score: what a render needs for its titles.
    pub fn data_and_sde(&self) -> Result<(Dataset, Arc<dyn Sde>)> {
        let data = Dataset::from_spec(&self.data)?;
        let sde = self.sde.build(|| data.diameter())?;
        Ok((data, sde))
    }

    /// Data, mixture, SDE (VE's σ_max defaults to the data diameter) and exact score.
    pub fn exact(&self) -> Result<Exact> {
        let (data, sde) = self.data_and_sde()?;
        let mixture = data.exact_mixture()?.clone();
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

/// Number formats of the figures' CSV files: each writes itself (Display) the way the CSV
/// holds it.
macro_rules! number_format {
    ($(#[$doc:meta])* $name:ident $(<const $p:ident: usize>)?, |$v:ident, $f:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $name$(<const $p: usize>)?(pub f64);

        impl$(<const $p: usize>)? std::fmt::Display for $name$(<$p>)? {
            fn fmt(&self, $f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let $v = self.0;
                $body
            }
        }

        impl$(<const $p: usize>)? Serialize for $name$(<$p>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

number_format!(
    /// `{:e}`: `1.5e-3`.
    Sci, |v, f| write!(f, "{v:e}")
);
number_format!(
    /// Rust's shortest `{}` form: `24`, `0.5`.
    Num, |v, f| write!(f, "{v}")
);
number_format!(
    /// `P` decimals: `{:.P}`.
    Fixed<const P: usize>, |v, f| write!(f, "{v:.*}", P)
);
number_format!(
    /// `P` mantissa decimals: `{:.Pe}`.
    SciP<const P: usize>, |v, f| write!(f, "{v:.*e}", P)
);
