//! The one home of the conversions between parameterisations of a denoiser.
//!
//! With `x_t = m x₀ + s ε` (m = mean coefficient, s = kernel std, see [`Marginal`]):
//! * ε-prediction: `s(x, t) = −ε / s` (Song et al. 2021; Ho et al. 2020's ε_θ);
//! * x₀-prediction: `s(x, t) = (m x₀ − x) / s²` (Tweedie: `E[x₀ | x] = (x + s² ∇log p_t) / m`);
//! * v-prediction (Salimans & Ho 2022, `v = m ε − s x₀`): `ε = (m v + s x) / (m² + s²)`;
//! * the flow-matching velocity (Lipman et al. 2023, eq. 21; Liu et al. 2022)
//!   `u = ṁ x₀ + ṡ ε`, whose conditional mean `E[u | x_t]` is the PF-ODE's drift
//!   `f x − ½ g² ∇log p_t`: with `D = m ṡ − ṁ s`, `ε = (m u − ṁ x)/D` and `x₀ = (ṡ x − s u)/D`,
//!   regular where m = 0 (rectified and trigonometric paths at t = 1). Not Salimans–Ho's v;
//!   the two keep their names: [`Prediction::V`] and [`Prediction::Velocity`].
//! * EDM preconditioning (Karras et al. 2022, §5 and Table 1) in the scaled variables
//!   `σ̃ = s/m`, `y = x/m`: the network sees `c_in y` with `c_in = 1/√(σ̃² + σ_d²)` and
//!   `x̂₀ = c_skip y + c_out F` with `c_skip = σ_d²/(σ̃² + σ_d²)`,
//!   `c_out = σ̃ σ_d/√(σ̃² + σ_d²)`; σ_d is the data's standard deviation.
//!
//! Every other module converts through these functions; no other file repeats the formulas.

use crate::path::{Marginal, PathPoint};

/// What a model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Prediction {
    #[default]
    Eps,
    X0,
    V,
    Score,
    /// EDM's preconditioned denoiser output F (uses the network's `sigma_data`).
    Edm,
    /// The flow-matching velocity u = ṁ x₀ + ṡ ε.
    Velocity,
}

/// EDM's `(c_skip, c_out, c_in · (1/m))` for kernel `k` and data std `sd`: the network input
/// is `x · c_in/m`, `x̂₀ = c_skip x/m + c_out F`.
#[inline]
fn edm_coefficients(k: Marginal, sd: f64) -> (f64, f64, f64) {
    let st = k.sigma_tilde();
    let r = st * st + sd * sd;
    (sd * sd / r, st * sd / r.sqrt(), 1.0 / (k.mean * r.sqrt()))
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

/// `ε = (m u − ṁ x) / (m ṡ − ṁ s)` from a velocity.
#[inline]
pub fn eps_from_velocity(u: f64, x: f64, p: PathPoint) -> f64 {
    (p.m * u - p.dm * x) / p.velocity_det()
}

/// `x₀ = (ṡ x − s u) / (m ṡ − ṁ s)` from a velocity.
#[inline]
pub fn x0_from_velocity(u: f64, x: f64, p: PathPoint) -> f64 {
    (p.ds * x - p.s * u) / p.velocity_det()
}

/// `u = ṁ x₀ + ṡ ε`.
#[inline]
pub fn velocity_from_x0_eps(x0: f64, eps: f64, p: PathPoint) -> f64 {
    p.dm * x0 + p.ds * eps
}

/// `∇log p_t = −ε/s` from a velocity.
#[inline]
pub fn score_from_velocity(u: f64, x: f64, p: PathPoint) -> f64 {
    score_from_eps(eps_from_velocity(u, x, p), p.kernel())
}

impl Prediction {
    /// Converts one coordinate of a model output at input coordinate `x` into a score
    /// (`sd`: the data std of EDM preconditioning; unused by the other parameterisations).
    #[inline]
    pub fn to_score(self, out: f64, x: f64, p: PathPoint, sd: f64) -> f64 {
        let k = p.kernel();
        match self {
            Prediction::Eps => score_from_eps(out, k),
            Prediction::X0 => score_from_x0(out, x, k),
            Prediction::V => score_from_eps(eps_from_v(out, x, k), k),
            Prediction::Score => out,
            Prediction::Edm => {
                let (skip, cout, _) = edm_coefficients(k, sd);
                score_from_x0(skip * x / k.mean + cout * out, x, k)
            }
            Prediction::Velocity => score_from_velocity(out, x, p),
        }
    }

    /// `(x̂₀, ε̂)` from one coordinate of a model output at input coordinate `x`: through the
    /// velocity's own formulas for [`Prediction::Velocity`] (regular where m = 0), through
    /// the score otherwise.
    #[inline]
    pub fn x0_eps(self, out: f64, x: f64, p: PathPoint, sd: f64) -> (f64, f64) {
        if self == Prediction::Velocity {
            return (x0_from_velocity(out, x, p), eps_from_velocity(out, x, p));
        }
        let k = p.kernel();
        let score = self.to_score(out, x, p, sd);
        (x0_from_score(score, x, k), eps_from_score(score, k))
    }

    /// One coordinate of a model output re-expressed as the prediction `to`.
    #[inline]
    pub fn convert(self, to: Prediction, out: f64, x: f64, p: PathPoint, sd: f64) -> f64 {
        if self == to {
            return out;
        }
        let (x0, eps) = self.x0_eps(out, x, p, sd);
        to.target(x0, eps, p, sd)
    }

    /// The regression target of one coordinate for `x_t = m x₀ + s ε`.
    #[inline]
    pub fn target(self, x0: f64, eps: f64, p: PathPoint, sd: f64) -> f64 {
        let k = p.kernel();
        match self {
            Prediction::Eps => eps,
            Prediction::X0 => x0,
            Prediction::V => k.mean * eps - k.std * x0,
            Prediction::Score => score_from_eps(eps, k),
            Prediction::Edm => {
                let (skip, cout, _) = edm_coefficients(k, sd);
                let y = x0 + k.sigma_tilde() * eps;
                (x0 - skip * y) / cout
            }
            Prediction::Velocity => velocity_from_x0_eps(x0, eps, p),
        }
    }

    /// `J = ∂ε/∂out` at fixed x_t: `ε̂ − ε = J (out − target)`, so `J² ‖out − target‖²` is the
    /// ε-MSE (DDPM's L_simple) whatever the parameterisation.
    #[inline]
    pub fn eps_jacobian(self, p: PathPoint, sd: f64) -> f64 {
        let k = p.kernel();
        match self {
            Prediction::Eps => 1.0,
            Prediction::X0 => -k.mean / k.std,
            Prediction::V => k.mean / (k.mean * k.mean + k.std * k.std),
            Prediction::Score => -k.std,
            Prediction::Edm => -edm_coefficients(k, sd).1 * k.mean / k.std,
            Prediction::Velocity => p.m / p.velocity_det(),
        }
    }

    /// The factor the network's x input is multiplied by (EDM's `c_in / m`; 1 otherwise).
    #[inline]
    pub fn input_scale(self, p: PathPoint, sd: f64) -> f64 {
        match self {
            Prediction::Edm => edm_coefficients(p.kernel(), sd).2,
            _ => 1.0,
        }
    }
}
