//! The forward SDE `dx = a(t) x dt + g(t) dw` as a solver system.

use super::Sde;
use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use scoresde_solvers::{SdeSystem, Time};

/// The forward SDE itself as a solver system: drift `a(t) x`, diffusion g(t).
#[derive(Clone, Copy, Debug)]
pub struct Forward<'a> {
    pub sde: &'a dyn Sde,
    pub dim: usize,
}

impl SdeSystem for Forward<'_> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn drift(&self, t: Time<'_>, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
        match t {
            Time::Shared(t) => {
                let a = self.sde.drift_coeff(t);
                Zip::from(&mut out).and(&x).for_each(|o, &x| *o = a * x);
            }
            Time::PerRow(ts) => {
                for ((mut o, x), &t) in out.rows_mut().into_iter().zip(x.rows()).zip(ts) {
                    let a = self.sde.drift_coeff(t);
                    Zip::from(&mut o).and(&x).for_each(|o, &x| *o = a * x);
                }
            }
        }
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.sde.diffusion(t)
    }
}
