//! Permutation two-sample tests on the pooled sample: unbiased MMD² with a Gaussian kernel and
//! median-heuristic bandwidth (Gretton et al. 2012), the energy distance (Székely & Rizzo
//! 2004), and Schilling's k-nearest-neighbour test (Schilling 1986), which sees local structure
//! (blurred modes, filled-in gaps) that the two global statistics average away.
//! p = (1 + #{T_b ≥ T_obs}) / (B + 1).
//!
//! Both statistics are functions of three block sums of a pooled pairwise matrix A (zero
//! diagonal). With labels l_i = +1 (first sample) / −1 (second), row sums R_i and total S:
//! `lᵀAl = S_xx + S_yy − 2 S_xy` and `lᵀR = S_xx − S_yy`, so each permutation costs one
//! streaming pass over A.

use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// A pooled symmetric matrix with zero diagonal and its row sums.
struct Pooled {
    n: usize,
    a: Vec<f64>,
    row: Vec<f64>,
    total: f64,
}

/// Block sums (over ordered pairs i ≠ j) for a labelling.
#[derive(Clone, Copy, Debug)]
struct Blocks {
    xx: f64,
    yy: f64,
    xy: f64,
}

impl Pooled {
    fn new(x: ArrayView2<f64>, y: ArrayView2<f64>, f: impl Fn(f64) -> f64 + Sync) -> Self {
        let pts = pooled_rows(&x, &y);
        let n = pts.len();
        let mut a = vec![0.0; n * n];
        a.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
            for j in 0..n {
                if i != j {
                    row[j] = f(sq_dist(pts[i], pts[j]));
                }
            }
        });
        let row: Vec<f64> = a.chunks(n).map(|r| r.iter().sum()).collect();
        let total = row.iter().sum();
        Self { n, a, row, total }
    }

    /// Block sums when rows with `label[i] = +1` form the first sample.
    fn blocks(&self, label: &[f64]) -> Blocks {
        let q: f64 = self
            .a
            .chunks(self.n)
            .zip(label)
            .map(|(r, &li)| li * r.iter().zip(label).map(|(a, l)| a * l).sum::<f64>())
            .sum();
        let rho: f64 = self.row.iter().zip(label).map(|(r, l)| r * l).sum();
        let within = 0.5 * (self.total + q);
        Blocks {
            xx: 0.5 * (within + rho),
            yy: 0.5 * (within - rho),
            xy: 0.25 * (self.total - q),
        }
    }

    /// Observed statistic and permutation p-value.
    fn permutation_test(
        &self,
        m: usize,
        b: usize,
        seed: u64,
        stat: impl Fn(Blocks) -> f64 + Sync,
    ) -> (f64, f64, Vec<f64>) {
        permutation_p(self.n, m, b, seed, |first| {
            let label: Vec<f64> = first.iter().map(|&f| if f { 1.0 } else { -1.0 }).collect();
            stat(self.blocks(&label))
        })
    }
}

/// `stat` of the observed labelling (the first `m` of `n` pooled points form the first sample),
/// its p-value over `b` seeded random relabellings, `(1 + #{T_b ≥ T_obs}) / (b + 1)`, and the
/// `b` relabelled statistics.
fn permutation_p(
    n: usize,
    m: usize,
    b: usize,
    seed: u64,
    stat: impl Fn(&[bool]) -> f64 + Sync,
) -> (f64, f64, Vec<f64>) {
    let mut label = vec![false; n];
    label[..m].iter_mut().for_each(|l| *l = true);
    let observed = stat(&label);
    let null: Vec<f64> = (0..b)
        .into_par_iter()
        .map(|k| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            let mut l = label.clone();
            l.shuffle(&mut rng);
            stat(&l)
        })
        .collect();
    (observed, resampling_p(observed, &null), null)
}

/// `(1 + #{T_r ≥ T}) / (R + 1)`: the p-value of `t` among R resampled statistics `null`
/// (larger is more extreme; permutations or Monte Carlo null sets).
pub fn resampling_p(t: f64, null: &[f64]) -> f64 {
    (1 + null.iter().filter(|&&v| v >= t).count()) as f64 / (null.len() + 1) as f64
}

/// The rows of `x` then `y`, as slices: the pooled sample.
fn pooled_rows<'a>(x: &'a ArrayView2<f64>, y: &'a ArrayView2<f64>) -> Vec<&'a [f64]> {
    x.rows()
        .into_iter()
        .chain(y.rows())
        .map(|r| r.to_slice().expect("standard layout"))
        .collect()
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// Median of the pairwise Euclidean distances of the pooled sample.
pub fn median_distance(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let pts = pooled_rows(&x, &y);
    let mut d2: Vec<f64> = Vec::with_capacity(pts.len() * pts.len() / 2);
    for i in 0..pts.len() {
        for j in 0..i {
            d2.push(sq_dist(pts[i], pts[j]));
        }
    }
    if d2.is_empty() {
        return 1.0;
    }
    let mid = d2.len() / 2;
    let (_, m, _) = d2.select_nth_unstable_by(mid, f64::total_cmp);
    m.sqrt()
}

/// Result of a permutation two-sample test.
#[derive(Clone, Debug)]
pub struct PermutationResult {
    pub statistic: f64,
    pub p_value: f64,
    /// Kernel bandwidth h (MMD) or 0 (energy, kNN).
    pub bandwidth: f64,
    /// The statistic under each of the B relabellings, in permutation order. Relabelling k
    /// depends only on (seed, k, sizes): tests run with one seed see the same relabellings,
    /// which is what a joint (min-P) calibration needs.
    pub null: Vec<f64>,
}

/// Unbiased MMD² with `k(a, b) = exp(−‖a − b‖² / (2h²))`, h the median pooled distance,
/// and a `b`-permutation p-value.
pub fn mmd_test(x: ArrayView2<f64>, y: ArrayView2<f64>, b: usize, seed: u64) -> PermutationResult {
    let h = median_distance(x, y).max(1e-300);
    let pooled = Pooled::new(x, y, |d2| (-d2 / (2.0 * h * h)).exp());
    let (m, n) = (x.nrows() as f64, y.nrows() as f64);
    let (statistic, p_value, null) = pooled.permutation_test(x.nrows(), b, seed, |s| {
        s.xx / (m * (m - 1.0)) + s.yy / (n * (n - 1.0)) - 2.0 * s.xy / (m * n)
    });
    PermutationResult {
        statistic,
        p_value,
        bandwidth: h,
        null,
    }
}

/// Energy statistic `T = mn/(m+n) · (2 E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖)` (V-statistics, as in R's
/// `energy::eqdist.etest`) with a `b`-permutation p-value.
pub fn energy_test(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    b: usize,
    seed: u64,
) -> PermutationResult {
    let pooled = Pooled::new(x, y, f64::sqrt);
    let (m, n) = (x.nrows() as f64, y.nrows() as f64);
    let (statistic, p_value, null) = pooled.permutation_test(x.nrows(), b, seed, |s| {
        m * n / (m + n) * (2.0 * s.xy / (m * n) - s.xx / (m * m) - s.yy / (n * n))
    });
    PermutationResult {
        statistic,
        p_value,
        bandwidth: 0.0,
        null,
    }
}

/// The energy distance `2 E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖` (V-statistic), a scalar sample metric.
pub fn energy_distance(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let mean = |a: ArrayView2<f64>, b: ArrayView2<f64>| {
        let mut s = 0.0;
        for r in a.rows() {
            for q in b.rows() {
                s += sq_dist(r.to_slice().unwrap(), q.to_slice().unwrap()).sqrt();
            }
        }
        s / (a.nrows() * b.nrows()) as f64
    };
    2.0 * mean(x, y) - mean(x, x) - mean(y, y)
}

/// Schilling's same-sample fraction alone (no permutations): ≈ 0.5 when `x` and `y` come from
/// one distribution, larger when `x` misses the fine structure of `y`.
pub fn knn_fraction(x: ArrayView2<f64>, y: ArrayView2<f64>, k: usize) -> f64 {
    knn_test(x, y, k, 0, 0).statistic
}

/// Schilling's k-nearest-neighbour two-sample test (Schilling 1986, JASA 81:799; Henze 1988):
/// `T = (1/(N k)) Σ_i Σ_{r ≤ k} 1[NN_r(i) is from the same sample as i]` over the pooled N
/// points. Under H₀ the labels are exchangeable; a sample that is locally too diffuse or too
/// concentrated raises T. The permutation null reuses the neighbour graph (O(N²) once, then
/// O(N k) per permutation).
pub fn knn_test(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    k: usize,
    b: usize,
    seed: u64,
) -> PermutationResult {
    let pts = pooled_rows(&x, &y);
    let n = pts.len();
    if n < 2 {
        return PermutationResult {
            statistic: f64::NAN,
            p_value: 1.0,
            bandwidth: 0.0,
            null: Vec::new(),
        };
    }
    let k = k.clamp(1, n - 1);
    // The k nearest other points of each point (ties broken by index, so it is deterministic).
    let graph: Vec<u32> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut d: Vec<(f64, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (sq_dist(pts[i], pts[j]), j as u32))
                .collect();
            let kk = k.min(d.len());
            if kk < d.len() {
                d.select_nth_unstable_by(kk, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            }
            d.truncate(kk);
            d.into_iter().map(|(_, j)| j)
        })
        .collect();
    let stat = |label: &[bool]| -> f64 {
        let same = graph
            .chunks(k)
            .enumerate()
            .map(|(i, nb)| {
                nb.iter()
                    .filter(|&&j| label[j as usize] == label[i])
                    .count()
            })
            .sum::<usize>();
        same as f64 / graph.len().max(1) as f64
    };
    let (observed, p_value, null) = permutation_p(n, x.nrows(), b, seed, stat);
    PermutationResult {
        statistic: observed,
        p_value,
        bandwidth: 0.0,
        null,
    }
}
