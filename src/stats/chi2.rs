//! χ² test of mixture-component proportions: each point is assigned to its most responsible
//! component under p₀, and the two samples' counts are compared in a 2 × K contingency table.

use crate::data::GaussianMixture;
use crate::score::Scratch;
use crate::sde::Marginal;
use ndarray::ArrayView2;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Result of the component-proportion test.
#[derive(Clone, Debug)]
pub struct Chi2Result {
    pub statistic: f64,
    /// Degrees of freedom after merging sparse components (0: no test possible).
    pub df: usize,
    pub p_value: f64,
    /// Component counts of the tested sample and the reference sample.
    pub counts: Vec<u64>,
    pub reference_counts: Vec<u64>,
}

/// The most responsible component of `mixture` at t = 0 for each row of `x`.
pub fn component_assignments(mixture: &GaussianMixture, x: ArrayView2<f64>) -> Vec<usize> {
    let p0 = mixture.at(Marginal {
        mean: 1.0,
        std: 0.0,
    });
    let mut s = Scratch::default();
    x.rows()
        .into_iter()
        .map(|r| p0.argmax_component(r, &mut s))
        .collect()
}

/// Counts of points per most-responsible component of `mixture` at t = 0.
pub fn component_counts(mixture: &GaussianMixture, x: ArrayView2<f64>) -> Vec<u64> {
    let mut counts = vec![0u64; mixture.n_components()];
    for c in component_assignments(mixture, x) {
        counts[c] += 1;
    }
    counts
}

/// Pearson χ² on the 2 × K table of component counts; components whose expected count is
/// below 5 in either row are pooled into one cell. df = (cells − 1).
pub fn component_chi2(
    mixture: &GaussianMixture,
    x: ArrayView2<f64>,
    reference: ArrayView2<f64>,
) -> Chi2Result {
    let a = component_counts(mixture, x);
    let b = component_counts(mixture, reference);
    let (na, nb) = (x.nrows() as f64, reference.nrows() as f64);
    let n = na + nb;
    let expected_min = |ca: u64, cb: u64| (ca + cb) as f64 * na.min(nb) / n;
    let mut cells: Vec<(u64, u64)> = Vec::new();
    let mut pool = (0u64, 0u64);
    for (&ca, &cb) in a.iter().zip(&b) {
        if expected_min(ca, cb) >= 5.0 {
            cells.push((ca, cb));
        } else {
            pool = (pool.0 + ca, pool.1 + cb);
        }
    }
    if pool.0 + pool.1 > 0 {
        if expected_min(pool.0, pool.1) >= 5.0 || cells.is_empty() {
            cells.push(pool);
        } else if let Some(last) = cells.last_mut() {
            *last = (last.0 + pool.0, last.1 + pool.1);
        }
    }
    let df = cells.len().saturating_sub(1);
    if df == 0 {
        return Chi2Result {
            statistic: 0.0,
            df,
            p_value: 1.0,
            counts: a,
            reference_counts: b,
        };
    }
    let statistic: f64 = cells
        .iter()
        .map(|&(ca, cb)| {
            let col = (ca + cb) as f64;
            let (ea, eb) = (col * na / n, col * nb / n);
            (ca as f64 - ea).powi(2) / ea + (cb as f64 - eb).powi(2) / eb
        })
        .sum();
    let dist = ChiSquared::new(df as f64).expect("df ≥ 1");
    Chi2Result {
        statistic,
        df,
        p_value: dist.sf(statistic),
        counts: a,
        reference_counts: b,
    }
}
