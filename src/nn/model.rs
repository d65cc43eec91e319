//! The ε-network in candle: parameters as `Var`s, a forward pass for training, conversion to and
//! from named tensors (safetensors checkpoints) and to the ndarray inference path.

use super::{param_names, silu, Activation, Mlp, NetConfig, TimeEmbedding};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::HashMap;

/// Seed domain of weight initialisation.
const INIT_DOMAIN: u64 = 0x1A17;

/// An MLP `[x, emb(t)] → hidden^L → d` whose weights are candle `Var`s (weights stored
/// `fan_in × fan_out`, so a layer is `h W + b`).
pub struct EpsNet {
    cfg: NetConfig,
    emb: TimeEmbedding,
    /// `[W₀, b₀, W₁, b₁, …, W_out, b_out]`.
    vars: Vec<Var>,
}

fn cerr(what: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("{what}: {e}"))
}

impl EpsNet {
    /// Fresh weights: PyTorch's `nn.Linear` default, `U(−1/√fan_in, 1/√fan_in)` for weights and
    /// biases, drawn from a generator keyed by `seed` (candle's own initialisers are not seeded).
    pub fn init(cfg: NetConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ INIT_DOMAIN.rotate_left(32));
        let mut vars = Vec::new();
        for (fan_in, fan_out) in cfg.layer_shapes() {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut draw = |n: usize| -> Vec<f32> {
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            let w = draw(fan_in * fan_out);
            let b = draw(fan_out);
            let dev = &Device::Cpu;
            vars.push(Var::from_vec(w, (fan_in, fan_out), dev).map_err(cerr("init"))?);
            vars.push(Var::from_vec(b, fan_out, dev).map_err(cerr("init"))?);
        }
        Ok(Self {
            emb: TimeEmbedding::new(cfg.time_dim),
            cfg,
            vars,
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The network input `[x, emb(t_i)]` as an `n × (d + E)` f32 tensor.
    pub fn input(&self, x: ArrayView2<f64>, t: &[f64]) -> Result<Tensor> {
        let (d, e) = (self.cfg.dim, self.cfg.time_dim);
        let mut buf = vec![0f32; x.nrows() * (d + e)];
        for ((row, xr), &ti) in buf.chunks_exact_mut(d + e).zip(x.rows()).zip(t) {
            for (o, &v) in row[..d].iter_mut().zip(xr) {
                *o = v as f32;
            }
            self.emb.fill(ti, &mut row[d..]);
        }
        Tensor::from_vec(buf, (x.nrows(), d + e), &Device::Cpu).map_err(cerr("input"))
    }

    /// Forward pass on an input built by [`EpsNet::input`].
    pub fn forward(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        let n = self.vars.len() / 2;
        let mut h = input.clone();
        for i in 0..n {
            let (w, b) = (
                self.vars[2 * i].as_tensor(),
                self.vars[2 * i + 1].as_tensor(),
            );
            h = h.matmul(w)?.broadcast_add(b)?;
            if i + 1 < n {
                h = match self.cfg.activation {
                    Activation::Silu => silu(&h)?,
                    Activation::Relu => h.relu()?,
                };
            }
        }
        Ok(h)
    }

    /// Rebuilds a network from named tensors, checking every name, shape and dtype against `cfg`.
    pub fn from_tensors(
        cfg: NetConfig,
        mut map: HashMap<String, Tensor>,
        what: &str,
    ) -> Result<Self> {
        cfg.validate()?;
        let mut vars = Vec::new();
        for (i, (fan_in, fan_out)) in cfg.layer_shapes().into_iter().enumerate() {
            for (name, shape) in param_names(i)
                .into_iter()
                .zip([vec![fan_in, fan_out], vec![fan_out]])
            {
                let t = map
                    .remove(&name)
                    .ok_or_else(|| Error::Data(format!("{what}: tensor '{name}' is missing")))?;
                if t.dims() != shape.as_slice() || t.dtype() != DType::F32 {
                    return Err(Error::Data(format!(
                        "{what}: tensor '{name}' is {:?} {:?}, the config expects F32 {shape:?}",
                        t.dtype(),
                        t.dims()
                    )));
                }
                vars.push(Var::from_tensor(&t).map_err(cerr(what))?);
            }
        }
        if let Some(extra) = map.keys().next() {
            return Err(Error::Data(format!(
                "{what}: unexpected tensor '{extra}' (a checkpoint of another architecture?)"
            )));
        }
        Ok(Self {
            emb: TimeEmbedding::new(cfg.time_dim),
            cfg,
            vars,
        })
    }

    /// Overwrites the weights with `tensors` (same order as [`EpsNet::vars`]).
    pub fn set(&self, tensors: &[Tensor]) -> Result<()> {
        for (v, t) in self.vars.iter().zip(tensors) {
            v.set(t).map_err(cerr("set weights"))?;
        }
        Ok(())
    }

    /// The ndarray inference copy of the current weights.
    pub fn mlp(&self) -> Result<Mlp> {
        mlp_from(&self.cfg, self.vars.iter().map(|v| v.as_tensor()))
    }
}

/// Pairs tensors in `[W₀, b₀, …]` order with their safetensors names.
pub fn named(tensors: impl Iterator<Item = Tensor>) -> Vec<(String, Tensor)> {
    tensors
        .enumerate()
        .map(|(j, t)| (param_names(j / 2)[j % 2].clone(), t))
        .collect()
}

/// An [`Mlp`] from tensors in `[W₀, b₀, …]` order.
pub fn mlp_from<'a>(cfg: &NetConfig, tensors: impl Iterator<Item = &'a Tensor>) -> Result<Mlp> {
    let mut layers = Vec::new();
    let ts: Vec<&Tensor> = tensors.collect();
    for (i, (fan_in, fan_out)) in cfg.layer_shapes().into_iter().enumerate() {
        let w: Vec<f32> = ts[2 * i]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(cerr("weights"))?;
        let b: Vec<f32> = ts[2 * i + 1].to_vec1().map_err(cerr("weights"))?;
        let w = Array2::from_shape_vec((fan_in, fan_out), w)
            .map_err(|e| Error::Invalid(format!("weights: {e}")))?;
        layers.push((w, Array1::from(b)));
    }
    Ok(Mlp::new(cfg.clone(), layers))
}
