//! A 2-D class-conditional "tree" mixture in the manner of the toy example of Karras et al.
//! 2024 ("Guiding a diffusion model with a bad version of itself", Fig. 1; NVlabs/edm2
//! `toy_example.py`), written from the paper's description, not from its code: each class is a
//! binary tree of thin branches, every branch a Gaussian elongated along it, the deeper
//! branches shorter, thinner and rarer, so that each class has a dense trunk and low-density
//! outliers at its tips.

use super::{Covariance, GaussianMixture};
use crate::Result;
use ndarray::{array, Array2};

/// The tree mixture with `depth` levels per class (2^depth − 1 branches each): class "a" rooted
/// at (−1.5, −2), class "b" at (1.5, −2), both growing upwards; a branch of length L splits into
/// two of length 0.62 L at ±28° (b mirrored), components with std L/4 along and L/20 across,
/// weight ∝ 0.55^level.
pub fn tree_mixture(depth: usize) -> Result<GaussianMixture> {
    let (mut weights, mut means, mut covs, mut labels) = (vec![], vec![], vec![], vec![]);
    for (class, x0, turn) in [("a", -1.5, 1.0), ("b", 1.5, -1.0)] {
        // (start, angle, length, level)
        let mut stack = vec![((x0, -2.0), 90f64.to_radians(), 1.6, 0usize)];
        while let Some(((x, y), angle, len, level)) = stack.pop() {
            let (dx, dy) = (angle.cos(), angle.sin());
            let end = (x + len * dx, y + len * dy);
            let mid = (x + 0.5 * len * dx, y + 0.5 * len * dy);
            let (along, across) = (len / 4.0, len / 20.0);
            // R diag(along², across²) Rᵀ with R the rotation by `angle`.
            let r = array![[dx, -dy], [dy, dx]];
            let d = Array2::from_diag(&array![along * along, across * across]);
            covs.push(Covariance::full(r.dot(&d).dot(&r.t()))?);
            means.push([mid.0, mid.1]);
            weights.push(0.55f64.powi(level as i32));
            labels.push(class);
            if level + 1 < depth {
                let spread = turn * 28f64.to_radians();
                stack.push((end, angle + spread, 0.62 * len, level + 1));
                stack.push((end, angle - 0.8 * spread, 0.62 * len, level + 1));
            }
        }
    }
    let m = Array2::from_shape_fn((means.len(), 2), |(k, j)| means[k][j]);
    GaussianMixture::new(weights, m, covs)?.with_classes(&labels)
}

#[cfg(test)]
mod tests {
    /// 2^depth − 1 components per class, two classes, weights normalised, deepest rarest.
    #[test]
    fn the_tree_has_its_shape() {
        let m = super::tree_mixture(4).unwrap();
        assert_eq!(m.n_components(), 30);
        let c = m.classes().unwrap();
        assert_eq!(c.names, ["a", "b"]);
        assert!((m.weights().iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let (lo, hi) = m
            .weights()
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &w| (a.min(w), b.max(w)));
        assert!((lo / hi - 0.55f64.powi(3)).abs() < 1e-12);
    }
}
