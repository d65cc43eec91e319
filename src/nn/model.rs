//! The ε-network in candle: all parameters in one flat `Var`, and the whole MLP as one fused
//! custom op (linear + bias + activation per layer, residual shortcuts, and the hand-written
//! backward of [`super::kernel`]), so the network is one node in candle's graph (the DDPM
//! objectives' losses build on it; denoising score matching runs the same kernel without the
//! graph, [`Arch::train_batch`]), with no per-layer allocation, broadcast or reduction ops.

use super::arch::Arch;
use super::features::Features;
use super::kernel::Cache;
use super::{Mlp, NetConfig};
use crate::{Error, Result};
use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Storage, Tensor, Var};
use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Seed domain of weight initialisation.
const INIT_DOMAIN: u64 = crate::domain::Domain::Init.key();

/// Rows of input built per parallel task.
const INPUT_CHUNK: usize = 128;

/// An MLP `[x, γ(x), emb(t)] → hidden^L → d` whose parameters are one candle `Var`.
pub struct EpsNet {
    arch: Arc<Arch>,
    params: Var,
}

fn cerr(what: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("{what}: {e}"))
}

impl EpsNet {
    /// Fresh weights: PyTorch's `nn.Linear` default, `U(−1/√fan_in, 1/√fan_in)` for weights and
    /// biases, drawn from a generator keyed by `seed` (candle's own initialisers are not seeded);
    /// the Fourier projection from the same seed.
    pub fn init(cfg: NetConfig, seed: u64) -> Result<Self> {
        let arch = Arch::init(cfg, seed)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ INIT_DOMAIN.rotate_left(32));
        let mut p = Vec::with_capacity(arch.layout().total);
        for &(fan_in, fan_out) in &arch.layout().shapes {
            let bound = 1.0 / (fan_in as f32).sqrt();
            p.extend((0..fan_in * fan_out + fan_out).map(|_| rng.random_range(-bound..bound)));
        }
        Self::from_parts(arch, p)
    }

    /// A network from an architecture and its flat parameters.
    pub fn from_parts(arch: Arch, params: Vec<f32>) -> Result<Self> {
        if params.len() != arch.layout().total {
            return Err(Error::Data(format!(
                "{} parameters given, the architecture has {}",
                params.len(),
                arch.layout().total
            )));
        }
        let n = params.len();
        let params = Var::from_vec(params, n, &Device::Cpu).map_err(cerr("parameters"))?;
        Ok(Self {
            arch: Arc::new(arch),
            params,
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.arch.cfg
    }

    pub fn arch(&self) -> &Arc<Arch> {
        &self.arch
    }

    /// All parameters, `[W₀, b₀, …, W_out, b_out]` flattened.
    pub fn params(&self) -> &Var {
        &self.params
    }

    /// A copy of the parameters.
    pub fn flat(&self) -> Result<Vec<f32>> {
        self.params
            .as_tensor()
            .to_vec1()
            .map_err(cerr("parameters"))
    }

    /// Overwrites the parameters.
    pub fn set_flat(&self, p: &[f32]) -> Result<()> {
        let t = Tensor::from_slice(p, p.len(), &Device::Cpu).map_err(cerr("set weights"))?;
        self.params.set(&t).map_err(cerr("set weights"))
    }

    /// The network input rows `[x, γ(x), emb(t_i)]` as an `n × width` f32 tensor (a
    /// class-conditional network sees the null class).
    pub fn input(&self, x: ArrayView2<f64>, t: &[f64]) -> Result<Tensor> {
        self.input_labelled(x, t, None)
    }

    /// The input rows `[x, γ(x), emb(t_i), onehot(c_i)]`, `labels[i]` the class index of row
    /// i or `None` for the null class (`labels`: `None` for all rows null).
    pub fn input_labelled(
        &self,
        x: ArrayView2<f64>,
        t: &[f64],
        labels: Option<&[Option<usize>]>,
    ) -> Result<Tensor> {
        let buf = input_rows(&self.arch.features, x, t, labels);
        let shape = (x.nrows(), self.arch.features.width());
        Tensor::from_vec(buf, shape, &Device::Cpu).map_err(cerr("input"))
    }

    /// Forward pass on an input built by [`EpsNet::input`], differentiable in the parameters.
    pub fn forward(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        input.apply_op2(
            self.params.as_tensor(),
            MlpOp {
                arch: self.arch.clone(),
                stash: Mutex::new(None),
            },
        )
    }

    /// The ndarray inference copy of the current weights.
    pub fn mlp(&self) -> Result<Mlp> {
        Ok(Mlp::new(self.arch.clone(), self.flat()?))
    }
}

/// The network input rows `[x, γ(x), emb(t_i), onehot(c_i)]` (`n × width`, row-major) built
/// in parallel; `labels` as in [`EpsNet::input_labelled`].
pub fn input_rows(
    f: &Features,
    x: ArrayView2<f64>,
    t: &[f64],
    labels: Option<&[Option<usize>]>,
) -> Vec<f32> {
    let w = f.width();
    let mut buf = vec![0f32; x.nrows() * w];
    buf.par_chunks_mut(INPUT_CHUNK * w)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (j, row) in chunk.chunks_exact_mut(w).enumerate() {
                let i = c * INPUT_CHUNK + j;
                f.fill(x.row(i), t[i], labels.and_then(|l| l[i]), row);
            }
        });
    buf
}

/// The fused network op: `(input, θ) → out`; its forward keeps the activations for its backward.
struct MlpOp {
    arch: Arc<Arch>,
    stash: Mutex<Option<Vec<Cache>>>,
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("mlp: only f32 tensors are supported");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("mlp: tensors must be contiguous"),
    }
}

impl MlpOp {
    fn check(&self, x: &[f32], p: &[f32]) -> candle_core::Result<usize> {
        let w = self.arch.features.width();
        if p.len() != self.arch.layout().total || !x.len().is_multiple_of(w) {
            candle_core::bail!(
                "mlp: input of {} values or {} parameters do not fit the architecture",
                x.len(),
                p.len()
            );
        }
        Ok(x.len() / w)
    }
}

impl CustomOp2 for MlpOp {
    fn name(&self) -> &'static str {
        "mlp-f32"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, p) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let n = self.check(x, p)?;
        let (out, caches) = self.arch.forward_batch(p, x, n, true);
        *self.stash.lock().expect("stash") = Some(caches);
        Ok((
            CpuStorage::F32(out),
            Shape::from((n, self.arch.cfg.out_dim())),
        ))
    }

    fn bwd(
        &self,
        input: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (sx, lx) = input.storage_and_layout();
        let (sp, lp) = params.storage_and_layout();
        let (sg, lg) = grad.storage_and_layout();
        let (Storage::Cpu(sx), Storage::Cpu(sp), Storage::Cpu(sg)) = (&*sx, &*sp, &*sg) else {
            candle_core::bail!("mlp: CPU tensors only");
        };
        let (x, p, g) = (f32_slice(sx, lx)?, f32_slice(sp, lp)?, f32_slice(sg, lg)?);
        let n = self.check(x, p)?;
        let caches = match self.stash.lock().expect("stash").take() {
            Some(c) => c,
            None => self.arch.forward_batch(p, x, n, true).1,
        };
        let gp = self.arch.backward_batch(p, x, &caches, g);
        caches.into_par_iter().for_each(Cache::recycle);
        let len = gp.len();
        Ok((None, Some(Tensor::from_vec(gp, len, &Device::Cpu)?)))
    }
}
