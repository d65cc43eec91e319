//! Scores `∇_x log p_t(x)` on batches: the exact score of a diffused Gaussian mixture, the one
//! conversion module between score / ε / x₀ / v parameterisations, and wrappers that count
//! evaluations (NFE) or perturb a score (power checks).

pub mod convert;
mod empirical;
mod external;
mod guided;
mod lanes;
mod mixture;
mod path_change;

pub use empirical::{EmpiricalScore, Posterior};
pub use external::{External, ExternalFn};
pub use guided::Guided;
pub use mixture::{Diffused, Field, MixtureScore, Scratch};
pub use path_change::PathChange;

use crate::sde::Sde;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use scoresde_solvers::Time;
use std::sync::atomic::{AtomicU64, Ordering};

/// A time-dependent score model evaluated on a batch (`n × d`, one row per point).
pub trait Score: Sync {
    /// Dimension d.
    fn dim(&self) -> usize;
    /// The forward SDE this score belongs to, where it knows one (the exact score of a mixture
    /// diffused by an SDE, a network trained under one). Sampling it under another SDE is
    /// refused.
    fn sde(&self) -> Option<&dyn Sde> {
        None
    }
    /// Writes `∇_x log p_t(x_i)` into row i of `out`.
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, out: ArrayViewMut2<f64>);

    /// Writes the velocity `u = E[ṁ x₀ + ṡ ε | x_t]` (the PF-ODE's drift) into `out` and
    /// returns true, where the field has it in a form regular at m = 0 (the exact oracle, a
    /// velocity-predicting network). The default returns false and writes nothing: the
    /// reverse dynamics then use the score, which is singular where m = 0.
    fn velocity(&self, _t: Time<'_>, _x: ArrayView2<f64>, _out: ArrayViewMut2<f64>) -> bool {
        false
    }

    /// Model evaluations per row that one call at `t` costs: 1, or 2 for a guided field inside
    /// its guidance interval ([`Guided`]). The reported NFE counts these.
    fn model_evaluations(&self, _t: Time<'_>) -> u64 {
        1
    }

    /// True for a field that must see the whole batch in one call (a model outside this
    /// process's threads: a Python callable, a GPU network): row blocks and solver chunks
    /// are then not split, so each step costs one call. Default false.
    fn whole_batch(&self) -> bool {
        false
    }

    /// Writes the score into `out` and its divergence `∇·s(x_i, t)` (the Laplacian of
    /// log p_t for an exact score) into `div[i]`. The default differentiates the score by
    /// central differences with step h = 1e-3 (2d + 1 evaluations; error O(h²), adequate for
    /// the f32 networks here); exact scores override it.
    fn score_divergence(
        &self,
        t: Time<'_>,
        x: ArrayView2<f64>,
        mut out: ArrayViewMut2<f64>,
        div: &mut [f64],
    ) {
        const H: f64 = 1e-3;
        self.score(t, x, out.view_mut());
        let (n, d) = x.dim();
        div[..n].iter_mut().for_each(|v| *v = 0.0);
        let mut xp = x.to_owned();
        let mut sp = ndarray::Array2::zeros((n, d));
        let mut sm = ndarray::Array2::zeros((n, d));
        for j in 0..d {
            xp.column_mut(j).assign(&x.column(j));
            xp.column_mut(j).mapv_inplace(|v| v + H);
            self.score(t, xp.view(), sp.view_mut());
            xp.column_mut(j).mapv_inplace(|v| v - 2.0 * H);
            self.score(t, xp.view(), sm.view_mut());
            xp.column_mut(j).assign(&x.column(j));
            for i in 0..n {
                div[i] += (sp[[i, j]] - sm[[i, j]]) / (2.0 * H);
            }
        }
    }
}

use crate::numerics::BLOCK;

/// `∇log p_t(x)` for every row, evaluated in parallel blocks of 256 rows (shared or per-row
/// times). Each row is computed independently, so results do not depend on the thread count.
pub fn par_score(score: &dyn Score, t: Time<'_>, x: ArrayView2<f64>) -> Array2<f64> {
    let mut out = Array2::zeros(x.raw_dim());
    if score.whole_batch() {
        score.score(t, x, out.view_mut());
        return out;
    }
    x.axis_chunks_iter(Axis(0), BLOCK)
        .into_par_iter()
        .zip(out.axis_chunks_iter_mut(Axis(0), BLOCK).into_par_iter())
        .enumerate()
        .for_each(|(b, (x, o))| match t {
            Time::Shared(t) => score.score(Time::Shared(t), x, o),
            Time::PerRow(ts) => {
                let lo = b * BLOCK;
                score.score(Time::PerRow(&ts[lo..lo + x.nrows()]), x, o)
            }
        });
    out
}

/// The ε-prediction `ε̂ = −s(t) ∇log p_t(x)` for every row (via [`par_score`] and `convert`).
pub fn par_eps(score: &dyn Score, sde: &dyn Sde, t: Time<'_>, x: ArrayView2<f64>) -> Array2<f64> {
    let mut e = par_score(score, t, x);
    match t {
        Time::Shared(t) => {
            let k = sde.marginal(t);
            e.mapv_inplace(|v| convert::eps_from_score(v, k));
        }
        Time::PerRow(_) => {
            for (i, mut row) in e.rows_mut().into_iter().enumerate() {
                let k = sde.marginal(t.at(i));
                row.mapv_inplace(|v| convert::eps_from_score(v, k));
            }
        }
    }
    e
}

/// Counts score evaluations: one per row per call. NFE per particle = `rows() / n`.
pub struct Counted<'a> {
    inner: &'a dyn Score,
    rows: AtomicU64,
    calls: AtomicU64,
    model_rows: AtomicU64,
}

impl<'a> Counted<'a> {
    pub fn new(inner: &'a dyn Score) -> Self {
        Self {
            inner,
            rows: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            model_rows: AtomicU64::new(0),
        }
    }
    /// Model evaluations so far ([`Score::model_evaluations`] per row: two per row of a guided
    /// field).
    pub fn model_rows(&self) -> u64 {
        self.model_rows.load(Ordering::Relaxed)
    }
    fn count(&self, t: Time<'_>, rows: usize) {
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.model_rows.fetch_add(
            rows as u64 * self.inner.model_evaluations(t),
            Ordering::Relaxed,
        );
    }
    /// Row evaluations so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }
    /// Batched calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Score for Counted<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn sde(&self) -> Option<&dyn Sde> {
        self.inner.sde()
    }
    /// NaN without evaluating once a stop is requested ([`crate::interrupt`]).
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        self.count(t, x.nrows());
        if crate::interrupt::requested() {
            return out.fill(f64::NAN);
        }
        self.inner.score(t, x, out)
    }
    fn whole_batch(&self) -> bool {
        self.inner.whole_batch()
    }
    /// Counts one evaluation per row when the inner field gives its velocity.
    fn velocity(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) -> bool {
        if crate::interrupt::requested() {
            out.fill(f64::NAN);
            return true;
        }
        let given = self.inner.velocity(t, x, out);
        if given {
            self.count(t, x.nrows());
        }
        given
    }
    /// Counts one evaluation per row (score and divergence together).
    fn score_divergence(
        &self,
        t: Time<'_>,
        x: ArrayView2<f64>,
        mut out: ArrayViewMut2<f64>,
        div: &mut [f64],
    ) {
        self.count(t, x.nrows());
        if crate::interrupt::requested() {
            out.fill(f64::NAN);
            return div.iter_mut().for_each(|v| *v = f64::NAN);
        }
        self.inner.score_divergence(t, x, out, div)
    }
}

/// `factor × inner`: a deliberately wrong score for power checks (e.g. × 0.8).
pub struct Scaled<'a> {
    pub inner: &'a dyn Score,
    pub factor: f64,
}

impl Score for Scaled<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn sde(&self) -> Option<&dyn Sde> {
        self.inner.sde()
    }
    fn score(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        self.inner.score(t, x, out.view_mut());
        out *= self.factor;
    }
}

/// Refuses to use `score` under `sde` when the score belongs to another SDE (a silently wrong
/// result otherwise: the score of p_t under VP is not the score under VE).
pub fn check_sde(score: &dyn Score, sde: &dyn Sde) -> crate::Result<()> {
    match score.sde() {
        Some(own) if !crate::sde::same_sde(own, sde) => Err(crate::invalid!(
            "the score belongs to a {} SDE but is used under a different {} SDE: use the SDE it was built with",
            own.name(),
            sde.name()
        )),
        _ => Ok(()),
    }
}
