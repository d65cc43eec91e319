//! Evidence lower bounds of an ε-model (the exact ε* of a mixture or a trained network), per
//! point and averaged, in nats, with Monte Carlo standard errors.
//!
//! * Discrete (Ho et al. 2020, eq. 5; papers.md §1.4): `−ELBO_T = L_T + Σ_{t=2}^T L_{t−1} + L_0`
//!   on the T-step chain of the VP-SDE observed at `t_i = i/T` ([`DiscreteSchedule::exact_vp`]),
//!   with `p_θ(x_{t−1}|x_t) = N(μ_θ, σ_t² I)`, `μ_θ = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t`,
//!   `L_{t−1} = E‖μ̃_t − μ_θ‖²/(2σ_t²) + (d/2)(β̃_t/σ_t² − 1 − log(β̃_t/σ_t²))` and the Gaussian
//!   decoder `L_0 = −log N(x_0; μ_θ(x_1, 1), σ_1² I)` (σ_1² = β_1, or β̃_2 for β̃ as in
//!   Nichol & Dhariwal's clipping, since β̃_1 = 0). One draw of x_t per point and step.
//! * Continuous (Kingma et al. 2021's L_∞; Song et al. 2021's likelihood weighting λ = g²):
//!   `−ELBO = KL(q(x_T|x_0) ‖ π) + ½ ∫_ε^T γ'(t) E‖ε − ε̂(x_t, t)‖² dt + L_ε`, with
//!   `γ'(t) = −d log SNR/dt = g(t)²/s(t)²` and the decoder `x_0 ~ N(x_ε/m, (s/m)² I)`, whose
//!   expected −log-likelihood is `(d/2)(1 + log(2π s²/m²))`. The integral is estimated with t
//!   uniform, or importance-sampled uniform in log-SNR (density ∝ γ', weight constant).

use crate::ddpm::DiscreteSchedule;
use crate::ddpm::Variance;
use crate::score::{par_eps, Score};
use crate::sde::{Marginal, Sde};
use crate::stats::stderr;
use crate::{invalid, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rayon::prelude::*;
use scoresde_solvers::{KeyedNormal, Time};
use std::f64::consts::PI;

/// Noise domain of the ELBO's x_t and t draws.
pub const ELBO_DOMAIN: u64 = crate::domain::Domain::Elbo.key();

/// Which term of the discrete bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermKind {
    /// L_T = KL(q(x_T|x_0) ‖ N(0, I)).
    Prior,
    /// L_{t−1}, t = 2 … T.
    Denoise,
    /// L_0 = −log p_θ(x_0 | x_1).
    Recon,
}

impl TermKind {
    pub fn name(self) -> &'static str {
        match self {
            TermKind::Prior => "prior",
            TermKind::Denoise => "denoise",
            TermKind::Recon => "recon",
        }
    }
}

/// One term averaged over the points.
#[derive(Clone, Debug)]
pub struct Term {
    pub kind: TermKind,
    /// The step index t (T for the prior, 1 for L_0 … ; L_{t−1} carries t).
    pub step: usize,
    /// Mean over points, nats.
    pub nats: f64,
    /// Monte Carlo standard error of the mean.
    pub stderr: f64,
}

/// A bound per point and its terms.
#[derive(Clone, Debug)]
pub struct Bound {
    /// −ELBO per point, nats.
    pub per_point: Array1<f64>,
    pub terms: Vec<Term>,
    /// Data dimension (for bits/dim).
    pub dim: usize,
}

impl Bound {
    /// Mean −ELBO, nats.
    pub fn total(&self) -> f64 {
        self.per_point.mean().unwrap_or(f64::NAN)
    }
    /// Standard error of the mean −ELBO.
    pub fn stderr(&self) -> f64 {
        stderr(&self.per_point)
    }
}

/// `KL(N(m x_0, s² I) ‖ N(0, σ_p² I))` per point.
pub fn prior_kl(k: Marginal, prior_std: f64, x0: ArrayView2<f64>) -> Array1<f64> {
    let d = x0.ncols() as f64;
    let r = (k.std / prior_std).powi(2);
    x0.rows()
        .into_iter()
        .map(|x| 0.5 * (d * r + k.mean * k.mean * x.dot(&x) / prior_std.powi(2) - d - d * r.ln()))
        .collect()
}

/// `‖z − ε̂‖²` per row, minus the control variate `b (‖z‖² − d)` (E‖z‖² = d exactly) with the
/// regression coefficient b fitted over the batch. At small t, where ε̂ ≈ 0 for a fixed x_0,
/// b ≈ 1 removes the χ²_d noise that dominates the bound's variance; at large t, where ε̂ ≈ z,
/// b ≈ 0. The fitted b costs a bias of order 1/n.
fn cv_sq_error(z: &Array2<f64>, eps: &Array2<f64>) -> Array1<f64> {
    let d = z.ncols() as f64;
    let x: Array1<f64> = z
        .rows()
        .into_iter()
        .zip(eps.rows())
        .map(|(z, e)| (&z - &e).mapv(|v| v * v).sum())
        .collect();
    let y: Array1<f64> = z.rows().into_iter().map(|z| z.dot(&z) - d).collect();
    let (xm, ym) = (x.mean().unwrap_or(0.0), y.mean().unwrap_or(0.0));
    let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - xm) * (b - ym)).sum();
    let var: f64 = y.iter().map(|b| (b - ym).powi(2)).sum();
    let b = if var > 0.0 { cov / var } else { 0.0 };
    &x - &(y * b)
}

/// `x_t = m x_0 + s z` with z keyed by (row, key) in the ELBO domain; returns (x_t, z).
fn perturb(
    x0: ArrayView2<f64>,
    k: Marginal,
    noise: &KeyedNormal,
    key: u64,
) -> (Array2<f64>, Array2<f64>) {
    let z = noise.matrix(x0.nrows(), x0.ncols(), key);
    let xt = &x0 * k.mean + &z * k.std;
    (xt, z)
}

/// The discrete −ELBO_T of `score` on the VP-SDE `sde` for the points `x0`.
pub fn discrete_bound(
    sde: &dyn Sde,
    score: &dyn Score,
    x0: ArrayView2<f64>,
    steps: usize,
    variance: Variance,
    seed: u64,
) -> Result<Bound> {
    crate::score::check_sde(score, sde)?;
    let vp = sde
        .as_vp()
        .ok_or_else(|| invalid!("the discrete ELBO needs the VP SDE (got {})", sde.name()))?;
    if steps == 0 {
        return Err(invalid!("`T` must be at least 1"));
    }
    if x0.ncols() != score.dim() {
        return Err(invalid!(
            "points have dimension {} but the score has {}",
            x0.ncols(),
            score.dim()
        ));
    }
    let sched = DiscreteSchedule::exact_vp(vp, steps)?;
    let d = x0.ncols() as f64;
    let noise = KeyedNormal::new(seed, ELBO_DOMAIN);
    let big_t = sched.len();
    // The reverse variance of step t.
    let sigma2 = |t: usize| match variance {
        Variance::Beta => sched.beta(t),
        Variance::BetaTilde => sched.posterior_var_clipped(t),
    };
    // Per-point values of every step term, t = 1 … T (t = 1 is L_0).
    let per_step: Vec<Array1<f64>> = (1..=big_t)
        .into_par_iter()
        .map(|t| {
            let k = sched.marginal(t);
            let (xt, z) = perturb(x0, k, &noise, t as u64);
            let eps = par_eps(score, sde, Time::Shared(sched.time(t)), xt.view());
            let (m, s2) = (sched.eps_mean_weight(t), sigma2(t));
            let posterior = (t > 1).then(|| sched.posterior(t).var);
            cv_sq_error(&z, &eps).mapv(|e| step_term(m, e, s2, posterior, d).value)
        })
        .collect();
    let prior = prior_kl(sched.marginal(big_t), sde.prior_std(), x0);
    let mut per_point = prior.clone();
    let mut terms = vec![Term {
        kind: TermKind::Prior,
        step: big_t,
        nats: prior.mean().unwrap_or(f64::NAN),
        stderr: stderr(&prior),
    }];
    for (i, v) in per_step.iter().enumerate().rev() {
        per_point += v;
        terms.push(Term {
            kind: if i == 0 {
                TermKind::Recon
            } else {
                TermKind::Denoise
            },
            step: i + 1,
            nats: v.mean().unwrap_or(f64::NAN),
            stderr: stderr(v),
        });
    }
    Ok(Bound {
        per_point,
        terms,
        dim: x0.ncols(),
    })
}

/// One step term of the discrete bound over d coordinates and its derivatives (Ho et al.
/// 2020, eq. 5 with a Gaussian decoder): with the squared mean error `sq` (summed over the
/// coordinates, ‖μ̃ − μ_θ‖² = m ‖ε − ε_θ‖² for an ε-model) and the reverse variance σ²,
/// `L_{t−1} = ½ m sq/σ² + ½d (β̃/σ² − 1 − ln(β̃/σ²))` for t ≥ 2 (`posterior_var` = β̃_t), and
/// the decoder `L_0 = ½ m sq/σ² + ½d ln(2πσ²)` at t = 1 (`posterior_var` = None).
pub fn step_term(m: f64, sq: f64, var: f64, posterior_var: Option<f64>, d: f64) -> StepTerm {
    let mean = 0.5 * m * sq / var;
    let d_sq = 0.5 * m / var;
    match posterior_var {
        None => StepTerm {
            value: mean + 0.5 * d * (2.0 * PI * var).ln(),
            d_sq,
            d_log_var: -mean + 0.5 * d,
        },
        Some(pv) => {
            let ratio = pv / var;
            StepTerm {
                value: mean + 0.5 * d * (ratio - 1.0 - ratio.ln()),
                d_sq,
                d_log_var: -mean + 0.5 * d * (1.0 - ratio),
            }
        }
    }
}

/// A step term's value (nats) and its derivatives in `sq` and in ln σ².
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTerm {
    pub value: f64,
    pub d_sq: f64,
    pub d_log_var: f64,
}

/// The small-noise excess of the β̃ bound over the β bound on the T-step chain, d dimensions.
///
/// Where the noise of the first steps is small against the data's scale, the true reverse
/// kernel `q(x_{t−1}|x_t)` has variance ≈ β_t per coordinate (β̃_t plus the spread of μ̃ over
/// `p(x_0|x_t)`), so each step with σ_t² = β̃_t (clipped at t = 1) pays the Gaussian KL
/// `½d (r − 1 − ln r)`, `r_t = β_t/β̃_t = (1−ᾱ_t)/(1−ᾱ_{t−1})` — [`step_term`] with the true
/// variance β_t in the posterior's place and no mean error. Exact ε* makes the mean terms of
/// both bounds equal, so `(−ELBO_T^β̃) − (−ELBO_T^β) ≈ this sum`.
pub fn beta_tilde_penalty(sched: &DiscreteSchedule, d: usize) -> f64 {
    (1..=sched.len())
        .filter(|&t| sched.len() >= 2 || t > 1)
        .map(|t| {
            step_term(
                0.0,
                0.0,
                sched.posterior_var_clipped(t),
                Some(sched.beta(t)),
                d as f64,
            )
            .value
        })
        .sum()
}

/// The T → ∞ limit of [`beta_tilde_penalty`]: `½d(γ + 1 − ln 2)` nats (≈ 0.442 d), γ Euler's
/// constant. Once β is constant over the first steps, `r_t = t/(t−1)` and
/// `Σ_{t≥2} (r_t − 1 − ln r_t) = Σ_{k≥1} (1/k − ln(1 + 1/k)) = γ`; the decoder adds
/// `r = 2: 1 − ln 2`. So the β̃ bound never reaches the NLL; only σ_t² = β_t converges.
pub fn beta_tilde_limit(d: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    0.5 * d as f64 * (EULER_GAMMA + 1.0 - std::f64::consts::LN_2)
}

/// How the continuous bound draws t.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum TimeSampling {
    /// t ~ U(ε, T), weight (T − ε) γ'(t).
    Uniform,
    /// log-SNR ~ U (density ∝ γ'), constant weight log SNR(ε) − log SNR(T).
    Importance,
}

/// The continuous-time bound and its parts (per point).
#[derive(Clone, Debug)]
pub struct ContinuousBound {
    pub per_point: Array1<f64>,
    pub prior: Array1<f64>,
    /// ½ ∫ γ' E‖ε − ε̂‖² dt, estimated per point from `draws` draws.
    pub diffusion: Array1<f64>,
    /// The decoder term (the same for every point).
    pub recon: f64,
    /// Variance of a single-draw estimate of the diffusion term, averaged over points.
    pub single_draw_var: f64,
}

impl ContinuousBound {
    pub fn total(&self) -> f64 {
        self.per_point.mean().unwrap_or(f64::NAN)
    }
    pub fn stderr(&self) -> f64 {
        stderr(&self.per_point)
    }
}

/// The continuous-time −ELBO from ε to T with `draws` (t, ε) draws per point.
pub fn continuous_bound(
    sde: &dyn Sde,
    score: &dyn Score,
    x0: ArrayView2<f64>,
    eps: f64,
    draws: usize,
    sampling: TimeSampling,
    seed: u64,
) -> Result<ContinuousBound> {
    crate::score::check_sde(score, sde)?;
    let t_max = sde.t_max();
    if !(eps > 0.0 && eps < t_max) {
        return Err(invalid!(
            "`eps` must lie in (0, {t_max}), got {}",
            crate::error::num(eps)
        ));
    }
    if draws < 2 {
        return Err(invalid!(
            "the continuous bound needs at least 2 draws per point"
        ));
    }
    let (n, d) = x0.dim();
    let noise = KeyedNormal::new(seed, crate::domain::Domain::ElboTimes.key());
    let (l_hi, l_lo) = (sde.log_snr(eps), sde.log_snr(t_max));
    if n.saturating_mul(draws) > crate::error::MAX_VALUES {
        return Err(invalid!(
            "{n} points × {draws} draws of t exceed the limit of {} draws in one bound: use fewer `draws` or `n`",
            crate::error::MAX_VALUES
        ));
    }
    let mut times = Vec::with_capacity(n * draws);
    let mut weights = Vec::with_capacity(n * draws);
    for i in 0..n {
        let mut rng = noise.rng(i as u64, u64::MAX);
        for _ in 0..draws {
            let u: f64 = rng.random();
            let (t, w) = match sampling {
                TimeSampling::Uniform => {
                    let t = eps + u * (t_max - eps);
                    let k = sde.marginal(t);
                    (t, (t_max - eps) * (sde.diffusion(t) / k.std).powi(2))
                }
                TimeSampling::Importance => {
                    (sde.t_of_log_snr(l_lo + u * (l_hi - l_lo)), l_hi - l_lo)
                }
            };
            times.push(t);
            weights.push(w);
        }
    }
    let x0_rep = x0.select(
        Axis(0),
        &(0..n)
            .flat_map(|i| std::iter::repeat_n(i, draws))
            .collect::<Vec<_>>(),
    );
    let mut z = Array2::zeros((n * draws, d));
    let mut xt = Array2::zeros((n * draws, d));
    for (r, (mut zr, mut xr)) in z.rows_mut().into_iter().zip(xt.rows_mut()).enumerate() {
        noise.fill_row(r as u64, 0, zr.as_slice_mut().expect("standard layout"));
        let k = sde.marginal(times[r]);
        for j in 0..d {
            xr[j] = k.mean * x0_rep[[r, j]] + k.std * zr[j];
        }
    }
    let eps_hat = par_eps(score, sde, Time::PerRow(&times), xt.view());
    let single: Vec<f64> = (0..n * draws)
        .map(|r| {
            let e = &z.row(r) - &eps_hat.row(r);
            0.5 * weights[r] * e.dot(&e)
        })
        .collect();
    let mut diffusion = Array1::zeros(n);
    let mut var = 0.0;
    for i in 0..n {
        let v = Array1::from(single[i * draws..(i + 1) * draws].to_vec());
        diffusion[i] = v.mean().unwrap_or(f64::NAN);
        var += v.var(1.0);
    }
    let k = sde.marginal(eps);
    let recon = 0.5 * d as f64 * (1.0 + (2.0 * PI * k.sigma_tilde().powi(2)).ln());
    let prior = prior_kl(sde.marginal(t_max), sde.prior_std(), x0);
    let per_point = &prior + &diffusion + recon;
    Ok(ContinuousBound {
        per_point,
        prior,
        diffusion,
        recon,
        single_draw_var: var / n as f64,
    })
}
