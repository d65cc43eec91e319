//! SA-Solver (Xue et al. 2023): stochastic Adams predictor (SA-Predictor, order p) and
//! corrector (SA-Corrector, order c) on the SDE family with noise scale τ, exact in the linear
//! part. Data prediction (Xue et al. 2023, eq. 14 and 16), with c_τ = 1 + τ²:
//!
//! `x_t = e^{−τ²h} (s_t/s_s) x_s + c_τ m_t h Σ_j w_j x̂₀_j + s_t √(1 − e^{−2τ²h}) ξ`,
//!
//! w_j the weights of the Lagrange basis on the nodes' λ against `e^{−c_τ h (1−v)}`
//! ([`expint::lagrange_weights`]); noise prediction (eq. 15):
//! `x_t = (m_t/m_s) x_s − c_τ s_t h Σ_j w_j(h) ε̂_j + τ s_t √(e^{2h} − 1) ξ`.
//! The predictor's nodes are the last p outputs; the corrector's the output at the predicted
//! state and the last c − 1, with the same ξ, and the next step starts from the corrected state
//! with the output at the predicted one (no extra NFE). At order 2 in data prediction both
//! references add the O(h³) rescaling that makes τ = 0 UniP-2 / UniC-1 with B(h) = h.
//!
//! Stepping follows diffusers' `SASolverScheduler` (contributed by the authors;
//! `scheduling_sasolver.py`, 0.42.1: predictor `:942-1070`, corrector `:1072-1206`, orders and
//! noise `:1300-1354`): τ is read at the step's start, ξ is drawn on every step, orders are
//! `p_k = min(p, N − k, k + 1)` and `c_k = min(c, N − k + 1, k + 2)`, no corrector after the
//! last step, NFE = N. The authors' `sa_solver.py` (scxue/SA-Solver 876f3dd, `sample_few_steps`
//! `:743-889`) reads τ at the step's end and makes the last step deterministic; the two agree
//! wherever τ is 0 at the ends of the grid (the default window).

use super::engine::StepContext;
use super::expint::{self, global_order, lambda, History, Prediction};
use super::grid::Grid;
use super::Method;
use crate::Result;
use ndarray::Array2;

/// SA-Solver with predictor order p ∈ 1..=4 and corrector order c ∈ 0..=4 (0: none).
#[derive(Clone, Debug)]
pub struct SaSolver {
    pub predictor_order: usize,
    pub corrector_order: usize,
    /// τ inside `window` (in t), 0 outside.
    pub tau: f64,
    pub window: [f64; 2],
    pub prediction: Prediction,
    pub grid: Grid,
}

impl SaSolver {
    fn tau_at(&self, t: f64) -> f64 {
        if t >= self.window[0] && t <= self.window[1] {
            self.tau
        } else {
            0.0
        }
    }
    fn orders(&self, k: usize, n: usize) -> (usize, usize) {
        let p = expint::step_order(self.predictor_order, k, n, true);
        let c = self.corrector_order.min(n - k + 1).min(k + 2);
        (p, if k + 1 < n { c } else { 0 })
    }
    fn deterministic(&self) -> bool {
        self.tau == 0.0 || self.window[0] > self.window[1]
    }
}

impl Method for SaSolver {
    fn name(&self) -> String {
        "sa-solver".into()
    }
    super::method::one_evaluation_per_step!();
    /// With τ = 0 (an ODE solver): min(c, p + 1) with the corrector, p without (Xue et al.
    /// 2023, Thm 5.1–5.2 at τ = 0); stochastic otherwise.
    fn order(&self) -> Option<u32> {
        if !self.deterministic() {
            return None;
        }
        let (p, c) = (self.predictor_order as u32, self.corrector_order as u32);
        Some(if c == 0 { p } else { c.min(p + 1) })
    }
    /// The final lower-order steps cap it ([`global_order`]).
    fn order_at(&self, steps: usize) -> Option<u32> {
        let bulk = self.order()?;
        Some(global_order(bulk, steps, |k| {
            let (p, c) = self.orders(k, steps);
            (if c == 0 { p } else { c.min(p + 1) }) as u32
        }))
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        n: usize,
    ) -> Result<()> {
        // Past outputs (the current one excluded), at finite λ only.
        let mut hist = History::new(self.predictor_order.max(self.corrector_order));
        let mut out = evaluate(ctx, self.prediction, t[0], x);
        let (rows, d) = x.dim();
        for k in 0..n {
            let (s, tn) = (t[k], t[k + 1]);
            let ls = lambda(ctx.sde, s);
            let tau = self.tau_at(s);
            let xi = ctx.normal(rows, d);
            let (mut p, mut c) = self.orders(k, n);
            p = p.min(hist.len() + 1);
            c = c.min(hist.len() + 2);
            // From λ = −∞ (m = 0): one first-order step in data prediction, uncorrected.
            let finite = ls.is_finite();
            if !finite {
                (p, c) = (1, 0);
            }
            let step = Step::new(
                ctx,
                s,
                tn,
                tau,
                !finite || self.prediction == Prediction::Data,
            );
            let past = |m: usize| hist.last(m).iter().rev().map(|(l, v)| (*l, v));
            let mut nodes = vec![(ls, &out)];
            nodes.extend(past(p - 1));
            let predicted = step.apply(x, &nodes, ls, &xi, false);
            let next = if k + 1 < n {
                let next = evaluate(ctx, self.prediction, tn, &predicted);
                *x = if c > 0 {
                    // c nodes: the new point, then the current and past outputs.
                    let mut nodes = vec![(lambda(ctx.sde, tn), &next)];
                    if c >= 2 {
                        nodes.push((ls, &out));
                        nodes.extend(past(c - 2));
                    }
                    step.apply(x, &nodes, ls, &xi, true)
                } else {
                    predicted
                };
                next
            } else {
                *x = predicted;
                Array2::zeros((0, 0))
            };
            hist.push(ls, std::mem::replace(&mut out, next));
            ctx.finish_step(tn, x)?;
        }
        Ok(())
    }
}

/// The model output at t in `prediction`; where m = 0, x̂₀ from the field's velocity (the step
/// from there is first order, in data prediction, and its node is not kept).
fn evaluate(ctx: &StepContext<'_>, prediction: Prediction, t: f64, x: &Array2<f64>) -> Array2<f64> {
    match prediction {
        Prediction::Data => ctx.x0(t, x.view()),
        Prediction::Noise if ctx.marginal(t).mean == 0.0 => ctx.x0_eps(t, x.view()).0,
        Prediction::Noise => ctx.eps(t, x.view()),
    }
}

/// The coefficients of one step from s to t with τ.
struct Step {
    h: f64,
    /// c_τ = 1 + τ².
    c: f64,
    /// The factor on x and the noise scale.
    cx: f64,
    noise: f64,
    /// m_t (data) or s_t (noise).
    scale: f64,
    data: bool,
}

impl Step {
    fn new(ctx: &StepContext<'_>, s: f64, t: f64, tau: f64, data: bool) -> Self {
        let (ks, kt) = (ctx.marginal(s), ctx.marginal(t));
        let h = lambda(ctx.sde, t) - lambda(ctx.sde, s);
        let t2 = tau * tau;
        // e^{−τ²h}, 1 at τ = 0 also where h = ∞ (the start of a path with m(t_max) = 0).
        let decay = if t2 == 0.0 { 1.0 } else { (-t2 * h).exp() };
        let (cx, noise, scale) = if data {
            (
                decay * kt.std / ks.std,
                kt.std * (-(-2.0 * t2 * h).exp_m1()).max(0.0).sqrt(),
                kt.mean,
            )
        } else {
            (
                kt.mean / ks.mean,
                tau * kt.std * (2.0 * h).exp_m1().max(0.0).sqrt(),
                kt.std,
            )
        };
        Self {
            h,
            c: 1.0 + t2,
            cx,
            noise,
            scale,
            data,
        }
    }

    /// `cx x + Σ b_j M_j + noise ξ` over `nodes` (λ_j, M_j), newest first; `corrector`: the
    /// first node is the new point (for the order-2 rescaling).
    fn apply(
        &self,
        x: &Array2<f64>,
        nodes: &[(f64, &Array2<f64>)],
        ls: f64,
        xi: &Array2<f64>,
        corrector: bool,
    ) -> Array2<f64> {
        let (h, c) = (self.h, self.c);
        let mut b: Vec<f64> = if nodes.len() == 1 && self.data {
            // c_τ m_t ∫ e^{−c_τ(h−u)} du = m_t (1 − e^{−c_τ h}): finite where h = ∞.
            vec![-self.scale * (-c * h).exp_m1()]
        } else if nodes.len() == 1 {
            vec![-c * self.scale * h.exp_m1()]
        } else {
            let r: Vec<f64> = nodes.iter().map(|(l, _)| (l - ls) / h).collect();
            let z = if self.data { -c * h } else { h };
            let sign = if self.data { 1.0 } else { -1.0 };
            expint::lagrange_weights(&r, z)
                .into_iter()
                .map(|w| sign * c * self.scale * h * w)
                .collect()
        };
        if self.data && nodes.len() == 2 {
            // The order-2 rescaling (diffusers `:1023-1045`, `:1164-1181`; sa_solver.py
            // `:656-669`, `:711-722`): b₀ += Δ, b₁ −= Δ.
            let half_minus_phi2 = 0.5 - expint::phi(2, -c * h);
            let delta = if corrector {
                c * self.scale * h * half_minus_phi2
            } else {
                c * self.scale * h * h * half_minus_phi2 / (ls - nodes[1].0)
            };
            b[0] += delta;
            b[1] -= delta;
        }
        let mut out = x.mapv(|v| self.cx * v);
        for (bj, (_, m)) in b.iter().zip(nodes) {
            out.scaled_add(*bj, m);
        }
        if self.noise > 0.0 {
            out.scaled_add(self.noise, xi);
        }
        out
    }
}
