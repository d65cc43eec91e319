//! The sampler test battery judged as one family: what `scoresde test` and `eval` run, callable
//! from code.
//!
//! Two groups of tests, each calibrated jointly and exactly:
//! * **permutation group** — MMD, energy and kNN on the first `max_points` samples against as
//!   many exact draws, all three on the *same* B relabellings of the pooled sample;
//! * **exact-oracle group** (mixtures only) — one-sample statistics against the exact
//!   distribution: χ² of most-responsible-component counts against the exact proportions, KS of
//!   log p₀(x) against its exact law, the largest per-coordinate KS distance to the exact
//!   marginal CDFs, and the one-sample MMD² to p₀ (Gaussian kernel, expectations over p₀ in
//!   closed form); their null is simulated by R fresh exact sample sets of the same size
//!   (a Monte Carlo test: Barnard 1963, Besag & Clifford 1989).
//!
//! Within a group, p-values are combined by Westfall & Young's (1993) single-step min-P:
//! `p̃ᵢ = #{r : min_j p_j(r) ≤ pᵢ} / (B + 1)` over the observed and the B resampled sets, which
//! controls the group's family-wise error at exactly α under any dependence between its tests
//! (Holm–Bonferroni would be conservative here: MMD and energy are nearly the same test). The
//! groups are combined by a weighted Bonferroni (α/3 permutation, 2α/3 oracle). Measured
//! calibration and power: README.

use super::ks::{ks_test, mixture_cdf};
use super::two_sample::{energy_test, knn_test, median_distance, mmd_test, resampling_p};
use super::{TestOutcome, KNN_K};
use crate::data::GaussianMixture;
use crate::data::{Dataset, NULL_DOMAIN, REFERENCE_DOMAIN};
use crate::error::Result;
use crate::invalid;
use crate::score::Scratch;
use crate::sde::Marginal;
use ndarray::{s, ArrayView2};
use rayon::prelude::*;

/// The oracle's χ² proportions and log p₀ law come from max(20 n, 100 000) exact draws, at
/// most 2²¹ values (rows × dimension) unless n itself is larger.
const ORACLE_VALUES: usize = 1 << 21;
const ORACLE_MIN_ROWS: usize = 100_000;

/// How one battery is run.
#[derive(Clone, Debug)]
pub struct Battery {
    /// Family-wise level α of the verdict.
    pub alpha: f64,
    /// Seed of the reference draws, the relabellings and the null sets.
    pub seed: u64,
    /// Relabellings B of the permutation group and null sets R of the oracle group; `None`:
    /// max(500, [`min_resamples`]).
    pub permutations: Option<usize>,
    /// Points per sample in the O(n²) permutation tests (≥ 2).
    pub max_points: usize,
    /// Show a spinner naming the running stage on a terminal (stderr).
    pub progress: bool,
}

impl Default for Battery {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            seed: 0,
            permutations: None,
            max_points: 5000,
            progress: false,
        }
    }
}

/// Share of α given to the permutation group when there is an exact-oracle group (weighted
/// Bonferroni): the oracle tests use every point against the exact law, the permutation tests
/// compare n points with n reference draws, so the oracle group gets the larger share. Both
/// are taken from what the range test leaves, 1 − [`RANGE_SHARE`].
pub const PERMUTATION_SHARE: f64 = 1.0 / 3.0;

/// Share of α given to the range test: a sample holding a point absurdly far from the data
/// (1e150 among unit-scale points) is rejected by it, whatever the other tests can compute.
pub const RANGE_SHARE: f64 = 0.01;

/// Points beyond this magnitude overflow the squared distances of the permutation and oracle
/// tests; with the range test rejecting them, those tests are not run.
const SAFE_MAGNITUDE: f64 = 1e100;

/// Tests in the permutation group (MMD, energy, kNN).
const PERMUTATION_TESTS: usize = 3;

/// Relative slack in comparing an adjusted p-value with α: `3/300 / (1/3)` is
/// 0.010000000000000002 in floating point, and must reject at α = 0.01.
const ROUNDING: f64 = 1e-9;

/// The groups of a battery on `data` as (tests, share of α): the permutation group and, for a
/// mixture, the exact-oracle group (χ² only with more than one component).
fn groups(data: &Dataset) -> Vec<(usize, f64)> {
    let rest = 1.0 - RANGE_SHARE;
    match data.mixture() {
        Some(mix) => vec![
            (PERMUTATION_TESTS, rest * PERMUTATION_SHARE),
            (
                3 + usize::from(mix.n_components() > 1),
                rest * (1.0 - PERMUTATION_SHARE),
            ),
        ],
        None => vec![(PERMUTATION_TESTS, rest)],
    }
}

/// Largest `max_points`: the permutation tests hold a pooled (2m)² matrix of f64.
pub const MAX_POINTS: usize = 10_000;

/// Every test's outcome, its adjusted p-value and the family verdict.
#[derive(Clone, Debug)]
pub struct Report {
    pub alpha: f64,
    /// Rows of the tested sample.
    pub n: usize,
    /// Points per sample in the permutation tests.
    pub points: usize,
    /// Exact draws behind the oracle's proportions and log-density law (0 without a mixture).
    pub oracle_rows: usize,
    /// Relabellings (permutation group) = null sets (oracle group).
    pub resamples: usize,
    /// Each test with its own (marginal) p-value.
    pub outcomes: Vec<TestOutcome>,
    /// Family-wise adjusted p-values, in the order of `outcomes`: min-P within the group,
    /// divided by the group's share of α ([`PERMUTATION_SHARE`]).
    pub adjusted: Vec<f64>,
    /// Rejected iff some adjusted p-value is ≤ α.
    pub rejected: bool,
    /// Not rejected while some test's p-value sits at its floor 1/(B + 1): more resamples
    /// could change the verdict.
    pub floor_limited: bool,
}

/// The fewest resamples B for which every group can reject a sample that is extreme in one
/// test alone. With k tests in a group, min-P adjusts such a sample's p-value 1/(B + 1) to at
/// most k/(B + 1) (each other test's most extreme resample can tie it), so B + 1 ≥ k/(α·share)
/// for every group.
pub fn min_resamples(alpha: f64, data: &Dataset) -> usize {
    groups(data)
        .iter()
        .map(|&(k, share)| ((k as f64 / (alpha * share)) * (1.0 - ROUNDING)).ceil() - 1.0)
        .fold(1.0, f64::max)
        .min(usize::MAX as f64) as usize
}

/// Largest number of relabellings / null sets.
pub const MAX_RESAMPLES: usize = 1_000_000;

impl Battery {
    /// Checks the settings against `data` before any sample is read; returns the resample count.
    pub fn validate(&self, data: &Dataset) -> Result<usize> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(invalid!(
                "`alpha` must lie in (0, 1), got {}",
                crate::error::num(self.alpha)
            ));
        }
        if !(2..=MAX_POINTS).contains(&self.max_points) {
            return Err(invalid!(
                "`max_points` must lie in [2, {MAX_POINTS}], got {}",
                self.max_points
            ));
        }
        let need = min_resamples(self.alpha, data);
        if need > MAX_RESAMPLES {
            let smallest = groups(data)
                .iter()
                .map(|&(k, share)| k as f64 / (share * (MAX_RESAMPLES + 1) as f64))
                .fold(0.0, f64::max);
            return Err(invalid!(
                "`alpha` {} needs at least {need} permutations to ever reject, more than the {MAX_RESAMPLES} allowed: use `alpha` ≥ {:.2e}",
                crate::error::num(self.alpha),
                smallest
            ));
        }
        let b = self.permutations.unwrap_or(need.max(500));
        crate::error::check_range("permutations", b, MAX_RESAMPLES)?;
        if b < need {
            return Err(invalid!(
                "`permutations` {b} cannot reject at `alpha` {} (a resampling p-value is at least 1/(B+1), and min-P over a group of k tests at least k/(B+1)): use at least {need}",
                crate::error::num(self.alpha)
            ));
        }
        Ok(b)
    }

    /// Tests `x` (rows are points) against the exact distribution `data`.
    pub fn run(&self, x: ArrayView2<f64>, data: &Dataset) -> Result<Report> {
        let b = self.validate(data)?;
        if x.ncols() != data.dim() {
            return Err(crate::Error::Data(format!(
                "the samples have {} columns but dataset '{}' has dimension {}",
                x.ncols(),
                data.name(),
                data.dim()
            )));
        }
        let n = x.nrows();
        if n < 2 {
            return Err(invalid!("at least 2 samples are needed, got {n}"));
        }
        let points = n.min(self.max_points);
        let range = range_test(x, data, self.seed);
        let range_q = (range.p_value / RANGE_SHARE).min(1.0);
        let absurd = x.iter().any(|v| v.abs() > SAFE_MAGNITUDE);
        if absurd && range_q <= self.alpha * (1.0 + ROUNDING) {
            // The other tests cannot compute on such points; the range test decides.
            return Ok(Report {
                alpha: self.alpha,
                n,
                points,
                oracle_rows: 0,
                resamples: b,
                outcomes: vec![range],
                adjusted: vec![range_q],
                rejected: true,
                floor_limited: false,
            });
        }
        let pb = self.progress.then(spinner);
        let say = |m: String| {
            if let Some(pb) = &pb {
                pb.set_message(m);
            }
        };
        say(format!(
            "permutation tests (MMD, energy, kNN) on {points} + {points} points, B = {b}"
        ));
        let reference = data.sample(points, self.seed, REFERENCE_DOMAIN);
        let (xs, rs) = (x.slice(s![..points, ..]), reference.view());
        let mmd = mmd_test(xs, rs, b, self.seed);
        let energy = energy_test(xs, rs, b, self.seed);
        let knn = knn_test(xs, rs, KNN_K, b, self.seed);
        let mut outcomes = vec![
            outcome("mmd", mmd.statistic, mmd.p_value, format!(
                "unbiased MMD², Gaussian kernel h={:.4} (median heuristic), {points} vs {points} points",
                mmd.bandwidth
            )),
            outcome("energy", energy.statistic, energy.p_value, format!(
                "energy statistic mn/(m+n)·E, {points} vs {points} points"
            )),
            outcome("knn", knn.statistic, knn.p_value, format!(
                "Schilling's {KNN_K}-nearest-neighbour same-sample fraction, {points} vs {points} points"
            )),
        ];
        let mut adjusted = min_p_adjusted(
            &[mmd.statistic, energy.statistic, knn.statistic],
            &[&mmd.null, &energy.null, &knn.null],
        );
        let mut oracle_rows = 0;
        if let Some(mix) = data.mixture() {
            oracle_rows = (20 * n)
                .max(ORACLE_MIN_ROWS)
                .min((ORACLE_VALUES / mix.dim()).max(n));
            say(format!(
                "exact-oracle tests: {oracle_rows} exact draws, then {b} null sets of {n}"
            ));
            let oracle = Oracle::new(mix, oracle_rows, points, self.seed)?;
            let observed = oracle.statistics(x);
            let nulls: Vec<Vec<f64>> = (0..b as u64)
                .into_par_iter()
                .map(|r| {
                    let key = self.seed ^ (r + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    oracle.statistics(mix.sample(n, key, NULL_DOMAIN).0.view())
                })
                .collect();
            let per_test: Vec<Vec<f64>> = (0..observed.len())
                .map(|i| nulls.iter().map(|v| v[i]).collect())
                .collect();
            let refs: Vec<&[f64]> = per_test.iter().map(Vec::as_slice).collect();
            for (i, (&t, null)) in observed.iter().zip(&refs).enumerate() {
                let (name, detail) = oracle.describe(i, n, b);
                outcomes.push(outcome(name, t, resampling_p(t, null), detail));
            }
            adjusted.extend(min_p_adjusted(&observed, &refs));
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        if let Some(t) = outcomes
            .iter()
            .find(|t| !t.statistic.is_finite() || !t.p_value.is_finite())
        {
            return Err(crate::Error::Data(format!(
                "the {} test gave a non-finite result (statistic {}, p {}): too few or degenerate points?",
                t.name, t.statistic, t.p_value
            )));
        }
        // Weighted Bonferroni over the groups and the range test (weights fixed in advance,
        // summing to 1).
        let shares = groups(data);
        for (i, q) in adjusted.iter_mut().enumerate() {
            let share = if i < PERMUTATION_TESTS {
                shares[0].1
            } else {
                shares[1].1
            };
            *q = (*q / share).min(1.0);
        }
        outcomes.push(range);
        adjusted.push(range_q);
        let rejected = adjusted.iter().any(|&q| q <= self.alpha * (1.0 + ROUNDING));
        // A resampling p-value at its floor 1/(B + 1) might be smaller with more resamples.
        let floor = 1.0 / (b + 1) as f64;
        let floor_limited = !rejected
            && outcomes
                .iter()
                .any(|t| t.name != RANGE_NAME && t.p_value <= floor * (1.0 + ROUNDING));
        Ok(Report {
            alpha: self.alpha,
            n,
            points,
            oracle_rows,
            resamples: b,
            outcomes,
            adjusted,
            rejected,
            floor_limited,
        })
    }
}

const RANGE_NAME: &str = "range";

/// The range test: by Chebyshev's inequality and a union bound, n points of the data
/// distribution (mean μ, v = E‖X − μ‖²) all lie within r of μ except with probability at most
/// n v / r², so `p = min(1, n v / max_i ‖xᵢ − μ‖²)` is a valid (conservative) p-value. It has
/// power only against gross outliers, which is what it is for: μ and v are exact for a
/// mixture and estimated from 100 000 exact draws otherwise.
fn range_test(x: ArrayView2<f64>, data: &Dataset, seed: u64) -> TestOutcome {
    let dist2 = |r: ndarray::ArrayView1<f64>, mu: &ndarray::Array1<f64>| -> f64 {
        r.iter().zip(mu).map(|(a, m)| (a - m) * (a - m)).sum()
    };
    let (mu, v) = match data.mixture() {
        Some(mix) => mix.mean_and_spread(),
        None => {
            let rows = (ORACLE_VALUES / data.dim().max(1)).clamp(1000, ORACLE_MIN_ROWS);
            let draws = data.sample(rows, seed, REFERENCE_DOMAIN);
            let mu = draws.mean_axis(ndarray::Axis(0)).expect("rows > 0");
            let v = draws.rows().into_iter().map(|r| dist2(r, &mu)).sum::<f64>() / rows as f64;
            (mu, v)
        }
    };
    let r2 = x
        .rows()
        .into_iter()
        .map(|r| dist2(r, &mu))
        .fold(0.0, f64::max);
    let n = x.nrows() as f64;
    let p = if r2 > 0.0 { (n * v / r2).min(1.0) } else { 1.0 };
    outcome(
        RANGE_NAME,
        (r2 / v).sqrt(),
        p,
        format!("largest distance to the data mean in rms radii; p = min(1, n/statistic²) (Chebyshev and a union bound), α share {RANGE_SHARE}"),
    )
}

fn outcome(name: &'static str, statistic: f64, p_value: f64, detail: String) -> TestOutcome {
    TestOutcome {
        name,
        statistic,
        p_value,
        detail,
    }
}

/// Westfall & Young's single-step min-P adjusted p-values of tests whose statistics
/// `observed[i]` and `nulls[i][r]` were computed on the same resamples r (larger is more
/// extreme): with `p_i(r)` each value's resampling p-value among the observed and the R
/// resampled ones, `p̃ᵢ = #{r ∈ {obs} ∪ resamples : min_j p_j(r) ≤ p_i(obs)} / (R + 1)`.
pub fn min_p_adjusted(observed: &[f64], nulls: &[&[f64]]) -> Vec<f64> {
    let r = nulls.first().map_or(0, |v| v.len());
    assert!(nulls.iter().all(|v| v.len() == r), "same resamples");
    let total = (r + 1) as f64;
    // p_i(j) for j = 0 (observed) and 1..=R.
    let ps: Vec<Vec<f64>> = observed
        .iter()
        .zip(nulls)
        .map(|(&t, null)| {
            let mut all: Vec<f64> = std::iter::once(t).chain(null.iter().copied()).collect();
            let mut sorted = all.clone();
            sorted.sort_by(f64::total_cmp);
            for v in all.iter_mut() {
                let below = sorted.partition_point(|&u| u < *v);
                *v = (sorted.len() - below) as f64 / total;
            }
            all
        })
        .collect();
    let min_p: Vec<f64> = (0..=r)
        .map(|j| ps.iter().map(|p| p[j]).fold(1.0, f64::min))
        .collect();
    ps.iter()
        .map(|p| min_p.iter().filter(|&&m| m <= p[0]).count() as f64 / total)
        .collect()
}

/// The exact distribution's side of the oracle tests: component proportions and the law of
/// log p₀(X), each from `rows` exact draws, and the exact per-coordinate marginals.
struct Oracle<'a> {
    mix: &'a GaussianMixture,
    /// Probability of each component being the most responsible one (from the oracle draws).
    cell_p: Vec<f64>,
    /// Sorted log p₀ of the oracle draws.
    logp: Vec<f64>,
    marginals: Vec<Vec<(f64, f64, f64)>>,
    /// Gaussian-kernel bandwidth h of the one-sample MMD (median distance of oracle draws).
    h: f64,
    /// p₀ convolved with N(0, h²I): `E_y k(x, y) = (2πh²)^{d/2} p_h(x)` for y ~ p₀.
    smoothed: GaussianMixture,
    /// `E k(y, y') = (2πh²)^{d/2} E p_h(y)` over the oracle draws: the MMD's constant term.
    self_term: f64,
    /// Points of each sample in the O(n²) one-sample MMD.
    points: usize,
}

impl<'a> Oracle<'a> {
    fn new(mix: &'a GaussianMixture, rows: usize, points: usize, seed: u64) -> Result<Self> {
        let draws = mix.sample(rows, seed, REFERENCE_DOMAIN).0;
        let half = rows.min(2000) / 2;
        let h = median_distance(
            draws.slice(s![..half, ..]),
            draws.slice(s![half..2 * half, ..]),
        )
        .max(1e-12);
        let smoothed = mix.diffused_mixture(Marginal { mean: 1.0, std: h })?;
        let self_term = kernel_mean(&smoothed, h, draws.view());
        let (assign, mut logp) = assign_and_logp(mix, draws.view());
        logp.sort_by(f64::total_cmp);
        let k = mix.n_components();
        let mut p = vec![0.0; k];
        for c in assign {
            p[c] += 1.0 / rows as f64;
        }
        Ok(Self {
            mix,
            cell_p: p,
            logp,
            marginals: (0..mix.dim()).map(|j| mix.marginal_1d(j)).collect(),
            h,
            smoothed,
            self_term,
            points,
        })
    }

    /// One-sample unbiased MMD² to p₀ (Gretton et al. 2012, eq. 3, the expectations over p₀ in
    /// closed form): `(1/(m(m−1))) Σ_{i≠j} k(xᵢ, xⱼ) − (2/m) Σᵢ (2πh²)^{d/2} p_h(xᵢ) + E k(y, y')`
    /// over the first `points` rows, k = exp(−‖a − b‖²/(2h²)).
    fn mmd_to_exact(&self, x: ArrayView2<f64>) -> f64 {
        let x = x.slice(s![..self.points.min(x.nrows()), ..]).to_owned();
        let m = x.nrows();
        let inv = 1.0 / (2.0 * self.h * self.h);
        let rows: Vec<&[f64]> = x
            .rows()
            .into_iter()
            .map(|r| r.to_slice().expect("owned"))
            .collect();
        // Row sums in parallel, their total in row order: the same bits for any thread count
        // (rayon's own `sum` adds along a tree that work stealing shapes).
        let per_row: Vec<f64> = (0..m)
            .into_par_iter()
            .map(|i| {
                let a = rows[i];
                rows[i + 1..]
                    .iter()
                    .map(|b| {
                        let d2: f64 = a.iter().zip(*b).map(|(u, v)| (u - v) * (u - v)).sum();
                        (-d2 * inv).exp()
                    })
                    .sum::<f64>()
            })
            .collect();
        let pairs: f64 = per_row.iter().sum();
        let cross = kernel_mean(&self.smoothed, self.h, x.view());
        2.0 * pairs / (m * (m - 1)) as f64 - 2.0 * cross + self.self_term
    }

    /// [χ² (K > 1), log-density KS distance, largest coordinate KS distance, one-sample MMD]
    /// of `x`.
    fn statistics(&self, x: ArrayView2<f64>) -> Vec<f64> {
        let n = x.nrows() as f64;
        let (assign, logp) = assign_and_logp(self.mix, x);
        let mut out = Vec::with_capacity(3);
        if self.mix.n_components() > 1 {
            let mut counts = vec![0.0; self.cell_p.len()];
            for c in assign {
                counts[c] += 1.0;
            }
            // Cells the oracle never saw contribute as if expected half a draw.
            let floor = 0.5 / self.logp.len() as f64;
            out.push(
                counts
                    .iter()
                    .zip(&self.cell_p)
                    .map(|(&c, &p)| {
                        let e = n * p.max(floor);
                        (c - e) * (c - e) / e
                    })
                    .sum(),
            );
        }
        let m = self.logp.len() as f64;
        out.push(ks_test(&logp, |v| self.logp.partition_point(|&u| u <= v) as f64 / m).0);
        out.push(
            self.marginals
                .iter()
                .enumerate()
                .map(|(j, comps)| ks_test(&x.column(j).to_vec(), |v| mixture_cdf(comps, v)).0)
                .fold(0.0, f64::max),
        );
        out.push(self.mmd_to_exact(x));
        out
    }

    fn describe(&self, i: usize, n: usize, r: usize) -> (&'static str, String) {
        let i = i + usize::from(self.mix.n_components() == 1);
        let null = format!("Monte Carlo null of {r} exact sets of {n}");
        match i {
            0 => (
                "chi2",
                format!(
                    "Pearson χ² of most-responsible-component counts vs the exact proportions, {} components; {null}",
                    self.cell_p.len()
                ),
            ),
            1 => (
                "logp-ks",
                format!("KS distance of log p0(x) to its exact law; {null}"),
            ),
            3 => (
                "mmd-p0",
                format!(
                    "one-sample MMD² to p0 (Gaussian kernel h={:.4}, closed-form expectations), first {} points; {null}",
                    self.h,
                    self.points.min(n)
                ),
            ),
            _ => (
                "ks",
                format!(
                    "largest KS distance of a coordinate to its exact marginal CDF, over {}; {null}",
                    self.mix.dim()
                ),
            ),
        }
    }
}

/// `(1/m) Σᵢ E_{y~p₀} k(xᵢ, y) = (2πh²)^{d/2} (1/m) Σᵢ p_h(xᵢ)` for the Gaussian kernel of
/// bandwidth h, `smoothed` = p₀ convolved with N(0, h²I).
/// Summed in log space: (2πh²)^{d/2} overflows and p_h underflows from d ≈ 256 on.
fn kernel_mean(smoothed: &GaussianMixture, h: f64, x: ArrayView2<f64>) -> f64 {
    let log_scale = 0.5 * x.ncols() as f64 * (2.0 * std::f64::consts::PI * h * h).ln();
    let (_, logp) = assign_and_logp(smoothed, x);
    logp.iter().map(|l| (log_scale + l).exp()).sum::<f64>() / x.nrows() as f64
}

/// The most responsible component and log p₀ of each row.
fn assign_and_logp(mix: &GaussianMixture, x: ArrayView2<f64>) -> (Vec<usize>, Vec<f64>) {
    let p0 = mix.at(Marginal {
        mean: 1.0,
        std: 0.0,
    });
    x.axis_chunks_iter(ndarray::Axis(0), 1024)
        .into_par_iter()
        .map(|chunk| {
            let mut s = Scratch::default();
            chunk
                .rows()
                .into_iter()
                .map(|r| (p0.argmax_component(r, &mut s), p0.log_prob(r, &mut s)))
                .collect::<Vec<_>>()
        })
        .flatten_iter()
        .unzip()
}

/// A stderr spinner with elapsed time (drawn only on a terminal).
fn spinner() -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("valid template"),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

#[cfg(test)]
mod tests {
    use super::{kernel_mean, min_p_adjusted};
    use crate::data::GaussianMixture;
    use crate::sde::Marginal;

    #[test]
    fn closed_form_kernel_mean_matches_monte_carlo() {
        // E_y exp(−‖x − y‖²/(2h²)) over y ~ p₀ against 400 000 exact draws (MC se ≈ 0.1 %).
        let mix = GaussianMixture::isotropic(
            vec![0.3, 0.7],
            ndarray::arr2(&[[-1.0, 0.5], [2.0, -0.5]]),
            &[0.4, 0.9],
        )
        .unwrap();
        let h = 1.3;
        let smoothed = mix
            .diffused_mixture(Marginal { mean: 1.0, std: h })
            .unwrap();
        let y = mix.sample(400_000, 3, 0).0;
        for x in [[0.0, 0.0], [2.0, -1.0], [-3.0, 4.0]] {
            let exact = kernel_mean(&smoothed, h, ndarray::arr2(&[x]).view());
            let mc = y
                .rows()
                .into_iter()
                .map(|r| (-((r[0] - x[0]).powi(2) + (r[1] - x[1]).powi(2)) / (2.0 * h * h)).exp())
                .sum::<f64>()
                / y.nrows() as f64;
            assert!((exact / mc - 1.0).abs() < 0.01, "{x:?}: {exact} vs {mc}");
        }
    }

    #[test]
    fn one_sample_mmd_has_the_same_bits_for_any_thread_count() {
        let mix = GaussianMixture::isotropic(
            vec![0.5, 0.5],
            ndarray::arr2(&[[-1.0, 0.0], [1.0, 0.0]]),
            &[0.3, 0.3],
        )
        .unwrap();
        let oracle = super::Oracle::new(&mix, 2000, 1500, 4).unwrap();
        let x = mix.sample(1500, 9, 0).0;
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| oracle.mmd_to_exact(x.view())).to_bits()
        };
        let one = on(1);
        for threads in [2, 3, 5, 8] {
            assert_eq!(on(threads), one, "{threads} threads");
        }
    }

    #[test]
    fn min_p_of_identical_tests_is_their_own_p() {
        // Two copies of one statistic: min-P adjusts nothing (Bonferroni would double).
        let null: Vec<f64> = (0..99).map(|i| i as f64).collect();
        let q = min_p_adjusted(&[95.5, 95.5], &[&null, &null]);
        assert_eq!(q, vec![4.0 / 100.0, 4.0 / 100.0]);
    }

    #[test]
    fn min_p_of_independent_tests_is_near_sidak() {
        // Independent uniform nulls: p̃ ≈ 1 − (1 − p)² for two tests.
        let a: Vec<f64> = (0..999).map(|i| ((i * 7919) % 999) as f64).collect();
        let b: Vec<f64> = (0..999)
            .map(|i| ((i * 104_729 + 17) % 999) as f64)
            .collect();
        let q = min_p_adjusted(&[989.5, 500.0], &[&a, &b]);
        assert!((q[0] - 0.02).abs() < 0.006, "{q:?}");
    }
}
