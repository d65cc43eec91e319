//! Sinusoidal time embedding (Vaswani et al. 2017; Ho et al. 2020's `get_timestep_embedding`):
//! `emb(t) = [sin(τ f_k), cos(τ f_k)]_{k < E/2}` with `τ = scale · t` and
//! `f_k = 10000^{−k/(E/2 − 1)}`. Continuous t ∈ [0, 1] and DDPM's integer steps i = 1000 t share
//! one scale, so a network trained on either grid reads the same inputs.

use crate::numerics::sin_cos_f32;

/// The time scale of networks before checkpoint format 4: `τ = 1000 t`, DDPM's integer timestep
/// when t = i/1000 (Ho et al. 2020). Its top frequency, 1000 rad per unit t, makes the learned
/// field oscillate in t, and adaptive ODE solvers resolve it with many small steps.
pub const TIME_SCALE: f64 = 1000.0;

/// The time scale of new networks: `τ = 10 t`. Measured on 8gaussians (the default network,
/// 12 000 steps, PF-ODE NLL of 200 points by RK45 at rtol = atol = 1e-5): 183 NFE against 771
/// at [`TIME_SCALE`] (the exact score: 71), the same training loss, and a per-point ODE error
/// (against the same model at 1e-6) of 0.0009 nats mean, 0.006 max, against 0.005 and 0.05.
pub const DEFAULT_TIME_SCALE: f64 = 10.0;

/// Frequencies of the embedding and its time scale.
#[derive(Clone, Debug)]
pub struct TimeEmbedding {
    freqs: Vec<f32>,
    scale: f64,
}

impl TimeEmbedding {
    /// `dim` must be even; the embedding sees `τ = scale · t` (`NetConfig::time_scale`).
    pub fn new(dim: usize, scale: f64) -> Self {
        let half = dim / 2;
        let denom = (half.max(2) - 1) as f64;
        let freqs = (0..half)
            .map(|k| (-(10000f64.ln()) * k as f64 / denom).exp() as f32)
            .collect();
        Self { freqs, scale }
    }

    pub fn dim(&self) -> usize {
        2 * self.freqs.len()
    }

    /// Writes `emb(t)` into `out` (length E). The phase is formed in f64, then rounded.
    pub fn fill(&self, t: f64, out: &mut [f32]) {
        let half = self.freqs.len();
        let tau = self.scale * t;
        let (sin, cos) = out[..2 * half].split_at_mut(half);
        let mut phase = [0f64; 64];
        for (k0, f) in self.freqs.chunks(phase.len()).enumerate() {
            let ph = &mut phase[..f.len()];
            ph.iter_mut().zip(f).for_each(|(p, &f)| *p = tau * f as f64);
            let at = k0 * 64..k0 * 64 + f.len();
            sin_cos_f32(ph, &mut sin[at.clone()], &mut cos[at]);
        }
    }
}
