//! A path at one time: m, s, ṁ, ṡ.

use super::{Marginal, Rates};

/// m(t), s(t), ṁ(t) and ṡ(t) of a path at one time: the conversions between predictions
/// ([`crate::score::convert`]) take one, and [`PathPoint::noised`] is the one home of
/// `x_t = m x₀ + s ε`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathPoint {
    pub m: f64,
    pub s: f64,
    pub dm: f64,
    pub ds: f64,
}

impl PathPoint {
    pub fn new(k: Marginal, r: Rates) -> Self {
        Self {
            m: k.mean,
            s: k.std,
            dm: r.dmean,
            ds: r.dstd,
        }
    }

    /// The kernel `(m, s)`.
    pub fn kernel(&self) -> Marginal {
        Marginal {
            mean: self.m,
            std: self.s,
        }
    }

    /// `x_t = m x₀ + s ε`, one coordinate.
    #[inline]
    pub fn noised(&self, x0: f64, eps: f64) -> f64 {
        self.m * x0 + self.s * eps
    }

    /// `m ṡ − ṁ s = m g²/(2s)`: the determinant of (x₀, ε) ↦ (x_t, u). Positive inside every
    /// path that passes [`super::check_path`], and at m = 0 (where it is −ṁ s).
    #[inline]
    pub fn velocity_det(&self) -> f64 {
        self.m * self.ds - self.dm * self.s
    }
}
