//! UniPC (Zhao et al. 2023): the multistep predictor UniP-p and the corrector UniC-p, which
//! reuses the model evaluation at the predictor's output (no extra NFE), in data or noise
//! prediction, with B(h) = h (`bh1`) or e^h − 1 (`bh2`).
//!
//! With hh = −h (data) or h (noise), the base step is the first-order move
//! `x̃ = (s_t/s_s) x − m_t (e^{hh} − 1) M₀` (data; noise: `(m_t/m_s) x − s_t (e^{hh} − 1) M₀`),
//! and with past outputs M_k at r_k = (λ_k − λ_s)/h, D_k = (M_k − M₀)/r_k:
//! * UniP-p: `x_t = x̃ − c_t B(h) Σ_{k<p} ρ^p_k D_k` (c_t = m_t for data, s_t for noise);
//! * UniC-p, with the output M_t at the predictor's x_t and r = 1:
//!   `x_t^c = x̃ − c_t B(h) (Σ_{k<p} ρ^c_k D_k + ρ^c_p (M_t − M₀))`,
//!
//! where ρ solves `R ρ = b`, `R_{ik} = r_k^{i−1}`, `b_i = i! φ_{i+1}(hh) hh / B(h)`
//! (Zhao et al. 2023, Alg. 2–3 and eq. 12; ρ^p = ½ at p = 2 and ρ^c = ½ at p = 1, as the
//! authors fix them). References: wl-zhao/UniPC cf9de85 `uni_pc.py:471-588`
//! (`multistep_uni_pc_bh_update`) and `:590-672` (`sample`: warm-up, `lower_order_final`, no
//! corrector on the last step); diffusers 0.42.1 `scheduling_unipc_multistep.py:833-960`
//! (UniP), `:962-1097` (UniC), `:1153-1231` (`step`). Both are matched to ≤ 1e-10 on the same
//! x_T and grid by `scripts/reference-samplers/compare.py`.
//!
//! Step i uses order min(p, i + 1) (warm-up) and, with `lower_order_final`, min(·, N − i); the
//! corrector runs after every step but the last (no model evaluation there). A step from
//! λ = −∞ (m = 0) is the DDIM move ([`super::expint`]).

use super::engine::StepContext;
use super::expint::{self, ddim_move_from, global_order, lambda, History, Prediction};
use super::grid::Grid;
use super::Method;
use crate::Result;
use ndarray::{Array1, Array2};
use ndarray_linalg::Solve;

/// B(h) of UniPC: the two choices of Zhao et al. 2023, §3.3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum BhVariant {
    /// B(h) = hh (the authors' default for unconditional sampling).
    Bh1,
    /// B(h) = e^{hh} − 1 (diffusers' default).
    #[default]
    Bh2,
}

/// UniPC with predictor order p ∈ {1, 2, 3}, on N steps of `grid` (N + 1 points).
#[derive(Clone, Debug)]
pub struct UniPc {
    pub order: usize,
    pub variant: BhVariant,
    pub prediction: Prediction,
    pub corrector: bool,
    pub lower_order_final: bool,
    pub grid: Grid,
}

impl UniPc {
    /// The predictor order of step i of N.
    fn step_order(&self, i: usize, n: usize) -> usize {
        expint::step_order(self.order, i, n, self.lower_order_final)
    }
}

impl Method for UniPc {
    fn name(&self) -> String {
        "unipc".into()
    }
    super::method::one_evaluation_per_step!();
    /// p with UniP alone, p + 1 with UniC (Zhao et al. 2023, Thm 3.1 and 3.3): the order of
    /// the bulk of the steps, which [`Method::order_at`] lowers for the warm-up and the final
    /// lower-order steps.
    fn order(&self) -> Option<u32> {
        Some(self.order as u32 + u32::from(self.corrector))
    }
    /// A bounded number of steps of local order q (error O(h^{q+1})) caps the global order at
    /// q + 1: the warm-up steps and the final lower-order ones (each corrected, q + 1 with UniC)
    /// and the last, uncorrected, step. (On a path with m(t_max) = 0 the first step is DDIM's,
    /// which caps the order at 2.) The caps' constants are small (the flow contracts early
    /// errors; x̂₀ hardly moves in λ at the end): at N ≤ 2048 the fitted slopes lie between
    /// this and [`Method::order`] (`tests/sampler_orders.rs`).
    fn order_at(&self, steps: usize) -> Option<u32> {
        let c = usize::from(self.corrector);
        let bulk = self.order()?;
        Some(global_order(bulk, steps, |j| {
            (self.step_order(j, steps) + c * usize::from(j + 1 < steps)) as u32
        }))
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        n: usize,
    ) -> Result<()> {
        let mut hist = History::new(self.order);
        let mut out = Some(evaluate(ctx, self.prediction, t[0], x));
        for i in 0..n {
            let (s, tn) = (t[i], t[i + 1]);
            let ls = lambda(ctx.sde, s);
            let last = i + 1 == n;
            let (m_s, other) = out.take().expect("evaluated before the step");
            if !ls.is_finite() {
                let kt = ctx.marginal(tn);
                ddim_move_from(x, &m_s, &other, kt.mean, kt.std);
                if !last {
                    out = Some(evaluate(ctx, self.prediction, tn, x));
                }
            } else {
                hist.push(ls, m_s);
                let order = self.step_order(i, n).min(hist.len());
                let step = Step::new(ctx, self, s, tn, &hist, order);
                let predicted = step.predict(x);
                if last {
                    *x = predicted;
                } else {
                    let next = evaluate(ctx, self.prediction, tn, &predicted);
                    *x = if self.corrector {
                        step.correct(x, &next.0)
                    } else {
                        predicted
                    };
                    out = Some(next);
                }
            }
            ctx.finish_step(tn, x)?;
        }
        Ok(())
    }
}

/// The model output at t in `prediction` (with the other one where m = 0, for the DDIM move).
fn evaluate(
    ctx: &StepContext<'_>,
    prediction: Prediction,
    t: f64,
    x: &Array2<f64>,
) -> (Array2<f64>, Array2<f64>) {
    if ctx.marginal(t).mean == 0.0 {
        return ctx.x0_eps(t, x.view());
    }
    let out = match prediction {
        Prediction::Data => ctx.x0(t, x.view()),
        Prediction::Noise => ctx.eps(t, x.view()),
    };
    (out, Array2::zeros((0, 0)))
}

/// One UniPC step from s to t: the base move and the coefficients both halves share.
struct Step<'a> {
    /// x̃ without the x term: `c_x`, `c_0 M₀`.
    cx: f64,
    c0: f64,
    /// `c_t B(h)`.
    cb: f64,
    m0: &'a Array2<f64>,
    /// D_k of the past outputs, most recent first.
    d: Vec<Array2<f64>>,
    rhos_p: Vec<f64>,
    rhos_c: Vec<f64>,
}

impl<'a> Step<'a> {
    fn new(
        ctx: &StepContext<'_>,
        u: &UniPc,
        s: f64,
        t: f64,
        hist: &'a History,
        order: usize,
    ) -> Self {
        let (ks, kt) = (ctx.marginal(s), ctx.marginal(t));
        let nodes = hist.last(order);
        let (ls, m0) = nodes.last().map(|(l, m)| (*l, m)).expect("one node");
        let h = lambda(ctx.sde, t) - ls;
        let data = u.prediction == Prediction::Data;
        let hh = if data { -h } else { h };
        let h_phi_1 = hh.exp_m1();
        let b_h = match u.variant {
            BhVariant::Bh1 => hh,
            BhVariant::Bh2 => h_phi_1,
        };
        let (cx, c0, ct) = if data {
            (kt.std / ks.std, kt.mean * h_phi_1, kt.mean)
        } else {
            (kt.mean / ks.mean, kt.std * h_phi_1, kt.std)
        };
        // Past nodes, most recent first: r_k and D_k.
        let mut rks = Vec::new();
        let mut d = Vec::new();
        for (lk, mk) in nodes[..nodes.len() - 1].iter().rev() {
            let rk = (lk - ls) / h;
            rks.push(rk);
            d.push((mk - m0) / rk);
        }
        rks.push(1.0);
        // b_i = i! φ_{i+1}(hh) hh / B(h), i = 1..p (the authors' h_phi_k recursion).
        let b: Vec<f64> = (1..=order)
            .map(|i| expint::factorial(i) * expint::phi(i + 1, hh) * hh / b_h)
            .collect();
        let solve = |k: usize| -> Vec<f64> {
            let r = Array2::from_shape_fn((k, k), |(i, j)| rks[j].powi(i as i32));
            r.solve_into(Array1::from(b[..k].to_vec()))
                .expect("distinct nodes")
                .to_vec()
        };
        let rhos_p = match order {
            1 => vec![],
            2 => vec![0.5],
            _ => solve(order - 1),
        };
        let rhos_c = match order {
            1 => vec![0.5],
            _ => solve(order),
        };
        Self {
            cx,
            c0,
            cb: ct * b_h,
            m0,
            d,
            rhos_p,
            rhos_c,
        }
    }

    /// x̃ from x.
    fn base(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = x.mapv(|v| self.cx * v);
        out.scaled_add(-self.c0, self.m0);
        out
    }

    /// UniP: `x̃ − c_t B(h) Σ ρ^p_k D_k` from the state x at s.
    fn predict(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut out = self.base(x);
        for (rho, d) in self.rhos_p.iter().zip(&self.d) {
            out.scaled_add(-self.cb * rho, d);
        }
        out
    }

    /// UniC with the output `m_t` at the predictor's state: from the state x at s.
    fn correct(&self, x: &Array2<f64>, m_t: &Array2<f64>) -> Array2<f64> {
        let mut out = self.base(x);
        let p = self.rhos_c.len();
        for (rho, d) in self.rhos_c[..p - 1].iter().zip(&self.d) {
            out.scaled_add(-self.cb * rho, d);
        }
        let d_t = m_t - self.m0;
        out.scaled_add(-self.cb * self.rhos_c[p - 1], &d_t);
        out
    }
}
