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

/// An 8-dimensional mixture of three diagonal Gaussians (the reference harness's `gmm8`,
/// `scripts/reference-samplers/mixture.py`: means ~ N(0, 1.5²), stds ~ U(0.3, 0.8), rounded).
pub fn gmm_8d() -> Arc<GaussianMixture> {
    let means = array![
        [-2.607, -2.005, -2.042, -0.527, -3.469, -0.283, -1.436, 1.340],
        [1.435, 2.088, 1.151, -0.080, 1.290, 2.258, -0.980, 0.916],
        [-0.064, 2.160, -1.255, -0.452, 0.544, 0.387, -2.459, 0.540],
    ];
    let stds = [
        [0.308, 0.391, 0.497, 0.497, 0.608, 0.526, 0.604, 0.412],
        [0.367, 0.465, 0.348, 0.483, 0.530, 0.659, 0.734, 0.326],
        [0.778, 0.660, 0.794, 0.359, 0.488, 0.551, 0.674, 0.456],
    ];
    let covs = stds
        .iter()
        .map(|s| {
            Covariance::full(ndarray::Array2::from_diag(
                &ndarray::arr1(s).mapv(|v| v * v),
            ))
            .unwrap()
        })
        .collect();
    Arc::new(GaussianMixture::new(vec![0.2, 0.5, 0.3], means, covs).unwrap())
}
