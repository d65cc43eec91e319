//! Convergence orders against the exact oracle: the endpoint error at ε of a deterministic
//! sampler against an RK45 solve (rtol = atol = 1e-10) from the same draws at t_max, and the
//! log–log slope of that error against NFE.

use super::{integrate, integrate_with, Method, RunSpec, SampleSpec, Sampler};
use crate::numerics::loglog_slope;
use crate::score::Score;
use crate::sde::Sde;
use crate::Result;
use ndarray::Array2;

/// Mean Euclidean distance between the rows of `x` and of `reference`.
pub fn endpoint_error(x: &Array2<f64>, reference: &Array2<f64>) -> f64 {
    (x - reference)
        .rows()
        .into_iter()
        .map(|r| r.dot(&r).sqrt())
        .sum::<f64>()
        / x.nrows() as f64
}

/// Fixed draws at t_max and the PF-ODE solution from them, the reference of every endpoint error.
pub struct EndpointOracle<'a> {
    sde: &'a dyn Sde,
    score: &'a dyn Score,
    /// The draws at t_max every sampler starts from.
    pub x_t: Array2<f64>,
    /// Their RK45 solution at ε = the SDE's default.
    pub reference: Array2<f64>,
}

/// Endpoint errors of one sampler and the slope of log error against log NFE (≈ −order).
#[derive(Clone, Debug)]
pub struct Order {
    /// (NFE per particle, endpoint error) for each N.
    pub points: Vec<(f64, f64)>,
    pub slope: f64,
}

impl<'a> EndpointOracle<'a> {
    pub fn new(sde: &'a dyn Sde, score: &'a dyn Score, x_t: Array2<f64>) -> Result<Self> {
        let rk = SampleSpec {
            sampler: Sampler::PfRk45(super::config::PfRk45 {
                rtol: 1e-10,
                atol: 1e-10,
            }),
            ..Default::default()
        };
        let reference = integrate(sde, score, x_t.clone(), &rk, None)?.x;
        Ok(Self {
            sde,
            score,
            x_t,
            reference,
        })
    }

    /// The endpoint error of states `x` at ε.
    pub fn error(&self, x: &Array2<f64>) -> f64 {
        endpoint_error(x, &self.reference)
    }

    /// Runs `method` (final denoising off) for each N in `steps`; the slope is fitted over all.
    pub fn order(&self, method: &dyn Method, steps: &[usize]) -> Result<Order> {
        let points = steps
            .iter()
            .map(|&n| {
                let run = RunSpec {
                    steps: n,
                    denoise: Some(false),
                    ..Default::default()
                };
                let out =
                    integrate_with(self.sde, self.score, self.x_t.clone(), method, &run, None)?;
                Ok((out.nfe, self.error(&out.x)))
            })
            .collect::<Result<Vec<_>>>()?;
        let (nfe, err): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
        Ok(Order {
            slope: loglog_slope(&nfe, &err),
            points,
        })
    }
}
