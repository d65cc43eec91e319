//! The network's input row `[x, sin 2πxB, cos 2πxB, emb(t)]`: the raw coordinates, random
//! Fourier features of x (Tancik et al. 2020, "Fourier features let networks learn high
//! frequency functions", eq. 5 with B_ij ~ N(0, σ²); the Gaussian Fourier projection of Song
//! et al. 2021's NCSN++ applied to x), the sinusoidal time embedding ([`TimeEmbedding`]) and,
//! for a class-conditional network, a one-hot of the class label (the null class last).
//!
//! An MLP on raw x has a spectral bias towards smooth functions and blurs narrow modes; the
//! features give the first layer frequencies of order σ to combine.

use super::TimeEmbedding;
use crate::numerics::sin_cos_f32;
use ndarray::ArrayView1;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::f64::consts::TAU;

/// Seed domain of the Fourier projection.
const FOURIER_DOMAIN: u64 = crate::domain::Domain::Fourier.key();

/// The projection `B` (d × F, row-major): fixed at initialisation, saved with the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Fourier {
    pub d: usize,
    pub f: usize,
    pub b: Vec<f32>,
}

impl Fourier {
    /// `B_ij = scale · N(0, 1)`, drawn from a generator keyed by `seed`.
    pub fn draw(d: usize, f: usize, scale: f64, seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ FOURIER_DOMAIN.rotate_left(24));
        let b = (0..d * f)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                (scale * z) as f32
            })
            .collect();
        Self { d, f, b }
    }
}

/// Fourier phases computed per pass of [`sin_cos_f32`] (a stack buffer).
const PHASE_CHUNK: usize = 64;

/// Builds input rows.
#[derive(Clone, Debug)]
pub struct Features {
    d: usize,
    emb: TimeEmbedding,
    fourier: Option<Fourier>,
    /// Width of the class one-hot (K + 1, or 0 for an unconditional network).
    labels: usize,
}

impl Features {
    /// Features of a network in dimension `d` with a class one-hot of `labels` entries; `emb`
    /// is the time embedding.
    pub fn new(d: usize, emb: TimeEmbedding, fourier: Option<Fourier>, labels: usize) -> Self {
        Self {
            d,
            emb,
            fourier,
            labels,
        }
    }

    pub fn fourier(&self) -> Option<&Fourier> {
        self.fourier.as_ref()
    }

    /// Width of the x part `[x, sin, cos]`.
    pub fn x_width(&self) -> usize {
        self.d + 2 * self.fourier.as_ref().map_or(0, |f| f.f)
    }

    /// Width of a whole input row.
    pub fn width(&self) -> usize {
        self.x_width() + self.emb.dim() + self.labels
    }

    /// Offset of the class one-hot in a row (after x, its features and emb(t)).
    pub fn label_offset(&self) -> usize {
        self.x_width() + self.emb.dim()
    }

    /// The one-hot column of `label` (`None`: the null class, the last column).
    pub fn label_column(&self, label: Option<usize>) -> Option<usize> {
        (self.labels > 0).then(|| label.unwrap_or(self.labels - 1))
    }

    /// Writes `[x, sin 2πxB, cos 2πxB]` into `out` (length [`Features::x_width`]); phases in f64.
    pub fn fill_x(&self, x: ArrayView1<f64>, out: &mut [f32]) {
        let d = self.d;
        for (o, &v) in out[..d].iter_mut().zip(x) {
            *o = v as f32;
        }
        if let Some(fr) = &self.fourier {
            let (sin, cos) = out[d..].split_at_mut(fr.f);
            // Phases 2π Σ_c x_c B_cj, summed over c in order (f64), a chunk at a time; then one
            // vectorised sin/cos pass over the chunk.
            let zero: f64 = std::iter::empty::<f64>().sum();
            let mut phase = [0f64; PHASE_CHUNK];
            for j0 in (0..fr.f).step_by(PHASE_CHUNK) {
                let m = PHASE_CHUNK.min(fr.f - j0);
                let ph = &mut phase[..m];
                ph.fill(zero);
                for (c, &v) in x.iter().enumerate() {
                    let b = &fr.b[c * fr.f + j0..c * fr.f + j0 + m];
                    ph.iter_mut().zip(b).for_each(|(p, &b)| *p += v * b as f64);
                }
                ph.iter_mut().for_each(|p| *p *= TAU);
                sin_cos_f32(ph, &mut sin[j0..j0 + m], &mut cos[j0..j0 + m]);
            }
        }
    }

    /// Writes `emb(t)` into `out` (length E).
    pub fn fill_t(&self, t: f64, out: &mut [f32]) {
        self.emb.fill(t, out);
    }

    /// A whole input row; `label` is a class index (`None`: the null class; ignored by an
    /// unconditional network).
    pub fn fill(&self, x: ArrayView1<f64>, t: f64, label: Option<usize>, out: &mut [f32]) {
        let (a, b) = out.split_at_mut(self.x_width());
        self.fill_x(x, a);
        let (b, c) = b.split_at_mut(self.emb.dim());
        self.fill_t(t, b);
        if let Some(col) = self.label_column(label) {
            c.iter_mut().for_each(|v| *v = 0.0);
            c[col] = 1.0;
        }
    }
}
