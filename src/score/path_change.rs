//! Post-hoc path change: a field learned on one path used on another.

use super::{convert, Score};
use crate::path::Path;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use scoresde_solvers::Time;
use std::sync::Arc;

/// The field of path A (`from`) as a field of path B (`to`). Two Gaussian paths at equal
/// log-SNR differ by a scale: `x_B = c x_A` with `c = s_B(t)/s_A(t_A)`, `t_A = λ_A⁻¹(λ_B(t))`,
/// so `∇log p^B_t(x) = ∇log p^A_{t_A}(x/c)/c` and the denoisers agree, `x̂₀^B(x) = x̂₀^A(x/c)`,
/// `ε̂^B(x) = ε̂^A(x/c)` (Kingma et al. 2021, App. E; Lipman et al. 2024, §4.7 and
/// flow_matching's `ScheduleTransformedModel`). Where λ_B lies below A's range (B's m = 0 at
/// t = 1 and A = VP, whose λ stops at λ(1) ≈ −10), t_A is clamped to A's t_max: the field is
/// then A's at its prior end, inexact by A's own prior gap.
pub struct PathChange {
    pub field: Box<dyn Score + Send>,
    pub from: Arc<dyn Path>,
    pub to: Arc<dyn Path>,
}

impl PathChange {
    /// `(t_A, c)` for time t of B.
    fn map(&self, t: f64) -> (f64, f64) {
        let ta = self.from.t_of_log_snr(self.to.log_snr(t));
        (ta, self.to.marginal(t).std / self.from.marginal(ta).std)
    }

    /// Runs `f(t_A, c, x_rows, out_rows)` on groups of rows sharing a time.
    fn each(
        &self,
        t: Time<'_>,
        x: ArrayView2<f64>,
        mut out: ArrayViewMut2<f64>,
        f: impl Fn(f64, f64, f64, ArrayView2<f64>, ArrayViewMut2<f64>),
    ) {
        match t {
            Time::Shared(t) => {
                let (ta, c) = self.map(t);
                f(t, ta, c, x, out)
            }
            Time::PerRow(ts) => {
                for (i, &t) in ts.iter().enumerate() {
                    let (ta, c) = self.map(t);
                    let r = ndarray::s![i..i + 1, ..];
                    f(t, ta, c, x.slice(r), out.slice_mut(r))
                }
            }
        }
    }
}

impl Score for PathChange {
    fn dim(&self) -> usize {
        self.field.dim()
    }
    fn sde(&self) -> Option<&dyn Path> {
        Some(self.to.as_ref())
    }
    fn whole_batch(&self) -> bool {
        self.field.whole_batch()
    }
    /// The field's own count at the mapped time (the largest over the rows).
    fn model_evaluations(&self, t: Time<'_>) -> u64 {
        let at = |t: f64| self.field.model_evaluations(Time::Shared(self.map(t).0));
        match t {
            Time::Shared(t) => at(t),
            Time::PerRow(ts) => ts.iter().map(|&t| at(t)).max().unwrap_or(1),
        }
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        self.each(t, x, out, |_, ta, c, x, mut o| {
            let xa = x.mapv(|v| v / c);
            self.field.score(Time::Shared(ta), xa.view(), o.view_mut());
            o.mapv_inplace(|v| v / c);
        });
    }
    /// `u_B = ṁ_B x̂₀ + ṡ_B ε̂` with A's x̂₀ and ε̂ at `x/c`: regular where m_B = 0.
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>) -> bool {
        self.each(t, x, out, |t, ta, c, x, mut o| {
            let (pa, pb) = (self.from.point(ta), self.to.point(t));
            let xa = x.mapv(|v| v / c);
            let mut u = Array2::zeros(x.raw_dim());
            let native = self
                .field
                .velocity(Time::Shared(ta), xa.view(), u.view_mut());
            if !native {
                self.field.score(Time::Shared(ta), xa.view(), u.view_mut());
            }
            ndarray::Zip::from(&mut o)
                .and(&u)
                .and(&xa)
                .for_each(|o, &u, &xa| {
                    let (x0, eps) = if native {
                        (
                            convert::x0_from_velocity(u, xa, pa),
                            convert::eps_from_velocity(u, xa, pa),
                        )
                    } else {
                        let k = pa.kernel();
                        (
                            convert::x0_from_score(u, xa, k),
                            convert::eps_from_score(u, k),
                        )
                    };
                    *o = convert::velocity_from_x0_eps(x0, eps, pb);
                });
        });
        true
    }
}
