//! The DDPM noise schedule read off the VP-SDE: `β_i = β(t_i) / N` on the grid
//! `t_i = (i − 1)/(N − 1)`, i = 1 … N (Song et al. 2021, App. B; score_sde's
//! `discrete_betas = linspace(β_min/N, β_max/N, N)`): N = 1000 with β ∈ [0.1, 20] gives
//! Ho et al.'s 1e-4 … 0.02 exactly. All in f64.

use crate::sde::{Marginal, VpSde};
use crate::{invalid, Result};

/// `β_i`, `ᾱ_i = Π_{j ≤ i} (1 − β_j)` and the SDE time of each step (index 0 is step i = 1).
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteSchedule {
    betas: Vec<f64>,
    /// log ᾱ_i (so that 1 − ᾱ_i = −expm1(log ᾱ_i) keeps its digits near i = 1).
    log_alpha_bars: Vec<f64>,
    times: Vec<f64>,
}

impl DiscreteSchedule {
    /// N steps of the VP-SDE `sde` (N ≥ 2).
    pub fn from_vp(sde: &VpSde, n: usize) -> Result<Self> {
        if n < 2 {
            return Err(invalid!(
                "a discrete schedule needs at least 2 steps, got {n}"
            ));
        }
        let t_max = sde.schedule.t_max();
        let times: Vec<f64> = (0..n).map(|i| t_max * i as f64 / (n - 1) as f64).collect();
        let betas: Vec<f64> = times.iter().map(|&t| sde.beta(t) / n as f64).collect();
        if let Some(b) = betas.iter().find(|&&b| !(b > 0.0 && b < 1.0)) {
            return Err(invalid!(
                "β_i = {b} is outside (0, 1) with N = {n}: use more steps or a smaller β_max"
            ));
        }
        let mut acc = 0.0f64;
        let log_alpha_bars = betas
            .iter()
            .map(|&b| {
                acc += (-b).ln_1p();
                acc
            })
            .collect();
        Ok(Self {
            betas,
            log_alpha_bars,
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

    /// The SDE time t_i of step i ∈ 1..=N (what the network is told).
    pub fn time(&self, i: usize) -> f64 {
        self.times[i - 1]
    }

    /// `q(x_i | x_0) = N(√ᾱ_i x_0, (1 − ᾱ_i) I)`.
    pub fn marginal(&self, i: usize) -> Marginal {
        let l = self.log_alpha_bar(i);
        Marginal {
            mean: (0.5 * l).exp(),
            std: (-l.exp_m1()).sqrt(),
        }
    }
}
