//! Does the path's prior cover p_T? Every command that starts from the prior (sampling, the
//! PF-ODE likelihood, the bounds) is only as right as `p_T ≈ N(0, σ_p² I)`: data of scale 1e6 on
//! the VP SDE (`m(1) ≈ 0.0066`) leave p_T at scale 6600 and every result wrong by orders of
//! magnitude. This checks an upper bound on `KL(p_T ‖ prior)` before any work.

use super::{Covariance, Dataset, GaussianMixture, DATA_DOMAIN};
use crate::sde::Sde;
use crate::{Error, Result};
use ndarray::{Array2, ArrayView1};

/// Largest accepted bound on `KL(p_T ‖ prior)` in nats (Pinsker: total variation ≤ 0.71).
pub const MAX_PRIOR_KL: f64 = 1.0;

/// Points standing for a toy without a closed form.
const TOY_POINTS: usize = 20_000;

/// `KL(N(a, diag(e)) ‖ N(0, σ² I)) = ½ Σ_j (e_j/σ² − 1 − ln(e_j/σ²)) + ‖a‖²/(2σ²)`.
fn gaussian_kl(a: ArrayView1<f64>, e: impl Iterator<Item = f64>, var: f64) -> f64 {
    let spread: f64 = e
        .map(|v| {
            let r = v / var;
            r - 1.0 - r.ln()
        })
        .sum();
    0.5 * spread + 0.5 * a.dot(&a) / var
}

/// An upper bound on `KL(p_T ‖ N(0, σ_p² I))` for the mixture (joint convexity of KL:
/// `KL(Σ w_k q_k ‖ π) ≤ Σ w_k KL(q_k ‖ π)`, each term exact for `q_k = N(m μ_k, m² Σ_k + s² I)`).
pub fn mixture_prior_kl(mix: &GaussianMixture, sde: &dyn Sde) -> f64 {
    let k = sde.marginal(sde.t_max());
    let (m2, s2) = (k.mean * k.mean, k.std * k.std);
    let var = sde.prior_std().powi(2);
    let d = mix.dim();
    mix.weights()
        .iter()
        .zip(mix.means().rows())
        .zip(mix.covariances())
        .map(|((w, mu), c)| {
            let a = &mu * k.mean;
            let kl = match c {
                Covariance::Isotropic { var: v } => {
                    gaussian_kl(a.view(), std::iter::repeat_n(m2 * v + s2, d), var)
                }
                Covariance::Full { eigvals, .. } => {
                    gaussian_kl(a.view(), eigvals.iter().map(|l| m2 * l + s2), var)
                }
            };
            w * kl
        })
        .sum()
}

/// The same bound for points x_i (p_T of the empirical distribution: N(m x_i, s² I) each).
pub fn points_prior_kl(x: &Array2<f64>, sde: &dyn Sde) -> f64 {
    let k = sde.marginal(sde.t_max());
    let var = sde.prior_std().powi(2);
    let d = x.ncols();
    let s2 = k.std * k.std;
    x.rows()
        .into_iter()
        .map(|r| gaussian_kl((&r * k.mean).view(), std::iter::repeat_n(s2, d), var))
        .sum::<f64>()
        / x.nrows().max(1) as f64
}

/// Refuses `sde` for `data` when the bound exceeds [`MAX_PRIOR_KL`], naming the data's scale
/// and the remedies; a toy without a closed form stands as 20 000 of its draws.
pub fn check_prior_covers(data: &Dataset, sde: &dyn Sde) -> Result<()> {
    let (kl, scale) = match data.mixture() {
        Some(mix) => {
            let (mean, spread) = mix.mean_and_spread();
            let radius = mean.dot(&mean).sqrt() + spread.max(0.0).sqrt();
            (mixture_prior_kl(mix, sde), radius)
        }
        None => {
            let x = data.sample(TOY_POINTS, 0, DATA_DOMAIN);
            let scale = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            (points_prior_kl(&x, sde), scale)
        }
    };
    refuse_if_uncovered(kl, scale, data.name(), sde)
}

/// [`check_prior_covers`] for a set of training points.
pub fn check_points_covered(x: &Array2<f64>, name: &str, sde: &dyn Sde) -> Result<()> {
    let scale = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    refuse_if_uncovered(points_prior_kl(x, sde), scale, name, sde)
}

fn refuse_if_uncovered(kl: f64, scale: f64, name: &str, sde: &dyn Sde) -> Result<()> {
    if kl.is_finite() && kl <= MAX_PRIOR_KL {
        return Ok(());
    }
    let k = sde.marginal(sde.t_max());
    Err(Error::Data(format!(
        "the {} SDE's prior N(0, {:.3e}²I) does not cover p_T of '{name}' (data scale {scale:.3e}, p_T = m(T) x₀ + s(T) z with m(T) = {:.3e}, s(T) = {:.3e}; KL(p_T ‖ prior) ≤ {kl:.3e} nats > {MAX_PRIOR_KL}): rescale the data to unit scale, or use the VE SDE with `sigma_max` ≥ {:.3e}",
        sde.name(),
        sde.prior_std(),
        k.mean,
        k.std,
        (2.0 * scale).max(1.0),
    )))
}
