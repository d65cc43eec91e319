//! SEEDS-2 (Gonzalez et al. 2023, "SEEDS: Exponential SDE Solvers for Fast High-Quality
//! Sampling from Diffusion Models", Alg. 2 in data prediction): a two-stage stochastic
//! exponential Runge–Kutta step on the SDE family with noise scale η (η = 1: the reverse SDE;
//! η = 0: DPM-Solver++(2S)). With h = λ_t − λ_s, H = (1 + η) h and the stage at
//! λ₁ = λ_s + r h:
//!
//! * `x₁ = (s₁/s_s) e^{−rhη} x − m₁ (e^{−rH} − 1) D_s + s₁ S n₁`,
//!   `n₁ = √(1 − e^{−2rhη}) ξ₁`;
//! * `x_t = (s_t/s_s) e^{−hη} x − m_t (e^{−H} − 1) D̄ + s_t S n₂`, with
//!   `D̄ = (1 − 1/(2r)) D_s + 1/(2r) D(x₁, λ₁)` and the noise of the same Brownian path:
//!   `n₂ = e^{g} n₁ + √(1 − e^{2g}) ξ₂`, g = (r − 1) h η, so Var n₂ = 1 − e^{−2hη}.
//!
//! As ComfyUI implements it (`comfy/k_diffusion/sampling.py:1559-1610`, `sample_seeds_2`, at
//! Comfy-Org/ComfyUI a125cd8), S = `s_noise`. Two evaluations per step. From λ = −∞ (m = 0)
//! the stage point is the t-midpoint and the step is two first-order moves (s → t₁ → t) with
//! the same Brownian composition.

use super::engine::StepContext;
use super::expint::{lambda, t_of_lambda};
use super::grid::Grid;
use super::Method;
use crate::sde::Sde;
use crate::Result;
use ndarray::Array2;

/// SEEDS-2 with η, r and S_noise, N steps.
#[derive(Clone, Debug)]
pub struct Seeds2 {
    pub eta: f64,
    pub r: f64,
    pub s_noise: f64,
    pub grid: Grid,
}

impl Method for Seeds2 {
    fn name(&self) -> String {
        "seeds-2".into()
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        self.grid.times(sde, eps, steps + 1)
    }
    /// 2N.
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(2 * steps as u64)
    }
    /// 2 where η = 0 (DPM-Solver++(2S)); stochastic otherwise (weak order 1 for the reverse
    /// SDE, Gonzalez et al. 2023, Thm 4.2).
    fn order(&self) -> Option<u32> {
        (self.eta == 0.0).then_some(2)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        _: usize,
    ) -> Result<()> {
        let (rows, d) = x.dim();
        for w in t.windows(2) {
            let (s, tn) = (w[0], w[1]);
            let (ls, lt) = (lambda(ctx.sde, s), lambda(ctx.sde, tn));
            let h = lt - ls;
            let ks = ctx.marginal(s);
            let d_s = ctx.x0(s, x.view());
            let (xi1, xi2) = (ctx.normal(rows, d), ctx.normal(rows, d));
            let finite = ls.is_finite();
            // The stage: at λ_s + r h, or at the t-midpoint where λ_s = −∞.
            let t1 = if finite {
                t_of_lambda(ctx.sde, ls + self.r * h)
            } else {
                0.5 * (s + tn)
            };
            let l1 = lambda(ctx.sde, t1);
            let k1 = ctx.marginal(t1);
            // One first-order stochastic move of length `dl` in λ with data prediction `dd`,
            // scaled noise n: (factor on x, factor on D, noise variance).
            let eta = self.eta;
            let mv = |dl: f64, from_std: f64, to: crate::sde::Marginal| {
                let decay = if eta == 0.0 { 1.0 } else { (-dl * eta).exp() };
                (
                    to.std / from_std * decay,
                    -to.mean * (-(1.0 + eta) * dl).exp_m1(),
                    -(-2.0 * dl * eta).exp_m1(),
                )
            };
            let (a1, b1, v1) = mv(l1 - ls, ks.std, k1);
            let n1 = xi1.mapv(|z| v1.max(0.0).sqrt() * z);
            let mut x1 = x.mapv(|v| a1 * v);
            x1.scaled_add(b1, &d_s);
            x1.scaled_add(k1.std * self.s_noise, &n1);
            let d_1 = ctx.x0(t1, x1.view());
            // n₂ = e^{g} n₁ + √(1 − e^{2g}) ξ₂ with g = −η (λ_t − λ₁).
            let g = -eta * (lt - l1);
            let eg = if eta == 0.0 { 1.0 } else { g.exp() };
            let mut n2 = n1.mapv(|v| eg * v);
            n2.scaled_add((-(2.0 * g).exp_m1()).max(0.0).sqrt(), &xi2);
            let kt = ctx.marginal(tn);
            let out = if finite {
                let fac = 1.0 / (2.0 * self.r);
                let mut dbar = d_s.mapv(|v| (1.0 - fac) * v);
                dbar.scaled_add(fac, &d_1);
                let (a, b, _) = mv(h, ks.std, kt);
                let mut out = x.mapv(|v| a * v);
                out.scaled_add(b, &dbar);
                out
            } else {
                // Second first-order move, from the stage to t.
                let (a, b, _) = mv(lt - l1, k1.std, kt);
                let mut out = x1.mapv(|v| a * v);
                out.scaled_add(b, &d_1);
                out
            };
            *x = out;
            if finite {
                x.scaled_add(kt.std * self.s_noise, &n2);
            } else {
                // x₁ carries n₁ already: only the second move's own noise.
                x.scaled_add(
                    kt.std * self.s_noise * (-(2.0 * g).exp_m1()).max(0.0).sqrt(),
                    &xi2,
                );
            }
            ctx.finish_step(tn, x)?;
        }
        Ok(())
    }
}
