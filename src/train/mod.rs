//! Denoising score matching (Vincent 2011; Song et al. 2021 eq. 7; Ho et al. 2020's
//! Algorithm 1 on a discrete grid): `x_t = m(t) x₀ + s(t) ε`, the network regresses its target
//! (ε, x₀, v or the score) and the loss is the ε-MSE `J² ‖out − target‖²`
//! ([`crate::score::convert::Prediction::eps_jacobian`]), averaged over coordinates.
//!
//! A step runs each 256-row block's forward pass, loss gradient and backward pass as one pass
//! ([`crate::nn::Arch::train_batch`]), the gradient rounded as candle's autograd rounds it.
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
use crate::nn::{Arch, EpsNet};
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
        // Element-wise, so the chunks run in parallel with the same result.
        let c = ADAM_CHUNK;
        self.w
            .par_chunks_mut(c)
            .zip(self.m.par_chunks_mut(c))
            .zip(self.v.par_chunks_mut(c))
            .zip(self.ema.par_chunks_mut(c))
            .zip(g.par_chunks(c))
            .for_each(|((((w, m), v), e), g)| {
                let it = w.iter_mut().zip(m).zip(v).zip(e).zip(g);
                for ((((w, m), v), e), &gi) in it {
                    let gi = gi * scale;
                    *m = ADAM_B1 * *m + (1.0 - ADAM_B1) * gi;
                    *v = ADAM_B2 * *v + (1.0 - ADAM_B2) * gi * gi;
                    *w -= lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
                    *e = decay * *e + (1.0 - decay) * *w;
                }
            });
    }
}

/// Parameters per parallel task of the Adam step.
const ADAM_CHUNK: usize = 1 << 13;

/// Partial sums of the squared-gradient norm, kept apart so the sum vectorises: element i goes
/// to sum i mod `NORM_LANES`, and the sums meet in a fixed pairwise tree (the same value on
/// every CPU).
const NORM_LANES: usize = 32;

/// Global-norm clipping: the gradient's norm and the factor that brings it to `clip` (1 when
/// `clip` is 0 or not exceeded).
pub fn clip_scale(g: &[f32], clip: f64) -> (f64, f32) {
    let mut acc = [0f64; NORM_LANES];
    let chunks = g.chunks_exact(NORM_LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v as f64) * (v as f64);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rest) {
        *a += (v as f64) * (v as f64);
    }
    let mut half = NORM_LANES;
    while half > 1 {
        half /= 2;
        let (lo, hi) = acc.split_at_mut(half);
        lo.iter_mut().zip(&hi[..half]).for_each(|(a, &b)| *a += b);
    }
    let norm = acc[0].sqrt();
    let scale = if clip > 0.0 && norm > clip {
        (clip / norm) as f32
    } else {
        1.0
    };
    (norm, scale)
}

/// The loss `mean over rows and coordinates of w_i (out − target)²`, as candle computes it
/// (the value written to `loss.csv`).
fn weighted_mse(
    out: Vec<f32>,
    target: Vec<f32>,
    weight: Vec<f32>,
    (b, d): (usize, usize),
) -> candle_core::Result<f32> {
    let out = Tensor::from_vec(out, (b, d), &Device::Cpu)?;
    let target = Tensor::from_vec(target, (b, d), &Device::Cpu)?;
    let weight = Tensor::from_vec(weight, (b, 1), &Device::Cpu)?;
    (out - target)?
        .sqr()?
        .broadcast_mul(&weight)?
        .mean_all()?
        .to_scalar()
}

/// `∂L/∂out` of [`weighted_mse`] for the rows of `out` (`d` columns; `target` and `weight`
/// start at the same row; `n` = b·d elements in the mean): `2 (out − target) w_i / n`, rounded
/// as candle's autograd rounds it — `((r · (c w_i)) · 2) + 0` with `c = f32(1/n)` (the mean's
/// affine, the broadcast product, the square's `affine(2, 0)`) — so a step takes the gradient
/// candle would.
fn loss_grad(out: &[f32], target: &[f32], weight: &[f32], d: usize, n: usize, g: &mut [f32]) {
    let c = (1.0 / n as f64) as f32;
    let rows = out.chunks_exact(d).zip(target.chunks_exact(d));
    for (((o, t), gr), &w) in rows.zip(g.chunks_exact_mut(d)).zip(weight) {
        let cw = c * w;
        for ((gv, &ov), &tv) in gr.iter_mut().zip(o).zip(t) {
            *gv = ((ov - tv) * cw) * 2.0 + 0.0;
        }
    }
}

/// A training run in memory.
pub struct Trainer {
    pub cfg: RunConfig,
    sde: Arc<dyn Sde>,
    data: TrainData,
    levels: Levels,
    arch: Arc<Arch>,
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
        Self::with_state(cfg, data, net.arch().clone(), state, vec![])
    }

    pub(crate) fn with_state(
        cfg: RunConfig,
        data: TrainData,
        arch: Arc<Arch>,
        state: OptState,
        history: Vec<LossRecord>,
    ) -> Result<Self> {
        cfg.train.validate()?;
        cfg.net.validate()?;
        if arch.cfg != cfg.net {
            return Err(invalid!(
                "the network's architecture is not the one the run's config describes"
            ));
        }
        let total = arch.layout().total;
        if [&state.w, &state.m, &state.v, &state.ema]
            .iter()
            .any(|b| b.len() != total)
        {
            return Err(Error::Data(format!(
                "the optimiser state does not hold the network's {total} parameters"
            )));
        }
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
            arch,
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

    pub fn arch(&self) -> &Arc<Arch> {
        &self.arch
    }

    /// Learning rate at optimiser step k (0-based) ([`TrainConfig::lr`]).
    pub fn lr(&self, k: usize) -> f64 {
        self.cfg.train.lr(k)
    }

    /// The batch of step k: network input rows, target and per-row ε-MSE weight. Rows are
    /// keyed by (seed, step, row), so they are built in parallel with the same result. A
    /// conditional run's row keeps its class with probability 1 − p and sees the null class
    /// otherwise.
    fn batch(&self, k: usize) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
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
        let input = crate::nn::input_rows(&self.arch.features, xt.view(), &ts, Some(&labels));
        Ok((input, target, weight))
    }

    /// One optimiser step; returns its record.
    pub fn step(&mut self) -> Result<LossRecord> {
        let k = self.state.step;
        let (input, target, weight) = self.batch(k)?;
        let (b, d) = (self.cfg.train.batch, self.cfg.net.dim);
        let g_out = |row0: usize, out: &[f32], g: &mut [f32]| {
            loss_grad(out, &target[row0 * d..], &weight[row0..], d, b * d, g)
        };
        let (out, g) = self.arch.train_batch(&self.state.w, &input, b, g_out);
        let loss_value = weighted_mse(out, target, weight, (b, d)).map_err(cerr)?;
        if !loss_value.is_finite() {
            return Err(Error::Invalid(format!(
                "training diverged: the loss is {loss_value} at step {k} (lower `lr` or keep gradient clipping on)"
            )));
        }
        let (norm, scale) = clip_scale(&g, self.cfg.train.grad_clip);
        let lr = self.lr(k);
        self.adam(&g, scale, lr as f32);
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
            self.arch.clone(),
            self.state.ema.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::NetConfig;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Random rows: `n × w` values in [−2, 2) and some exact zeros.
    fn rows(n: usize, w: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n * w)
            .map(|i| match i % 17 {
                0 => 0.0,
                _ => rng.random_range(-2.0f32..2.0),
            })
            .collect()
    }

    /// The fused pass (`Arch::train_batch` with `loss_grad`) gives the gradient and loss that
    /// candle's autograd gives through the network op, bit for bit: batches of one partial
    /// block, one, and several blocks, plain and residual networks, d = 1, 2 and 3.
    #[test]
    fn fused_step_equals_candle_autograd() {
        for (n, d, hidden, residual) in [
            (37, 2, 24, false),
            (256, 1, 16, true),
            (700, 3, 40, true),
            (1024, 2, 64, false),
        ] {
            let cfg = NetConfig {
                dim: d,
                hidden,
                layers: 3,
                time_dim: 8,
                fourier: 4,
                residual,
                ..NetConfig::default()
            };
            let net = EpsNet::init(cfg, n as u64).unwrap();
            let p = net.flat().unwrap();
            let w = net.arch().features.width();
            let input = rows(n, w, 1);
            let target = rows(n, d, 2);
            let weight: Vec<f32> = rows(n, 1, 3).iter().map(|v| v.abs() * 3.0).collect();

            let dev = &Device::Cpu;
            let x = Tensor::from_vec(input.clone(), (n, w), dev).unwrap();
            let out = net.forward(&x).unwrap();
            let loss = (out.clone() - Tensor::from_vec(target.clone(), (n, d), dev).unwrap())
                .and_then(|r| r.sqr())
                .and_then(|r| r.broadcast_mul(&Tensor::from_vec(weight.clone(), (n, 1), dev)?))
                .and_then(|r| r.mean_all())
                .unwrap();
            let grads = loss.backward().unwrap();
            let g_candle: Vec<f32> = grads
                .get(net.params().as_tensor())
                .unwrap()
                .to_vec1()
                .unwrap();
            let out_candle: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();

            let g_out = |row0: usize, o: &[f32], g: &mut [f32]| {
                loss_grad(o, &target[row0 * d..], &weight[row0..], d, n * d, g)
            };
            let (out_fused, g_fused) = net.arch().train_batch(&p, &input, n, g_out);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out_fused), bits(&out_candle), "output, n = {n}");
            assert_eq!(bits(&g_fused), bits(&g_candle), "gradient, n = {n}");
            let l = weighted_mse(out_fused, target.clone(), weight.clone(), (n, d)).unwrap();
            assert_eq!(l.to_bits(), loss.to_scalar::<f32>().unwrap().to_bits());
        }
    }

    /// The norm's lanes: every element counted once, whatever the length.
    #[test]
    fn clip_norm_counts_every_element() {
        for len in [0, 1, 31, 32, 33, 1000] {
            let g: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
            let exact: f64 = g.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let (norm, scale) = clip_scale(&g, 1.0);
            assert_eq!(norm, exact.sqrt(), "len {len}");
            assert_eq!(scale == 1.0, exact <= 1.0);
        }
    }
}
