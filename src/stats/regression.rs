//! Ordinary least squares with an intercept, and its 95 % confidence intervals: the power-law
//! fits of the error-against-dimension study and of `sweep merge`'s `[fit]`.

use ndarray::{Array1, Array2};

/// Least squares of y on the columns of x (rows of `x`, one per observation) with an
/// intercept: the coefficients (intercept first) and their 95 % half-widths (Student t with
/// n − p degrees of freedom, p the number of coefficients). `None` when n ≤ p or XᵀX is
/// singular.
pub fn ols(x: &[Vec<f64>], y: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    use ndarray_linalg::Inverse;
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let (n, p) = (y.len(), x.first()?.len() + 1);
    if n <= p {
        return None;
    }
    let a = Array2::from_shape_fn((n, p), |(i, j)| if j == 0 { 1.0 } else { x[i][j - 1] });
    let yv = Array1::from(y.to_vec());
    let ata_inv = a.t().dot(&a).inv().ok()?;
    let beta = ata_inv.dot(&a.t().dot(&yv));
    let resid = &yv - &a.dot(&beta);
    let s2 = resid.dot(&resid) / (n - p) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - p) as f64)
        .ok()?
        .inverse_cdf(0.975);
    let half = (0..p).map(|j| t * (s2 * ata_inv[[j, j]]).sqrt()).collect();
    Some((beta.to_vec(), half))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 1 + 2 x₁ − 3 x₂ plus a small deterministic wiggle: the coefficients are recovered
    /// inside their intervals, and the intervals are narrow; a wrong coefficient lies outside.
    #[test]
    fn recovers_a_plane_with_intervals() {
        let x: Vec<Vec<f64>> = (0..40)
            .map(|i| vec![(i % 8) as f64, (i / 8) as f64 * 0.5])
            .collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, r)| 1.0 + 2.0 * r[0] - 3.0 * r[1] + 0.01 * ((i * 7919) % 13) as f64 - 0.06)
            .collect();
        let (b, h) = ols(&x, &y).unwrap();
        for (j, truth) in [1.0, 2.0, -3.0].into_iter().enumerate() {
            assert!((b[j] - truth).abs() < h[j], "{j}: {} ± {}", b[j], h[j]);
            assert!(h[j] < 0.05, "{j}: half-width {}", h[j]);
        }
        assert!((b[1] - 2.1).abs() > h[1], "a wrong slope is excluded");
        // Too few points give no fit.
        assert!(ols(&x[..3], &y[..3]).is_none());
    }
}
