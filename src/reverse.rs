//! Reverse-time SDE and probability-flow ODE of a forward SDE driven by a score (Anderson 1982;
//! Song et al. 2021, eqs. 6 and 13), as systems the generic solvers integrate backward in time.
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

use crate::score::Score;
use crate::sde::Sde;
use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use scoresde_solvers::{OdeSystem, SdeSystem, Time};

/// The reverse-time drift `a(t) x − w g(t)² s`, given `wg2` = w g(t)²: w = 1 for the reverse
/// SDE (Anderson 1982), w = ½ for the probability-flow ODE (Song et al. 2021, eq. 13),
/// w = 1 − λ/2 for Huang et al. 2021's plug-in family. The one home of this formula.
#[inline]
pub fn reverse_drift(a: f64, wg2: f64, x: f64, s: f64) -> f64 {
    a * x - wg2 * s
}

/// `sde.reverse(&score)` on any SDE value, concrete (`VpSde::default().reverse(&score)`) or
/// `dyn Sde`; `.probability_flow()` of the result is the PF-ODE.
pub trait Reverse {
    /// The reverse-time SDE `dx = [f − g² s] dt + g dw̄` driven by `score`.
    fn reverse<'a>(&'a self, score: &'a dyn Score) -> ReverseSde<'a>;
}

impl<S: Sde + ?Sized> Reverse for S {
    fn reverse<'a>(&'a self, score: &'a dyn Score) -> ReverseSde<'a> {
        ReverseSde::new(self.as_dyn_sde(), score)
    }
}

/// Writes `out ← a(t) x − w g(t)² · out` row by row, where `out` holds the score on entry and
/// `wg2(sde, t)` gives w g(t)².
fn combine(
    sde: &dyn Sde,
    t: Time<'_>,
    wg2: impl Fn(&dyn Sde, f64) -> f64,
    x: ArrayView2<f64>,
    mut out: ArrayViewMut2<f64>,
) {
    match t {
        Time::Shared(t) => {
            let (a, c) = (sde.drift_coeff(t), wg2(sde, t));
            Zip::from(&mut out)
                .and(&x)
                .for_each(|o, &x| *o = reverse_drift(a, c, x, *o));
        }
        Time::PerRow(ts) => {
            for ((mut o, x), &t) in out.rows_mut().into_iter().zip(x.rows()).zip(ts) {
                let (a, c) = (sde.drift_coeff(t), wg2(sde, t));
                Zip::from(&mut o)
                    .and(&x)
                    .for_each(|o, &x| *o = reverse_drift(a, c, x, *o));
            }
        }
    }
}

/// Reverse-time SDE `dx = [f(x, t) − g(t)² s(x, t)] dt + g(t) dw̄`, integrated from t_max to ε.
///
/// With `lambda` = λ ∈ [0, 1] it is Huang, Lim & Courville 2021's plug-in reverse SDE
/// `dx = [f − (1 − λ/2) g² s] dt + √(1 − λ) g dw̄`, which has the same marginals for every λ:
/// λ = 0 is the reverse SDE, λ = 1 the probability-flow ODE.
#[derive(Clone, Copy)]
pub struct ReverseSde<'a> {
    pub sde: &'a dyn Sde,
    pub score: &'a dyn Score,
    pub lambda: f64,
}

impl<'a> ReverseSde<'a> {
    pub fn new(sde: &'a dyn Sde, score: &'a dyn Score) -> Self {
        Self {
            sde,
            score,
            lambda: 0.0,
        }
    }

    /// The plug-in reverse SDE with this λ.
    pub fn with_lambda(self, lambda: f64) -> Self {
        Self { lambda, ..self }
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
    fn drift(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        self.score.score(t, x, out.view_mut());
        let w = 1.0 - 0.5 * self.lambda;
        combine(self.sde, t, |s, t| w * s.diffusion(t).powi(2), x, out);
    }
    fn diffusion(&self, t: f64) -> f64 {
        (1.0 - self.lambda).max(0.0).sqrt() * self.sde.diffusion(t)
    }
}

/// Probability-flow ODE `dx/dt = f(x, t) − ½ g(t)² s(x, t)` (Song et al. 2021, eq. 13).
#[derive(Clone, Copy)]
pub struct ProbabilityFlow<'a> {
    pub sde: &'a dyn Sde,
    pub score: &'a dyn Score,
}

impl OdeSystem for ProbabilityFlow<'_> {
    fn dim(&self) -> usize {
        self.score.dim()
    }
    fn rhs(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        self.score.score(t, x, out.view_mut());
        combine(self.sde, t, |s, t| 0.5 * s.diffusion(t).powi(2), x, out);
    }
}

/// Negative control for sampler tests: the probability-flow drift f − ½g²s with the reverse
/// SDE's noise g dw̄. It applies half the score correction the noise needs, so its marginals
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
        self.0.sde.diffusion(t)
    }
}
