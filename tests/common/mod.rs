//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use ndarray::array;
use scoresde::data::Dataset;
use scoresde::data::{Covariance, GaussianMixture};
use std::sync::Arc;

/// A 3-component 2D mixture with full, correlated covariances and unequal weights.
pub fn full_cov_2d() -> Arc<GaussianMixture> {
    let covs = vec![
        Covariance::full(array![[0.30, 0.10], [0.10, 0.20]]).unwrap(),
        Covariance::full(array![[0.15, -0.08], [-0.08, 0.25]]).unwrap(),
        Covariance::full(array![[0.40, 0.0], [0.0, 0.05]]).unwrap(),
    ];
    Arc::new(
        GaussianMixture::new(
            vec![0.3, 0.5, 0.2],
            array![[-2.0, 1.0], [1.5, 1.5], [0.0, -2.0]],
            covs,
        )
        .unwrap(),
    )
}

/// A 3-dimensional mixture: one full-covariance and one isotropic component.
pub fn mixture_3d() -> Arc<GaussianMixture> {
    let covs = vec![
        Covariance::full(array![[0.5, 0.2, 0.0], [0.2, 0.4, 0.1], [0.0, 0.1, 0.3]]).unwrap(),
        Covariance::isotropic(0.4).unwrap(),
        Covariance::full(array![[0.2, 0.0, 0.05], [0.0, 0.3, 0.0], [0.05, 0.0, 0.25]]).unwrap(),
    ];
    Arc::new(
        GaussianMixture::new(
            vec![0.25, 0.45, 0.3],
            array![[2.0, 0.0, -1.0], [-1.5, 1.0, 1.0], [0.0, -2.0, 0.5]],
            covs,
        )
        .unwrap(),
    )
}

/// A builtin mixture.
pub fn builtin(name: &str) -> Arc<GaussianMixture> {
    Dataset::from_spec(name).unwrap().mixture().unwrap().clone()
}

/// The built-in sampler of this name with its default settings.
pub fn sampler(name: &str) -> scoresde::sample::Sampler {
    name.parse().expect("a built-in sampler")
}
