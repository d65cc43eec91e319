//! Calibrated tests of samples against the exact data distribution. [`suite::Battery`] is the
//! family-wise battery of `scoresde test`; the functions here are its single tests.
//!
//! * two-sample: unbiased MMD², energy distance and Schilling's kNN statistic with permutation
//!   p-values;
//! * component proportions: χ² on the most-responsible-component counts (mixtures);
//! * one-sample: KS of each coordinate's marginal against the exact mixture CDF, Bonferroni
//!   corrected over coordinates;
//! * exact log-density: two-sample KS of `log p₀(x)` over the samples against the reference
//!   draws, sensitive to modes that are too wide or too narrow (which a median-bandwidth MMD
//!   over well-separated modes barely sees);
//! * memorisation: copy fraction and distance ratio of samples against a training set;
//! * regression: least squares with 95 % intervals (power-law fits).

pub mod chi2;
pub mod ks;
pub mod memorisation;
pub mod regression;
pub mod spread;
pub mod suite;
pub mod two_sample;

use crate::data::GaussianMixture;
use crate::score::Scratch;
use crate::sde::Marginal;
use ndarray::{Array1, ArrayView2};

/// Monte Carlo standard error of the mean of `v`: `√(var(v)/n)` (NaN for fewer than 2 values).
pub fn stderr(v: &Array1<f64>) -> f64 {
    let n = v.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    (v.var(1.0) / n).sqrt()
}

/// `mean ± se` for a summary line: the standard error with two significant digits, or a
/// note instead of it when `n` < 2 points leave none.
pub fn plus_minus(mean: f64, se: f64, n: usize) -> String {
    if n < 2 || !se.is_finite() {
        format!("{mean:.5} (n = {n}: no standard error)")
    } else {
        format!("{mean:.5} ± {se:.2e}")
    }
}

/// Mean and its standard error.
pub fn mean_se(v: &Array1<f64>) -> (f64, f64) {
    (v.mean().unwrap_or(f64::NAN), stderr(v))
}

/// One test's outcome.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    pub name: &'static str,
    pub statistic: f64,
    pub p_value: f64,
    /// Human-readable details (bandwidth, df, counts…).
    pub detail: String,
}

impl TestOutcome {
    pub fn rejects(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// Settings of the test suite.
#[derive(Clone, Copy, Debug)]
pub struct SuiteConfig {
    /// Permutations for MMD and energy.
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        Self {
            permutations: 500,
            seed: 0,
        }
    }
}

/// Runs every applicable test of `samples` against exact `reference` draws (and against the
/// exact mixture, when there is one): [`two_sample_tests`] then [`mixture_tests`].
pub fn sampler_suite(
    samples: ArrayView2<f64>,
    reference: ArrayView2<f64>,
    mixture: Option<&GaussianMixture>,
    cfg: SuiteConfig,
) -> Vec<TestOutcome> {
    let mut out = two_sample_tests(samples, reference, cfg);
    if let Some(mix) = mixture {
        out.extend(mixture_tests(samples, reference, mix));
    }
    out
}

/// Neighbours per point in the suite's kNN test.
pub const KNN_K: usize = 10;

/// MMD, energy and kNN permutation tests (O(n²) time and memory).
pub fn two_sample_tests(
    samples: ArrayView2<f64>,
    reference: ArrayView2<f64>,
    cfg: SuiteConfig,
) -> Vec<TestOutcome> {
    let mut out = Vec::new();
    let mmd = two_sample::mmd_test(samples, reference, cfg.permutations, cfg.seed);
    out.push(TestOutcome {
        name: "mmd",
        statistic: mmd.statistic,
        p_value: mmd.p_value,
        detail: format!(
            "unbiased MMD², Gaussian kernel h={:.4} (median heuristic), B={}",
            mmd.bandwidth, cfg.permutations
        ),
    });
    let en = two_sample::energy_test(samples, reference, cfg.permutations, cfg.seed ^ 0xE);
    out.push(TestOutcome {
        name: "energy",
        statistic: en.statistic,
        p_value: en.p_value,
        detail: format!("energy statistic mn/(m+n)·E, B={}", cfg.permutations),
    });
    let nn = two_sample::knn_test(samples, reference, KNN_K, cfg.permutations, cfg.seed ^ 0x4E);
    out.push(TestOutcome {
        name: "knn",
        statistic: nn.statistic,
        p_value: nn.p_value,
        detail: format!(
            "Schilling's {KNN_K}-nearest-neighbour same-sample fraction, B={}",
            cfg.permutations
        ),
    });
    out
}

/// Tests that use the exact mixture (O(n) memory): χ² of component proportions, two-sample KS
/// of the exact log-density, and one-sample KS of each coordinate.
pub fn mixture_tests(
    samples: ArrayView2<f64>,
    reference: ArrayView2<f64>,
    mix: &GaussianMixture,
) -> Vec<TestOutcome> {
    let mut out = Vec::new();
    {
        if mix.n_components() > 1 {
            let c = chi2::component_chi2(mix, samples, reference);
            out.push(TestOutcome {
                name: "chi2",
                statistic: c.statistic,
                p_value: c.p_value,
                detail: format!(
                    "component proportions, df={}, counts {:?} vs reference {:?}",
                    c.df, c.counts, c.reference_counts
                ),
            });
        }
        let d = mix.dim();
        let (mut dmax, mut pmin) = (0.0f64, 1.0f64);
        for j in 0..d {
            let comps = mix.marginal_1d(j);
            let col: Vec<f64> = samples.column(j).to_vec();
            let (dj, pj) = ks::ks_test(&col, |x| ks::mixture_cdf(&comps, x));
            dmax = dmax.max(dj);
            pmin = pmin.min(pj);
        }
        let p0 = mix.at(Marginal {
            mean: 1.0,
            std: 0.0,
        });
        let mut scratch = Scratch::default();
        let mut logp = |x: ArrayView2<f64>| -> Vec<f64> {
            x.rows()
                .into_iter()
                .map(|r| p0.log_prob(r, &mut scratch))
                .collect()
        };
        let (a, b) = (logp(samples), logp(reference));
        let (dl, pl) = ks::ks_two_sample(&a, &b);
        out.push(TestOutcome {
            name: "logp-ks",
            statistic: dl,
            p_value: pl,
            detail: "two-sample KS of the exact log p0(x), samples vs reference".into(),
        });
        out.push(TestOutcome {
            name: "ks",
            statistic: dmax,
            p_value: (pmin * d as f64).min(1.0),
            detail: format!(
                "one-sample KS of each coordinate vs the exact marginal CDF, Bonferroni over {d}"
            ),
        });
    }
    out
}

/// Holm's (1979) step-down procedure: with the p-values sorted, `p₍ᵢ₎` is rejected while
/// `p₍ⱼ₎ ≤ α/(m − j + 1)` for every `j ≤ i`. Controls the family-wise error at α under any
/// dependence between the tests. Returns the Holm-adjusted p-values
/// `p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎)` in the input order: test i is rejected at
/// family-wise level α iff `p̃ᵢ ≤ α`.
pub fn holm_adjusted(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 0.0f64;
    for (j, &i) in order.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod holm_tests {
    use super::holm_adjusted;

    #[test]
    fn holm_matches_the_textbook_example() {
        // Holm (1979)-style example: p = (0.01, 0.04, 0.03, 0.005), m = 4.
        let q = holm_adjusted(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        assert_eq!(holm_adjusted(&[0.9, 0.8]), vec![1.0, 1.0]);
    }
}
