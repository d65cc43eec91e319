//! The one implementation of the MLP body, forward and backward, on flat f32 parameter buffers.
//!
//! Layer `l` computes `z_l = h_{l−1} W_l + b_l` (weights stored `fan_in × fan_out`, row-major,
//! so a layer is one sgemm with the bias as its initial value) and `h_l = act(z_l)`, plus
//! `h_{l−1}` for the residual hidden layers (`l ≥ 1`, He et al. 2016's identity shortcut); the
//! output layer is linear. Training ([`super::Arch::train_batch`], and the candle op in
//! `nn::model` for the DDPM objectives) and inference ([`super::Mlp`]) call the same functions,
//! so the paths cannot drift apart.
//!
//! Rows are processed in fixed blocks of [`BLOCK`], blocks in parallel on the rayon pool. The
//! forward pass runs each layer as one [`super::panel::product`] on weights packed once (the
//! activation and the shortcut fused into it); the backward pass as single-threaded
//! `matrixmultiply` sgemms, a block's weight gradients summed in block order. Both compute each
//! value as the same FMA chain along k (`panel`'s tests), so every number depends on the batch
//! and the weights only, never on the thread count or the CPU's vector width.

use super::panel::{act_grad, product, Epilogue, Lhs, Panels};
use super::Activation;
use rayon::prelude::*;

pub use crate::numerics::BLOCK;

/// Where each tensor lies in the flat parameter buffer: `[W₀, b₀, W₁, b₁, …, W_out, b_out]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// `(fan_in, fan_out)` of each linear layer, the output layer last.
    pub shapes: Vec<(usize, usize)>,
    /// Start of `W_l` (its bias follows it).
    pub offsets: Vec<usize>,
    pub total: usize,
}

impl ParamLayout {
    pub fn new(shapes: Vec<(usize, usize)>) -> Self {
        let mut offsets = Vec::with_capacity(shapes.len());
        let mut at = 0;
        for &(i, o) in &shapes {
            offsets.push(at);
            at += i * o + o;
        }
        Self {
            shapes,
            offsets,
            total: at,
        }
    }

    /// `W_l` (row-major `fan_in × fan_out`).
    pub fn w<'a>(&self, p: &'a [f32], l: usize) -> &'a [f32] {
        let (i, o) = self.shapes[l];
        &p[self.offsets[l]..self.offsets[l] + i * o]
    }

    /// `b_l`.
    pub fn b<'a>(&self, p: &'a [f32], l: usize) -> &'a [f32] {
        let (i, o) = self.shapes[l];
        let at = self.offsets[l] + i * o;
        &p[at..at + o]
    }

    /// Each tensor as (range in the buffer, shape), in `[W₀, b₀, …]` order.
    pub fn tensors(&self) -> Vec<(std::ops::Range<usize>, Vec<usize>)> {
        let mut v = Vec::with_capacity(2 * self.shapes.len());
        for (&(i, o), &at) in self.shapes.iter().zip(&self.offsets) {
            v.push((at..at + i * o, vec![i, o]));
            v.push((at + i * o..at + i * o + o, vec![o]));
        }
        v
    }
}

/// The body of the network: the layers after the input features.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub layout: ParamLayout,
    pub act: Activation,
    pub residual: bool,
}

/// The activations of one block kept for the backward pass: `z_l` and `h_l` of every hidden
/// layer (empty for inference).
#[derive(Clone, Debug, Default)]
pub struct Cache {
    pub z: Vec<Vec<f32>>,
    pub h: Vec<Vec<f32>>,
}

impl Cache {
    /// Hands the buffers back to this thread's spares.
    pub fn recycle(self) {
        self.z.into_iter().chain(self.h).for_each(give_back);
    }
}

impl Body {
    fn hidden_layers(&self) -> usize {
        self.layout.shapes.len() - 1
    }

    fn width(&self) -> usize {
        self.layout.shapes[0].1
    }

    pub fn out_dim(&self) -> usize {
        self.layout.shapes.last().expect("an output layer").1
    }

    /// Each layer's weights packed for [`product`] (training packs once per step, inference
    /// once per network).
    pub fn pack(&self, p: &[f32]) -> Vec<Panels> {
        (0..self.layout.shapes.len())
            .into_par_iter()
            .map(|l| {
                let (fan_in, fan_out) = self.layout.shapes[l];
                Panels::pack(self.layout.w(p, l), fan_in, fan_out)
            })
            .collect()
    }

    /// Forward pass of one block of `rows` rows: the first layer is `z₀ = init₀ + input W`
    /// with `W = first` (all of `W₀` with `init₀ = b₀`, or only its rows for `input`'s columns
    /// when the caller folded the rest into `init₀`), the later layers use `panels[l]`
    /// (from [`Body::pack`]) and `b_l`. Writes the network output into `out` (`rows × d`);
    /// `keep` retains every activation.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        p: &[f32],
        first: &Panels,
        panels: &[Panels],
        input: &[f32],
        init0: &[f32],
        rows: usize,
        out: &mut [f32],
        keep: bool,
    ) -> Cache {
        let mut cache = Cache::default();
        let width = self.width();
        for (l, w_l) in panels.iter().enumerate().take(self.hidden_layers()) {
            let (data, ld, w, init) = match cache.h.last() {
                None => (input, first.k(), first, init0),
                Some(h) => (&h[..], width, w_l, self.layout.b(p, l)),
            };
            let epi = Epilogue {
                act: Some(self.act),
                shortcut: cache.h.last().filter(|_| self.residual).map(|h| &h[..]),
            };
            let mut h = spare(rows * width);
            let mut z = keep.then(|| spare(rows * width));
            product(
                Lhs { data, ld, rows },
                w,
                init,
                epi,
                z.as_deref_mut(),
                &mut h,
            );
            match z {
                Some(z) => cache.z.push(z),
                None => cache.h.drain(..).for_each(give_back),
            }
            cache.h.push(h);
        }
        let last = self.hidden_layers();
        let linear = Epilogue {
            act: None,
            shortcut: None,
        };
        let h = cache.h.last().expect("a hidden layer");
        let b = self.layout.b(p, last);
        let lhs = Lhs {
            data: h,
            ld: width,
            rows,
        };
        product(lhs, &panels[last], b, linear, None, out);
        if !keep {
            cache.h.drain(..).for_each(give_back);
        }
        cache
    }

    /// Backward pass of one block: writes `∂L/∂θ` into `grad` (flat, same layout as the
    /// parameters) given the block's input (`rows × fan_in₀`), its cache and `g_out = ∂L/∂out`.
    pub fn backward(
        &self,
        p: &[f32],
        input: &[f32],
        rows: usize,
        cache: &Cache,
        g_out: &[f32],
        grad: &mut [f32],
    ) {
        let lay = &self.layout;
        let last = self.hidden_layers();
        let width = self.width();
        let d = self.out_dim();
        self.weight_grads(
            last,
            cache.h.last().expect("a hidden layer"),
            g_out,
            rows,
            grad,
        );
        // ∂L/∂h of the last hidden layer: g_out W_outᵀ.
        let mut gh = spare(rows * width);
        gemm(
            (rows, d, width),
            Mat::rows(g_out, d),
            Mat::cols(lay.w(p, last), d),
            0.0,
            &mut gh,
        );
        let mut gz = spare(rows * width);
        for l in (0..last).rev() {
            act_grad(self.act, &cache.z[l], &gh, &mut gz);
            let x = if l == 0 { input } else { &cache.h[l - 1] };
            self.weight_grads(l, x, &gz, rows, grad);
            if l > 0 {
                // ∂L/∂h_{l−1} = gz W_lᵀ (+ ∂L/∂h_l through the identity shortcut).
                let beta = if self.residual { 1.0 } else { 0.0 };
                gemm(
                    (rows, width, width),
                    Mat::rows(&gz, width),
                    Mat::cols(lay.w(p, l), width),
                    beta,
                    &mut gh,
                );
            }
        }
        give_back(gh);
        give_back(gz);
    }

    /// `∂W_l = xᵀ g`, `∂b_l = Σ_rows g` (rows in order). Written, not added: the values are
    /// those of adding to zeros up to the sign of an exact zero, which the caller's `+ 0`
    /// ([`super::Arch::train_batch`]) settles.
    fn weight_grads(&self, l: usize, x: &[f32], g: &[f32], rows: usize, grad: &mut [f32]) {
        let (fan_in, fan_out) = self.layout.shapes[l];
        let at = self.layout.offsets[l];
        let (gw, gb) = grad[at..at + fan_in * fan_out + fan_out].split_at_mut(fan_in * fan_out);
        gemm(
            (fan_in, rows, fan_out),
            Mat::cols(x, fan_in),
            Mat::rows(g, fan_out),
            0.0,
            gw,
        );
        let mut it = g.chunks_exact(fan_out);
        match it.next() {
            Some(first) => gb.copy_from_slice(first),
            None => gb.fill(0.0),
        }
        for r in it {
            gb.iter_mut().zip(r).for_each(|(b, &v)| *b += v);
        }
    }
}

thread_local! {
    /// Activation and gradient buffers, reused on each thread (fresh ones would cost a page
    /// fault per 4 KB each step).
    static SPARE: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most buffers, and most bytes, a thread keeps: a buffer taken on one thread and given back
/// on another (a training block's gradient, returned where the blocks are summed) must not
/// pile up there; beyond either bound a returned buffer is freed.
const MAX_SPARES: usize = 64;
const MAX_SPARE_BYTES: usize = 64 << 20;

/// A buffer of `len` values from this thread's spares (its contents are arbitrary: callers
/// overwrite or clear it).
pub fn spare(len: usize) -> Vec<f32> {
    let mut v = SPARE
        .with_borrow_mut(|s| {
            // The smallest that fits, so large buffers stay for large requests.
            let fits = (0..s.len())
                .filter(|&i| s[i].capacity() >= len)
                .min_by_key(|&i| s[i].capacity());
            match fits {
                Some(i) => Some(s.swap_remove(i)),
                None => s.pop(),
            }
        })
        .unwrap_or_default();
    v.resize(len, 0.0);
    v
}

/// Returns a buffer to this thread's spares.
pub fn give_back(v: Vec<f32>) {
    let bytes = |b: &Vec<f32>| b.capacity() * std::mem::size_of::<f32>();
    SPARE.with_borrow_mut(|s| {
        let held: usize = s.iter().map(bytes).sum();
        if s.len() < MAX_SPARES && held + bytes(&v) <= MAX_SPARE_BYTES {
            s.push(v)
        }
    });
}

/// A row-major matrix read as itself (`rows`) or transposed (`cols`).
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    data: &'a [f32],
    rs: isize,
    cs: isize,
}

impl<'a> Mat<'a> {
    /// The matrix stored row-major with `ncols` columns.
    pub fn rows(data: &'a [f32], ncols: usize) -> Self {
        Self {
            data,
            rs: ncols as isize,
            cs: 1,
        }
    }
    /// The transpose of the matrix stored row-major with `ncols` columns.
    pub fn cols(data: &'a [f32], ncols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: ncols as isize,
        }
    }
    fn fits(&self, nrows: usize, ncols: usize) -> bool {
        nrows == 0
            || ncols == 0
            || ((nrows - 1) as isize * self.rs + (ncols - 1) as isize * self.cs)
                < self.data.len() as isize
    }
}

/// `c ← a b + β c` for `a` (m × k), `b` (k × n) and row-major `c` (m × n), by `matrixmultiply`
/// (single-threaded: callers parallelise over blocks).
///
/// `matrixmultiply` is called directly rather than through `ndarray`'s `general_mat_mul`, which
/// hands large products to OpenBLAS and small ones to `matrixmultiply`: the two round
/// differently, so a row's result would depend on the batch it falls in. With one kernel that
/// pads edge tiles, every row is computed the same way whatever the batch size.
pub fn gemm((m, k, n): (usize, usize, usize), a: Mat, b: Mat, beta: f32, c: &mut [f32]) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && c.len() >= m * n,
        "gemm shapes"
    );
    // SAFETY: `fits` checked that every index the product reads lies inside `a` and `b`, and
    // `c` holds m × n elements with row stride n.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs,
            a.cs,
            b.data.as_ptr(),
            b.rs,
            b.cs,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
