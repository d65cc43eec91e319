//! Karras et al. 2022 (EDM) Algorithms 1 and 2 for any SDE with Gaussian kernels, in EDM's
//! variables: `σ̃ = s/m` and `y = x/m`. The PF-ODE is then `dy/dσ̃ = (y − D(y; σ̃))/σ̃ = ε̂(x, t)`
//! (EDM eq. 4 with the scaling divided out), so the network or oracle is always queried at the
//! SDE time `t(σ̃)` with `x = m(t) y`.

use super::engine::StepContext;
use super::grid::Grid;
use super::Method;
use crate::sde::Sde;
use crate::Result;
use ndarray::{Array2, Zip};

/// EDM's sampler on N grid points (ρ-spacing by default): Algorithm 1 (`edm-heun`, no churn) or
/// Algorithm 2 (`edm-sde`).
#[derive(Clone, Debug)]
pub struct Edm {
    pub churn: Churn,
    pub grid: Grid,
    /// Algorithm 2's churn is on (`edm-sde`).
    pub stochastic: bool,
}

impl Method for Edm {
    fn name(&self) -> String {
        if self.stochastic {
            "edm-sde"
        } else {
            "edm-heun"
        }
        .into()
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        super::grid::refuse_signal_free_start(sde, &self.name(), "it steps in σ̃ = s/m")?;
        self.grid.times(sde, eps, steps)
    }
    /// 2(N − 1).
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(2 * steps.saturating_sub(1) as u64)
    }
    fn denoises_by_default(&self) -> bool {
        true
    }
    /// Heun: 2 (Algorithm 1); none with churn.
    fn order(&self) -> Option<u32> {
        (!self.stochastic).then_some(2)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        _: usize,
    ) -> Result<()> {
        let churn = Churn {
            s_churn: if self.stochastic {
                self.churn.s_churn
            } else {
                0.0
            },
            ..self.churn
        };
        run(ctx, x, t, &churn)
    }
}

/// EDM's stochastic settings (Algorithm 2). `s_churn = 0` is Algorithm 1.
#[derive(Clone, Debug)]
pub struct Churn {
    pub s_churn: f64,
    pub s_tmin: f64,
    pub s_tmax: f64,
    pub s_noise: f64,
}

impl Churn {
    /// No churn (Algorithm 1).
    pub const NONE: Churn = Churn {
        s_churn: 0.0,
        s_tmin: 0.0,
        s_tmax: f64::INFINITY,
        s_noise: 1.0,
    };
}

/// Heun steps (with churn) over the N points of `times`: NFE 2(N − 1).
fn run(eng: &mut StepContext<'_>, x: &mut Array2<f64>, times: &[f64], churn: &Churn) -> Result<()> {
    let levels = times.len() as f64;
    let sigma_top = eng.sde.sigma_tilde(eng.sde.t_max());
    let (n, d) = x.dim();
    for w in times.windows(2) {
        let (t, t_next) = (w[0], w[1]);
        let (sig, sig_next) = (eng.sde.sigma_tilde(t), eng.sde.sigma_tilde(t_next));
        let mut y = x.mapv(|v| v / eng.marginal(t).mean);
        // Churn: raise the noise level to σ̂ = σ(1 + γ) by adding fresh noise (capped at
        // σ̃(t_max), where the score is defined).
        let gamma = if churn.s_churn > 0.0 && sig >= churn.s_tmin && sig <= churn.s_tmax {
            (churn.s_churn / levels).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        };
        let (t_hat, sig_hat) = if gamma > 0.0 {
            let sig_hat = (sig * (1.0 + gamma)).min(sigma_top);
            if sig_hat > sig {
                let z = eng.normal(n, d);
                let sd = (sig_hat * sig_hat - sig * sig).sqrt() * churn.s_noise;
                y.scaled_add(sd, &z);
                (eng.sde.t_of_sigma_tilde(sig_hat), sig_hat)
            } else {
                (t, sig)
            }
        } else {
            (t, sig)
        };
        let h = sig_next - sig_hat;
        let d1 = eng.eps(t_hat, y.mapv(|v| v * eng.marginal(t_hat).mean).view());
        let m_next = eng.marginal(t_next).mean;
        let mut y_pred = y.clone();
        y_pred.scaled_add(h, &d1);
        let d2 = eng.eps(t_next, y_pred.mapv(|v| v * m_next).view());
        Zip::from(&mut *x)
            .and(&y)
            .and(&d1)
            .and(&d2)
            .for_each(|x, &y, &a, &b| *x = m_next * (y + 0.5 * h * (a + b)));
        eng.finish_step(t_next, x)?;
    }
    Ok(())
}
