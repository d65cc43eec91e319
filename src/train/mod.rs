//! Denoising score matching in candle (Vincent 2011; Song et al. 2021 eq. 7; Ho et al. 2020's
//! Algorithm 1 on a discrete grid): `x_t = m(t) x₀ + s(t) ε`, the network regresses its target
//! (ε, x₀, v or the score) and the loss is the ε-MSE `J² ‖out − target‖²`
//! ([`crate::score::convert::Prediction::eps_jacobian`]), averaged over coordinates.
//!
//! Adam (Kingma & Ba 2015) with linear warm-up, global-norm gradient clipping and an EMA of the
//! weights run as one fused loop over flat f32 buffers, so the optimiser state is plain data that
//! checkpoints exactly. Every batch is keyed by (seed, step): a resumed run draws what an
//! uninterrupted one would, and the same seed gives the same weights bit for bit.

mod checkpoint;
mod config;
mod data;
pub mod ddpm;
pub mod eval;

pub use checkpoint::{load_model, LossRecord, RunDir, RunLock};
pub use config::{LrSchedule, RunConfig, TrainConfig, Weighting};
pub use data::TrainData;

use crate::ddpm::DiscreteSchedule;
use crate::nn::EpsNet;
use crate::path::PathPoint;
use crate::sde::{Marginal, Sde, SdeKind, VpSde};
use crate::{invalid, Error, Result};
use candle_core::{Device, Tensor};
use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use scoresde_solvers::KeyedNormal;
use std::sync::Arc;

/// Seed domain of training batches (noise levels and ε).
pub const TRAIN_DOMAIN: u64 = crate::domain::Domain::Train.key();
/// Seed domain of training data draws.
pub const TRAIN_DATA_DOMAIN: u64 = crate::domain::Domain::TrainData.key();

const ADAM_B1: f32 = 0.9;
const ADAM_B2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;

/// How training draws noise levels.
#[derive(Clone, Debug)]
enum Levels {
    /// t ~ U(t_eps, T).
    Uniform { t0: f64, t1: f64 },
    /// −log SNR(t) ~ U: density ∝ g²/σ² (likelihood weighting by importance sampling).
    LogSnr { l0: f64, l1: f64 },
    /// t = t0 + (t1 − t0) sigmoid(n), n ~ N(0, 1).
    LogitNormal { t0: f64, t1: f64 },
    /// i ~ U{1..N} on DDPM's grid, with the discrete ᾱ_i.
    Discrete(DiscreteSchedule),
}

impl Levels {
    fn new(sde: &dyn Sde, cfg: &RunConfig) -> Result<Self> {
        let t = &cfg.train;
        if let Some(n) = t.discrete {
            if cfg.sde.kind != SdeKind::Vp {
                return Err(invalid!(
                    "discrete training needs the VP SDE (got {})",
                    sde.name()
                ));
            }
            let vp = VpSde {
                schedule: cfg.sde.beta_schedule()?,
            };
            return Ok(Levels::Discrete(DiscreteSchedule::from_vp(&vp, n)?));
        }
        Ok(match t.weighting {
            Weighting::Simple => Levels::Uniform {
                t0: t.t_eps,
                t1: sde.t_max(),
            },
            Weighting::Likelihood => {
                let (l0, l1) = (sde.log_snr(t.t_eps), sde.log_snr(sde.t_max()));
                if !(l0.is_finite() && l1.is_finite()) {
                    return Err(invalid!(
                        "likelihood weighting draws uniform log-SNR, which is infinite at the ends of the {} path (m = 0 or s = 0): use weighting simple or logit-normal",
                        sde.name()
                    ));
                }
                Levels::LogSnr { l0, l1 }
            }
            Weighting::LogitNormal => Levels::LogitNormal {
                t0: t.t_eps,
                t1: sde.t_max(),
            },
        })
    }

    /// (network time, kernel) for a uniform draw u ∈ [0, 1).
    fn draw(&self, sde: &dyn Sde, u: f64) -> (f64, Marginal) {
        match self {
            Levels::Uniform { t0, t1 } => {
                let t = t0 + u * (t1 - t0);
                (t, sde.marginal(t))
            }
            Levels::LogSnr { l0, l1 } => {
                let t = sde.t_of_log_snr(l0 + u * (l1 - l0));
                (t, sde.marginal(t))
            }
            Levels::LogitNormal { t0, t1 } => {
                use statrs::distribution::ContinuousCDF;
                let n = statrs::distribution::Normal::standard()
                    .inverse_cdf(u.clamp(1e-12, 1.0 - 1e-12));
                let t = t0 + (t1 - t0) / (1.0 + (-n).exp());
                (t, sde.marginal(t))
            }
            Levels::Discrete(s) => {
                let i = 1 + ((u * s.len() as f64) as usize).min(s.len() - 1);
                (s.time(i), s.marginal(i))
            }
        }
    }
}

/// Optimiser state over flat f32 buffers in the network's parameter layout
/// ([`crate::nn::kernel::ParamLayout`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OptState {
    pub step: usize,
    pub w: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub ema: Vec<f32>,
}

impl OptState {
    /// A fresh state at the weights `w` (EMA starts there).
    pub fn new(w: Vec<f32>) -> Self {
        Self {
            step: 0,
            ema: w.clone(),
            m: vec![0.0; w.len()],
            v: vec![0.0; w.len()],
            w,
        }
    }

    /// One Adam step (gradient `g` × `scale`) and the EMA update, in one pass over the buffers;
    /// the EMA decay is ramped as min(decay, (1 + k)/(10 + k)).
    pub fn adam(&mut self, g: &[f32], scale: f32, lr: f32, ema_decay: f64) {
        self.step += 1;
        let t = self.step as i32;
        let c1 = 1.0 - ADAM_B1.powi(t);
        let c2 = 1.0 - ADAM_B2.powi(t);
        let decay = (ema_decay as f32).min((1 + t) as f32 / (10 + t) as f32);
        let it = self
            .w
            .iter_mut()
            .zip(&mut self.m)
            .zip(&mut self.v)
            .zip(&mut self.ema)
            .zip(g);
        for ((((w, m), v), e), &gi) in it {
            let gi = gi * scale;
            *m = ADAM_B1 * *m + (1.0 - ADAM_B1) * gi;
            *v = ADAM_B2 * *v + (1.0 - ADAM_B2) * gi * gi;
            *w -= lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
            *e = decay * *e + (1.0 - decay) * *w;
        }
    }
}

/// Global-norm clipping: the gradient's norm and the factor that brings it to `clip` (1 when
/// `clip` is 0 or not exceeded).
pub fn clip_scale(g: &[f32], clip: f64) -> (f64, f32) {
    let norm = g
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt();
    let scale = if clip > 0.0 && norm > clip {
        (clip / norm) as f32
    } else {
        1.0
    };
    (norm, scale)
}

/// A training run in memory.
pub struct Trainer {
    pub cfg: RunConfig,
    sde: Arc<dyn Sde>,
    data: TrainData,
    levels: Levels,
    net: EpsNet,
    pub state: OptState,
    pub history: Vec<LossRecord>,
}

fn cerr(e: candle_core::Error) -> Error {
    Error::Invalid(format!("training: {e}"))
}

impl Trainer {
    /// A fresh run. Fills in the data dimension and resolves VE's σ_max, so that the saved
    /// config rebuilds exactly this run.
    pub fn new(mut cfg: RunConfig) -> Result<Self> {
        let data = TrainData::from_spec(&cfg.data)?;
        // A data file is recorded by its absolute path, so the run works from any directory.
        if std::path::Path::new(&cfg.data).is_file() {
            if let Ok(abs) = std::fs::canonicalize(&cfg.data) {
                cfg.data = abs.display().to_string();
            }
        }
        Self::fresh(cfg, data)
    }

    /// A fresh run on points held in memory (resampled uniformly with replacement, as a CSV
    /// of points is); `cfg.data` names them. Such a run trains and evaluates in memory; saved,
    /// it cannot be resumed (its data are not on disk).
    pub fn on_points(mut cfg: RunConfig, name: &str, x: Array2<f64>) -> Result<Self> {
        if x.nrows() == 0 || x.iter().any(|v| !v.is_finite()) {
            return Err(invalid!(
                "training points must be at least one row of finite values"
            ));
        }
        cfg.data = name.to_string();
        let data = TrainData::Points {
            name: name.to_string(),
            x,
        };
        Self::fresh(cfg, data)
    }

    fn fresh(mut cfg: RunConfig, data: TrainData) -> Result<Self> {
        if cfg.net.dim == 0 {
            cfg.net.dim = data.dim();
        } else if cfg.net.dim != data.dim() {
            return Err(invalid!(
                "net.dim = {} but the data '{}' has dimension {}",
                cfg.net.dim,
                cfg.data,
                data.dim()
            ));
        }
        if cfg.train.conditional {
            let names = data
                .class_names()
                .ok_or_else(|| data::no_classes(data.name()))?;
            if cfg.net.classes.is_empty() {
                cfg.net.classes = names.to_vec();
            } else if cfg.net.classes != names {
                return Err(invalid!(
                    "net.classes = [{}] but the data '{}' has the classes [{}]",
                    cfg.net.classes.join(", "),
                    cfg.data,
                    names.join(", ")
                ));
            }
        }
        cfg.sde = cfg.sde.resolved(|| data.diameter());
        if cfg.net.sigma_data == 0.0 {
            cfg.net.sigma_data = data.std();
        }
        let net = EpsNet::init(cfg.net.clone(), cfg.train.seed)?;
        let state = OptState::new(net.flat()?);
        Self::with_state(cfg, data, net, state, vec![])
    }

    pub(crate) fn with_state(
        cfg: RunConfig,
        data: TrainData,
        net: EpsNet,
        state: OptState,
        history: Vec<LossRecord>,
    ) -> Result<Self> {
        cfg.train.validate()?;
        cfg.net.validate()?;
        if cfg.net.heads != 1 {
            return Err(invalid!(
                "net.heads = {} is for the DDPM objectives with a learned variance (train::ddpm); denoising score matching trains one head",
                cfg.net.heads
            ));
        }
        if cfg.train.conditional == cfg.net.classes.is_empty() {
            return Err(invalid!(
                "a conditional run needs the network's classes and an unconditional one none (train.conditional = {}, {} net.classes)",
                cfg.train.conditional,
                cfg.net.classes.len()
            ));
        }
        let sde = cfg.sde.build(|| data.diameter())?;
        let levels = Levels::new(sde.as_ref(), &cfg)?;
        Ok(Self {
            cfg,
            sde,
            data,
            levels,
            net,
            state,
            history,
        })
    }

    pub fn sde(&self) -> &Arc<dyn Sde> {
        &self.sde
    }

    pub fn data(&self) -> &TrainData {
        &self.data
    }

    pub fn net(&self) -> &EpsNet {
        &self.net
    }

    /// Learning rate at optimiser step k (0-based) ([`TrainConfig::lr`]).
    pub fn lr(&self, k: usize) -> f64 {
        self.cfg.train.lr(k)
    }

    /// The batch of step k: network input, target and per-row ε-MSE weight. Rows are keyed by
    /// (seed, step, row), so they are built in parallel with the same result. A conditional
    /// run's row keeps its class with probability 1 − p and sees the null class otherwise.
    fn batch(&self, k: usize) -> Result<(Tensor, Tensor, Tensor)> {
        let b = self.cfg.train.batch;
        let d = self.cfg.net.dim;
        let (pred, sd) = (self.cfg.net.prediction, self.cfg.net.sigma_data);
        let key = KeyedNormal::new(self.cfg.train.seed, TRAIN_DOMAIN);
        let data_seed = key.rng(u64::MAX, k as u64).random();
        let (x0, classes) = if self.cfg.train.conditional {
            let (x, c) = self.data.draw_labelled(b, data_seed, TRAIN_DATA_DOMAIN)?;
            (x, Some(c))
        } else {
            (self.data.draw(b, data_seed, TRAIN_DATA_DOMAIN), None)
        };
        let dropout = self.cfg.train.label_dropout;
        let mut labels: Vec<Option<usize>> = vec![None; b];
        let mut xt = Array2::<f64>::zeros((b, d));
        let mut target = vec![0f32; b * d];
        let (mut ts, mut weight) = (vec![0f64; b], vec![0f32; b]);
        xt.axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .zip(target.par_chunks_mut(d))
            .zip(ts.par_iter_mut().zip(weight.par_iter_mut()))
            .zip(labels.par_iter_mut())
            .enumerate()
            .for_each(|(i, (((mut xr, tr), (t, w)), label))| {
                let mut rng = key.rng(i as u64, k as u64);
                let (ti, kern) = self.levels.draw(self.sde.as_ref(), rng.random::<f64>());
                let pt = PathPoint::new(kern, self.sde.rates(ti));
                let j = pred.eps_jacobian(pt, sd);
                let scale = pred.input_scale(pt, sd);
                (*t, *w) = (ti, (j * j) as f32);
                for c in 0..d {
                    let e: f64 = rng.sample(StandardNormal);
                    let x0c = x0[[i, c]];
                    xr[c] = scale * pt.noised(x0c, e);
                    tr[c] = pred.target(x0c, e, pt, sd) as f32;
                }
                if let Some(classes) = &classes {
                    // Drawn after the row's ε, so an unconditional run's stream is unchanged.
                    let keep = rng.random::<f64>() >= dropout;
                    *label = keep.then_some(classes[i]);
                }
            });
        let input = self.net.input_labelled(xt.view(), &ts, Some(&labels))?;
        let target = Tensor::from_vec(target, (b, d), &Device::Cpu).map_err(cerr)?;
        let weight = Tensor::from_vec(weight, (b, 1), &Device::Cpu).map_err(cerr)?;
        Ok((input, target, weight))
    }

    /// One optimiser step; returns its record.
    pub fn step(&mut self) -> Result<LossRecord> {
        let k = self.state.step;
        let (input, target, weight) = self.batch(k)?;
        let out = self.net.forward(&input).map_err(cerr)?;
        let loss = (out - target)
            .and_then(|r| r.sqr())
            .and_then(|r| r.broadcast_mul(&weight))
            .and_then(|r| r.mean_all())
            .map_err(cerr)?;
        let loss_value: f32 = loss.to_scalar().map_err(cerr)?;
        if !loss_value.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged: the loss is {loss_value} at step {k} (lower `lr` or keep gradient clipping on)"
            )));
        }
        let grads = loss.backward().map_err(cerr)?;
        let g: Vec<f32> = match grads.get(self.net.params().as_tensor()) {
            Some(g) => g.to_vec1().map_err(cerr)?,
            None => vec![0.0; self.state.w.len()],
        };
        let (norm, scale) = clip_scale(&g, self.cfg.train.grad_clip);
        let lr = self.lr(k);
        self.adam(&g, scale, lr as f32);
        self.net.set_flat(&self.state.w)?;
        let rec = LossRecord {
            step: k + 1,
            loss: loss_value as f64,
            lr,
            grad_norm: norm,
        };
        self.history.push(rec);
        Ok(rec)
    }

    fn adam(&mut self, g: &[f32], scale: f32, lr: f32) {
        self.state.adam(g, scale, lr, self.cfg.train.ema_decay);
    }

    /// Steps to `cfg.train.steps`, saving into `dir` every `checkpoint_every` steps and at the
    /// end; `on_step` sees every record (progress bars). The directory is created up front (an
    /// unwritable location fails before any work) and removed again if the run fails before
    /// its first checkpoint.
    pub fn run_to_end(&mut self, dir: &RunDir, on_step: impl FnMut(&LossRecord)) -> Result<()> {
        let created = !dir.path.exists();
        std::fs::create_dir_all(&dir.path).map_err(|e| Error::io(&dir.path, e))?;
        let result = self.steps_and_saves(dir, on_step);
        if result.is_err() && created {
            // Only succeeds while the directory is still empty.
            let _ = std::fs::remove_dir(&dir.path);
        }
        result
    }

    fn steps_and_saves(
        &mut self,
        dir: &RunDir,
        mut on_step: impl FnMut(&LossRecord),
    ) -> Result<()> {
        let (total, every) = (self.cfg.train.steps, self.cfg.train.checkpoint_every);
        while self.state.step < total {
            crate::interrupt::check(Ok(()))?;
            // On a worker of the rayon pool: the step's parallel regions are then joins from
            // inside the pool, not hand-offs from this thread to it and back.
            let rec = rayon::scope(|_| self.step())?;
            on_step(&rec);
            if rec.step % every == 0 && rec.step < total {
                dir.save(self)?;
            }
        }
        dir.save(self)
    }

    /// Mean loss of the last `k` steps.
    pub fn recent_loss(&self, k: usize) -> f64 {
        let tail = &self.history[self.history.len().saturating_sub(k.max(1))..];
        tail.iter().map(|r| r.loss).sum::<f64>() / tail.len().max(1) as f64
    }

    /// The EMA weights as an inference network.
    pub fn ema_mlp(&self) -> Result<crate::nn::Mlp> {
        Ok(crate::nn::Mlp::new(
            self.net.arch().clone(),
            self.state.ema.clone(),
        ))
    }
}
