//! Counter-keyed Gaussian noise: the draw for (row, step) depends on nothing else.

use ndarray::{Array2, ArrayViewMut2};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::SplitMix64;

/// A source of standard normal noise for a block of rows at one step.
pub trait Noise: Sync {
    /// Fills `out` (rows `row0 .. row0 + out.nrows()`) with N(0, 1) draws for `step`.
    fn fill(&self, row0: usize, step: u64, out: ArrayViewMut2<f64>);
}

/// N(0, 1) noise keyed by (seed, domain, row, step).
///
/// Each (row, step) pair starts its own SplitMix64 stream (Steele, Lea & Flood 2014) at a
/// 64-bit hash of the key, so a particle's noise is the same whatever batch it is in, whatever thread runs it
/// and in whatever order rows are visited. `domain` separates independent uses of one seed
/// (prior draws, solver noise, data draws).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedNormal {
    seed: u64,
    domain: u64,
    base: u64,
}

/// SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl KeyedNormal {
    pub fn new(seed: u64, domain: u64) -> Self {
        Self {
            seed,
            domain,
            base: mix(mix(seed) ^ domain),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn domain(&self) -> u64 {
        self.domain
    }

    /// The generator for one (row, step) key.
    #[inline]
    pub fn rng(&self, row: u64, step: u64) -> SplitMix64 {
        SplitMix64::seed_from_u64(mix(mix(self.base ^ row) ^ step))
    }

    /// Fills one row with N(0, 1) draws for (row, step).
    #[inline]
    pub fn fill_row(&self, row: u64, step: u64, out: &mut [f64]) {
        let mut rng = self.rng(row, step);
        for v in out {
            *v = rng.sample(StandardNormal);
        }
    }

    /// An `n × d` matrix of N(0, 1) draws, row i keyed by (i, step).
    pub fn matrix(&self, n: usize, d: usize, step: u64) -> Array2<f64> {
        let mut z = Array2::zeros((n, d));
        for (i, mut row) in z.rows_mut().into_iter().enumerate() {
            self.fill_row(i as u64, step, row.as_slice_mut().expect("standard layout"));
        }
        z
    }
}

impl Noise for KeyedNormal {
    fn fill(&self, row0: usize, step: u64, mut out: ArrayViewMut2<f64>) {
        for (i, mut r) in out.rows_mut().into_iter().enumerate() {
            self.fill_row(
                (row0 + i) as u64,
                step,
                r.as_slice_mut().expect("standard layout"),
            );
        }
    }
}
