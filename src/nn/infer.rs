//! Batched inference on ndarray: the network of [`super::EpsNet`] through the same kernel
//! ([`super::kernel`]), with the first layer split into its x part and its embedding part (at a
//! shared t the embedding's contribution is one vector for the whole batch). Blocks of rows run
//! in parallel on the rayon pool.

use super::arch::Arch;
use super::kernel::{gemm, Mat, BLOCK};
use super::panel::Panels;
use super::NetConfig;
use crate::score::convert::Prediction;
use crate::score::Score;
use crate::sde::Sde;
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use scoresde_solvers::Time;
use std::sync::Arc;

/// A network's architecture and weights for inference; a class-conditional network evaluates
/// at one class label (the null class unless [`Mlp::with_label`] says otherwise).
#[derive(Clone, Debug)]
pub struct Mlp {
    arch: Arc<Arch>,
    params: Arc<Vec<f32>>,
    packed: Arc<Packed>,
    label: Option<usize>,
}

/// The weights packed once for [`super::panel::product`]: every layer, and the first layer's
/// rows for x's features alone (at a shared t the rest of that layer is one vector).
#[derive(Debug)]
struct Packed {
    layers: Vec<Panels>,
    first_x: Panels,
}

impl Mlp {
    /// From an architecture and its flat parameters (`[W₀, b₀, …]`, see
    /// [`super::kernel::ParamLayout`]).
    pub fn new(arch: Arc<Arch>, params: Vec<f32>) -> Self {
        assert_eq!(params.len(), arch.layout().total, "parameter count");
        let (xw, h) = (arch.features.x_width(), arch.layout().shapes[0].1);
        let packed = Packed {
            layers: arch.body.pack(&params),
            first_x: Panels::pack(&arch.layout().w(&params, 0)[..xw * h], xw, h),
        };
        Self {
            arch,
            params: Arc::new(params),
            packed: Arc::new(packed),
            label: None,
        }
    }

    /// The same weights evaluated at class `label` (`None`: the null class, the unconditional
    /// field of a network trained with label dropout). One-line error for a label the network
    /// does not have.
    pub fn with_label(&self, label: Option<usize>) -> crate::Result<Self> {
        let k = self.arch.cfg.classes.len();
        if let Some(c) = label {
            if c >= k {
                return Err(crate::invalid!(
                    "class label {c} is out of range: the network has {k} classes"
                ));
            }
        }
        Ok(Self {
            label,
            ..self.clone()
        })
    }

    /// The class label this network evaluates at (`None`: the null class).
    pub fn label(&self) -> Option<usize> {
        self.label
    }

    pub fn config(&self) -> &NetConfig {
        &self.arch.cfg
    }

    pub fn arch(&self) -> &Arc<Arch> {
        &self.arch
    }

    pub fn params(&self) -> &[f32] {
        &self.params
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
            .for_each(|((o, xb), r0)| self.block(xb, t, r0, shared.as_deref(), o));
    }

    /// `emb(t) W₀ₑ + b₀ (+ W₀[c], the label's row)` (W₀ₑ: the embedding rows of the first
    /// layer).
    fn first_layer_constant(&self, t: f64) -> Vec<f32> {
        let f = &self.arch.features;
        let lay = self.arch.layout();
        let (xw, e) = (f.x_width(), self.arch.cfg.time_dim);
        let h = lay.shapes[0].1;
        let mut emb = vec![0f32; e];
        f.fill_t(t, &mut emb);
        let mut c = lay.b(&self.params, 0).to_vec();
        let w0 = lay.w(&self.params, 0);
        gemm(
            (1, e, h),
            Mat::rows(&emb, e),
            Mat::rows(&w0[xw * h..(xw + e) * h], h),
            1.0,
            &mut c,
        );
        if let Some(col) = f.label_column(self.label) {
            let row = (f.label_offset() + col) * h;
            c.iter_mut()
                .zip(&w0[row..row + h])
                .for_each(|(a, &w)| *a += w);
        }
        c
    }

    fn block(
        &self,
        x: ArrayView2<f64>,
        t: Time<'_>,
        row0: usize,
        shared: Option<&[f32]>,
        mut out: ArrayViewMut2<f32>,
    ) {
        let (f, body, p) = (&self.arch.features, &self.arch.body, &self.params[..]);
        let n = x.nrows();
        let layers = &self.packed.layers;
        let mut o = vec![0f32; n * body.out_dim()];
        match shared {
            Some(c) => {
                let xw = f.x_width();
                let mut feats = vec![0f32; n * xw];
                for (r, xr) in feats.chunks_exact_mut(xw).zip(x.rows()) {
                    f.fill_x(xr, r);
                }
                let first = &self.packed.first_x;
                body.forward(p, first, layers, &feats, c, n, &mut o, false);
            }
            None => {
                let w = f.width();
                let mut input = vec![0f32; n * w];
                for (i, (r, xr)) in input.chunks_exact_mut(w).zip(x.rows()).enumerate() {
                    f.fill(xr, t.at(row0 + i), self.label, r);
                }
                let b0 = self.arch.layout().b(p, 0);
                body.forward(p, &layers[0], layers, &input, b0, n, &mut o, false);
            }
        };
        for (mut orow, src) in out
            .rows_mut()
            .into_iter()
            .zip(o.chunks_exact(body.out_dim()))
        {
            orow.iter_mut().zip(src).for_each(|(a, &b)| *a = b);
        }
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
        self.mlp.config().dim
    }
    /// A velocity network's output as it is (regular where m = 0).
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> bool {
        if self.mlp.config().prediction != Prediction::Velocity {
            return false;
        }
        let mut raw = Array2::<f32>::zeros(x.raw_dim());
        self.mlp.forward(x, t, raw.view_mut());
        Zip::from(&mut out)
            .and(&raw)
            .for_each(|o, &r| *o = r as f64);
        true
    }
    fn sde(&self) -> Option<&dyn Sde> {
        Some(self.sde.as_ref())
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        let (pred, sd) = (self.mlp.config().prediction, self.mlp.config().sigma_data);
        let kernel = |i: usize| self.sde.point(t.at(i));
        // The network's input scaling (EDM's c_in; 1 for the other parameterisations).
        let scaled;
        let xin = if pred != Prediction::Edm {
            x
        } else {
            let mut y = x.to_owned();
            for (i, mut r) in y.rows_mut().into_iter().enumerate() {
                r *= pred.input_scale(kernel(i), sd);
            }
            scaled = y;
            scaled.view()
        };
        let mut raw = Array2::<f32>::zeros(x.raw_dim());
        self.mlp.forward(xin, t, raw.view_mut());
        let shared = match t {
            Time::Shared(t) => Some(self.sde.point(t)),
            Time::PerRow(_) => None,
        };
        for (i, ((mut o, r), xr)) in out
            .rows_mut()
            .into_iter()
            .zip(raw.rows())
            .zip(x.rows())
            .enumerate()
        {
            let k = shared.unwrap_or_else(|| kernel(i));
            Zip::from(&mut o)
                .and(&r)
                .and(&xr)
                .for_each(|o, &r, &x| *o = pred.to_score(r as f64, x, k, sd));
        }
    }
}
