//! How far a trained network is from the exact optimum, where the data is a mixture: the
//! excess denoising loss `E‖ε_θ(x_t, t) − ε*(x_t, t)‖²` per bucket of t, where `ε*` is the
//! exact optimal ε of the diffused mixture. The denoising loss splits exactly as
//! `E‖ε_θ − ε‖² = E‖ε* − ε‖² + E‖ε_θ − ε*‖²` (the cross term has mean zero), so the excess is
//! the part of the loss that training can still remove.

use crate::data::GaussianMixture;
use crate::score::convert::eps_from_score;
use crate::score::{MixtureScore, Score};
use crate::sde::Sde;
use ndarray::{Array2, Zip};
use rand::Rng;
use rand_distr::StandardNormal;
use scoresde_solvers::{KeyedNormal, Time};
use std::sync::Arc;

/// Seed domain of the evaluation draws.
pub const EVAL_DOMAIN: u64 = crate::domain::Domain::Eval.key();

/// Losses in one bucket `[t_lo, t_hi)`, per coordinate, with t uniform in the bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketLoss {
    pub t_lo: f64,
    pub t_hi: f64,
    /// `E‖ε_θ − ε‖² / d`: the training loss.
    pub dsm: f64,
    /// `E‖ε* − ε‖² / d`: the irreducible part (the loss of the exact optimum).
    pub optimum: f64,
    /// `E‖ε_θ − ε*‖² / d`.
    pub excess: f64,
    /// Monte Carlo standard error of `excess`.
    pub excess_se: f64,
}

/// Bucket edges: `[t_eps, …, t_max]` geometric below 0.1 and uniform above (both ends matter).
pub fn bucket_edges(t_eps: f64, t_max: f64, buckets: usize) -> Vec<f64> {
    let lo = t_eps.ln();
    let hi = t_max.ln();
    (0..=buckets)
        .map(|i| (lo + (hi - lo) * i as f64 / buckets as f64).exp())
        .collect()
}

/// The excess loss of `model` against the exact ε* of `mixture`, `n` draws per bucket.
pub fn excess_loss(
    model: &dyn Score,
    mixture: &Arc<GaussianMixture>,
    sde: &Arc<dyn Sde>,
    edges: &[f64],
    n: usize,
    seed: u64,
) -> Vec<BucketLoss> {
    let exact = MixtureScore::new(mixture.clone(), sde.clone());
    let d = mixture.dim();
    let key = KeyedNormal::new(seed, EVAL_DOMAIN);
    edges
        .windows(2)
        .enumerate()
        .map(|(b, w)| {
            let (x0, _) = mixture.sample(n, seed ^ ((b as u64 + 1) << 40), EVAL_DOMAIN);
            let mut ts = vec![0.0; n];
            let mut eps = Array2::<f64>::zeros((n, d));
            let mut xt = Array2::<f64>::zeros((n, d));
            for i in 0..n {
                let mut rng = key.rng(i as u64, b as u64);
                ts[i] = w[0] + (w[1] - w[0]) * rng.random::<f64>();
                let k = sde.marginal(ts[i]);
                for j in 0..d {
                    let e: f64 = rng.sample(StandardNormal);
                    eps[[i, j]] = e;
                    xt[[i, j]] = k.mean * x0[[i, j]] + k.std * e;
                }
            }
            let mut s_model = Array2::<f64>::zeros((n, d));
            let mut s_exact = Array2::<f64>::zeros((n, d));
            model.score(Time::PerRow(&ts), xt.view(), s_model.view_mut());
            exact.score(Time::PerRow(&ts), xt.view(), s_exact.view_mut());
            let (mut dsm, mut opt) = (0.0, 0.0);
            let mut ex = Vec::with_capacity(n);
            for (i, &t) in ts.iter().enumerate() {
                let k = sde.marginal(t);
                let mut e_row = 0.0;
                Zip::from(s_model.row(i))
                    .and(s_exact.row(i))
                    .and(eps.row(i))
                    .for_each(|&sm, &se, &e| {
                        let (em, es) = (eps_from_score(sm, k), eps_from_score(se, k));
                        dsm += (em - e).powi(2);
                        opt += (es - e).powi(2);
                        e_row += (em - es).powi(2);
                    });
                ex.push(e_row / d as f64);
            }
            let nf = n as f64;
            let mean = ex.iter().sum::<f64>() / nf;
            let var = ex.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0).max(1.0);
            BucketLoss {
                t_lo: w[0],
                t_hi: w[1],
                dsm: dsm / (nf * d as f64),
                optimum: opt / (nf * d as f64),
                excess: mean,
                excess_se: (var / nf).sqrt(),
            }
        })
        .collect()
}
