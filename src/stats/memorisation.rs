//! Does a sampler copy its training set? Nearest-neighbour statistics of samples against the
//! training points, exact (every distance computed, no index), in parallel blocks:
//!
//! * the copy fraction: the share of samples whose nearest training point x⁽ʲ⁾ lies closer
//!   than `fraction` × the distance from x⁽ʲ⁾ to its own nearest other training point (a
//!   sample that close is a copy of x⁽ʲ⁾, not a new point from the data's law);
//! * the distance ratio: the mean distance of the samples to the training set over the mean
//!   distance of fresh draws of the data (as many as the samples) to it — about 1 for a
//!   sampler that generalises, near 0 for one that copies.

use ndarray::{ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

/// Rows per parallel block.
const ROWS: usize = 64;

/// For each row of `x`, its nearest row of `train` (index) and the distance to it; with
/// `skip_self`, a row i of `x` ignores row i of `train` (x = train: the spacing of a set).
fn nearest_impl(x: ArrayView2<f64>, train: ArrayView2<f64>, skip_self: bool) -> Vec<(usize, f64)> {
    let tn = train.map_axis(Axis(1), |r| r.dot(&r));
    let mut out = vec![(0usize, f64::INFINITY); x.nrows()];
    out.par_chunks_mut(ROWS)
        .zip(x.axis_chunks_iter(Axis(0), ROWS).into_par_iter())
        .enumerate()
        .for_each(|(b, (o, xb))| {
            let g = xb.dot(&train.t());
            for (i, (row, xr)) in g.rows().into_iter().zip(xb.rows()).enumerate() {
                let xx = xr.dot(&xr);
                let me = b * ROWS + i;
                let mut best = (0usize, f64::INFINITY);
                for (j, &gij) in row.iter().enumerate() {
                    if skip_self && j == me {
                        continue;
                    }
                    let d2 = xx + tn[j] - 2.0 * gij;
                    if d2 < best.1 {
                        best = (j, d2);
                    }
                }
                // Recompute the winner's distance directly (the expansion loses precision when
                // the two points nearly coincide, which is the case that matters here).
                o[i] = (best.0, distance(xr, train.row(best.0)));
            }
        });
    out
}

fn distance(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Each row's nearest training point and the distance to it.
pub fn nearest(x: ArrayView2<f64>, train: ArrayView2<f64>) -> Vec<(usize, f64)> {
    nearest_impl(x, train, false)
}

/// Each training point's distance to its nearest other training point (≥ 2 points).
pub fn spacing(train: ArrayView2<f64>) -> Vec<f64> {
    nearest_impl(train, train, true)
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

/// The share of rows of `x` closer to their nearest training point than `fraction` × that
/// point's spacing ([`spacing`]).
pub fn copy_fraction(x: ArrayView2<f64>, train: ArrayView2<f64>, fraction: f64) -> f64 {
    let gaps = spacing(train);
    let copies = nearest(x, train)
        .iter()
        .filter(|(j, d)| *d < fraction * gaps[*j])
        .count();
    copies as f64 / x.nrows().max(1) as f64
}

/// Mean distance of `x` to the training set over that of `fresh` draws of the data.
pub fn distance_ratio(x: ArrayView2<f64>, train: ArrayView2<f64>, fresh: ArrayView2<f64>) -> f64 {
    let mean = |y: ArrayView2<f64>| {
        let v = nearest(y, train);
        v.iter().map(|p| p.1).sum::<f64>() / v.len().max(1) as f64
    };
    mean(x) / mean(fresh)
}
