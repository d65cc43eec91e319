//! The reverse dynamics of a path driven by a field (Anderson 1982; Song et al. 2021, eqs. 6 and
//! 13): the family `dx = [u − ½ w(t)² ∇log p_t] dt + w(t) dw̄` with its w(t) ([`Diffusion`]),
//! the probability-flow ODE (w = 0) among them, as systems the solvers integrate backward.
//! This module sits above [`crate::sde`] and [`crate::score`] (neither depends on it):
//! `sde.reverse(&score)` comes from the [`Reverse`] trait, implemented for every SDE:
//!
//! ```
//! use scoresde::prelude::*;
//! let data = Dataset::from_spec("bimodal-1d").unwrap();
//! let model = Model::exact(&data, &SdeSpec::default()).unwrap();
//! let vp = VpSde::default();
//! let pf = vp.reverse(model.score()).probability_flow();
//! // The PF-ODE drift f − ½g²s at t = 0.5 is odd in x for this symmetric data.
//! let x = ndarray::array![[0.7], [-0.7]];
//! let mut out = ndarray::Array2::zeros((2, 1));
//! use scoresde::solvers::{OdeSystem, Time};
//! pf.rhs(Time::Shared(0.5), x.view(), out.view_mut());
//! assert!((out[[0, 0]] + out[[1, 0]]).abs() < 1e-12);
//! ```

use crate::path::Path;
use crate::score::{convert, Score};
use crate::sde::Sde;
use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use scoresde_solvers::{OdeSystem, SdeSystem, Time};
use serde::{Deserialize, Serialize};

/// The reverse-time drift `a(t) x − c s` in score form, given `c` = ½(g² + w²): c = g² for the
/// reverse SDE (Anderson 1982), c = ½ g² for the probability-flow ODE (Song et al. 2021,
/// eq. 13), c = (1 − λ/2) g² for Huang et al. 2021's plug-in family. The one home of this
/// formula; [`velocity_drift`] is the same drift where m = 0.
#[inline]
pub fn reverse_drift(a: f64, wg2: f64, x: f64, s: f64) -> f64 {
    a * x - wg2 * s
}

/// The reverse-time drift in velocity form, `u − ½ w² ∇log p_t = u + ½ w² ε̂ / s` with
/// `ε̂ = (m u − ṁ x)/(m ṡ − ṁ s)` ([`convert::eps_from_velocity`]): regular at m = 0.
#[inline]
pub fn velocity_drift(u: f64, x: f64, w2: f64, p: crate::path::PathPoint) -> f64 {
    u + 0.5 * w2 * convert::eps_from_velocity(u, x, p) / p.s
}

/// The family w(t) of the reverse dynamics `dx = [u − ½ w² ∇log p_t] dt + w dw̄`, run from
/// t_max down to the cut-off: every member has the marginals p_t of the path (the Fokker–Planck
/// equations agree; Song et al. 2021 App. D.1; Albergo et al. 2023, eq. 2.33).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DiffusionKind {
    /// w = 0: the probability-flow ODE.
    Zero,
    /// w = C g(t): the path's reverse SDE (C = 1; Anderson 1982).
    #[default]
    G,
    /// w = C.
    Constant,
    /// w² = 2 C s(t) (SiT's `sigma`; Ma et al. 2024, `transport/path.py`).
    Sigma,
    /// w² = 2 C t (SiT's `linear`, in this time direction: 0 at the data).
    Linear,
    /// w² = ½ (1 − C cos πt)² (SiT's `decreasing`: it decreases toward the data).
    Decreasing,
}

/// w(t): a [`DiffusionKind`] with its scale C, or Huang et al. 2021's plug-in λ
/// (w² = (1 − λ) g², kept as its own case so that its arithmetic is the plug-in's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Diffusion {
    Kind { kind: DiffusionKind, scale: f64 },
    PlugIn { lambda: f64 },
}

impl Default for Diffusion {
    fn default() -> Self {
        Diffusion::Kind {
            kind: DiffusionKind::G,
            scale: 1.0,
        }
    }
}

impl Diffusion {
    pub const ZERO: Diffusion = Diffusion::Kind {
        kind: DiffusionKind::Zero,
        scale: 1.0,
    };

    /// Whether w is a multiple of g (and so singular where g is).
    pub fn needs_g(&self) -> bool {
        match *self {
            Diffusion::Kind { kind, scale } => kind == DiffusionKind::G && scale != 0.0,
            Diffusion::PlugIn { lambda } => lambda < 1.0,
        }
    }

    /// w(t)² given g(t)² = `g2`.
    pub fn w2(&self, path: &dyn Path, t: f64, g2: f64) -> f64 {
        match *self {
            Diffusion::Kind { kind, scale: c } => match kind {
                DiffusionKind::Zero => 0.0,
                DiffusionKind::G => c * c * g2,
                DiffusionKind::Constant => c * c,
                DiffusionKind::Sigma => 2.0 * c * path.marginal(t).std,
                DiffusionKind::Linear => 2.0 * c * t,
                DiffusionKind::Decreasing => {
                    0.5 * (1.0 - c * (std::f64::consts::PI * t).cos()).powi(2)
                }
            },
            Diffusion::PlugIn { lambda } => (1.0 - lambda).max(0.0) * g2,
        }
    }

    /// `c = ½ (g² + w²)`, the score's coefficient in the drift.
    pub fn score_coeff(&self, path: &dyn Path, t: f64, g2: f64) -> f64 {
        match *self {
            Diffusion::Kind { kind, scale } => match kind {
                DiffusionKind::Zero => 0.5 * g2,
                DiffusionKind::G => 0.5 * (1.0 + scale * scale) * g2,
                _ => 0.5 * (g2 + self.w2(path, t, g2)),
            },
            Diffusion::PlugIn { lambda } => (1.0 - 0.5 * lambda) * g2,
        }
    }

    /// w(t).
    pub fn w(&self, path: &dyn Path, t: f64) -> f64 {
        match *self {
            Diffusion::PlugIn { lambda } => (1.0 - lambda).max(0.0).sqrt() * path.diffusion(t),
            Diffusion::Kind {
                kind: DiffusionKind::G,
                scale,
            } => scale.abs() * path.diffusion(t),
            _ => self.w2(path, t, 0.0).sqrt(),
        }
    }

    /// Refuses w = C g on a path whose g is singular somewhere in `[t_end, t_start]` (tested at
    /// both ends: the paths here are singular only at t_max): one line naming the path, the time
    /// and the alternatives, instead of a NaN or a silent clip.
    pub fn check(&self, path: &dyn Path, t_start: f64, t_end: f64) -> crate::Result<()> {
        for t in [t_start, t_end] {
            if self.needs_g() && !path.diffusion(t).is_finite() {
                return Err(crate::invalid!(
                    "--diffusion g is singular on the {} path at t = {} (g² = {}): use --diffusion sigma, linear, decreasing, constant or zero, or stop short of t = {}",
                    path.name(),
                    crate::error::num(t),
                    crate::error::num(path.g2(t)),
                    crate::error::num(t)
                ));
            }
        }
        Ok(())
    }
}

/// Whether the score form `a x − c s` is regular at t: m > 0 and f, g finite.
fn score_form_regular(path: &dyn Path, t: f64) -> bool {
    path.marginal(t).mean > 0.0 && path.drift_coeff(t).is_finite() && path.diffusion(t).is_finite()
}

/// Writes the reverse drift `u − ½ w² ∇log p_t` into `out`: in score form
/// ([`reverse_drift`]) at every regular time, in velocity form ([`velocity_drift`]) where the
/// path is singular (m = 0), from the field's own velocity ([`Score::velocity`]).
pub fn drift_into(
    path: &dyn Path,
    score: &dyn Score,
    w: Diffusion,
    t: Time<'_>,
    x: ArrayView2<f64>,
    mut out: ArrayViewMut2<f64>,
) {
    let regular = match t {
        Time::Shared(t) => score_form_regular(path, t),
        Time::PerRow(ts) => ts.iter().all(|&t| score_form_regular(path, t)),
    };
    if regular {
        score.score(t, x, out.view_mut());
        for_rows(t, x, out, |t, x, o| {
            let g2 = path.diffusion(t).powi(2);
            let (a, c) = (path.drift_coeff(t), w.score_coeff(path, t, g2));
            Zip::from(o)
                .and(x)
                .for_each(|o, &x| *o = reverse_drift(a, c, x, *o));
        });
    } else {
        if !score.velocity(t, x, out.view_mut()) {
            // Only a score: the drift is singular here; a NaN stops the solver with the step.
            out.fill(f64::NAN);
            return;
        }
        for_rows(t, x, out, |t, x, o| {
            let p = path.point(t);
            let w2 = if w.needs_g() {
                f64::NAN
            } else {
                w.w2(path, t, 0.0)
            };
            Zip::from(o)
                .and(x)
                .for_each(|o, &x| *o = velocity_drift(*o, x, w2, p));
        });
    }
}

/// Applies `f(t, x_row_block, out_row_block)` to the rows sharing a time.
fn for_rows(
    t: Time<'_>,
    x: ArrayView2<f64>,
    mut out: ArrayViewMut2<f64>,
    f: impl Fn(f64, ArrayView2<f64>, ArrayViewMut2<f64>),
) {
    match t {
        Time::Shared(t) => f(t, x, out),
        Time::PerRow(ts) => {
            for (i, &t) in ts.iter().enumerate() {
                f(
                    t,
                    x.slice(ndarray::s![i..i + 1, ..]),
                    out.slice_mut(ndarray::s![i..i + 1, ..]),
                );
            }
        }
    }
}

/// `sde.reverse(&score)` on any path value, concrete (`VpSde::default().reverse(&score)`) or
/// `dyn Path`; `.probability_flow()` of the result is the PF-ODE.
pub trait Reverse {
    /// The reverse-time SDE `dx = [f − g² s] dt + g dw̄` driven by `score`.
    fn reverse<'a>(&'a self, score: &'a dyn Score) -> ReverseSde<'a>;
}

impl<S: Sde + ?Sized> Reverse for S {
    fn reverse<'a>(&'a self, score: &'a dyn Score) -> ReverseSde<'a> {
        ReverseSde::new(self.as_dyn_path(), score)
    }
}

/// The reverse dynamics `dx = [u − ½ w(t)² ∇log p_t] dt + w(t) dw̄` of a path, integrated from
/// t_max to ε; w = g (the default) is the reverse SDE `dx = [f − g² s] dt + g dw̄`.
///
/// Huang, Lim & Courville 2021's plug-in reverse SDE `dx = [f − (1 − λ/2) g² s] dt
/// + √(1 − λ) g dw̄` is the member w² = (1 − λ) g² ([`ReverseSde::with_lambda`]).
#[derive(Clone, Copy)]
pub struct ReverseSde<'a> {
    pub sde: &'a dyn Sde,
    pub score: &'a dyn Score,
    pub w: Diffusion,
}

impl<'a> ReverseSde<'a> {
    pub fn new(sde: &'a dyn Sde, score: &'a dyn Score) -> Self {
        Self {
            sde,
            score,
            w: Diffusion::default(),
        }
    }

    /// The plug-in reverse SDE with this λ.
    pub fn with_lambda(self, lambda: f64) -> Self {
        self.with_diffusion(Diffusion::PlugIn { lambda })
    }

    /// The member of the family with this w(t).
    pub fn with_diffusion(self, w: Diffusion) -> Self {
        Self { w, ..self }
    }

    /// The probability-flow ODE `dx/dt = f − ½ g² s`, which shares every marginal p_t.
    pub fn probability_flow(&self) -> ProbabilityFlow<'a> {
        ProbabilityFlow {
            sde: self.sde,
            score: self.score,
        }
    }
}

impl SdeSystem for ReverseSde<'_> {
    fn dim(&self) -> usize {
        self.score.dim()
    }
    fn drift(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        drift_into(self.sde, self.score, self.w, t, x, out);
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.w.w(self.sde, t)
    }
}

/// Probability-flow ODE `dx/dt = f(x, t) − ½ g(t)² s(x, t)` (Song et al. 2021, eq. 13), the
/// velocity `u = E[ṁ x₀ + ṡ z | x_t]` (Lipman et al. 2023) in other words.
#[derive(Clone, Copy)]
pub struct ProbabilityFlow<'a> {
    pub sde: &'a dyn Sde,
    pub score: &'a dyn Score,
}

impl OdeSystem for ProbabilityFlow<'_> {
    fn dim(&self) -> usize {
        self.score.dim()
    }
    fn rhs(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        drift_into(self.sde, self.score, Diffusion::ZERO, t, x, out);
    }
}

/// Negative control for sampler tests: the probability-flow drift u = f − ½g²s with the noise
/// w dw̄ of the wrapped dynamics and none of the score correction −½w²s it needs (w = g, the
/// default: the reverse SDE's noise; the bug of tue-bmd/zea PR #551 for any w). Its marginals
/// are wider than p_t; a test that cannot reject it has no power.
pub struct WrongReverse<'a>(pub ReverseSde<'a>);

impl SdeSystem for WrongReverse<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn drift(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        self.0.probability_flow().rhs(t, x, out);
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.0.diffusion(t)
    }
}
