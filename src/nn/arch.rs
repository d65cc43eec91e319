//! A network's architecture as one value: its config, input features (with the Fourier
//! projection) and body; whole-batch forward and backward passes in parallel blocks; and the
//! mapping between the flat parameter buffer and named safetensors tensors.

use super::features::{Features, Fourier};
use super::kernel::{give_back, spare, Body, Cache, ParamLayout, BLOCK};
use super::NetConfig;
use super::TimeEmbedding;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use std::collections::HashMap;

/// Gradient elements summed per parallel task.
const SUM_CHUNK: usize = 1 << 14;

/// Safetensors name of the Fourier projection `B` (d × F).
pub const FOURIER_NAME: &str = "fourier.b";

/// Safetensors names of the weight and bias of layer `i` (the output layer is the last).
pub fn param_names(i: usize) -> [String; 2] {
    [format!("layers.{i}.weight"), format!("layers.{i}.bias")]
}

#[derive(Clone, Debug)]
pub struct Arch {
    pub cfg: NetConfig,
    pub features: Features,
    pub body: Body,
}

impl Arch {
    /// The architecture of `cfg` with a given projection (`None` when `cfg.fourier == 0`).
    pub fn new(cfg: NetConfig, fourier: Option<Fourier>) -> Result<Self> {
        cfg.validate()?;
        match (&fourier, cfg.fourier) {
            (None, 0) => {}
            (Some(f), n) if f.d == cfg.dim && f.f == n && f.b.len() == n * cfg.dim => {}
            _ => {
                return Err(Error::Data(format!(
                    "the Fourier projection does not match the config (fourier = {}, dim = {})",
                    cfg.fourier, cfg.dim
                )))
            }
        }
        let features = Features::new(
            cfg.dim,
            TimeEmbedding::new(cfg.time_dim, cfg.time_scale),
            fourier,
            cfg.label_width(),
        );
        let body = Body {
            layout: ParamLayout::new(cfg.layer_shapes()),
            act: cfg.activation,
            residual: cfg.residual,
        };
        Ok(Self {
            cfg,
            features,
            body,
        })
    }

    /// A fresh architecture: the projection drawn from `seed`.
    pub fn init(cfg: NetConfig, seed: u64) -> Result<Self> {
        let fourier =
            (cfg.fourier > 0).then(|| Fourier::draw(cfg.dim, cfg.fourier, cfg.fourier_scale, seed));
        Self::new(cfg, fourier)
    }

    pub fn layout(&self) -> &ParamLayout {
        &self.body.layout
    }

    /// Forward pass of `n` input rows (`n × width`); the output (`n × d`) and, with `keep`,
    /// every block's activations.
    pub fn forward_batch(
        &self,
        p: &[f32],
        input: &[f32],
        n: usize,
        keep: bool,
    ) -> (Vec<f32>, Vec<Cache>) {
        let (w, d) = (self.features.width(), self.cfg.out_dim());
        assert!(
            input.len() == n * w && p.len() == self.layout().total,
            "train_batch: input or parameters do not fit the architecture"
        );
        let mut out = vec![0f32; n * d];
        let panels = self.body.pack(p);
        let b0 = self.layout().b(p, 0);
        let caches: Vec<Cache> = out
            .par_chunks_mut(BLOCK * d)
            .zip(input.par_chunks(BLOCK * w))
            .map(|(o, x)| {
                let rows = x.len() / w;
                self.body
                    .forward(p, &panels[0], &panels, x, b0, rows, o, keep)
            })
            .collect();
        (out, caches)
    }

    /// `∂L/∂θ` (flat) from the caches of [`Arch::forward_batch`] and `g = ∂L/∂out`: each
    /// block's gradient in parallel, summed in block order.
    pub fn backward_batch(
        &self,
        p: &[f32],
        input: &[f32],
        caches: &[Cache],
        g: &[f32],
    ) -> Vec<f32> {
        let (w, d) = (self.features.width(), self.cfg.out_dim());
        let parts: Vec<Vec<f32>> = input
            .par_chunks(BLOCK * w)
            .zip(g.par_chunks(BLOCK * d))
            .zip(caches.par_iter())
            .map(|((x, gb), c)| self.block_grad(p, x, c, gb))
            .collect();
        self.sum_in_block_order(parts)
    }

    /// One training pass over `n` input rows: each block's forward pass, its output gradient
    /// `∂L/∂out` written by `g_out(first row, block output, gradient)`, and its backward pass,
    /// one after the other while the block's activations are still in cache (`g_out` must
    /// write every element of its gradient). Returns the output (`n × d`) and `∂L/∂θ` — the
    /// same numbers as [`Arch::forward_batch`] followed by [`Arch::backward_batch`].
    pub fn train_batch(
        &self,
        p: &[f32],
        input: &[f32],
        n: usize,
        g_out: impl Fn(usize, &[f32], &mut [f32]) + Sync,
    ) -> (Vec<f32>, Vec<f32>) {
        let (w, d) = (self.features.width(), self.cfg.out_dim());
        let mut out = vec![0f32; n * d];
        let panels = self.body.pack(p);
        let b0 = self.layout().b(p, 0);
        let parts: Vec<Vec<f32>> = out
            .par_chunks_mut(BLOCK * d)
            .zip(input.par_chunks(BLOCK * w))
            .enumerate()
            .map(|(i, (o, x))| {
                let rows = x.len() / w;
                let cache = self
                    .body
                    .forward(p, &panels[0], &panels, x, b0, rows, o, true);
                let mut g = spare(rows * d);
                g_out(i * BLOCK, o, &mut g);
                let grad = self.block_grad(p, x, &cache, &g);
                cache.recycle();
                give_back(g);
                grad
            })
            .collect();
        (out, self.sum_in_block_order(parts))
    }

    /// `∂L/∂θ` of one block (a buffer from the spares).
    fn block_grad(&self, p: &[f32], x: &[f32], cache: &Cache, g: &[f32]) -> Vec<f32> {
        let mut grad = spare(self.layout().total);
        let rows = x.len() / self.features.width();
        self.body.backward(p, x, rows, cache, g, &mut grad);
        grad
    }

    /// The blocks' gradients summed element by element in block order (the elements in
    /// parallel); the parts go back to the spares.
    fn sum_in_block_order(&self, parts: Vec<Vec<f32>>) -> Vec<f32> {
        let mut sum = vec![0f32; self.layout().total];
        sum.par_chunks_mut(SUM_CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                let at = c * SUM_CHUNK;
                for (j, part) in parts.iter().enumerate() {
                    let part = &part[at..at + out.len()];
                    if j == 0 {
                        out.copy_from_slice(part);
                    } else {
                        out.iter_mut().zip(part).for_each(|(s, &v)| *s += v);
                    }
                }
                // `+ 0` turns −0 into +0, as candle's gradient accumulation (0 + g) does.
                out.iter_mut().for_each(|s| *s += 0.0);
            });
        parts.into_iter().for_each(give_back);
        sum
    }

    /// Named tensors of a flat parameter buffer (`layers.*`; `fourier.b` too with `fourier`).
    pub fn named(&self, p: &[f32], fourier: bool) -> Result<Vec<(String, Tensor)>> {
        let mut v = Vec::new();
        for (j, (range, shape)) in self.layout().tensors().into_iter().enumerate() {
            let t = Tensor::from_slice(&p[range], shape, &Device::Cpu).map_err(terr)?;
            v.push((param_names(j / 2)[j % 2].clone(), t));
        }
        if let (true, Some(f)) = (fourier, self.features.fourier()) {
            let t = Tensor::from_slice(&f.b, (f.d, f.f), &Device::Cpu).map_err(terr)?;
            v.push((FOURIER_NAME.to_string(), t));
        }
        Ok(v)
    }

    /// The flat parameters from named tensors, checking every name, shape and dtype; with
    /// `fourier`, also the projection (returned). `what` names the file in errors.
    pub fn unpack(
        cfg: &NetConfig,
        mut map: HashMap<String, Tensor>,
        fourier: bool,
        what: &str,
    ) -> Result<(Vec<f32>, Option<Fourier>)> {
        cfg.validate()?;
        let layout = ParamLayout::new(cfg.layer_shapes());
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = map
                .remove(name)
                .ok_or_else(|| Error::Data(format!("{what}: tensor '{name}' is missing")))?;
            if t.dims() != shape || t.dtype() != DType::F32 {
                return Err(Error::Data(format!(
                    "{what}: tensor '{name}' is {:?} {:?}, the config expects F32 {shape:?}",
                    t.dtype(),
                    t.dims()
                )));
            }
            let v: Vec<f32> = t
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(|e| Error::Data(format!("{what}: {e}")))?;
            if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::Data(format!(
                    "{what}: tensor '{name}' holds a non-finite value ({}) at index {bad}",
                    v[bad]
                )));
            }
            Ok(v)
        };
        let mut p = Vec::with_capacity(layout.total);
        for (j, (_, shape)) in layout.tensors().into_iter().enumerate() {
            p.extend(take(&param_names(j / 2)[j % 2], &shape)?);
        }
        let proj = if fourier && cfg.fourier > 0 {
            let b = take(FOURIER_NAME, &[cfg.dim, cfg.fourier])?;
            Some(Fourier {
                d: cfg.dim,
                f: cfg.fourier,
                b,
            })
        } else {
            None
        };
        if let Some(extra) = map.keys().next() {
            return Err(Error::Data(format!(
                "{what}: unexpected tensor '{extra}' (a checkpoint of another architecture?)"
            )));
        }
        Ok((p, proj))
    }
}

fn terr(e: candle_core::Error) -> Error {
    Error::Invalid(format!("tensors: {e}"))
}
