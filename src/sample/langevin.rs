//! Langevin dynamics (Song & Ermon 2019, NCSN): `x ← x + (α/2) ∇log p(x) + √α z`.
//! Plain Langevin runs at one noise level (t = ε); annealed Langevin runs `steps` iterations
//! at each of L levels from t_max down to ε with `α_i = ε_step s_i² / s_L²` (NCSN Algorithm 1).

use super::engine::StepContext;
use crate::Result;
use ndarray::{Array2, Zip};

/// `iters` Langevin iterations at each of the `levels` times (the last level sets the scale).
pub(crate) fn run(
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
