//! Gaussian paths `x_t = m(t) x₀ + s(t) z`, the one object under every forward process here:
//! the VP, sub-VP and VE SDEs of Song et al. 2021 ([`crate::sde`]), EDM's σ(t) = t (Karras et
//! al. 2022), the rectified / conditional-OT path m = 1 − t, s = σ_min + (1 − σ_min) t
//! (Liu et al. 2022; Lipman et al. 2023, eq. 20) and the trigonometric path m = cos(πt/2),
//! s = sin(πt/2) (Albergo & Vanden-Eijnden 2023). A path gives m, s and their exact time
//! derivatives ṁ, ṡ ([`Path::rates`]); everything else is derived once, here, from those:
//!
//! * the forward SDE `dx = f(t) x dt + g(t) dw` with `f = ṁ/m` and `g² = 2 s² (ṡ/s − ṁ/m)`
//!   (Kingma et al. 2021, eq. 33; Lipman et al. 2024 §4.8), refused by [`check_path`] where
//!   g² < 0;
//! * log-SNR λ(t) = log(m²/s²) and its inverse, σ̃ = s/m, the transition kernel between two
//!   times, and the conversions between predictions at a time ([`PathPoint`]);
//! * the reverse dynamics with any diffusion w(t) ([`crate::reverse`]).
//!
//! A user's path is one `impl Path` (`examples/custom_path.rs`).

mod edm;
mod point;
mod rectified;
mod trig;

pub use edm::EdmPath;
pub use point::PathPoint;
pub use rectified::RectifiedPath;
pub use trig::TrigPath;

use crate::sde::VpSde;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Zip};
use scoresde_solvers::KeyedNormal;

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

/// The time derivatives of a kernel: ṁ(t) and ṡ(t).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub dmean: f64,
    pub dstd: f64,
}

/// Noise domain of prior draws (see [`KeyedNormal`]).
pub const PRIOR_DOMAIN: u64 = crate::domain::Domain::Prior.key();

/// `&self` as a trait object, for the provided methods of [`Path`] (implemented for every path).
pub trait AsDynPath {
    fn as_dyn_path(&self) -> &dyn Path;
}

impl<T: Path> AsDynPath for T {
    fn as_dyn_path(&self) -> &dyn Path {
        self
    }
}

/// A Gaussian path on `t ∈ [0, t_max]`: the kernel `p_0t(x_t | x_0) = N(m(t) x_0, s(t)² I)`,
/// its time derivatives, and the prior at t_max. The forward SDE's `f` and `g` are derived
/// (paths with closed forms override them, bit for bit the same quantities).
pub trait Path: AsDynPath + Send + Sync + std::fmt::Debug {
    /// Short name (`vp`, `subvp`, `ve`, `edm`, `rectified`, `trig`).
    fn name(&self) -> &'static str;
    /// Mean coefficient and standard deviation of `p_0t`.
    fn marginal(&self, t: f64) -> Marginal;
    /// ṁ(t) and ṡ(t), exact.
    fn rates(&self, t: f64) -> Rates;
    /// `f(t) = ṁ/m` in the forward drift `f(t) x` (infinite where m = 0).
    fn drift_coeff(&self, t: f64) -> f64 {
        let (k, r) = (self.marginal(t), self.rates(t));
        r.dmean / k.mean
    }
    /// `g(t)² = 2 s² (ṡ/s − ṁ/m) = 2 (s ṡ − s² ṁ/m)`: the forward SDE of the path (Kingma et al.
    /// 2021, eq. 33). Infinite where m = 0.
    fn g2(&self, t: f64) -> f64 {
        let (k, r) = (self.marginal(t), self.rates(t));
        2.0 * (k.std * r.dstd - k.std * k.std * r.dmean / k.mean)
    }
    /// The diffusion coefficient g(t) = √g².
    fn diffusion(&self, t: f64) -> f64 {
        self.g2(t).max(0.0).sqrt()
    }
    /// m, s, ṁ and ṡ at t: where predictions convert ([`PathPoint`]).
    fn point(&self, t: f64) -> PathPoint {
        PathPoint::new(self.marginal(t), self.rates(t))
    }
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

    /// The time of noise level σ̃: log SNR = −2 ln σ̃, inverted by [`Path::t_of_log_snr`].
    fn t_of_sigma_tilde(&self, sigma: f64) -> f64 {
        self.t_of_log_snr(-2.0 * sigma.ln())
    }

    /// The inverse of [`Path::log_snr`] on `[0, t_max]` (clamped there). The default bisects to
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
        isotropic_log_prob(x, self.prior_std())
    }
}

/// `log N(x; 0, σ² I)` per row.
pub fn isotropic_log_prob(x: ArrayView2<f64>, std: f64) -> Array1<f64> {
    let s2 = std * std;
    let d = x.ncols() as f64;
    let c = -0.5 * d * (2.0 * std::f64::consts::PI * s2).ln();
    x.rows()
        .into_iter()
        .map(|r| c - 0.5 * r.dot(&r) / s2)
        .collect()
}

/// Where the PF-ODE's score form is singular at t_max (m(t_max) = 0), likelihoods integrate
/// to `t_max (1 − SIGNAL_FREE_MARGIN)` instead and evaluate `N(0, s² I)` there: p_t differs
/// from it by O(m²) = O(1e-14) in KL, far below the solver's tolerance.
pub const SIGNAL_FREE_MARGIN: f64 = 1e-7;

/// `out ← f(out, x, point)` element by element, row i taking the [`PathPoint`] at its time
/// `t.at(i)` (formed once for a shared time): the one loop behind converting a batch of model
/// outputs on a path.
pub fn map_points(
    path: &dyn Path,
    t: scoresde_solvers::Time<'_>,
    x: ArrayView2<f64>,
    mut out: ArrayViewMut2<f64>,
    f: impl Fn(f64, f64, PathPoint) -> f64,
) {
    use scoresde_solvers::Time;
    match t {
        Time::Shared(t) => {
            let p = path.point(t);
            Zip::from(&mut out)
                .and(&x)
                .for_each(|o, &x| *o = f(*o, x, p));
        }
        Time::PerRow(ts) => {
            for ((mut o, xr), &t) in out.rows_mut().into_iter().zip(x.rows()).zip(ts) {
                let p = path.point(t);
                Zip::from(&mut o)
                    .and(&xr)
                    .for_each(|o, &x| *o = f(*o, x, p));
            }
        }
    }
}

/// Whether `a` and `b` are the same path: same kind, interval and kernel m(t), s(t)
/// (compared exactly at five times; paths built from the same parameters agree bit for bit).
pub fn same_path(a: &dyn Path, b: &dyn Path) -> bool {
    a.name() == b.name()
        && a.t_max() == b.t_max()
        && [0.01, 0.1, 0.3, 0.7, 1.0].iter().all(|&f| {
            let t = f * a.t_max();
            a.marginal(t) == b.marginal(t)
        })
}

/// How many points [`check_path`] examines.
const CHECK_POINTS: usize = 1024;

/// Refuses a path that is not a diffusion: m, s not finite or negative, s not increasing to
/// the prior, or g² < 0 somewhere in (0, t_max) (then no forward SDE has these marginals).
/// Examined on a uniform grid of 1024 interior times and at t_max; a one-line error names the
/// path, the time and the value.
pub fn check_path(path: &dyn Path) -> crate::Result<()> {
    let name = path.name();
    let tm = path.t_max();
    if !(tm > 0.0 && tm.is_finite()) {
        return Err(crate::invalid!(
            "path {name}: t_max must be positive and finite, got {}",
            crate::error::num(tm)
        ));
    }
    for i in 1..=CHECK_POINTS {
        let t = tm * i as f64 / (CHECK_POINTS + 1) as f64;
        let (k, r) = (path.marginal(t), path.rates(t));
        if !(k.mean > 0.0 && k.std > 0.0 && k.mean.is_finite() && k.std.is_finite()) {
            return Err(crate::invalid!(
                "path {name}: needs m(t) > 0 and s(t) > 0 inside (0, t_max), got m = {}, s = {} at t = {}",
                crate::error::num(k.mean), crate::error::num(k.std), crate::error::num(t)
            ));
        }
        if !(r.dmean.is_finite() && r.dstd.is_finite()) {
            return Err(crate::invalid!(
                "path {name}: ṁ or ṡ is not finite at t = {}",
                crate::error::num(t)
            ));
        }
        let g2 = path.g2(t);
        // g² = 2 s² d(log(s/m))/dt: negative means the noise-to-signal ratio falls.
        if g2 < -1e-12 * (k.std * r.dstd).abs().max(f64::MIN_POSITIVE) {
            return Err(crate::invalid!(
                "path {name}: g² = 2s²(ṡ/s − ṁ/m) = {} < 0 at t = {}: s/m must not decrease, so no forward SDE has these marginals",
                crate::error::num(g2), crate::error::num(t)
            ));
        }
    }
    Ok(())
}
