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

use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Rows of the pooled matrix per block of its layout (one AVX-512 register of f64).
const LANES: usize = 8;

/// A pooled symmetric matrix with zero diagonal and its row sums.
struct Pooled {
    n: usize,
    /// `a(i, j)` with rows in blocks of [`LANES`], interleaved: `a[(b·n + j)·LANES + r]` is
    /// `a(LANES·b + r, j)` (rows past `n` zero), so a block's sums over j read memory in order.
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
        let mut a = vec![0.0; n.div_ceil(LANES) * n * LANES];
        a.par_chunks_mut((n * LANES).max(1))
            .enumerate()
            .for_each(|(b, block)| {
                for (j, at) in block.chunks_exact_mut(LANES).enumerate() {
                    for (r, v) in at.iter_mut().enumerate() {
                        let i = b * LANES + r;
                        if i < n && i != j {
                            *v = f(sq_dist(pts[i], pts[j]));
                        }
                    }
                }
            });
        // Row sums: the block sums of the all-ones labelling (a · 1 is exact).
        let zero: f64 = std::iter::empty::<f64>().sum();
        let mut row = vec![zero; n.div_ceil(LANES) * LANES];
        row_sums(&a, n, &[vec![1.0; n]], &mut row);
        row.truncate(n);
        let total = row.iter().sum();
        Self { n, a, row, total }
    }

    /// `a(i, j)` (the tests' reference arithmetic reads the layout through it).
    #[cfg(test)]
    fn at(&self, i: usize, j: usize) -> f64 {
        self.a[((i / LANES) * self.n + j) * LANES + i % LANES]
    }

    /// Block sums for each labelling in `labels` (±1 per row; rows with +1 form the first
    /// sample). Per labelling and row i, `s_i = Σ_j a(i, j) l_j` is summed in j order and
    /// `q = Σ_i l_i s_i` in i order — the one-row-at-a-time arithmetic, bit for bit — with
    /// eight rows in vector lanes and the matrix streamed once per batch of labellings.
    fn blocks(&self, labels: &[Vec<f64>]) -> Vec<Blocks> {
        let n = self.n;
        let padded = n.div_ceil(LANES) * LANES;
        // The neutral element `Iterator::sum` starts from, so each s_i is that sum exactly.
        let zero: f64 = std::iter::empty::<f64>().sum();
        let mut s = vec![zero; labels.len() * padded];
        row_sums(&self.a, n, labels, &mut s);
        labels
            .iter()
            .zip(s.chunks_exact(padded.max(1)))
            .map(|(label, s)| {
                let q: f64 = label.iter().zip(s).map(|(l, s)| l * s).sum();
                let rho: f64 = self.row.iter().zip(label).map(|(r, l)| r * l).sum();
                let within = 0.5 * (self.total + q);
                Blocks {
                    xx: 0.5 * (within + rho),
                    yy: 0.5 * (within - rho),
                    xy: 0.25 * (self.total - q),
                }
            })
            .collect()
    }

    /// [`permutation_p`] with the labellings' block sums taken [`PER_PASS`] at a time.
    fn permutation_test(
        &self,
        m: usize,
        b: usize,
        seed: u64,
        stat: impl Fn(Blocks) -> f64 + Sync,
    ) -> (f64, f64, Vec<f64>) {
        let signs = |first: &[bool]| -> Vec<f64> {
            first.iter().map(|&f| if f { 1.0 } else { -1.0 }).collect()
        };
        let observed = stat(self.blocks(&[signs(&first_m(self.n, m))])[0]);
        let null: Vec<f64> = (0..b)
            .collect::<Vec<_>>()
            .par_chunks(PER_PASS)
            .flat_map_iter(|ks| {
                let labels: Vec<Vec<f64>> = ks
                    .iter()
                    .map(|&k| signs(&relabelling(self.n, m, seed, k)))
                    .collect();
                self.blocks(&labels).into_iter().map(&stat)
            })
            .collect();
        (observed, resampling_p(observed, &null), null)
    }
}

/// Labellings per pass over the pooled matrix in [`Pooled::blocks`]: one AVX-512 register
/// block, 24 accumulators of eight rows, each load of the matrix feeding 24 updates.
const PER_PASS: usize = 24;

/// `s[p·n₈ + i] += Σ_j a(i, j) · labels[p][j]` over the blocked layout of [`Pooled::a`]
/// (`n₈` = n rounded up to [`LANES`]), each sum in j order: AVX-512 where the CPU has it,
/// else [`row_sums_portable`] (the same bits).
fn row_sums(a: &[f64], n: usize, labels: &[Vec<f64>], s: &mut [f64]) {
    let padded = n.div_ceil(LANES) * LANES;
    assert!(a.len() == padded * n && s.len() == labels.len() * padded);
    assert!(labels.iter().all(|l| l.len() == n));
    #[cfg(target_arch = "x86_64")]
    if crate::numerics::avx512() {
        // SAFETY: the CPU has AVX-512F; the lengths were checked above.
        unsafe { avx512::row_sums(a, n, labels, s) };
        return;
    }
    row_sums_portable(a, n, labels, s);
}

/// [`row_sums`] as plain loops (eight rows of a block side by side, which the compiler
/// vectorises as the target allows).
fn row_sums_portable(a: &[f64], n: usize, labels: &[Vec<f64>], s: &mut [f64]) {
    let padded = n.div_ceil(LANES) * LANES;
    for (group, s) in labels
        .chunks(PER_PASS)
        .zip(s.chunks_mut((PER_PASS * padded).max(1)))
    {
        for (b, block) in a.chunks_exact((n * LANES).max(1)).enumerate() {
            let at = |p: usize| p * padded + b * LANES;
            let mut acc: Vec<[f64; LANES]> = (0..group.len())
                .map(|p| std::array::from_fn(|r| s[at(p) + r]))
                .collect();
            for (j, av) in block.chunks_exact(LANES).enumerate() {
                for (acc, l) in acc.iter_mut().zip(group) {
                    let lj = l[j];
                    for (acc, &a) in acc.iter_mut().zip(av) {
                        *acc += a * lj;
                    }
                }
            }
            for (p, acc) in acc.iter().enumerate() {
                s[at(p)..][..LANES].copy_from_slice(acc);
            }
        }
    }
}

/// [`row_sums`] in AVX-512 registers: one block of eight rows per register and
/// [`PER_PASS`] labellings at once.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{LANES, PER_PASS};
    use std::arch::x86_64::*;

    /// [`super::row_sums`]. One fused multiply–add per term gives the bits of the separate
    /// product and sum: `l = ±1` makes `a · l` exact.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the lengths are those [`super::row_sums`] checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row_sums(a: &[f64], n: usize, labels: &[Vec<f64>], s: &mut [f64]) {
        debug_assert!(labels.iter().flatten().all(|&l| l == 1.0 || l == -1.0));
        let padded = n.div_ceil(LANES) * LANES;
        for (g, group) in labels.chunks(PER_PASS).enumerate() {
            // lt[j·P + p] = l_p[j], padded with +1 (sums computed and dropped).
            let mut lt = vec![1.0f64; n * PER_PASS];
            for (p, l) in group.iter().enumerate() {
                for (j, &v) in l.iter().enumerate() {
                    lt[j * PER_PASS + p] = v;
                }
            }
            let out = |p: usize, b: usize| (g * PER_PASS + p) * padded + b * LANES;
            for b in 0..padded / LANES {
                let mut acc = [_mm512_setzero_pd(); PER_PASS];
                for (p, acc) in acc.iter_mut().enumerate().take(group.len()) {
                    *acc = _mm512_loadu_pd(s.as_ptr().add(out(p, b)));
                }
                let block = a.as_ptr().add(b * n * LANES);
                for j in 0..n {
                    let av = _mm512_loadu_pd(block.add(j * LANES));
                    let l = lt.as_ptr().add(j * PER_PASS);
                    for (p, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_fmadd_pd(av, _mm512_set1_pd(*l.add(p)), *acc);
                    }
                }
                for (p, acc) in acc.iter().enumerate().take(group.len()) {
                    _mm512_storeu_pd(s.as_mut_ptr().add(out(p, b)), *acc);
                }
            }
        }
    }
}

/// The observed labelling: the first `m` of `n` pooled points form the first sample.
fn first_m(n: usize, m: usize) -> Vec<bool> {
    let mut label = vec![false; n];
    label[..m].iter_mut().for_each(|l| *l = true);
    label
}

/// Relabelling `k` of `seed`: the observed labelling shuffled by its own generator.
fn relabelling(n: usize, m: usize, seed: u64, k: usize) -> Vec<bool> {
    let mut rng =
        Xoshiro256PlusPlus::seed_from_u64(seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut l = first_m(n, m);
    l.shuffle(&mut rng);
    l
}

/// `stat` of the observed labelling ([`first_m`]), its p-value over `b` seeded random
/// relabellings ([`relabelling`]), `(1 + #{T_b ≥ T_obs}) / (b + 1)`, and the `b` relabelled
/// statistics.
fn permutation_p(
    n: usize,
    m: usize,
    b: usize,
    seed: u64,
    stat: impl Fn(&[bool]) -> f64 + Sync,
) -> (f64, f64, Vec<f64>) {
    let observed = stat(&first_m(n, m));
    let null: Vec<f64> = (0..b)
        .into_par_iter()
        .map(|k| stat(&relabelling(n, m, seed, k)))
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
    EnergyReference::new(y.to_owned()).distance(x)
}

/// A fixed sample `y` that many samples are compared with by [`energy_distance`]: its term
/// `E‖Y−Y'‖` (the largest of the three when `y` is the larger sample) computed once. The same
/// value, bit for bit.
#[derive(Clone, Debug)]
pub struct EnergyReference {
    y: Array2<f64>,
    within: f64,
}

impl EnergyReference {
    pub fn new(y: Array2<f64>) -> Self {
        let within = mean_distance(y.view(), y.view());
        Self { y, within }
    }

    /// The reference sample.
    pub fn sample(&self) -> &Array2<f64> {
        &self.y
    }

    /// [`energy_distance`] from `x` to the reference.
    pub fn distance(&self, x: ArrayView2<f64>) -> f64 {
        2.0 * mean_distance(x, self.y.view()) - mean_distance(x, x) - self.within
    }
}

/// `E‖A−B‖` over all pairs of rows, summed in row order.
fn mean_distance(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    let mut s = 0.0;
    for r in a.rows() {
        for q in b.rows() {
            s += sq_dist(r.to_slice().unwrap(), q.to_slice().unwrap()).sqrt();
        }
    }
    s / (a.nrows() * b.nrows()) as f64
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// The block sums one labelling at a time, row by row: the arithmetic `Pooled::blocks`
    /// must reproduce bit for bit.
    fn row_by_row(p: &Pooled, label: &[f64]) -> [f64; 3] {
        let q: f64 = (0..p.n)
            .zip(label)
            .map(|(i, &li)| {
                li * (0..p.n)
                    .zip(label)
                    .map(|(j, l)| p.at(i, j) * l)
                    .sum::<f64>()
            })
            .sum();
        let rho: f64 = p.row.iter().zip(label).map(|(r, l)| r * l).sum();
        let within = 0.5 * (p.total + q);
        [
            0.5 * (within + rho),
            0.5 * (within - rho),
            0.25 * (p.total - q),
        ]
    }

    /// A reused [`EnergyReference`] gives the three-term energy distance bit for bit, and
    /// the distance is symmetric in value and zero from a sample to itself.
    #[test]
    fn energy_reference_equals_the_three_term_sum_bitwise() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let mut draw =
            |n: usize, d: usize| Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng));
        let mean = |a: ArrayView2<f64>, b: ArrayView2<f64>| {
            let mut s = 0.0;
            for r in a.rows() {
                for q in b.rows() {
                    let d2: f64 = r.iter().zip(q).map(|(u, v)| (u - v) * (u - v)).sum();
                    s += d2.sqrt();
                }
            }
            s / (a.nrows() * b.nrows()) as f64
        };
        let y = draw(90, 3);
        let reference = EnergyReference::new(y.clone());
        for n in [1, 40, 90] {
            let x = draw(n, 3);
            let want = 2.0 * mean(x.view(), y.view())
                - mean(x.view(), x.view())
                - mean(y.view(), y.view());
            assert_eq!(
                reference.distance(x.view()).to_bits(),
                want.to_bits(),
                "n = {n}"
            );
            assert_eq!(
                energy_distance(x.view(), y.view()).to_bits(),
                want.to_bits()
            );
        }
        assert_eq!(reference.distance(y.view()), 0.0);
    }

    #[test]
    fn batched_block_sums_equal_row_by_row_bitwise() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        // Sizes on and off the eight-row blocks; one row repeated (a zero distance off the
        // diagonal).
        for (m, n) in [(7, 5), (300, 290), (260, 1), (6, 2)] {
            let mut x = Array2::<f64>::zeros((m, 3));
            x.iter_mut()
                .for_each(|v| *v = StandardNormal.sample(&mut rng));
            let mut y = Array2::<f64>::zeros((n, 3));
            y.iter_mut()
                .for_each(|v| *v = StandardNormal.sample(&mut rng));
            y.row_mut(0).assign(&x.row(1));
            for f in [f64::sqrt as fn(f64) -> f64, |d2: f64| (-d2 / 2.0).exp()] {
                let pooled = Pooled::new(x.view(), y.view(), f);
                let labels: Vec<Vec<f64>> = (0..PER_PASS + 3)
                    .map(|k| {
                        let l = relabelling(m + n, m, 9, k);
                        l.iter().map(|&f| if f { 1.0 } else { -1.0 }).collect()
                    })
                    .collect();
                for batch in [&labels[..1], &labels[..]] {
                    for (b, l) in pooled.blocks(batch).iter().zip(batch) {
                        let want = row_by_row(&pooled, l);
                        let got = [b.xx, b.yy, b.xy];
                        assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "m {m} n {n}");
                    }
                }
                // The portable loops equal the dispatched ones.
                let k = (m + n).div_ceil(LANES) * LANES;
                let (mut fast, mut slow) =
                    (vec![0.0; labels.len() * k], vec![0.0; labels.len() * k]);
                row_sums(&pooled.a, m + n, &labels, &mut fast);
                row_sums_portable(&pooled.a, m + n, &labels, &mut slow);
                let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fast), bits(&slow));
                // The row sums are the plain sums of the rows.
                for i in 0..m + n {
                    let plain: f64 = (0..m + n).map(|j| pooled.at(i, j)).sum();
                    assert_eq!(pooled.row[i].to_bits(), plain.to_bits(), "row {i}");
                }
                // a(i, j) is f of the squared distance, and symmetric.
                assert_eq!(pooled.at(1, m).to_bits(), f(0.0).to_bits());
                assert_eq!(pooled.at(2, m).to_bits(), pooled.at(m, 2).to_bits());
            }
        }
    }
}
