//! The newer samplers' convergence orders with the exact score (Zhao et al. 2023, Thm 3.1/3.3
//! for UniPC; Zhang & Chen 2022 for DEIS and iPNDM; Xue et al. 2023 at τ = 0; Gonzalez et al.
//! 2023 at η = 0): endpoint error against NFE from N = n0 doubling, and the fitted order of
//! each against the one it states ([`crate::sample::convergence::FittedOrder::holds`]).

use super::cells::Cells;
use super::{Claim, Exact, Experiment, Fixed, Num, Outputs, Scale, Sci};
use crate::plot::{Chart, Series};
use crate::sample::convergence::{EndpointOracle, FittedOrder};
use crate::sample::Sampler;
use crate::{invalid, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Particles (prior draws shared by every sampler).
    pub particles: Scale<usize>,
    /// The deterministic samplers, names or tables.
    pub samplers: Vec<Sampler>,
    /// N doubles from `n0` to `n_max`.
    pub n0: usize,
    pub n_max: Scale<usize>,
    /// Errors below this are not fitted (the reference is RK45 at 1e-13).
    pub floor: f64,
    /// Allowed distance of the fitted order from the stated band.
    pub tolerance: f64,
    /// Power control: this sampler with this (wrong) order claimed must be refuted.
    pub wrong: (Sampler, u32),
}

/// One row of `errors.csv`.
#[derive(Serialize)]
struct Row {
    sampler: String,
    steps: usize,
    nfe: Num,
    endpoint_error: Sci,
}

/// One row of `orders.csv`.
#[derive(Serialize)]
struct OrderRow {
    sampler: String,
    order_at: u32,
    bulk: u32,
    fitted: Fixed<2>,
}

/// One cell: a sampler's fitted order, or the power control's.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Index into `samplers`.
    Sampler(usize),
    /// The sampler of `wrong`.
    Wrong,
}

/// A cell's [`FittedOrder`], stored: the fitted order, the stated ones, every (N, NFE, error)
/// run and the three fitted.
#[derive(Serialize, Deserialize)]
pub struct Fitted {
    slope: f64,
    order_at: u32,
    bulk: u32,
    points: Vec<(usize, f64, f64)>,
    fit: Vec<(usize, f64, f64)>,
}

impl From<FittedOrder> for Fitted {
    fn from(f: FittedOrder) -> Self {
        Fitted {
            slope: f.slope,
            order_at: f.order_at,
            bulk: f.bulk,
            points: f.points,
            fit: f.fit,
        }
    }
}

impl From<Fitted> for FittedOrder {
    fn from(f: Fitted) -> Self {
        FittedOrder {
            slope: f.slope,
            order_at: f.order_at,
            bulk: f.bulk,
            points: f.points,
            fit: f.fit,
        }
    }
}

/// The exact set-up, the prior draws and their RK45 solution at 1e-13.
pub struct Shared {
    exact: Exact,
    x_t: Array2<f64>,
    reference: Array2<f64>,
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Fitted;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells: Vec<Cell> = (0..self.samplers.len()).map(Cell::Sampler).collect();
        cells.push(Cell::Wrong);
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let exact = exp.exact()?;
        let x_t = exact
            .sde
            .prior_sample(*self.particles.at(o.quick), exact.data.dim(), o.seed);
        let oracle = EndpointOracle::with_tolerance(exact.sde.as_ref(), &exact.score, x_t, 1e-13)?;
        let (x_t, reference) = (oracle.x_t, oracle.reference);
        Ok(Shared {
            exact,
            x_t,
            reference,
        })
    }

    fn compute(
        &self,
        exp: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Fitted> {
        let p = self;
        let sde = sh.exact.sde.as_ref();
        let oracle = EndpointOracle::from_reference(
            sde,
            &sh.exact.score,
            sh.x_t.clone(),
            sh.reference.clone(),
        );
        let n_max = *p.n_max.at(o.quick);
        let s = match *cell {
            Cell::Sampler(i) => &p.samplers[i],
            Cell::Wrong => &p.wrong.0,
        };
        let method = s.method(Some(sde))?;
        let f = oracle
            .fitted_order(method.as_ref(), p.n0, n_max, p.floor)?
            .ok_or_else(|| {
                invalid!(
                    "{}: {} has no stated order or no three errors in [{}, 0.1] up to N = {n_max}",
                    exp.name,
                    s.brief(),
                    p.floor
                )
            })?;
        // The power control's runs were never noted.
        if let Cell::Sampler(_) = cell {
            for &(steps, nfe, _) in &f.points {
                o.nfe.push((format!("{} steps={steps}", s.brief()), nfe));
            }
        }
        Ok(f.into())
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Fitted)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, sde) = exp.data_and_sde()?;
        let (mut rows, mut orders, mut series, mut claims) = (vec![], vec![], vec![], vec![]);
        let mut power = None;
        for (cell, f) in cells {
            let f = FittedOrder::from(f);
            let s = match cell {
                Cell::Sampler(i) => &p.samplers[i],
                Cell::Wrong => {
                    power = Some(f.slope);
                    continue;
                }
            };
            for &(steps, nfe, err) in &f.points {
                rows.push(Row {
                    sampler: s.brief(),
                    steps,
                    nfe: Num(nfe),
                    endpoint_error: Sci(err),
                });
            }
            orders.push(OrderRow {
                sampler: s.brief(),
                order_at: f.order_at,
                bulk: f.bulk,
                fitted: Fixed(f.slope),
            });
            let band = if f.order_at == f.bulk {
                format!("{} ± {}", f.order_at, p.tolerance)
            } else {
                format!("[{} − {t}, {} + {t}]", f.order_at, f.bulk, t = p.tolerance)
            };
            claims.push(Claim::new(
                &format!("{} converges at its stated order (fitted)", s.brief()),
                f.holds(p.tolerance),
                f.slope,
                &band,
            ));
            series.push(Series::line_points(
                format!("{} ({:.2})", s.brief(), f.slope),
                f.points.iter().map(|q| (q.1, q.2)).collect(),
            ));
        }
        // Power: the same fit refutes a wrong claim.
        let (wrong, claimed) = &p.wrong;
        let slope = power.unwrap_or(f64::NAN);
        claims.push(Claim::new(
            &format!(
                "power: {} claimed at order {claimed} is refuted (fitted order outside ± {})",
                wrong.brief(),
                p.tolerance
            ),
            (slope - *claimed as f64).abs() > p.tolerance,
            slope,
            &format!("∉ {claimed} ± {}", p.tolerance),
        ));
        o.rows("errors", &rows)?;
        o.rows("orders", &orders)?;
        o.chart(
            "errors",
            &Chart {
                title: format!(
                    "Newer samplers: endpoint error vs NFE, exact score, {} ({} path)",
                    data.name(),
                    sde.name()
                ),
                x_label: "NFE (score evaluations per sample)".into(),
                y_label: "mean ‖x − x_RK45‖ at ε".into(),
                log_x: true,
                log_y: true,
                series,
                ..Default::default()
            },
        )?;
        Ok(claims)
    }
}
