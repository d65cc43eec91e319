//! # scoresde
//!
//! Continuous-time score-based diffusion models with exact ground truth: every sampler, bound
//! and likelihood can be checked against the exact score of a Gaussian mixture.
//!
//! `use scoresde::prelude::*;` brings the names most programs need. Module dependencies point
//! down this list only.
//!
//! **Core** (no networks):
//! * [`sde`] — the VP, sub-VP and VE SDEs (`Sde`), kernels m(t), s(t), σ̃ = s/m, the forward
//!   SDE as a solver system; [`sde::same_sde`].
//! * [`data`] — `GaussianMixture` (any dimension, full covariances, exact draws, the diffused
//!   p_t), builtin toy datasets and user mixtures from TOML.
//! * [`score`] — the `Score` trait, `MixtureScore` (the exact oracle: score, log p_t, Tweedie
//!   denoiser, optimal ε), `convert` (the one home of s = −ε/σ and the x₀/v conversions),
//!   `Counted` (NFE) and `Scaled` (power controls).
//! * [`reverse`] — `sde.reverse(&score)` and its `.probability_flow()` for every SDE
//!   ([`reverse::Reverse`]), `reverse_drift`.
//! * [`solvers`] — the `scoresde-solvers` crate: one `solve` over a problem, a method
//!   (Euler–Maruyama or a Butcher tableau) and a step policy (grid or adaptive).
//! * [`sample`] — every sampler a [`sample::Method`] value (yours too), `sample::Sampler` the
//!   name → settings → method table, `sample` / `integrate` / `sample_with`, `StepContext`,
//!   grids, `convergence` (orders against the oracle).
//! * [`ddpm`] — DDPM schedules as grids on the VP-SDE and the posterior q(x_{t−1}|x_t, x_0).
//! * [`model`] — `Model`: a score with the SDE it belongs to (exact, from a run, or yours);
//!   what sampling, bounds and likelihoods take.
//! * [`elbo`], [`likelihood`] — discrete and continuous ELBOs, exact PF-ODE likelihoods.
//! * [`decompose`] — a sampled distribution's error split into initialisation, truncation,
//!   discretisation and score, each replaced by its exact version.
//! * [`stats`] — single tests (MMD, energy, kNN, χ², KS, spread) and `stats::suite::Battery`,
//!   the family-wise battery of `scoresde test`.
//! * [`domain`] — every noise domain (the second key of each random stream), one enum.
//! * [`numerics`], [`error`], [`io`] — shared formulas, the error type and size limits, atomic
//!   files and checksums; [`interrupt`] — a front end's request to stop.
//!
//! **Learning**: [`nn`] (the ε-network, its kernel, `NetScore`) and [`train`] (denoising score
//! matching in candle, run directories, checkpoints, `eval`'s excess loss).
//!
//! **Lab**: [`experiments`] (named experiments with claims), [`plot`] (charts), [`tasks`]
//! (what each CLI subcommand does, callable from Rust).
//!
//! Sampling the exact score and judging the samples against exact draws:
//!
//! ```
//! use std::sync::Arc;
//! use scoresde::data::Dataset;
//! use scoresde::sample::{sample, SampleSpec};
//! use scoresde::score::MixtureScore;
//! use scoresde::sde::{Sde, VpSde};
//! use scoresde::stats::suite::Battery;
//! let data = Dataset::from_spec("8gaussians").unwrap();
//! let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
//! let score = MixtureScore::new(data.mixture().unwrap().clone(), sde.clone());
//! let spec = SampleSpec { n: 300, steps: 200, ..Default::default() };
//! let run = sample(sde.as_ref(), &score, &spec, None).unwrap();
//! assert_eq!(run.nfe, 200.0);
//! let report = Battery { alpha: 0.01, ..Default::default() }.run(run.x.view(), &data).unwrap();
//! assert_eq!(report.outcomes.len(), 8); // 3 permutation, 4 exact-oracle tests and the range test
//! ```

pub mod data;
pub mod ddpm;
pub mod decompose;
pub mod domain;
pub mod elbo;
pub mod error;
pub mod experiments;
pub mod interrupt;
pub mod io;
pub mod likelihood;
pub mod model;
pub mod nn;
pub mod numerics;
pub mod path;
pub mod plot;
pub mod reverse;
pub mod sample;
pub mod score;
pub mod sde;
pub mod stats;
pub mod sweep;
pub mod tasks;
pub mod train;

pub use error::{Error, Result};

/// The names most programs need: `use scoresde::prelude::*;`.
pub mod prelude {
    pub use crate::data::{Dataset, GaussianMixture};
    pub use crate::model::Model;
    pub use crate::reverse::Reverse;
    pub use crate::sample::{Method, RunSpec, SampleSpec, Sampler, StepContext};
    pub use crate::score::{MixtureScore, Score};
    pub use crate::sde::{Sde, SdeSpec, SubVpSde, VeSde, VpSde};
    pub use crate::stats::suite::Battery;
    pub use crate::{Error, Result};
}
pub use scoresde_solvers as solvers;
