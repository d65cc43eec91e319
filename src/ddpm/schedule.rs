//! DDPM noise schedules (Ho et al. 2020; Nichol & Dhariwal 2021) as grids on the VP-SDE.
//!
//! * [`DiscreteSchedule::from_vp`]: `β_i = β(t_i) / N` on `t_i = (i − 1)/(N − 1)`, i = 1 … N
//!   (Song et al. 2021, App. B; score_sde's `discrete_betas = linspace(β_min/N, β_max/N, N)`):
//!   N = 1000 with β ∈ [0.1, 20] gives Ho et al.'s 1e-4 … 0.02 exactly.
//! * [`DiscreteSchedule::linear`]: Ho et al.'s `β_i = linspace(β_1, β_N, N)` whatever N is.
//! * [`DiscreteSchedule::cosine`]: `ᾱ_i = f(i)/f(0)`, `f(i) = cos²((i/N + s)/(1 + s) · π/2)`,
//!   `β_i = min(1 − ᾱ_i/ᾱ_{i−1}, 0.999)`, all in f64 (integer division here would make every
//!   β but the last zero).
//!
//! The chain `x_i = √(1 − β_i) x_{i−1} + √β_i z` *is* the VP-SDE observed at the times
//! `t̃_i = B⁻¹(−log ᾱ_i)`: the SDE's kernel from t̃_{i−1} to t̃_i is exactly
//! `N(√(ᾱ_i/ᾱ_{i−1}) x, (1 − ᾱ_i/ᾱ_{i−1}) I) = N(√α_i x, β_i I)`. [`DiscreteSchedule::time`]
//! returns t̃_i, which is what networks are told and where exact scores are evaluated; the
//! nominal grid point t_i (where β_i was read off) converges to it as N grows.

use crate::sde::{BetaSchedule, Marginal, VpSde};
use crate::{invalid, Result};

/// `β_i`, `ᾱ_i = Π_{j ≤ i} (1 − β_j)` and the matched SDE time of each step (index 0 is i = 1).
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteSchedule {
    betas: Vec<f64>,
    /// log ᾱ_i (so that 1 − ᾱ_i = −expm1(log ᾱ_i) keeps its digits near i = 1).
    log_alpha_bars: Vec<f64>,
    /// Nominal grid points t_i.
    nominal: Vec<f64>,
    /// Matched times t̃_i with ᾱ(t̃_i) = ᾱ_i on the continuous schedule.
    times: Vec<f64>,
}

/// Largest number of steps of a discrete schedule: four arrays of N f64 (320 MB at the limit).
pub const MAX_DISCRETE_STEPS: usize = 10_000_000;

/// `Ok` when 2 ≤ n ≤ [`MAX_DISCRETE_STEPS`].
fn check_steps(n: usize) -> Result<()> {
    if !(2..=MAX_DISCRETE_STEPS).contains(&n) {
        return Err(invalid!(
            "a discrete schedule needs 2 … {MAX_DISCRETE_STEPS} steps, got {n}"
        ));
    }
    Ok(())
}

impl DiscreteSchedule {
    /// N steps read off the VP-SDE `sde` (N ≥ 2): `β_i = β(t_i)/N`.
    pub fn from_vp(sde: &VpSde, n: usize) -> Result<Self> {
        check_steps(n)?;
        let t_max = sde.schedule.t_max();
        let nominal: Vec<f64> = (0..n).map(|i| t_max * i as f64 / (n - 1) as f64).collect();
        let betas: Vec<f64> = nominal.iter().map(|&t| sde.beta(t) / n as f64).collect();
        Self::from_betas(betas, nominal, &sde.schedule)
    }

    /// The VP-SDE observed exactly on the uniform grid `t_i = i T/N`: `ᾱ_i = ᾱ(t_i)`,
    /// `β_i = 1 − ᾱ(t_i)/ᾱ(t_{i−1}) = −expm1(−∫_{t_{i−1}}^{t_i} β)`. Valid for every N ≥ 1
    /// (unlike `β(t_i)/N`, which exceeds 1 for N ≤ β_max); the ELBO's T-step chains use it.
    pub fn exact_vp(sde: &VpSde, n: usize) -> Result<Self> {
        if n < 1 {
            return Err(invalid!("a discrete schedule needs at least 1 step"));
        }
        let t_max = sde.schedule.t_max();
        let nominal: Vec<f64> = (1..=n).map(|i| t_max * i as f64 / n as f64).collect();
        let mut prev = 0.0;
        let betas = nominal
            .iter()
            .map(|&t| {
                let b = sde.schedule.integral(t);
                let beta = -(prev - b).exp_m1();
                prev = b;
                beta
            })
            .collect();
        Self::from_betas(betas, nominal, &sde.schedule)
    }

    /// Ho et al.'s linear schedule `β_i = β_1 + (i − 1)/(N − 1) (β_N − β_1)`; matched to the
    /// linear VP-SDE with β_min = N β_1, β_max = N β_N (so it equals `from_vp` of that SDE).
    pub fn linear(beta_1: f64, beta_n: f64, n: usize) -> Result<Self> {
        let sde = VpSde::linear(n as f64 * beta_1, n as f64 * beta_n);
        sde.schedule.validate()?;
        Self::from_vp(&sde, n)
    }

    /// Nichol & Dhariwal's cosine schedule with offset `s` (0.008), matched to the cosine VP-SDE
    /// (whose ᾱ(i/N) is the unclipped ᾱ_i).
    pub fn cosine(n: usize, s: f64) -> Result<Self> {
        check_steps(n)?;
        let schedule = BetaSchedule::Cosine { s };
        schedule.validate()?;
        let nf = n as f64;
        let f = |i: usize| {
            let th = (i as f64 / nf + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2;
            th.cos().powi(2)
        };
        let betas = (1..=n)
            .map(|i| (1.0 - f(i) / f(i - 1)).min(0.999))
            .collect();
        let nominal = (1..=n).map(|i| i as f64 / nf).collect();
        Self::from_betas(betas, nominal, &schedule)
    }

    fn from_betas(betas: Vec<f64>, nominal: Vec<f64>, schedule: &BetaSchedule) -> Result<Self> {
        if let Some(b) = betas.iter().find(|&&b| !(b > 0.0 && b < 1.0)) {
            return Err(invalid!(
                "β_i = {b} is outside (0, 1) with N = {}: use more steps or a smaller β_max",
                betas.len()
            ));
        }
        let mut acc = 0.0f64;
        let log_alpha_bars: Vec<f64> = betas
            .iter()
            .map(|&b| {
                acc += (-b).ln_1p();
                acc
            })
            .collect();
        let times = log_alpha_bars
            .iter()
            .map(|&l| schedule.inverse_integral(-l))
            .collect();
        Ok(Self {
            betas,
            log_alpha_bars,
            nominal,
            times,
        })
    }

    /// N.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// β_i for step i ∈ 1..=N.
    pub fn beta(&self, i: usize) -> f64 {
        self.betas[i - 1]
    }

    /// ᾱ_i for step i ∈ 0..=N (ᾱ_0 = 1).
    pub fn alpha_bar(&self, i: usize) -> f64 {
        self.log_alpha_bar(i).exp()
    }

    fn log_alpha_bar(&self, i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            self.log_alpha_bars[i - 1]
        }
    }

    /// The matched SDE time t̃_i of step i ∈ 1..=N (`ᾱ(t̃_i) = ᾱ_i`): what networks are told.
    pub fn time(&self, i: usize) -> f64 {
        self.times[i - 1]
    }

    /// The nominal grid point t_i of step i ∈ 1..=N (where β_i was read off the SDE).
    pub fn nominal_time(&self, i: usize) -> f64 {
        self.nominal[i - 1]
    }

    /// `q(x_i | x_0) = N(√ᾱ_i x_0, (1 − ᾱ_i) I)`.
    pub fn marginal(&self, i: usize) -> Marginal {
        let l = self.log_alpha_bar(i);
        Marginal {
            mean: (0.5 * l).exp(),
            std: (-l.exp_m1()).sqrt(),
        }
    }

    /// `α_i = 1 − β_i`.
    pub fn alpha(&self, i: usize) -> f64 {
        1.0 - self.beta(i)
    }

    /// The posterior `q(x_{i−1} | x_i, x_0) = N(c_0 x_0 + c_i x_i, β̃_i I)` for i ∈ 1..=N:
    /// `c_0 = √ᾱ_{i−1} β_i/(1 − ᾱ_i)`, `c_i = √α_i (1 − ᾱ_{i−1})/(1 − ᾱ_i)`,
    /// `β̃_i = (1 − ᾱ_{i−1})/(1 − ᾱ_i) β_i` (Ho et al. 2020, eqs. 6–7).
    pub fn posterior(&self, i: usize) -> Posterior {
        let (prev, cur) = (self.marginal(i - 1), self.marginal(i));
        let b = self.beta(i);
        let (v_prev, v_cur) = (prev.std * prev.std, cur.std * cur.std);
        Posterior {
            coef_x0: prev.mean * b / v_cur,
            coef_xt: self.alpha(i).sqrt() * v_prev / v_cur,
            var: v_prev / v_cur * b,
        }
    }

    /// β̃_i, with the clipping convention β̃_1 := β̃_2 (β̃_1 = 0; Nichol & Dhariwal 2021), β_1
    /// on a 1-step schedule: the reverse variance "β̃" of step i.
    pub fn posterior_var_clipped(&self, i: usize) -> f64 {
        match (i, self.len()) {
            (1, 1) => self.beta(1),
            (1, _) => self.posterior(2).var,
            _ => self.posterior(i).var,
        }
    }

    /// `β_i²/(α_i (1 − ᾱ_i))`: the squared mean error ‖μ̃ − μ_θ‖² per ‖ε − ε_θ‖² of an
    /// ε-model (Ho et al. 2020, eq. 12); at i = 1 the decoder's ‖x₀ − μ_θ‖² per ‖ε − ε_θ‖².
    pub fn eps_mean_weight(&self, i: usize) -> f64 {
        let (b, v) = (self.beta(i), self.marginal(i).std.powi(2));
        b * b / (self.alpha(i) * v)
    }
}

/// Mean coefficients and variance of DDPM's forward posterior `q(x_{i−1} | x_i, x_0)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Posterior {
    pub coef_x0: f64,
    pub coef_xt: f64,
    /// β̃_i.
    pub var: f64,
}
