//! Convergence orders against the exact oracle: the endpoint error at ε of a deterministic
//! sampler against an RK45 solve (rtol = atol = 1e-10) from the same draws at t_max, and the
//! log–log slope of that error against NFE.

use super::{integrate, integrate_with, Method, RunSpec, SampleSpec};
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

/// A convergence order fitted against the oracle ([`EndpointOracle::fitted_order`]).
#[derive(Clone, Debug)]
pub struct FittedOrder {
    /// The fitted order: minus the log–log slope of error against NFE.
    pub slope: f64,
    /// The stated asymptotic order at the fitted N ([`Method::order_at`]).
    pub order_at: u32,
    /// The order of the bulk of the steps ([`Method::order`]).
    pub bulk: u32,
    /// Every (N, NFE, error) run, and the three fitted.
    pub points: Vec<(usize, f64, f64)>,
    pub fit: Vec<(usize, f64, f64)>,
}

impl FittedOrder {
    /// Whether the fitted order lies within `tol` of the stated one — or, where a bounded
    /// number of lower-order steps (multistep warm-up, lower-order final steps) caps the
    /// asymptotic order below the bulk's, anywhere from `order_at − tol` to `bulk + tol`: the
    /// caps have small constants and show only at large N.
    pub fn holds(&self, tol: f64) -> bool {
        self.slope >= self.order_at as f64 - tol && self.slope <= self.bulk as f64 + tol
    }
}

impl<'a> EndpointOracle<'a> {
    pub fn new(sde: &'a dyn Sde, score: &'a dyn Score, x_t: Array2<f64>) -> Result<Self> {
        Self::with_tolerance(sde, score, x_t, 1e-10)
    }

    /// The oracle with RK45 at rtol = atol = `tol`.
    pub fn with_tolerance(
        sde: &'a dyn Sde,
        score: &'a dyn Score,
        x_t: Array2<f64>,
        tol: f64,
    ) -> Result<Self> {
        let reference = integrate(sde, score, x_t.clone(), &SampleSpec::pf_rk45(tol), None)?.x;
        Ok(Self {
            sde,
            score,
            x_t,
            reference,
        })
    }

    /// An oracle from a reference computed earlier (`x_t` and its solution at ε), so that it
    /// can be kept apart from the SDE and score it borrows.
    pub fn from_reference(
        sde: &'a dyn Sde,
        score: &'a dyn Score,
        x_t: Array2<f64>,
        reference: Array2<f64>,
    ) -> Self {
        Self {
            sde,
            score,
            x_t,
            reference,
        }
    }

    /// The endpoint error of states `x` at ε.
    pub fn error(&self, x: &Array2<f64>) -> f64 {
        endpoint_error(x, &self.reference)
    }

    /// The endpoint (NFE, error) of `method` at N = `steps`, final denoising off.
    pub fn point(&self, method: &dyn Method, steps: usize) -> Result<(f64, f64)> {
        let run = RunSpec {
            steps,
            denoise: Some(false),
            ..Default::default()
        };
        let out = integrate_with(self.sde, self.score, self.x_t.clone(), method, &run, None)?;
        Ok((out.nfe, self.error(&out.x)))
    }

    /// The fitted order of `method`: N doubles from `n0` to `n_max` (stopping once the error
    /// falls below `floor`); the slope is fitted on the three largest N whose error lies in
    /// [`floor`, 0.1] and whose `order_at` equals that of the largest (DPM-Solver-3's split
    /// changes it with N mod 3). None for a method without a stated order or with fewer than
    /// three usable points.
    pub fn fitted_order(
        &self,
        method: &dyn Method,
        n0: usize,
        n_max: usize,
        floor: f64,
    ) -> Result<Option<FittedOrder>> {
        let Some(bulk) = method.order() else {
            return Ok(None);
        };
        let mut points = Vec::new();
        let mut n = n0.max(1);
        while n <= n_max {
            let (nfe, err) = self.point(method, n)?;
            points.push((n, nfe, err));
            if err < floor {
                break;
            }
            n *= 2;
        }
        let usable: Vec<_> = points
            .iter()
            .copied()
            .filter(|p| p.2 >= floor && p.2 <= 0.1)
            .collect();
        let Some(last) = usable.last() else {
            return Ok(None);
        };
        let order_at = method.order_at(last.0).unwrap_or(bulk);
        let usable: Vec<_> = usable
            .into_iter()
            .filter(|p| method.order_at(p.0) == Some(order_at))
            .collect();
        if usable.len() < 3 {
            return Ok(None);
        }
        let fit = usable[usable.len() - 3..].to_vec();
        let (nfe, err): (Vec<f64>, Vec<f64>) = fit.iter().map(|p| (p.1, p.2)).unzip();
        Ok(Some(FittedOrder {
            slope: -loglog_slope(&nfe, &err),
            order_at,
            bulk: bulk.max(order_at),
            points,
            fit,
        }))
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
