//! Forward SDEs `dx = f(x, t) dt + g(t) dw` with linear drift `f = a(t) x` and Gaussian
//! perturbation kernels `p_0t(x_t | x_0) = N(m(t) x_0, s(t)² I)` (Song et al. 2021, App. B–C),
//! as values; their reverse-time SDEs and PF-ODEs are in [`crate::reverse`].

mod forward;
mod schedule;
mod spec;
mod subvp;
mod ve;
mod vp;

pub use forward::Forward;
pub use schedule::BetaSchedule;
pub use spec::{ScheduleKind, SdeKind, SdeSpec};
pub use subvp::SubVpSde;
pub use ve::VeSde;
pub use vp::VpSde;

use ndarray::{Array1, Array2, ArrayView2};
use scoresde_solvers::KeyedNormal;

/// Noise domain of prior draws (see [`KeyedNormal`]).
pub const PRIOR_DOMAIN: u64 = crate::domain::Domain::Prior.key();

/// The perturbation kernel at one time: `x_t = m x_0 + s z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Marginal {
    /// Mean coefficient m(t) (√ᾱ(t) for VP).
    pub mean: f64,
    /// Standard deviation s(t) (√(1 − ᾱ(t)) for VP).
    pub std: f64,
}

impl Marginal {
    /// EDM's noise level σ̃ = s/m: x_t/m = x_0 + σ̃ ε (Karras et al. 2022, eq. 4 with
    /// s(t) = m(t), σ(t) = σ̃).
    pub fn sigma_tilde(&self) -> f64 {
        self.std / self.mean
    }

    /// log-SNR `log(m² / s²)`.
    pub fn log_snr(&self) -> f64 {
        2.0 * (self.mean.ln() - self.std.ln())
    }
}

/// `&self` as a trait object, for the provided methods of [`Sde`] (implemented for every SDE).
pub trait AsDynSde {
    fn as_dyn_sde(&self) -> &dyn Sde;
}

impl<T: Sde> AsDynSde for T {
    fn as_dyn_sde(&self) -> &dyn Sde {
        self
    }
}

/// A forward diffusion SDE on `t ∈ [0, t_max]`.
pub trait Sde: AsDynSde + Send + Sync + std::fmt::Debug {
    /// Short name (`vp`, `subvp`, `ve`).
    fn name(&self) -> &'static str;
    /// `a(t)` in the linear drift `f(x, t) = a(t) x`.
    fn drift_coeff(&self, t: f64) -> f64;
    /// The diffusion coefficient g(t).
    fn diffusion(&self, t: f64) -> f64;
    /// Mean coefficient and standard deviation of `p_0t`.
    fn marginal(&self, t: f64) -> Marginal;
    /// End of the time interval (1 unless a schedule needs less).
    fn t_max(&self) -> f64 {
        1.0
    }
    /// Standard deviation of the isotropic Gaussian prior π = N(0, σ_p² I).
    fn prior_std(&self) -> f64;
    /// Default sampling cut-off ε (1e-3 for VP and sub-VP, 1e-5 for VE; Song et al. 2021).
    fn default_eps(&self) -> f64;
    /// log-SNR `log(m(t)² / s(t)²)`, decreasing in t (twice DPM-Solver's λ_t).
    fn log_snr(&self, t: f64) -> f64 {
        self.marginal(t).log_snr()
    }

    /// EDM's noise level σ̃(t) = s(t)/m(t) ([`Marginal::sigma_tilde`]).
    fn sigma_tilde(&self, t: f64) -> f64 {
        self.marginal(t).sigma_tilde()
    }

    /// The time of noise level σ̃: log SNR = −2 ln σ̃, inverted by [`Sde::t_of_log_snr`].
    fn t_of_sigma_tilde(&self, sigma: f64) -> f64 {
        self.t_of_log_snr(-2.0 * sigma.ln())
    }

    /// The inverse of [`Sde::log_snr`] on `[0, t_max]` (clamped there). The default bisects to
    /// machine precision; the SDEs here override it with closed forms.
    fn t_of_log_snr(&self, l: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, self.t_max());
        while hi - lo > 4.0 * f64::EPSILON * hi {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if self.log_snr(mid) > l {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// The forward transition kernel from time `from` to a later time `to`:
    /// `x_to = a x_from + b z` with `a = m(to)/m(from)` and `b² = s(to)² − a² s(from)²` (the
    /// kernels of a linear SDE compose). Predictors and DDIM step with it.
    fn transition(&self, from: f64, to: f64) -> Marginal {
        let (k0, k1) = (self.marginal(from), self.marginal(to));
        let a = k1.mean / k0.mean;
        Marginal {
            mean: a,
            std: (k1.std * k1.std - a * a * k0.std * k0.std).max(0.0).sqrt(),
        }
    }

    /// The VP SDE behind this object, if it is one (DDPM's discrete schedules need β(t)).
    fn as_vp(&self) -> Option<&VpSde> {
        None
    }

    /// The drift `f(x, t) = a(t) x` on a batch.
    fn drift(&self, x: ArrayView2<f64>, t: f64) -> Array2<f64> {
        x.mapv(|v| v * self.drift_coeff(t))
    }

    /// `n` draws from the prior, keyed by (seed, row).
    fn prior_sample(&self, n: usize, d: usize, seed: u64) -> Array2<f64> {
        KeyedNormal::new(seed, PRIOR_DOMAIN).matrix(n, d, 0) * self.prior_std()
    }

    /// `log π(x)` per row.
    fn prior_log_prob(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let s2 = self.prior_std().powi(2);
        let d = x.ncols() as f64;
        let c = -0.5 * d * (2.0 * std::f64::consts::PI * s2).ln();
        x.rows()
            .into_iter()
            .map(|r| c - 0.5 * r.dot(&r) / s2)
            .collect()
    }
}

/// Whether `a` and `b` are the same forward process: same kind, interval and kernel m(t), s(t)
/// (compared exactly at five times; SDEs built from the same parameters agree bit for bit).
pub fn same_sde(a: &dyn Sde, b: &dyn Sde) -> bool {
    a.name() == b.name()
        && a.t_max() == b.t_max()
        && [0.01, 0.1, 0.3, 0.7, 1.0].iter().all(|&f| {
            let t = f * a.t_max();
            a.marginal(t) == b.marginal(t)
        })
}
