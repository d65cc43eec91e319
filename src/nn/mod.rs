//! Score networks: an MLP on `[x, Fourier features of x, sinusoidal embedding of t]`, optionally
//! with residual hidden layers, trained in candle and evaluated for sampling by an ndarray path
//! that shares its weights and its kernel.
//!
//! * [`EpsNet`]: the candle model (one parameter `Var`, one fused op with its backward).
//! * [`Mlp`]: the same network for fast batched inference; [`NetScore`] wraps it as a
//!   [`crate::score::Score`] through the one conversion module (`s = −ε/σ(t)` for ε-prediction).
//! * [`kernel`]: the one implementation of the layers, forward and backward; [`panel`]: the
//!   forward products on weights packed once, with the activation fused.
//! * [`Arch`]: config + input features + body, and the named-tensor (safetensors) mapping.
//! * [`TimeEmbedding`], [`Features`]: the one home of the input encodings.

pub mod arch;
mod embedding;
pub mod features;
mod infer;
pub mod kernel;
mod model;
pub mod panel;

pub use arch::{param_names, Arch};
pub use embedding::{TimeEmbedding, DEFAULT_TIME_SCALE, TIME_SCALE};
pub use features::{Features, Fourier};
pub use infer::{Mlp, NetScore};
pub use model::{input_rows, EpsNet};

use crate::score::convert::Prediction;
use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

/// Hidden-layer non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Silu,
    Relu,
}

/// Architecture of the MLP: input `[x, sin 2πxB, cos 2πxB, emb(t)]` (d + 2F + E), `layers`
/// hidden layers of width `hidden` with the activation (layers after the first optionally
/// residual, `h ← h + act(hW + b)`), and a linear output of width d.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Data dimension d (0 in a training config: taken from the data).
    pub dim: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Size E of the sinusoidal time embedding (even).
    pub time_dim: usize,
    /// The embedding's time scale: it sees τ = `time_scale` · t ([`DEFAULT_TIME_SCALE`] = 10;
    /// runs saved before checkpoint format 4 used [`TIME_SCALE`] = 1000, DDPM's integer step).
    /// A smaller scale lowers the embedding's top frequency and makes the learned field
    /// smoother in t, so adaptive ODE solvers take fewer steps (measured on 8gaussians without
    /// Fourier features, PF-ODE NLL at tolerance 1e-5: 629 NFE at 1000, 224 at 100, 157 at 10,
    /// at the same training loss).
    pub time_scale: f64,
    pub activation: Activation,
    pub prediction: Prediction,
    /// Number F of random Fourier features of x (0: raw x only).
    pub fourier: usize,
    /// Standard deviation σ of the Fourier frequencies B_ij ~ N(0, σ²).
    pub fourier_scale: f64,
    /// Identity shortcuts around the hidden layers after the first.
    pub residual: bool,
    /// Data standard deviation σ_d of EDM preconditioning (`prediction = "edm"`; 0 in a
    /// training config: measured from the data).
    pub sigma_data: f64,
    /// Output heads of width d each (2: a mean and a log-variance head, Ho et al. 2020's
    /// learned diagonal Σ; the score uses the first).
    pub heads: usize,
    /// Class names of a class-conditional network (empty: unconditional). The input gains a
    /// one-hot of K + 1 entries, the last the null class of label dropout; through the first
    /// linear layer that one-hot is a learned class embedding added to the hidden
    /// pre-activation (Ho & Salimans 2022's conditioning of one network on c or ∅).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            dim: 0,
            hidden: 128,
            layers: 3,
            time_dim: 64,
            time_scale: DEFAULT_TIME_SCALE,
            activation: Activation::Silu,
            prediction: Prediction::Eps,
            fourier: 64,
            fourier_scale: 1.0,
            residual: false,
            sigma_data: 0.0,
            heads: 1,
            classes: Vec::new(),
        }
    }
}

/// Largest hidden width, depth, embedding and feature counts a config may ask for.
pub const MAX_WIDTH: usize = 8192;
pub const MAX_LAYERS: usize = 64;
/// Largest data dimension a network may have.
pub const MAX_DIM: usize = 4096;

impl NetConfig {
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.hidden == 0 || self.layers == 0 {
            return Err(invalid!(
                "network needs dim, hidden and layers ≥ 1 (got dim = {}, hidden = {}, layers = {})",
                self.dim,
                self.hidden,
                self.layers
            ));
        }
        for (name, v, max) in [
            ("dim", self.dim, MAX_DIM),
            ("hidden", self.hidden, MAX_WIDTH),
            ("layers", self.layers, MAX_LAYERS),
            ("time_dim", self.time_dim, MAX_WIDTH),
            ("fourier", self.fourier, MAX_WIDTH),
        ] {
            if v > max {
                return Err(invalid!("network {name} must lie in [0, {max}], got {v}"));
            }
        }
        if !(self.time_scale > 0.0 && self.time_scale <= 1e6) {
            return Err(invalid!(
                "time_scale must lie in (0, 1e6], got {}",
                crate::error::num(self.time_scale)
            ));
        }
        if self.fourier > 0 && !(self.fourier_scale > 0.0 && self.fourier_scale <= 1e6) {
            return Err(invalid!(
                "fourier_scale must lie in (0, 1e6], got {}",
                crate::error::num(self.fourier_scale)
            ));
        }
        if !(self.sigma_data.is_finite() && self.sigma_data >= 0.0) {
            return Err(invalid!(
                "sigma_data must be finite and ≥ 0, got {}",
                crate::error::num(self.sigma_data)
            ));
        }
        if !(1..=2).contains(&self.heads) {
            return Err(invalid!("network heads must be 1 or 2, got {}", self.heads));
        }
        if self.classes.len() > MAX_WIDTH {
            return Err(invalid!(
                "a network takes at most {MAX_WIDTH} classes, got {}",
                self.classes.len()
            ));
        }
        if let Some(i) = self.classes.iter().position(|c| c.trim().is_empty()) {
            return Err(invalid!("network class {i} has an empty name"));
        }
        let mut names = self.classes.clone();
        names.sort();
        names.dedup();
        if names.len() != self.classes.len() {
            return Err(invalid!("network class names must be distinct"));
        }
        if self.time_dim < 2 || !self.time_dim.is_multiple_of(2) {
            return Err(invalid!(
                "time embedding size must be even and ≥ 2, got {}",
                self.time_dim
            ));
        }
        Ok(())
    }

    /// `(fan_in, fan_out)` of each linear layer, the output layer last.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let input = self.dim + 2 * self.fourier + self.time_dim + self.label_width();
        let mut v = vec![(input, self.hidden)];
        v.extend((1..self.layers).map(|_| (self.hidden, self.hidden)));
        v.push((self.hidden, self.out_dim()));
        v
    }

    /// Width of the class one-hot: K + 1 (the null class last) for K classes, 0 unconditional.
    pub fn label_width(&self) -> usize {
        if self.classes.is_empty() {
            0
        } else {
            self.classes.len() + 1
        }
    }

    /// The label index of class `name` (one-line error naming the classes).
    pub fn label_of(&self, name: &str) -> Result<usize> {
        if self.classes.is_empty() {
            return Err(invalid!(
                "the network is not class-conditional (trained without --conditional)"
            ));
        }
        self.classes.iter().position(|c| c == name).ok_or_else(|| {
            invalid!(
                "unknown class '{name}' (the network's classes: {})",
                self.classes.join(", ")
            )
        })
    }

    /// Output width: `heads · dim`.
    pub fn out_dim(&self) -> usize {
        self.heads * self.dim
    }

    /// Number of trainable parameters.
    pub fn parameters(&self) -> usize {
        self.layer_shapes().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Multiply–adds per row of one forward pass (×2 for FLOPs).
    pub fn macs_per_row(&self) -> usize {
        self.layer_shapes().iter().map(|(i, o)| i * o).sum()
    }
}

/// Process-wide settings for fast network code; call once at start-up, before any other
/// thread exists (the CLI and the benchmarks do).
///
/// * OpenBLAS runs single-threaded: callers split rows over the rayon pool themselves, and
///   OpenBLAS's own threads on top of that oversubscribe the cores (measured: half the
///   throughput, most of it in `sched_yield`).
/// * OpenBLAS uses the vector kernels the CPU has (see `openblas_core`).
/// * Freed activation buffers stay in the heap: a training step allocates and frees tensors
///   of about 1 MiB, which glibc serves with mmap/munmap by default; the page faults and TLB
///   shoot-downs cost about a quarter of a step on 2 cores. `mallopt` raises the mmap and trim
///   thresholds.
pub fn tune_runtime() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // candle's elementwise "barrier pool" spins a worker between ops; on 2 cores that worker
        // takes CPU from the matmuls (measured 34 → 41 steps/s). Matmuls stay multi-threaded.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: both calls only change library tunables, before any heavy work starts.
    unsafe {
        openblas_set_num_threads(1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    openblas_core::upgrade();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[link(name = "openblas")]
extern "C" {
    fn openblas_set_num_threads(n: std::ffi::c_int);
    fn openblas_get_corename() -> *const std::ffi::c_char;
}

/// The name of the kernel set OpenBLAS runs (`"Prescott"`, `"Haswell"`, `"SkylakeX"`, …).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn openblas_core_name() -> String {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(openblas_get_corename()) }
        .to_string_lossy()
        .into_owned()
}

/// OpenBLAS picks its kernels by CPU model at load time, and a release older than the CPU
/// falls back to its SSE3 `Prescott` kernels: Debian 12's 0.3.21 does so on Intel's model 207,
/// which has AVX-512, and runs `dgemm` (the exact empirical score's inner products, LAPACK)
/// several times slower than it could. Where that happened, the CPU has AVX-512 (F, BW, DQ,
/// VL) or AVX2 + FMA, and the user has not chosen a core through `OPENBLAS_CORETYPE`, the
/// dynamic-architecture build is re-initialised on `SkylakeX` or `Haswell` — the same as
/// starting the process with that variable, which OpenBLAS reads only while it initialises and
/// which is removed again, so that child processes (a Slurm job on another node) choose for
/// their own CPU. Builds without dynamic architectures lack the entry points
/// ([`openblas_core_switchable`]) and are left alone. Library users and the Python bindings
/// keep the kernels OpenBLAS chose unless they call [`tune_runtime`] first.
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
mod openblas_core {
    use std::arch::is_x86_feature_detected as has;

    pub fn upgrade() {
        if std::env::var_os("OPENBLAS_CORETYPE").is_some()
            || super::openblas_core_name() != "Prescott"
        {
            return;
        }
        let core = if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
            "SKYLAKEX"
        } else if has!("avx2") && has!("fma") {
            "HASWELL"
        } else {
            return;
        };
        let Some((quit, init)) = entry_points() else {
            return;
        };
        // The two calls run before any BLAS call of this process: OpenBLAS's idle worker
        // threads read the kernel table only for a job. The variable is read inside `init`.
        std::env::set_var("OPENBLAS_CORETYPE", core);
        quit();
        init();
        std::env::remove_var("OPENBLAS_CORETYPE");
    }

    /// `gotoblas_dynamic_quit` and `gotoblas_dynamic_init`, where this OpenBLAS has them.
    pub fn entry_points() -> Option<(extern "C" fn(), extern "C" fn())> {
        // SAFETY: dlsym looks the symbols up by name (null where this build lacks them); both
        // are `void f(void)` in OpenBLAS's driver/others/dynamic.c.
        unsafe {
            let sym = |name: &std::ffi::CStr| libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
            let (quit, init) = (sym(c"gotoblas_dynamic_quit"), sym(c"gotoblas_dynamic_init"));
            (!quit.is_null() && !init.is_null()).then(|| {
                (
                    std::mem::transmute::<*mut libc::c_void, extern "C" fn()>(quit),
                    std::mem::transmute::<*mut libc::c_void, extern "C" fn()>(init),
                )
            })
        }
    }
}

/// Whether this OpenBLAS is a dynamic-architecture build whose kernels [`tune_runtime`] can
/// switch (false off x86-64 Linux/glibc).
pub fn openblas_core_switchable() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    {
        openblas_core::entry_points().is_some()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64")))]
    {
        false
    }
}
