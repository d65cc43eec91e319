//! DPM-Solver (Lu et al. 2022, Algorithms 1–2) and DPM-Solver++(2M) (Lu et al. 2022b) for any
//! SDE with Gaussian kernels: `α_t = m(t)`, `σ_t = s(t)`, `λ_t = log(α_t/σ_t)` (half the
//! log-SNR), `t(λ)` by [`Sde::t_of_log_snr`](crate::sde::Sde::t_of_log_snr).

use super::engine::StepContext;
use super::expint::{self, lambda, t_of_lambda};
use super::grid::Grid;
use super::Method;
use crate::sde::Sde;
use crate::Result;
use ndarray::{Array2, Zip};

/// Single-step DPM-Solver-k on an NFE budget N, split into steps as the authors' code does
/// ([`orders`]), λ-uniform by default. With k = 3 this is the paper's DPM-Solver-fast.
#[derive(Clone, Debug)]
pub struct DpmSolver {
    pub order: usize,
    pub grid: Grid,
    /// Named `dpm-solver-fast` (Lu et al. 2022, §3.4) rather than `dpm-solver-3`: the same rule.
    pub fast: bool,
}

impl Method for DpmSolver {
    fn name(&self) -> String {
        if self.fast {
            "dpm-solver-fast".into()
        } else {
            format!("dpm-solver-{}", self.order)
        }
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        super::grid::refuse_signal_free_start(
            sde,
            &self.name(),
            "its noise-prediction update scales x by m(t)/m(s)",
        )?;
        self.grid
            .times(sde, eps, orders(self.order, steps).len() + 1)
    }
    /// N (the budget).
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(steps as u64)
    }
    /// k (Lu et al. 2022, Thm 3.2).
    fn order(&self) -> Option<u32> {
        Some(self.order as u32)
    }
    /// The lowest order among the split's steps, raised by one (a single step of order p
    /// contributes O(h^{p+1})): k = 3 reaches order 3 only on budgets N ≡ 2 (mod 3).
    fn order_at(&self, steps: usize) -> Option<u32> {
        let low = orders(self.order, steps).into_iter().min()?;
        Some((self.order as u32).min(low as u32 + 1))
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        n: usize,
    ) -> Result<()> {
        run(ctx, x, t, &orders(self.order, n))
    }
}

/// DPM-Solver++(2M), multistep: N steps, N evaluations; below 10 steps the last step is first
/// order (the authors' `lower_order_final`).
#[derive(Clone, Debug)]
pub struct DpmSolverPp2m {
    pub grid: Grid,
}

impl Method for DpmSolverPp2m {
    fn name(&self) -> String {
        "dpm-solver-pp2m".into()
    }
    super::method::one_evaluation_per_step!();
    /// 2 (Lu et al. 2022b).
    fn order(&self) -> Option<u32> {
        Some(2)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        t: &[f64],
        _: usize,
    ) -> Result<()> {
        run_pp2m(ctx, x, t, t.len() <= 10)
    }
}

/// The orders of single-step DPM-Solver-k spending exactly `nfe` evaluations, as the authors'
/// code splits them (`get_orders_and_timesteps_for_singlestep_solver` in LuChengTHU/dpm-solver;
/// DPM-Solver-fast, Lu et al. 2022 §3.4): ⌊nfe/k⌋ steps of order k, then one of order
/// nfe mod k if that is not 0 — except k = 3 with nfe ≡ 0 (mod 3), which takes nfe/3 − 1
/// third-order steps, then one second- and one first-order step (K = ⌊nfe/3⌋ + 1 steps).
pub(crate) fn orders(k: usize, nfe: usize) -> Vec<usize> {
    if k == 3 && nfe >= 3 && nfe.is_multiple_of(3) {
        let mut o = vec![3; nfe / 3 - 1];
        o.extend([2, 1]);
        return o;
    }
    let mut o = vec![k; nfe / k];
    if !nfe.is_multiple_of(k) {
        o.push(nfe % k);
    }
    o
}

/// The first-order (DDIM) move from s to u ([`expint::noise_move`]).
fn first_order(
    eng: &StepContext<'_>,
    x: &Array2<f64>,
    eps_s: &Array2<f64>,
    s: f64,
    u: f64,
) -> Array2<f64> {
    let h = lambda(eng.sde, u) - lambda(eng.sde, s);
    expint::noise_move(eng.marginal(s), eng.marginal(u), h, x, eps_s)
}

/// One single-step DPM-Solver step of `order` ∈ {1, 2, 3} from s to t (Lu et al. 2022,
/// Algorithm 1 with r₁ = ½; Algorithm 2 with r₁ = ⅓, r₂ = ⅔).
fn step(eng: &StepContext<'_>, x: &mut Array2<f64>, s: f64, t: f64, order: usize) {
    let eps_s = eng.eps(s, x.view());
    let (ls, lt) = (lambda(eng.sde, s), lambda(eng.sde, t));
    let h = lt - ls;
    let kt = eng.marginal(t);
    match order {
        1 => *x = first_order(eng, x, &eps_s, s, t),
        2 => {
            let r1 = 0.5;
            let s1 = t_of_lambda(eng.sde, ls + r1 * h);
            let u = first_order(eng, x, &eps_s, s, s1);
            let e1 = eng.eps(s1, u.view());
            let mut out = first_order(eng, x, &eps_s, s, t);
            let c = kt.std / (2.0 * r1) * h.exp_m1();
            Zip::from(&mut out)
                .and(&e1)
                .and(&eps_s)
                .for_each(|o, &e1, &e0| *o -= c * (e1 - e0));
            *x = out;
        }
        3 => {
            let (r1, r2) = (1.0 / 3.0, 2.0 / 3.0);
            let s1 = t_of_lambda(eng.sde, ls + r1 * h);
            let s2 = t_of_lambda(eng.sde, ls + r2 * h);
            let u1 = first_order(eng, x, &eps_s, s, s1);
            let d1 = eng.eps(s1, u1.view()) - &eps_s;
            let mut u2 = first_order(eng, x, &eps_s, s, s2);
            let k2 = eng.marginal(s2);
            let c2 = k2.std * r2 / r1 * ((r2 * h).exp_m1() / (r2 * h) - 1.0);
            u2.scaled_add(-c2, &d1);
            let d2 = eng.eps(s2, u2.view()) - &eps_s;
            let mut out = first_order(eng, x, &eps_s, s, t);
            let c = kt.std / r2 * (h.exp_m1() / h - 1.0);
            out.scaled_add(-c, &d2);
            *x = out;
        }
        _ => unreachable!("DPM-Solver orders are 1, 2 or 3"),
    }
}

/// Single-step DPM-Solver over `times` (len(orders) + 1 points) with the given step orders.
fn run(
    eng: &mut StepContext<'_>,
    x: &mut Array2<f64>,
    times: &[f64],
    orders: &[usize],
) -> Result<()> {
    for (w, &o) in times.windows(2).zip(orders) {
        step(eng, x, w[0], w[1], o);
        eng.finish_step(w[1], x)?;
    }
    Ok(())
}

/// DPM-Solver++(2M): multistep, second order in the data prediction x̂₀, one evaluation per
/// step: `x_{t_i} = (σ_i/σ_{i−1}) x − α_i (e^{−h_i} − 1) D_i` with
/// `D_i = (1 + 1/(2r_i)) x̂₀_{i−1} − 1/(2r_i) x̂₀_{i−2}`, `r_i = h_{i−1}/h_i` (first step first
/// order; the last one too when `lower_order_final`).
fn run_pp2m(
    eng: &mut StepContext<'_>,
    x: &mut Array2<f64>,
    times: &[f64],
    lower_order_final: bool,
) -> Result<()> {
    let mut prev: Option<(Array2<f64>, f64)> = None;
    let last = times.len() - 2;
    for (i, w) in times.windows(2).enumerate() {
        let (s, t) = (w[0], w[1]);
        if lower_order_final && i == last {
            prev = None;
        }
        let x0 = eng.x0(s, x.view());
        let (ks, kt) = (eng.marginal(s), eng.marginal(t));
        let h = lambda(eng.sde, t) - lambda(eng.sde, s);
        let dd = match &prev {
            Some((x0_prev, h_prev)) => {
                let r = h_prev / h;
                let (c0, c1) = (1.0 + 0.5 / r, 0.5 / r);
                let mut dd = x0.mapv(|v| c0 * v);
                dd.scaled_add(-c1, x0_prev);
                dd
            }
            None => x0.clone(),
        };
        expint::data_move(ks, kt, h, x, &dd);
        prev = Some((x0, h));
        eng.finish_step(t, x)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::orders;

    /// The authors' rule restated (`get_orders_and_timesteps_for_singlestep_solver`,
    /// LuChengTHU/dpm-solver): K = ⌊N/3⌋ + 1 steps for order 3; K = ⌈N/2⌉ for order 2.
    fn reference(k: usize, n: usize) -> Vec<usize> {
        match k {
            3 => {
                let kk = n / 3 + 1;
                match n % 3 {
                    0 => [vec![3; kk - 2], vec![2, 1]].concat(),
                    1 => [vec![3; kk - 1], vec![1]].concat(),
                    _ => [vec![3; kk - 1], vec![2]].concat(),
                }
            }
            2 if n.is_multiple_of(2) => vec![2; n / 2],
            2 => [vec![2; n / 2], vec![1]].concat(),
            _ => vec![1; n],
        }
    }

    #[test]
    fn splits_follow_the_authors_rule() {
        for k in 1..=3 {
            for n in 3..200 {
                let o = orders(k, n);
                assert_eq!(o, reference(k, n), "k = {k}, NFE {n}");
                assert_eq!(o.iter().sum::<usize>(), n);
            }
        }
        assert_eq!(orders(3, 21), [vec![3; 6], vec![2, 1]].concat());
    }
}
