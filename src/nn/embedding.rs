//! Sinusoidal time embedding (Vaswani et al. 2017; Ho et al. 2020's `get_timestep_embedding`):
//! `emb(t) = [sin(τ f_k), cos(τ f_k)]_{k < E/2}` with `τ = 1000 t` and
//! `f_k = 10000^{−k/(E/2 − 1)}`. Continuous t ∈ [0, 1] and DDPM's integer steps i = 1000 t share
//! one scale, so a network trained on either grid reads the same inputs.

use crate::numerics::sin_cos_fast;

/// The network sees `τ = TIME_SCALE · t` (DDPM's integer timestep when t = i/1000).
pub const TIME_SCALE: f64 = 1000.0;

/// Frequencies of the embedding and its time scale.
#[derive(Clone, Debug)]
pub struct TimeEmbedding {
    freqs: Vec<f32>,
    scale: f64,
}

impl TimeEmbedding {
    /// `dim` must be even; the embedding sees `τ = scale · t` ([`TIME_SCALE`] by default).
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
        for (k, &f) in self.freqs.iter().enumerate() {
            let (s, c) = sin_cos_fast(tau * f as f64);
            out[k] = s as f32;
            out[half + k] = c as f32;
        }
    }
}
