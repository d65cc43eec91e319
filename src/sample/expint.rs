//! Exponential integrators in the half log-SNR λ = log(m/s): the one home of what DDIM,
//! DPM-Solver, UniPC, DEIS and SA-Solver share (Lu et al. 2022, eq. 3.4; Lu et al. 2022b,
//! eq. 8; Zhang & Chen 2022, eq. 12; Zhao et al. 2023, eq. 5; Xue et al. 2023, eq. 9).
//!
//! On any Gaussian path, the PF-ODE in λ has the exact solutions (h = λ_t − λ_s)
//! * noise prediction: `x_t = (m_t/m_s) x_s − s_t ∫_0^h e^{h−u} ε̂(λ_s + u) du`,
//! * data prediction:  `x_t = (s_t/s_s) x_s + m_t ∫_0^h e^{−(h−u)} x̂₀(λ_s + u) du`,
//!
//! and every sampler here replaces ε̂ or x̂₀ by a polynomial in λ through its past outputs. The
//! weights of such polynomials against the exponential are moments of φ-functions
//! ([`phi`], [`lagrange_weights`]). Where m(t_max) = 0 (rectified and trigonometric paths)
//! λ = −∞ at the start: the first step is then the DDIM move in x̂₀-form ([`ddim_move`]), exact
//! in its form at m_s = 0, and a node at λ = −∞ carries no information for a polynomial in λ
//! (its Lagrange weight tends to 0), so it is not kept ([`History`]).

use crate::sde::{Marginal, Sde};
use ndarray::{Array2, Zip};

/// DPM-Solver's λ(t) = ½ log-SNR = log(m/s).
pub fn lambda(path: &dyn Sde, t: f64) -> f64 {
    0.5 * path.log_snr(t)
}

/// The inverse of [`lambda`] on the path (its `t_of_log_snr`).
pub fn t_of_lambda(path: &dyn Sde, l: f64) -> f64 {
    path.t_of_log_snr(2.0 * l)
}

/// `φ_k(z) = ∫_0^1 e^{(1−v) z} v^{k−1}/(k−1)! dv` (φ_0 = e^z), so that φ_1(z) = (e^z − 1)/z and
/// `φ_{k+1}(z) = (φ_k(z) − 1/k!)/z` (Hochbruck & Ostermann 2010, eq. 2.10). Accurate to a few
/// ulps for every z: by the Taylor series `Σ_j z^j/(j+k)!` where |z| < 2 (the recursion loses
/// digits as z → 0), by the recursion from `expm1` elsewhere.
pub fn phi(k: usize, z: f64) -> f64 {
    if k == 0 {
        return z.exp();
    }
    if z.abs() < 2.0 {
        // term_j = z^j/(j+k)!
        let mut term = 1.0 / factorial(k);
        let mut sum = term;
        for j in 1..60 {
            term *= z / (j + k) as f64;
            sum += term;
            if term.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        return sum;
    }
    let mut p = z.exp_m1() / z;
    for j in 1..k {
        p = (p - 1.0 / factorial(j)) / z;
    }
    p
}

/// n! as a float.
pub fn factorial(n: usize) -> f64 {
    (1..=n).map(|i| i as f64).product()
}

/// The weights `w_j = ∫_0^1 e^{z(1−v)} ℓ_j(v) dv` of the Lagrange basis ℓ_j on `nodes` (in
/// units of the step: v = (λ − λ_s)/h), so that `∫_0^1 e^{z(1−v)} p(v) dv = Σ_j w_j p(r_j)` for
/// the interpolant p through the values at r_j. From the monomial expansion of each ℓ_j and
/// `∫_0^1 e^{z(1−v)} v^k dv = k! φ_{k+1}(z)`. With z = −h these are the data-prediction Adams
/// weights, with z = h the noise-prediction ones, with z = −(1 + τ²) h SA-Solver's.
pub fn lagrange_weights(nodes: &[f64], z: f64) -> Vec<f64> {
    let moments: Vec<f64> = (0..nodes.len())
        .map(|k| factorial(k) * phi(k + 1, z))
        .collect();
    (0..nodes.len())
        .map(|j| {
            // Coefficients of ℓ_j(v) = Π_{k≠j} (v − r_k)/(r_j − r_k), lowest degree first.
            let mut poly = vec![1.0];
            for (_, &rk) in nodes.iter().enumerate().filter(|&(k, _)| k != j) {
                let scale = 1.0 / (nodes[j] - rk);
                let mut next = vec![0.0; poly.len() + 1];
                for (i, &c) in poly.iter().enumerate() {
                    next[i + 1] += c * scale;
                    next[i] -= c * rk * scale;
                }
                poly = next;
            }
            poly.iter().zip(&moments).map(|(c, m)| c * m).sum()
        })
        .collect()
}

/// The first-order noise-prediction move (DPM-Solver-1 = DDIM; Lu et al. 2022, eq. 3.7):
/// `(m_t/m_s) x − s_t (e^h − 1) ε̂_s` with h = λ_t − λ_s.
pub fn noise_move(
    ks: Marginal,
    kt: Marginal,
    h: f64,
    x: &Array2<f64>,
    eps: &Array2<f64>,
) -> Array2<f64> {
    let (cx, ce) = (kt.mean / ks.mean, kt.std * h.exp_m1());
    let mut out = x.mapv(|v| cx * v);
    out.scaled_add(-ce, eps);
    out
}

/// The first-order data-prediction move (DPM-Solver++1 = DDIM; Lu et al. 2022b, eq. 9), in
/// place: `x ← (s_t/s_s) x − m_t (e^{−h} − 1) D` with D the data prediction (or a combination
/// of past ones standing in for it, as DPM-Solver++(2M) passes).
pub fn data_move(ks: Marginal, kt: Marginal, h: f64, x: &mut Array2<f64>, d: &Array2<f64>) {
    let (cx, cd) = (kt.std / ks.std, kt.mean * (-h).exp_m1());
    Zip::from(x).and(d).for_each(|x, &d| *x = cx * *x - cd * d);
}

/// DDIM's move in x̂₀-form (Song, Meng & Ermon 2021, eq. 12): `x ← m' x̂₀ + c ε̂` with
/// `x̂₀ = (x − s ε̂)/m` from the kernel `k` at the current time; c = s' is the deterministic move.
pub fn ddim_move(x: &mut Array2<f64>, eps: &Array2<f64>, k: Marginal, m_next: f64, c_eps: f64) {
    Zip::from(x).and(eps).for_each(|x, &e| {
        let x0 = (*x - k.std * e) / k.mean;
        *x = m_next * x0 + c_eps * e;
    });
}

/// The same move from `(x̂₀, ε̂)` given directly, as where m = 0 they come from the field's
/// velocity: `x ← m' x̂₀ + c ε̂`.
pub fn ddim_move_from(
    x: &mut Array2<f64>,
    x0: &Array2<f64>,
    eps: &Array2<f64>,
    m_next: f64,
    c_eps: f64,
) {
    Zip::from(x)
        .and(x0)
        .and(eps)
        .for_each(|x, &x0, &e| *x = m_next * x0 + c_eps * e);
}

/// The order of step k of N of a multistep method of order p: min(p, k + 1) (the warm-up, one
/// more past output per step) and, with `lower_order_final`, at most N − k (the last step
/// first order, the one before at most second: Lu et al. 2022b, `lower_order_final`; the
/// references of UniPC, DEIS and SA-Solver).
pub fn step_order(p: usize, k: usize, n: usize, lower_order_final: bool) -> usize {
    let o = p.min(k + 1);
    if lower_order_final {
        o.min(n - k)
    } else {
        o
    }
}

/// The global order of a fixed-step method whose steps have local orders `local(k)` (error
/// O(h^{q+1})) for k < `steps` and whose bulk order is `bulk`: a bounded number of steps of
/// lower order q (warm-up, lower-order final steps) caps it at q + 1.
pub fn global_order(bulk: u32, steps: usize, local: impl Fn(usize) -> u32) -> u32 {
    (0..steps).map(|k| local(k) + 1).fold(bulk, u32::min)
}

/// Which prediction a multistep exponential integrator interpolates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Prediction {
    /// x̂₀ (DPM-Solver++, UniPC's `predict_x0`).
    #[default]
    Data,
    /// ε̂ (DPM-Solver, DEIS).
    Noise,
}

/// The past model outputs of a multistep method, most recent last, at finite λ only (a node at
/// λ = −∞ is dropped: see the module notes).
#[derive(Default)]
pub struct History {
    nodes: Vec<(f64, Array2<f64>)>,
    keep: usize,
}

impl History {
    /// Keeps at most `keep` outputs.
    pub fn new(keep: usize) -> Self {
        Self {
            nodes: Vec::new(),
            keep,
        }
    }

    /// Adds the output at λ (dropped where λ is not finite).
    pub fn push(&mut self, lambda: f64, value: Array2<f64>) {
        if !lambda.is_finite() {
            return;
        }
        if self.nodes.len() == self.keep {
            self.nodes.remove(0);
        }
        self.nodes.push((lambda, value));
    }

    /// The last `n` nodes (fewer if fewer are kept), most recent last.
    pub fn last(&self, n: usize) -> &[(f64, Array2<f64>)] {
        &self.nodes[self.nodes.len().saturating_sub(n)..]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// φ_k against its integral by a 20 000-point Simpson rule, on both sides of the switch
    /// between the series and the recursion.
    #[test]
    fn phi_matches_its_integral() {
        for k in 1..=5 {
            for &z in &[
                -10.0, -5.0, -2.0001, -1.9999, -0.3, -1e-9, 0.0, 1e-9, 0.7, 1.9999, 2.0001, 4.0,
            ] {
                let n = 20000;
                let f = |v: f64| ((1.0 - v) * z).exp() * v.powi(k as i32 - 1) / factorial(k - 1);
                let hstep = 1.0 / n as f64;
                let mut s = f(0.0) + f(1.0);
                for i in 1..n {
                    s += f(i as f64 * hstep) * if i % 2 == 1 { 4.0 } else { 2.0 };
                }
                let simpson = s * hstep / 3.0;
                let p = phi(k, z);
                assert!(
                    (p - simpson).abs() <= 1e-12 * simpson.abs().max(1e-3),
                    "φ_{k}({z}) = {p}, Simpson {simpson}"
                );
            }
        }
        assert_eq!(phi(1, 0.0), 1.0);
        assert!((phi(3, 0.0) - 1.0 / 6.0).abs() < 1e-17);
    }

    /// The weights integrate every polynomial of degree < #nodes exactly: against the moments
    /// themselves, and with z → 0 they are the classical Adams–Bashforth coefficients.
    #[test]
    fn lagrange_weights_are_exact_for_polynomials() {
        let nodes = [-2.3, -1.1, 0.0];
        for &z in &[-3.0, -0.5, 1e-12, 0.8] {
            let w = lagrange_weights(&nodes, z);
            for k in 0..3 {
                let exact = factorial(k) * phi(k + 1, z);
                let quad: f64 = nodes
                    .iter()
                    .zip(&w)
                    .map(|(r, w)| w * r.powi(k as i32))
                    .sum();
                assert!(
                    (quad - exact).abs() < 1e-13,
                    "z {z}, degree {k}: {quad} vs {exact}"
                );
            }
        }
        // Adams–Bashforth 3 on a unit grid: 23/12, −16/12, 5/12 (z = 0: plain integral).
        let w = lagrange_weights(&[0.0, -1.0, -2.0], 0.0);
        for (a, b) in w.iter().zip([23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0]) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
    }
}
