//! Within-component spread of a sample from a Gaussian mixture: each point is assigned to its
//! most responsible component under p₀ (as in [`super::chi2`]), and for every component the
//! fitted standard deviation `√(tr Ĉ_k / d)` of its points is divided by the true
//! `√(tr C_k / d)`. A model that blurs narrow modes gives ratios above 1 (2.5 for the toy
//! networks of the first gallery); exact draws give 1 up to sampling error and the small
//! truncation of overlapping components.

use super::chi2::component_assignments;
use crate::data::GaussianMixture;
use ndarray::ArrayView2;

/// Components with fewer assigned points are left out of the median.
pub const MIN_POINTS: usize = 10;

/// Per-component spread ratios and their median.
#[derive(Clone, Debug)]
pub struct Spread {
    /// Fitted std / true std of each component (`None`: fewer than [`MIN_POINTS`] points).
    pub ratios: Vec<Option<f64>>,
    /// Median over the components that have a ratio (NaN when none has).
    pub median: f64,
}

/// The spread of `x` around the components of `mixture`.
pub fn component_spread(mixture: &GaussianMixture, x: ArrayView2<f64>) -> Spread {
    let d = mixture.dim();
    let k = mixture.n_components();
    let assign = component_assignments(mixture, x);
    let mut sum = vec![vec![0.0; d]; k];
    let mut sq = vec![vec![0.0; d]; k];
    let mut count = vec![0usize; k];
    for (r, &c) in x.rows().into_iter().zip(&assign) {
        count[c] += 1;
        for (j, &v) in r.iter().enumerate() {
            sum[c][j] += v;
            sq[c][j] += v * v;
        }
    }
    let ratios: Vec<Option<f64>> = (0..k)
        .map(|c| {
            let n = count[c];
            if n < MIN_POINTS {
                return None;
            }
            let var: f64 = (0..d)
                .map(|j| (sq[c][j] - sum[c][j] * sum[c][j] / n as f64) / (n - 1) as f64)
                .sum::<f64>()
                / d as f64;
            let truth = mixture.covariances()[c].matrix(d).diag().sum() / d as f64;
            Some((var.max(0.0) / truth).sqrt())
        })
        .collect();
    let mut have: Vec<f64> = ratios.iter().flatten().copied().collect();
    have.sort_by(f64::total_cmp);
    let median = match have.len() {
        0 => f64::NAN,
        m if m % 2 == 1 => have[m / 2],
        m => 0.5 * (have[m / 2 - 1] + have[m / 2]),
    };
    Spread { ratios, median }
}
