//! Langevin dynamics (Song & Ermon 2019, NCSN): `x ← x + (α/2) ∇log p(x) + √α z`.
//! Plain Langevin runs at one noise level (t = ε); annealed Langevin runs `steps` iterations
//! at each of L levels from t_max down to ε with `α_i = ε_step s_i² / s_L²` (NCSN Algorithm 1).

use super::engine::StepContext;
use super::grid::Grid;
use super::Method;
use crate::sde::Sde;
use crate::Result;
use ndarray::{Array2, Zip};

/// Langevin at t = ε (N iterations), or annealed over `levels` noise levels from t_max to ε
/// (N iterations each) when `annealed` is set.
#[derive(Clone, Debug)]
pub struct Langevin {
    pub step_size: f64,
    /// Annealed levels and their spacing (None: plain Langevin at ε).
    pub annealed: Option<(usize, Grid)>,
}

impl Method for Langevin {
    fn name(&self) -> String {
        if self.annealed.is_some() {
            "annealed-langevin"
        } else {
            "langevin"
        }
        .into()
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, _: usize) -> Result<Vec<f64>> {
        match &self.annealed {
            Some((levels, grid)) if *levels > 1 => grid.times(sde, eps, *levels),
            _ => Ok(vec![eps]),
        }
    }
    /// N per level (L N annealed).
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some((self.annealed.as_ref().map_or(1, |(l, _)| *l) * steps) as u64)
    }
    fn step_count(&self, steps: usize, _: &[f64]) -> usize {
        self.nfe(steps).unwrap_or(0) as usize
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        n: usize,
    ) -> Result<()> {
        run(ctx, x, t, n, self.step_size)
    }
}

/// `iters` Langevin iterations at each of the `levels` times (the last level sets the scale).
fn run(
    eng: &mut StepContext<'_>,
    x: &mut Array2<f64>,
    levels: &[f64],
    iters: usize,
    step_size: f64,
) -> Result<()> {
    let (n, d) = x.dim();
    let s_last = eng
        .marginal(*levels.last().expect("at least one level"))
        .std;
    for &t in levels {
        let alpha = step_size * (eng.marginal(t).std / s_last).powi(2);
        let sd = alpha.sqrt();
        for _ in 0..iters {
            let s = eng.score(t, x.view());
            let z = eng.normal(n, d);
            Zip::from(&mut *x)
                .and(&s)
                .and(&z)
                .for_each(|x, &s, &z| *x += 0.5 * alpha * s + sd * z);
            eng.finish_step(t, x)?;
        }
    }
    Ok(())
}
