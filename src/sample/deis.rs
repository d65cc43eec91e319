//! DEIS (Zhang & Chen 2022) and iPNDM, multistep exponential integrators on the noise
//! prediction ε̂. On any path the PF-ODE's exact solution from s to t is
//! `x_t = (m_t/m_s) x_s + m_t ∫_s^t ε̂(τ) ρ'(τ) dτ` with ρ = s/m (EDM's σ̃): Zhang & Chen 2022,
//! eq. 11, where their `Ψ(t, τ) ½ g² L^{−T}` is `m_t ρ'(τ)`.
//!
//! * tAB-DEIS (`basis = "t"`, the authors' algorithm): ε̂ replaced by its Lagrange interpolant
//!   **in t** through the last r + 1 outputs (eq. 14), `C_j = m_t ∫_s^t ℓ_j(τ) ρ'(τ) dτ`.
//!   ρ has no antiderivative against a polynomial in t on a general path, so the integral is
//!   by quadrature: 32-point Gauss–Legendre on each step (error below 1e-14 on the paths
//!   here: the integrand is smooth on the step; checked against 64 points in the tests). The
//!   authors use a 10 000-point left Riemann sum (qsh-zh/deis a30709f,
//!   `th_deis/multistep.py:34-44`), whose O(1/M) error is what separates the two (the harness
//!   in `scripts/reference-samplers/` measures it).
//! * `basis = "log-rho"`: ε̂ interpolated in log ρ = −λ and integrated exactly against dρ, as
//!   diffusers' `DEISMultistepScheduler` does (`scheduling_deis_multistep.py:702-861`,
//!   `ind_fn`): the noise-prediction Adams method in λ, `x_t = (m_t/m_s) x − s_t h Σ_j w_j ε̂_j`
//!   ([`expint::lagrange_weights`] at z = h), with diffusers' lower orders on the last two
//!   steps below 15 steps (`:951-968`). Not the authors' tAB (qsh-zh/deis #5).
//! * iPNDM (Zhang & Chen 2022, App. B; `th_deis/sampler.py:50-95`): DDIM's move with ε̂
//!   replaced by the fixed-coefficient Adams–Bashforth combination of the last 1–4 outputs
//!   (1; (3, −1)/2; (23, −16, 5)/12; (55, −59, 37, −9)/24), i.e. AB in ρ assuming equal steps.
//!
//! Step k uses min(p, k + 1) outputs (warm-up). A step from m = 0 (λ = −∞, ρ = ∞) is the
//! DDIM move from the field's (x̂₀, ε̂); log-rho and iPNDM do not keep its output (ρ = ∞ is no
//! node in log ρ, and no equal step), tAB does (t_max is a node in t).

use super::engine::StepContext;
use super::expint::{self, ddim_move, ddim_move_from, global_order, lambda};
use super::grid::Grid;
use super::Method;
use crate::Result;
use ndarray::Array2;

/// The variable DEIS interpolates ε̂ in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DeisBasis {
    /// Polynomials in t: tAB-DEIS, the authors' algorithm.
    #[default]
    T,
    /// Polynomials in log ρ = −λ: diffusers' `DEISMultistepScheduler`.
    LogRho,
}

/// DEIS with p = `order` ∈ 1..=4 outputs per step (tAB-(p − 1); order p), N steps.
#[derive(Clone, Debug)]
pub struct Deis {
    pub order: usize,
    pub basis: DeisBasis,
    pub grid: Grid,
}

impl Deis {
    fn step_order(&self, k: usize, n: usize) -> usize {
        // diffusers' lower_order_final / lower_order_second below 15 steps.
        expint::step_order(self.order, k, n, self.basis == DeisBasis::LogRho && n < 15)
    }
}

/// Quadrature nodes per step of tAB-DEIS.
const QUADRATURE: usize = 32;

impl Method for Deis {
    fn name(&self) -> String {
        "deis".into()
    }
    super::method::one_evaluation_per_step!();
    /// p (Zhang & Chen 2022, §4: a degree-r interpolant gives order r + 1).
    fn order(&self) -> Option<u32> {
        Some(self.order as u32)
    }
    fn order_at(&self, steps: usize) -> Option<u32> {
        Some(global_order(self.order as u32, steps, |k| {
            self.step_order(k, steps) as u32
        }))
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        n: usize,
    ) -> Result<()> {
        // Past outputs: (t, λ, ε̂), most recent last.
        let mut hist: Vec<(f64, f64, Array2<f64>)> = Vec::new();
        let (gx, gw) = crate::numerics::gauss_legendre(QUADRATURE);
        for k in 0..n {
            let (s, tn) = (t[k], t[k + 1]);
            let (ks, kt) = (ctx.marginal(s), ctx.marginal(tn));
            let ls = lambda(ctx.sde, s);
            if ks.mean == 0.0 {
                let (x0, eps) = ctx.x0_eps(s, x.view());
                ddim_move_from(x, &x0, &eps, kt.mean, kt.std);
                if self.basis == DeisBasis::T {
                    hist.push((s, ls, eps));
                }
                ctx.finish_step(tn, x)?;
                continue;
            }
            hist.push((s, ls, ctx.eps(s, x.view())));
            if hist.len() > self.order {
                hist.remove(0);
            }
            let q = self.step_order(k, n).min(hist.len());
            let nodes = &hist[hist.len() - q..];
            let coef: Vec<f64> = match self.basis {
                DeisBasis::T => {
                    let ts: Vec<f64> = nodes.iter().map(|n| n.0).collect();
                    // C_j = m_t ∫_s^t ℓ_j(τ) ρ'(τ) dτ by Gauss–Legendre on [s, t].
                    let (mid, half) = (0.5 * (s + tn), 0.5 * (tn - s));
                    let mut c = vec![0.0; q];
                    for (u, w) in gx.iter().zip(&gw) {
                        let tau = mid + half * u;
                        // ρ' = (m ṡ − ṁ s)/m².
                        let p = ctx.sde.point(tau);
                        let drho = p.velocity_det() / (p.m * p.m);
                        for (j, cj) in c.iter_mut().enumerate() {
                            *cj += w * half * drho * lagrange(&ts, j, tau);
                        }
                    }
                    c.iter().map(|c| kt.mean * c).collect()
                }
                DeisBasis::LogRho => {
                    let h = lambda(ctx.sde, tn) - ls;
                    let r: Vec<f64> = nodes.iter().map(|n| (n.1 - ls) / h).collect();
                    expint::lagrange_weights(&r, h)
                        .into_iter()
                        .map(|w| -kt.std * h * w)
                        .collect()
                }
            };
            let cx = kt.mean / ks.mean;
            let mut out = x.mapv(|v| cx * v);
            for (cj, node) in coef.iter().zip(nodes) {
                out.scaled_add(*cj, &node.2);
            }
            *x = out;
            ctx.finish_step(tn, x)?;
        }
        Ok(())
    }
}

/// The Lagrange basis polynomial ℓ_j on `nodes` at τ.
fn lagrange(nodes: &[f64], j: usize, tau: f64) -> f64 {
    nodes
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != j)
        .map(|(_, &tk)| (tau - tk) / (nodes[j] - tk))
        .product()
}

/// iPNDM with 1–4 outputs per step, N steps.
#[derive(Clone, Debug)]
pub struct Ipndm {
    pub order: usize,
    pub grid: Grid,
}

/// The Adams–Bashforth coefficients on equal steps, most recent output first.
const AB: [&[f64]; 4] = [
    &[1.0],
    &[1.5, -0.5],
    &[23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0],
    &[55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0],
];

impl Method for Ipndm {
    fn name(&self) -> String {
        "ipndm".into()
    }
    super::method::one_evaluation_per_step!();
    /// min(p, 2): the fixed coefficients assume equal steps in ρ, and no grid here is uniform
    /// in ρ; the step-to-step change of Δρ, O(h²), leaves an O(h³) local error, so orders 3
    /// and 4 converge at order 2 (measured in `tests/sampler_orders.rs`).
    fn order(&self) -> Option<u32> {
        Some(self.order.min(2) as u32)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        n: usize,
    ) -> Result<()> {
        let mut hist: Vec<Array2<f64>> = Vec::new();
        for k in 0..n {
            let (s, tn) = (t[k], t[k + 1]);
            let (ks, kt) = (ctx.marginal(s), ctx.marginal(tn));
            if ks.mean == 0.0 {
                let (x0, eps) = ctx.x0_eps(s, x.view());
                ddim_move_from(x, &x0, &eps, kt.mean, kt.std);
                ctx.finish_step(tn, x)?;
                continue;
            }
            hist.insert(0, ctx.eps(s, x.view()));
            hist.truncate(self.order);
            let q = hist.len();
            let mut eps = Array2::zeros(x.raw_dim());
            for (c, e) in AB[q - 1].iter().zip(&hist) {
                eps.scaled_add(*c, e);
            }
            ddim_move(x, &eps, ks, kt.mean, kt.std);
            ctx.finish_step(tn, x)?;
        }
        Ok(())
    }
}
