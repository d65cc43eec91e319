//! The trigonometric (variance-preserving) path.

use super::{Marginal, Path, Rates};
use std::f64::consts::FRAC_PI_2;

/// `m = cos(πt/2)`, `s = sin(πt/2)` on [0, 1] (Albergo & Vanden-Eijnden 2023; Nichol &
/// Dhariwal's cosine schedule without offset). m is computed as `sin(π(1 − t)/2)` so that it is
/// exactly 0 at t = 1. `f = −(π/2) tan(πt/2)`, `g² = π tan(πt/2)`: singular at t = 1.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct TrigPath;

impl Path for TrigPath {
    fn name(&self) -> &'static str {
        "trig"
    }
    fn marginal(&self, t: f64) -> Marginal {
        Marginal {
            mean: (FRAC_PI_2 * (1.0 - t)).sin(),
            std: (FRAC_PI_2 * t).sin(),
        }
    }
    fn rates(&self, t: f64) -> Rates {
        let k = self.marginal(t);
        Rates {
            dmean: -FRAC_PI_2 * k.std,
            dstd: FRAC_PI_2 * k.mean,
        }
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn default_eps(&self) -> f64 {
        1e-3
    }
    /// `e^{−λ/2} = tan(πt/2)`.
    fn t_of_log_snr(&self, l: f64) -> f64 {
        ((-0.5 * l).exp().atan() / FRAC_PI_2).clamp(0.0, 1.0)
    }
}
