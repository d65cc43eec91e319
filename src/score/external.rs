//! A field computed outside this library — a Python callable, a network on a GPU — seen as a
//! [`Score`]: it is called once per evaluation on the whole batch ([`Score::whole_batch`]),
//! returns its declared [`Prediction`], and is converted to a score (or given as a velocity)
//! by [`crate::score::convert`]. A call that fails makes this and every later evaluation NaN,
//! which stops any sampler or integrator at the step it is in; the caller keeps the cause.

use super::convert::Prediction;
use super::Score;
use crate::path::Path;
use crate::{invalid, Result};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use scoresde_solvers::Time;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What an external model returns for `(t, x)`: its prediction for every row, or `Err` (the
/// caller keeps the cause; the run stops).
pub type ExternalFn =
    dyn Fn(Time<'_>, ArrayView2<f64>) -> std::result::Result<Array2<f64>, ()> + Send + Sync;

/// An external model `f(x, t)` predicting `prediction` on `path`, in dimension `dim`.
pub struct External {
    f: Box<ExternalFn>,
    dim: usize,
    prediction: Prediction,
    /// σ_data of EDM preconditioning (read by [`Prediction::Edm`] only).
    sigma_data: f64,
    path: Arc<dyn Path>,
    failed: AtomicBool,
}

impl External {
    pub fn new(
        f: Box<ExternalFn>,
        dim: usize,
        prediction: Prediction,
        sigma_data: f64,
        path: Arc<dyn Path>,
    ) -> Result<Self> {
        crate::error::check_range("dim", dim, crate::error::MAX_VALUES)?;
        if prediction == Prediction::Edm && !(sigma_data > 0.0 && sigma_data.is_finite()) {
            return Err(invalid!(
                "`prediction` edm needs a positive `sigma_data`, got {}",
                crate::error::num(sigma_data)
            ));
        }
        Ok(Self {
            f,
            dim,
            prediction,
            sigma_data,
            path,
            failed: AtomicBool::new(false),
        })
    }

    /// Whether a call has failed (every evaluation since is NaN).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The model's raw output into `out`, or false (and NaN) once a call has failed.
    fn call(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> bool {
        if !self.failed() {
            match (self.f)(t, x) {
                Ok(y) if y.dim() == out.dim() => {
                    out.assign(&y);
                    return true;
                }
                _ => self.failed.store(true, Ordering::SeqCst),
            }
        }
        out.fill(f64::NAN);
        false
    }
}

impl Score for External {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sde(&self) -> Option<&dyn Path> {
        Some(self.path.as_ref())
    }
    fn whole_batch(&self) -> bool {
        true
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        if self.prediction == Prediction::Edm {
            // The network sees EDM's scaled input c_in·x/m.
            let mut xin = x.to_owned();
            for (i, mut r) in xin.rows_mut().into_iter().enumerate() {
                r *= self
                    .prediction
                    .input_scale(self.path.point(t.at(i)), self.sigma_data);
            }
            if !self.call(t, xin.view(), out.view_mut()) {
                return;
            }
        } else if !self.call(t, x, out.view_mut()) {
            return;
        }
        let (pred, sd) = (self.prediction, self.sigma_data);
        crate::path::map_points(self.path.as_ref(), t, x, out, |o, x, p| {
            pred.to_score(o, x, p, sd)
        });
    }
    /// A velocity model's output as it is (regular where m = 0).
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) -> bool {
        if self.prediction != Prediction::Velocity {
            return false;
        }
        self.call(t, x, out);
        true
    }
}
