//! Guidance as a field transform, usable by every sampler on every path:
//! `s = (1 + w) s_main − w s_other` inside a guidance interval of t, `s_main` outside.
//! * classifier-free guidance (Ho & Salimans 2022, eq. 6 in score form): main = the
//!   conditional field p_t(x | c), other = the unconditional p_t(x);
//! * autoguidance (Karras et al. 2024, eq. 1, `D₁ + w (D₁ − D₀)` in their w − 1): main = the
//!   good model, other = a bad version of it;
//! * the guidance interval (Kynkäänniemi et al. 2024): w applies only for t in [from, to].
//!
//! Score, x̂₀, ε̂ and velocity are affine in one another with coefficients that sum to one here,
//! so the same combination holds for each: the guided velocity is `(1 + w) u_main − w u_other`
//! (regular where m = 0). Inside the interval a call costs two model evaluations, outside one:
//! [`Score::model_evaluations`] says so, and the reported NFE counts both. The guided field is
//! not the score of any diffused distribution (it does not sample p(x | c)^{1+w} p(x)^{−w});
//! the `cfg-exact` experiment measures what it samples.

use super::Score;
use crate::sde::Sde;
use crate::{invalid, Result};
use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use scoresde_solvers::Time;
use std::sync::Arc;

/// `(1 + w) main − w other` for t in `interval`, `main` elsewhere.
pub struct Guided {
    main: Arc<dyn Score + Send>,
    other: Arc<dyn Score + Send>,
    w: f64,
    interval: [f64; 2],
}

impl Guided {
    /// Guidance of `main` away from `other` with scale w ≥ 0 on t ∈ `interval` (one-line
    /// errors for w < 0, a non-finite w, a reversed interval, fields of different dimensions).
    pub fn new(
        main: Arc<dyn Score + Send>,
        other: Arc<dyn Score + Send>,
        w: f64,
        interval: [f64; 2],
    ) -> Result<Self> {
        if !(w >= 0.0 && w.is_finite()) {
            return Err(invalid!(
                "the guidance scale w must be non-negative and finite, got {}",
                crate::error::num(w)
            ));
        }
        if interval[0].is_nan() || interval[1].is_nan() || interval[0] > interval[1] {
            return Err(invalid!(
                "the guidance interval must be [from, to] with from ≤ to, got [{}, {}]",
                crate::error::num(interval[0]),
                crate::error::num(interval[1])
            ));
        }
        if main.dim() != other.dim() {
            return Err(invalid!(
                "guidance combines fields of one dimension, got {} and {}",
                main.dim(),
                other.dim()
            ));
        }
        Ok(Self {
            main,
            other,
            w,
            interval,
        })
    }

    fn weight(&self, t: f64) -> f64 {
        if t >= self.interval[0] && t <= self.interval[1] {
            self.w
        } else {
            0.0
        }
    }

    /// Whether any row's time is inside the interval (the other field is evaluated then).
    fn active(&self, t: &Time<'_>, rows: usize) -> bool {
        self.w > 0.0 && (0..rows.max(1)).any(|i| self.weight(t.at(i)) > 0.0)
    }

    /// `out ← (1 + w_i) out − w_i other` row by row.
    fn combine(&self, t: &Time<'_>, mut out: ArrayViewMut2<f64>, other: ArrayView2<f64>) {
        for (i, (mut o, u)) in out.rows_mut().into_iter().zip(other.rows()).enumerate() {
            let w = self.weight(t.at(i));
            if w > 0.0 {
                Zip::from(&mut o)
                    .and(&u)
                    .for_each(|o, &u| *o = (1.0 + w) * *o - w * u);
            }
        }
    }
}

impl Score for Guided {
    fn dim(&self) -> usize {
        self.main.dim()
    }
    fn sde(&self) -> Option<&dyn Sde> {
        self.main.sde()
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        self.main.score(t, x, out.view_mut());
        if self.active(&t, x.nrows()) {
            let mut other = ndarray::Array2::zeros(x.raw_dim());
            self.other.score(t, x, other.view_mut());
            self.combine(&t, out, other.view());
        }
    }
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> bool {
        if !self.main.velocity(t, x, out.view_mut()) {
            return false;
        }
        if self.active(&t, x.nrows()) {
            let mut other = ndarray::Array2::zeros(x.raw_dim());
            if !self.other.velocity(t, x, other.view_mut()) {
                return false;
            }
            self.combine(&t, out, other.view());
        }
        true
    }
    fn model_evaluations(&self, t: Time<'_>) -> u64 {
        // One row stands for the call's time where it is shared.
        let rows = match t {
            Time::Shared(_) => 1,
            Time::PerRow(ts) => ts.len(),
        };
        1 + u64::from(self.active(&t, rows))
    }
    fn whole_batch(&self) -> bool {
        self.main.whole_batch() || self.other.whole_batch()
    }
}
