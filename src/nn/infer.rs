//! Batched inference on ndarray: the network of [`super::EpsNet`] with the first layer split
//! into its x and embedding parts (at a shared t the embedding's contribution is one vector for
//! the whole batch), sgemm by `matrixmultiply` on blocks of rows, and bias + activation fused
//! into one vectorised pass. Blocks run in parallel on the rayon pool.
//!
//! `matrixmultiply` is called directly rather than through `ndarray`'s `general_mat_mul`, which
//! hands large products to OpenBLAS and small ones to `matrixmultiply`: the two round
//! differently, so a row's result would depend on the batch it falls in. With one kernel that
//! pads edge tiles, every row is computed the same way whatever the batch size (measured: as
//! fast as single-threaded OpenBLAS sgemm for these shapes, ≈ 80 GFLOP/s per core).

use super::{Activation, NetConfig, TimeEmbedding};
use crate::numerics::silu_f32;
use crate::score::Score;
use crate::sde::Sde;
use ndarray::parallel::prelude::*;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip};
use scoresde_solvers::Time;
use std::sync::Arc;

/// Rows per block: a 256 × 256 f32 activation is 256 KiB, half a core's L2.
const BLOCK: usize = 256;

/// The network's weights as ndarray matrices (`fan_in × fan_out`).
#[derive(Clone, Debug)]
pub struct Mlp {
    cfg: NetConfig,
    emb: TimeEmbedding,
    /// First layer, rows of x (d × H) and rows of the embedding (E × H).
    w0x: Array2<f32>,
    w0e: Array2<f32>,
    b0: Array1<f32>,
    /// Hidden layers 1.. and the output layer (last).
    rest: Vec<(Array2<f32>, Array1<f32>)>,
}

impl Mlp {
    /// From `[(W₀, b₀), …, (W_out, b_out)]` with shapes [`NetConfig::layer_shapes`].
    pub fn new(cfg: NetConfig, mut layers: Vec<(Array2<f32>, Array1<f32>)>) -> Self {
        let (w0, b0) = layers.remove(0);
        let d = cfg.dim;
        Self {
            emb: TimeEmbedding::new(cfg.time_dim),
            w0x: w0.slice(ndarray::s![..d, ..]).to_owned(),
            w0e: w0.slice(ndarray::s![d.., ..]).to_owned(),
            b0,
            rest: layers,
            cfg,
        }
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The raw network output (ε, x₀, v or score, per the config) for each row of `x`.
    pub fn forward(&self, x: ArrayView2<f64>, t: Time<'_>, mut out: ArrayViewMut2<f32>) {
        let shared = match t {
            Time::Shared(t) => Some(self.first_layer_constant(t)),
            Time::PerRow(_) => None,
        };
        let row0s: Vec<usize> = (0..x.nrows()).step_by(BLOCK).collect();
        out.axis_chunks_iter_mut(Axis(0), BLOCK)
            .into_par_iter()
            .zip(x.axis_chunks_iter(Axis(0), BLOCK))
            .zip(row0s)
            .for_each(|((o, xb), r0)| self.block(xb, t, r0, shared.as_ref(), o));
    }

    /// `emb(t) W₀ₑ + b₀`.
    fn first_layer_constant(&self, t: f64) -> Array1<f32> {
        let mut e = vec![0f32; self.cfg.time_dim];
        self.emb.fill(t, &mut e);
        ArrayView1::from(&e).dot(&self.w0e) + &self.b0
    }

    fn block(
        &self,
        x: ArrayView2<f64>,
        t: Time<'_>,
        row0: usize,
        shared: Option<&Array1<f32>>,
        mut out: ArrayViewMut2<f32>,
    ) {
        let n = x.nrows();
        let mut h = Array2::<f32>::zeros((n, self.cfg.hidden));
        match shared {
            Some(c) => h.rows_mut().into_iter().for_each(|mut r| r.assign(c)),
            None => {
                let mut e = Array2::<f32>::zeros((n, self.cfg.time_dim));
                for (i, mut r) in e.rows_mut().into_iter().enumerate() {
                    self.emb
                        .fill(t.at(row0 + i), r.as_slice_mut().expect("contiguous"));
                }
                sgemm(&e, &self.w0e, &mut h);
                h += &self.b0;
            }
        }
        for (mut hr, xr) in h.rows_mut().into_iter().zip(x.rows()) {
            for (k, &xv) in xr.iter().enumerate() {
                hr.scaled_add(xv as f32, &self.w0x.row(k));
            }
        }
        self.activate(&mut h, None);
        let (last, hidden) = self.rest.split_last().expect("an output layer");
        let mut h2 = Array2::<f32>::zeros((n, self.cfg.hidden));
        for (w, b) in hidden {
            sgemm(&h, w, &mut h2);
            self.activate(&mut h2, Some(b));
            std::mem::swap(&mut h, &mut h2);
        }
        let mut o = Array2::<f32>::zeros((n, self.cfg.dim));
        sgemm(&h, &last.0, &mut o);
        out.assign(&o);
        out += &last.1;
    }

    /// `h ← act(h + b)` in one pass.
    fn activate(&self, h: &mut Array2<f32>, b: Option<&Array1<f32>>) {
        let zero = Array1::zeros(h.ncols());
        let b = b.unwrap_or(&zero);
        for mut r in h.rows_mut() {
            let r = r.as_slice_mut().expect("contiguous");
            let b = b.as_slice().expect("contiguous");
            match self.cfg.activation {
                Activation::Silu => r
                    .iter_mut()
                    .zip(b)
                    .for_each(|(v, &b)| *v = silu_f32(*v + b)),
                Activation::Relu => r
                    .iter_mut()
                    .zip(b)
                    .for_each(|(v, &b)| *v = (*v + b).max(0.0)),
            }
        }
    }
}

/// `c = a b` for standard-layout f32 matrices, by `matrixmultiply`.
fn sgemm(a: &Array2<f32>, b: &Array2<f32>, c: &mut Array2<f32>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    debug_assert_eq!((b.nrows(), c.dim()), (k, (m, n)));
    // SAFETY: the three arrays are owned, standard layout (row stride = columns, column
    // stride 1) and of the dimensions passed, so every access stays in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// A trained network as a score: the output converted by its [`crate::score::convert::Prediction`]
/// with the SDE's kernel `(m(t), s(t))`, e.g. `s = −ε/s(t)` (f32 network, f64 conversion).
pub struct NetScore {
    mlp: Mlp,
    sde: Arc<dyn Sde>,
}

impl NetScore {
    pub fn new(mlp: Mlp, sde: Arc<dyn Sde>) -> Self {
        Self { mlp, sde }
    }
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }
    pub fn sde(&self) -> &Arc<dyn Sde> {
        &self.sde
    }
}

impl Score for NetScore {
    fn dim(&self) -> usize {
        self.mlp.cfg.dim
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        let mut raw = Array2::<f32>::zeros(x.raw_dim());
        self.mlp.forward(x, t, raw.view_mut());
        let pred = self.mlp.cfg.prediction;
        let shared = match t {
            Time::Shared(t) => Some(self.sde.marginal(t)),
            Time::PerRow(_) => None,
        };
        for (i, ((mut o, r), xr)) in out
            .rows_mut()
            .into_iter()
            .zip(raw.rows())
            .zip(x.rows())
            .enumerate()
        {
            let k = shared.unwrap_or_else(|| self.sde.marginal(t.at(i)));
            Zip::from(&mut o)
                .and(&r)
                .and(&xr)
                .for_each(|o, &r, &x| *o = pred.to_score(r as f64, x, k));
        }
    }
}
