//! The one home of the conversions between parameterisations of a denoiser.
//!
//! With `x_t = m x₀ + s ε` (m = mean coefficient, s = kernel std, see [`Marginal`]):
//! * ε-prediction: `s(x, t) = −ε / s` (Song et al. 2021; Ho et al. 2020's ε_θ);
//! * x₀-prediction: `s(x, t) = (m x₀ − x) / s²` (Tweedie: `E[x₀ | x] = (x + s² ∇log p_t) / m`);
//! * v-prediction (Salimans & Ho 2022, `v = m ε − s x₀`): `ε = (m v + s x) / (m² + s²)`.
//!
//! Every other module converts through these functions; no other file repeats the formulas.

use crate::sde::Marginal;

/// What a model predicts.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    #[default]
    Eps,
    X0,
    V,
    Score,
}

/// s = −ε / σ(t).
#[inline]
pub fn score_from_eps(eps: f64, k: Marginal) -> f64 {
    -eps / k.std
}

/// ε = −σ(t) s.
#[inline]
pub fn eps_from_score(score: f64, k: Marginal) -> f64 {
    -k.std * score
}

/// Tweedie's formula: `E[x₀ | x_t = x] = (x + s² ∇log p_t(x)) / m`.
#[inline]
pub fn x0_from_score(score: f64, x: f64, k: Marginal) -> f64 {
    (x + k.std * k.std * score) / k.mean
}

/// `s = (m x₀ − x) / s²`.
#[inline]
pub fn score_from_x0(x0: f64, x: f64, k: Marginal) -> f64 {
    (k.mean * x0 - x) / (k.std * k.std)
}

/// `ε = (m v + s x) / (m² + s²)`.
#[inline]
pub fn eps_from_v(v: f64, x: f64, k: Marginal) -> f64 {
    (k.mean * v + k.std * x) / (k.mean * k.mean + k.std * k.std)
}

impl Prediction {
    /// Converts one coordinate of a model output at input coordinate `x` into a score.
    #[inline]
    pub fn to_score(self, out: f64, x: f64, k: Marginal) -> f64 {
        match self {
            Prediction::Eps => score_from_eps(out, k),
            Prediction::X0 => score_from_x0(out, x, k),
            Prediction::V => score_from_eps(eps_from_v(out, x, k), k),
            Prediction::Score => out,
        }
    }

    /// The regression target of one coordinate for `x_t = m x₀ + s ε`.
    #[inline]
    pub fn target(self, x0: f64, eps: f64, k: Marginal) -> f64 {
        match self {
            Prediction::Eps => eps,
            Prediction::X0 => x0,
            Prediction::V => k.mean * eps - k.std * x0,
            Prediction::Score => score_from_eps(eps, k),
        }
    }

    /// `J = ∂ε/∂out` at fixed x_t: `ε̂ − ε = J (out − target)`, so `J² ‖out − target‖²` is the
    /// ε-MSE (DDPM's L_simple) whatever the parameterisation.
    #[inline]
    pub fn eps_jacobian(self, k: Marginal) -> f64 {
        match self {
            Prediction::Eps => 1.0,
            Prediction::X0 => -k.mean / k.std,
            Prediction::V => k.mean / (k.mean * k.mean + k.std * k.std),
            Prediction::Score => -k.std,
        }
    }
}
