//! Ho et al. 2020's parameterisation and objective ablation (Table 2) on the T-step chain: the
//! network predicts ε or the posterior mean μ̃ (Ho et al. eqs. 7, 11), is trained on the bound
//! L (its true per-step weights) or on an unweighted MSE (L_simple for ε, ‖μ̃ − μ_θ‖² for μ̃),
//! with a fixed reverse variance σ_t² ∈ {β_t, β̃_t} or a learned diagonal one — a second output
//! head v with `log σ² = v log β_t + (1 − v) log β̃_t` (Nichol & Dhariwal 2021, eq. 15; Ho et al.
//! only say a diagonal Σ_θ enters L), trained by the full L.
//!
//! The per-coordinate term of L at step t is [`crate::elbo::step_term`] (the discrete bound's
//! one formula, Ho et al. eq. 5 with a Gaussian decoder) with `Δ = out − target`,
//! ℓ = log σ_t², m = 1 for μ̃ and `m = β_t²/(α_t (1 − ᾱ_t))` for ε (eq. 12); [`term`] adds the
//! derivatives in the outputs. Training is candle's backward
//! through the network with `∂L/∂out` from [`term`] (a surrogate `Σ out·G`), Adam as in
//! [`super::Trainer`].

use super::{clip_scale, OptState, TrainConfig, TrainData, TRAIN_DATA_DOMAIN, TRAIN_DOMAIN};
use crate::ddpm::{DiscreteSchedule, Posterior};
use crate::elbo::{prior_kl, step_term};
use crate::nn::{EpsNet, Mlp, NetConfig};
use crate::score::{par_eps, Score};
use crate::sde::Sde;
use crate::sde::{Marginal, VpSde};
use crate::{invalid, Error, Result};
use candle_core::{Device, Tensor};
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;
use scoresde_solvers::{KeyedNormal, Time};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What the mean head predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Param {
    Eps,
    MuTilde,
}

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The variational bound L with its true per-step weights.
    Bound,
    /// Unweighted MSE of the head's output: L_simple (ε), ‖μ̃ − μ_θ‖² (μ̃).
    Mse,
}

/// The reverse variance σ_t².
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sigma {
    Beta,
    BetaTilde,
    /// A second head, trained by L.
    Learned,
}

/// One arm of the ablation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    pub param: Param,
    pub objective: Objective,
    /// The variance it trains (and is evaluated and sampled) with.
    pub sigma: Sigma,
    /// Draw t ∝ √E[L_t²] (Nichol & Dhariwal 2021, eq. 18: the last 10 values of each term,
    /// uniform until every t has them) and weight by 1/(T p_t), instead of t uniform.
    #[serde(default)]
    pub importance: bool,
}

impl Arm {
    fn validate(&self) -> Result<()> {
        if self.importance && self.objective != Objective::Bound {
            return Err(invalid!(
                "importance-sampled t is for the bound: use `objective = \"bound\"`"
            ));
        }
        if self.sigma == Sigma::Learned && self.objective != Objective::Bound {
            return Err(invalid!(
                "a learned variance is trained by the bound: use `objective = \"bound\"`"
            ));
        }
        Ok(())
    }
}

/// Constants of step t of the chain.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// The network's time t̃_t.
    time: f64,
    kernel: Marginal,
    post: Posterior,
    beta: f64,
    alpha: f64,
    /// log β̃_t, with β̃_1 := β̃_2 (β̃_1 = 0; Nichol & Dhariwal's clipping).
    ln_bt: f64,
    /// ‖μ̃ − μ_θ‖² per ‖ε − ε_θ‖².
    eps_weight: f64,
}

/// The T-step chain of a VP SDE with each step's constants.
#[derive(Clone, Debug)]
pub struct Chain {
    steps: Vec<Step>,
    prior: Marginal,
}

impl Chain {
    /// DDPM's T-step schedule of `vp` ([`DiscreteSchedule::from_vp`]; β from 1e-4 to 0.02 for
    /// the default VP and T = 1000).
    pub fn new(vp: &VpSde, t: usize) -> Result<Self> {
        if t < 2 {
            return Err(invalid!("the DDPM chain needs T ≥ 2 steps, got {t}"));
        }
        let s = DiscreteSchedule::from_vp(vp, t)?;
        let steps = (1..=t)
            .map(|i| Step {
                time: s.time(i),
                kernel: s.marginal(i),
                post: s.posterior(i),
                beta: s.beta(i),
                alpha: s.alpha(i),
                ln_bt: s.posterior_var_clipped(i).ln(),
                eps_weight: s.eps_mean_weight(i),
            })
            .collect();
        Ok(Self {
            steps,
            prior: s.marginal(t),
        })
    }

    /// T.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn step(&self, t: usize) -> &Step {
        &self.steps[t - 1]
    }
}

/// The mean term's weight m of step `t` (1-based).
fn mean_weight(arm: &Arm, st: &Step) -> f64 {
    match arm.param {
        Param::MuTilde => 1.0,
        Param::Eps => st.eps_weight,
    }
}

/// log σ_t² of a fixed variance, or of the learned head's output `v`.
fn log_var(arm: &Arm, st: &Step, v: f64) -> f64 {
    match arm.sigma {
        Sigma::Beta => st.beta.ln(),
        Sigma::BetaTilde => st.ln_bt,
        Sigma::Learned => v * st.beta.ln() + (1.0 - v) * st.ln_bt,
    }
}

/// The per-coordinate loss at step `t` (1-based) for the output `out` against `target`, with
/// the learned head's `v`, and its derivatives (∂/∂out, ∂/∂v). Bound terms are in nats.
fn term(arm: &Arm, chain: &Chain, t: usize, out: f64, target: f64, v: f64) -> (f64, f64, f64) {
    let st = chain.step(t);
    let delta = out - target;
    if arm.objective == Objective::Mse {
        return (delta * delta, 2.0 * delta, 0.0);
    }
    let (m, ell) = (mean_weight(arm, st), log_var(arm, st, v));
    let posterior = (t > 1).then_some(st.post.var);
    let term = step_term(m, delta * delta, ell.exp(), posterior, 1.0);
    let d_v = if arm.sigma == Sigma::Learned {
        term.d_log_var * (st.beta.ln() - st.ln_bt)
    } else {
        0.0
    };
    (term.value, 2.0 * delta * term.d_sq, d_v)
}

/// `μ_θ = (x_t − β_t/√(1 − ᾱ_t) ε_θ)/√α_t` (Ho et al. 2020, eq. 11).
fn mean_from_eps(st: &Step, x: ArrayView2<f64>, eps: &Array2<f64>) -> Array2<f64> {
    (&x - &(eps * (st.beta / st.kernel.std))) / st.alpha.sqrt()
}

/// The mean head's target at step t for data x₀ and noise ε (x_t = m x₀ + s ε).
fn target(arm: &Arm, st: &Step, x0: f64, eps: f64) -> f64 {
    match arm.param {
        Param::Eps => eps,
        Param::MuTilde => {
            st.post.coef_x0 * x0 + st.post.coef_xt * (st.kernel.mean * x0 + st.kernel.std * eps)
        }
    }
}

/// Nichol & Dhariwal's importance sampler of t for L: p_t ∝ √(mean of the last `KEEP` values
/// of L_t²), uniform until every t has `KEEP` values.
struct TSampler {
    history: Vec<Vec<f64>>,
    /// Cumulative p_t (empty while uniform).
    cdf: Vec<f64>,
}

impl TSampler {
    const KEEP: usize = 10;

    fn new(len: usize) -> Self {
        Self {
            history: vec![Vec::new(); len],
            cdf: Vec::new(),
        }
    }

    /// (t, weight 1/(T p_t)) for a uniform draw u.
    fn draw(&self, u: f64) -> (usize, f64) {
        let len = self.history.len();
        if self.cdf.is_empty() {
            return (1 + ((u * len as f64) as usize).min(len - 1), 1.0);
        }
        let i = self.cdf.partition_point(|&c| c < u).min(len - 1);
        let p = self.cdf[i] - if i == 0 { 0.0 } else { self.cdf[i - 1] };
        (i + 1, 1.0 / (len as f64 * p))
    }

    fn record(&mut self, t: usize, loss: f64) {
        let h = &mut self.history[t - 1];
        if h.len() == Self::KEEP {
            h.remove(0);
        }
        h.push(loss * loss);
    }

    /// Rebuilds p_t once every t has its values.
    fn update(&mut self) {
        if self.history.iter().any(|h| h.len() < Self::KEEP) {
            return;
        }
        let w: Vec<f64> = self
            .history
            .iter()
            .map(|h| (h.iter().sum::<f64>() / h.len() as f64).sqrt())
            .collect();
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        self.cdf = w
            .iter()
            .map(|v| {
                acc += v / total;
                acc
            })
            .collect();
    }
}

/// What computes an arm's heads.
pub enum Heads {
    /// A trained network (EMA weights).
    Net(Mlp),
    /// The exact ε* of a score (the oracle's mean in the arm's parameterisation; v = 0).
    Exact(Arc<dyn Score>, Arc<dyn Sde>),
}

/// An arm's model on its chain.
pub struct DdpmModel {
    pub arm: Arm,
    pub chain: Chain,
    pub heads: Heads,
}

/// Trains `arm` on `data` for `cfg.steps` optimiser steps (batches keyed by (seed, step)).
/// A non-finite loss is an error naming the step (the ablation's instability flag).
pub fn train(
    arm: Arm,
    chain: Chain,
    data: &TrainData,
    mut net_cfg: NetConfig,
    cfg: &TrainConfig,
) -> Result<DdpmModel> {
    arm.validate()?;
    cfg.validate()?;
    let d = data.dim();
    net_cfg.dim = d;
    net_cfg.heads = if arm.sigma == Sigma::Learned { 2 } else { 1 };
    let net = EpsNet::init(net_cfg, cfg.seed)?;
    let mut state = OptState::new(net.flat()?);
    let key = KeyedNormal::new(cfg.seed, TRAIN_DOMAIN);
    let cerr = |e: candle_core::Error| Error::Invalid(format!("training: {e}"));
    let b = cfg.batch;
    let od = net.config().out_dim();
    let mut sampler = TSampler::new(chain.len());
    for k in 0..cfg.steps {
        let x0 = data.draw(b, key.rng(u64::MAX, k as u64).random(), TRAIN_DATA_DOMAIN);
        let mut xt = Array2::<f64>::zeros((b, d));
        let mut tgt = Array2::<f64>::zeros((b, d));
        let (mut idx, mut times, mut weight) = (vec![0usize; b], vec![0f64; b], vec![1f64; b]);
        for i in 0..b {
            let mut rng = key.rng(i as u64, k as u64);
            let (t, w) = if arm.importance {
                sampler.draw(rng.random::<f64>())
            } else {
                let u = rng.random::<f64>();
                (
                    1 + ((u * chain.len() as f64) as usize).min(chain.len() - 1),
                    1.0,
                )
            };
            let st = chain.step(t);
            (idx[i], times[i], weight[i]) = (t, st.time, w);
            for c in 0..d {
                let e: f64 = rng.sample(StandardNormal);
                xt[[i, c]] = st.kernel.mean * x0[[i, c]] + st.kernel.std * e;
                tgt[[i, c]] = target(&arm, st, x0[[i, c]], e);
            }
        }
        let input = net.input(xt.view(), &times)?;
        let out = net.forward(&input).map_err(cerr)?;
        let raw: Vec<Vec<f32>> = out.to_vec2().map_err(cerr)?;
        let mut grad = vec![0f32; b * od];
        let mut loss = 0.0;
        for i in 0..b {
            let mut row = 0.0;
            let w = weight[i] / b as f64;
            for c in 0..d {
                let v = if od > d { raw[i][d + c] as f64 } else { 0.0 };
                let (l, g_out, g_v) = term(&arm, &chain, idx[i], raw[i][c] as f64, tgt[[i, c]], v);
                row += l;
                grad[i * od + c] = (g_out * w) as f32;
                if od > d {
                    grad[i * od + d + c] = (g_v * w) as f32;
                }
            }
            loss += row * w;
            if arm.importance {
                sampler.record(idx[i], row);
            }
        }
        if arm.importance {
            sampler.update();
        }
        if !loss.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged: the loss is {loss} at step {k}"
            )));
        }
        let g_t = Tensor::from_vec(grad, (b, od), &Device::Cpu).map_err(cerr)?;
        let surrogate = (out * g_t).and_then(|r| r.sum_all()).map_err(cerr)?;
        let grads = surrogate.backward().map_err(cerr)?;
        let g: Vec<f32> = match grads.get(net.params().as_tensor()) {
            Some(g) => g.to_vec1().map_err(cerr)?,
            None => vec![0.0; state.w.len()],
        };
        let (_, scale) = clip_scale(&g, cfg.grad_clip);
        state.adam(&g, scale, cfg.lr(k) as f32, cfg.ema_decay);
        net.set_flat(&state.w)?;
    }
    Ok(DdpmModel {
        arm,
        chain,
        heads: Heads::Net(Mlp::new(net.arch().clone(), state.ema)),
    })
}

impl DdpmModel {
    /// The head outputs (mean, v) at step t for the rows of `x`.
    fn heads(&self, t: usize, x: ArrayView2<f64>) -> (Array2<f64>, Array2<f64>) {
        let (n, d) = x.dim();
        let st = self.chain.step(t);
        match &self.heads {
            Heads::Net(mlp) => {
                let od = mlp.config().out_dim();
                let mut raw = Array2::<f32>::zeros((n, od));
                mlp.forward(x, Time::Shared(st.time), raw.view_mut());
                let mean = raw.slice(ndarray::s![.., ..d]).mapv(|v| v as f64);
                let v = if od > d {
                    raw.slice(ndarray::s![.., d..]).mapv(|v| v as f64)
                } else {
                    Array2::zeros((n, d))
                };
                (mean, v)
            }
            Heads::Exact(score, sde) => {
                let eps = par_eps(score.as_ref(), sde.as_ref(), Time::Shared(st.time), x);
                let mean = match self.arm.param {
                    Param::Eps => eps,
                    Param::MuTilde => mean_from_eps(st, x, &eps),
                };
                (mean, Array2::zeros((n, d)))
            }
        }
    }

    /// −ELBO per point in nats: `L_T + Σ_t L_{t−1}` over every step with one draw of x_t per
    /// (point, step) keyed by `seed`, always the bound L (whatever the arm trained on).
    pub fn bound(&self, x0: ArrayView2<f64>, seed: u64) -> Array1<f64> {
        let arm = Arm {
            objective: Objective::Bound,
            ..self.arm
        };
        let (n, d) = x0.dim();
        let noise = KeyedNormal::new(seed, crate::elbo::ELBO_DOMAIN);
        let mut total = prior_kl(self.chain.prior, 1.0, x0);
        for t in 1..=self.chain.len() {
            let st = self.chain.step(t);
            let e = noise.matrix(n, d, t as u64);
            let xt = &x0 * st.kernel.mean + &e * st.kernel.std;
            let (mean, v) = self.heads(t, xt.view());
            for i in 0..n {
                for c in 0..d {
                    let tg = target(&arm, st, x0[[i, c]], e[[i, c]]);
                    total[i] += term(&arm, &self.chain, t, mean[[i, c]], tg, v[[i, c]]).0;
                }
            }
        }
        total
    }

    /// Ancestral sampling (Ho et al. Algorithm 2 with this arm's mean and variance): `n` draws
    /// from x_T ~ N(0, I), noise keyed by `seed`.
    pub fn sample(&self, n: usize, d: usize, seed: u64) -> Array2<f64> {
        let noise = KeyedNormal::new(seed, crate::sample::SOLVER_DOMAIN);
        let mut x = KeyedNormal::new(seed, crate::sde::PRIOR_DOMAIN).matrix(n, d, 0);
        for t in (1..=self.chain.len()).rev() {
            let st = self.chain.step(t);
            let (out, v) = self.heads(t, x.view());
            let mu = match self.arm.param {
                Param::MuTilde => out,
                Param::Eps => mean_from_eps(st, x.view(), &out),
            };
            x = if t > 1 {
                let z = noise.matrix(n, d, t as u64);
                let sd = v.mapv(|v| (0.5 * log_var(&self.arm, st, v)).exp());
                mu + &(sd * z)
            } else {
                mu
            };
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ∂term/∂out and ∂term/∂v agree with central differences for every arm, at t = 1 and later.
    #[test]
    fn term_gradients_match_differences() {
        let chain = Chain::new(&VpSde::default(), 100).unwrap();
        for param in [Param::Eps, Param::MuTilde] {
            for (objective, sigma) in [
                (Objective::Bound, Sigma::Beta),
                (Objective::Bound, Sigma::BetaTilde),
                (Objective::Bound, Sigma::Learned),
                (Objective::Mse, Sigma::Beta),
            ] {
                let arm = Arm {
                    param,
                    objective,
                    sigma,
                    importance: false,
                };
                for t in [1, 2, 50, 100] {
                    let (o, tg, v) = (0.3, -0.2, 0.4);
                    let (_, go, gv) = term(&arm, &chain, t, o, tg, v);
                    let h = 1e-6;
                    let num_o = (term(&arm, &chain, t, o + h, tg, v).0
                        - term(&arm, &chain, t, o - h, tg, v).0)
                        / (2.0 * h);
                    let num_v = (term(&arm, &chain, t, o, tg, v + h).0
                        - term(&arm, &chain, t, o, tg, v - h).0)
                        / (2.0 * h);
                    assert!(
                        (num_o - go).abs() < 1e-4 * go.abs().max(1.0),
                        "{arm:?} t={t}: {num_o} vs {go}"
                    );
                    assert!(
                        (num_v - gv).abs() < 1e-4 * gv.abs().max(1.0),
                        "{arm:?} t={t}: {num_v} vs {gv}"
                    );
                }
            }
        }
    }

    /// With the exact posterior mean and σ² = β̃, a step t ≥ 2 of the bound is 0; the ε and μ̃
    /// parameterisations give the same bound term for the same mean.
    #[test]
    fn bound_terms_are_consistent() {
        let chain = Chain::new(&VpSde::default(), 1000).unwrap();
        let arm = |param| Arm {
            param,
            objective: Objective::Bound,
            sigma: Sigma::BetaTilde,
            importance: false,
        };
        let st = chain.step(500);
        assert!(
            term(&arm(Param::MuTilde), &chain, 500, 1.0, 1.0, 0.0)
                .0
                .abs()
                < 1e-12
        );
        // ε off by δ moves the mean by β/(√α s) δ.
        let delta = 0.1;
        let mu_shift = st.beta / (st.alpha.sqrt() * st.kernel.std) * delta;
        let a = term(&arm(Param::Eps), &chain, 500, delta, 0.0, 0.0).0;
        let b = term(&arm(Param::MuTilde), &chain, 500, mu_shift, 0.0, 0.0).0;
        assert!((a - b).abs() < 1e-12 * a.abs().max(1.0), "{a} vs {b}");
    }

    /// The importance sampler: uniform until every t has its 10 values, then p_t ∝ √E[L_t²]
    /// with weight 1/(T p_t) (an unbiased estimate of the mean term).
    #[test]
    fn importance_sampler_follows_root_mean_square_losses() {
        let mut ts = TSampler::new(4);
        assert_eq!(ts.draw(0.6), (3, 1.0));
        for _ in 0..TSampler::KEEP {
            for t in 1..=4 {
                ts.record(t, t as f64);
            }
            ts.update();
        }
        let (t, w) = ts.draw(0.05);
        assert_eq!(t, 1);
        assert!((w - 2.5).abs() < 1e-12, "{w}");
        let (t, w) = ts.draw(0.95);
        assert_eq!(t, 4);
        assert!((w - 0.625).abs() < 1e-12, "{w}");
    }
}
