//! # scoresde
//!
//! Continuous-time score-based diffusion models with exact ground truth.
//!
//! * [`sde`]: the VP, sub-VP and VE SDEs, their reverse-time SDEs and probability-flow ODEs.
//! * [`score`]: the `Score` trait, the exact score of a diffused Gaussian mixture (the oracle)
//!   and the one conversion module between score, ε, x₀ and v.
//! * [`data`]: builtin toy datasets and user mixtures from TOML.
//! * [`sample`]: sampling with any score through the generic solvers of `scoresde-solvers`.
//! * [`stats`]: calibrated two-sample and goodness-of-fit tests of samples.
//!
//! ```no_run
//! use std::sync::Arc;
//! use scoresde::{data::Dataset, score::MixtureScore, sde::{Sde, VpSde}, sample::{sample, SampleSpec}};
//! let data = Dataset::from_spec("8gaussians").unwrap();
//! let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
//! let score = MixtureScore::new(data.mixture().unwrap().clone(), sde.clone());
//! let run = sample(sde.as_ref(), &score, &SampleSpec { n: 2000, ..Default::default() }, None).unwrap();
//! println!("{} samples, nfe = {}", run.x.nrows(), run.nfe);
//! ```

pub mod data;
pub mod ddpm;
pub mod elbo;
pub mod error;
pub mod experiments;
pub mod io;
pub mod likelihood;
pub mod nn;
pub mod numerics;
pub mod plot;
pub mod sample;
pub mod score;
pub mod sde;
pub mod stats;
pub mod train;

pub use error::{Error, Result};
pub use scoresde_solvers as solvers;
