//! EDM Fig. 2 / DPM-Solver on toy data: endpoint error at ε against NFE for every deterministic
//! sampler with the exact score, and the fitted convergence orders (papers.md §8.2, §9).

use super::cells::Cells;
use super::{loglog_slope, Claim, Exact, Experiment, Num, Outputs, Scale, Sci};

use crate::plot::{Chart, Series};
use crate::sample::convergence::EndpointOracle;
use crate::sample::{integrate, SampleSpec, Sampler};
use crate::{invalid, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Particles (prior draws shared by every sampler).
    pub particles: usize,
    /// NFE budgets; a sampler whose split loses its order at a budget (DPM-Solver-3 off
    /// NFE ≡ 2 mod 3) runs at the next budget where it keeps it.
    pub nfe: Scale<Vec<usize>>,
    /// Sampler names as on the CLI.
    pub samplers: Vec<Sampler>,
    /// Largest NFE values used to fit each slope (the asymptotic range).
    pub fit_last: usize,
    /// Allowed |slope + order| for the convergence-order claims.
    pub tolerance: f64,
}

/// One row of `errors.csv`.
#[derive(Serialize)]
struct Row {
    sampler: String,
    nfe: Num,
    endpoint_error: Sci,
}

/// The `steps` that spend exactly `nfe` evaluations (no final denoising), read off the
/// sampler's own NFE formula.
pub(super) fn steps_for(s: &Sampler, nfe: usize) -> Result<Option<usize>> {
    for k in 1..=nfe + 1 {
        if s.nfe(k, Some(false))? == Some(nfe as u64) {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

/// One cell: a sampler at one NFE budget.
#[derive(Serialize, Deserialize)]
pub struct Cell {
    /// Index into `samplers`.
    sampler: usize,
    budget: usize,
}

/// What a cell measures.
#[derive(Serialize, Deserialize)]
pub struct Point {
    order: f64,
    nfe: f64,
    error: f64,
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Point;
    type Shared = (Exact, Array2<f64>, Array2<f64>);

    fn cells(&self, _: &Experiment, o: &Outputs) -> Result<Vec<Cell>> {
        let budgets = self.nfe.at(o.quick);
        Ok(self
            .samplers
            .iter()
            .enumerate()
            .flat_map(|(sampler, _)| budgets.iter().map(move |&budget| Cell { sampler, budget }))
            .collect())
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Self::Shared> {
        let exact = exp.exact()?;
        let x_t = exact
            .sde
            .prior_sample(self.particles, exact.data.dim(), o.seed);
        let oracle = EndpointOracle::new(exact.sde.as_ref(), &exact.score, x_t)?;
        let (x_t, reference) = (oracle.x_t, oracle.reference);
        Ok((exact, x_t, reference))
    }

    fn compute(
        &self,
        exp: &Experiment,
        (exact, x_t, reference): &Self::Shared,
        c: &Cell,
        o: &mut Outputs,
    ) -> Result<Point> {
        let (s, budget, sde) = (&self.samplers[c.sampler], c.budget, exact.sde.as_ref());
        let oracle =
            EndpointOracle::from_reference(sde, &exact.score, x_t.clone(), reference.clone());
        let method = s.method(Some(sde))?;
        let order = method.order().ok_or_else(|| {
            invalid!(
                "{}: sampler {} is not a deterministic fixed-step sampler",
                exp.name,
                s.name()
            )
        })? as f64;
        // The first budget ≥ `budget` it can spend exactly at its full order (DPM-Solver-3
        // ends on a first-order step unless NFE ≡ 2 mod 3).
        let mut found = None;
        for nfe in budget..budget + 3 {
            if let Some(steps) = steps_for(s, nfe)? {
                if method.order_at(steps) == Some(order as u32) {
                    found = Some(steps);
                    break;
                }
            }
        }
        let steps = found.ok_or_else(|| {
            invalid!(
                "{}: {} cannot spend {budget} … {} NFE at order {order}",
                exp.name,
                s.name(),
                budget + 2
            )
        })?;
        let spec = SampleSpec {
            sampler: s.clone(),
            steps,
            denoise: Some(false),
            ..Default::default()
        };
        let run = integrate(sde, &exact.score, oracle.x_t.clone(), &spec, None)?;
        o.nfe.push((format!("{} steps={steps}", s.name()), run.nfe));
        Ok(Point {
            order,
            nfe: run.nfe,
            error: oracle.error(&run.x),
        })
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Point)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let (mut rows, mut series, mut claims) = (Vec::new(), Vec::new(), Vec::new());
        for (i, s) in self.samplers.iter().enumerate() {
            let mine: Vec<&Point> = cells
                .iter()
                .filter(|(c, _)| c.sampler == i)
                .map(|(_, p)| p)
                .collect();
            let order = mine[0].order;
            let pts: Vec<(f64, f64)> = mine.iter().map(|p| (p.nfe, p.error)).collect();
            rows.extend(pts.iter().map(|&(nfe, err)| Row {
                sampler: s.name(),
                nfe: Num(nfe),
                endpoint_error: Sci(err),
            }));
            let k = self.fit_last.min(pts.len()).max(2);
            let tail = &pts[pts.len() - k..];
            let slope = loglog_slope(
                &tail.iter().map(|p| p.0).collect::<Vec<_>>(),
                &tail.iter().map(|p| p.1).collect::<Vec<_>>(),
            );
            claims.push(Claim::new(
                &format!(
                    "{} converges at order {order}: slope of log error vs log NFE",
                    s.name()
                ),
                (slope + order).abs() <= self.tolerance,
                slope,
                &format!("{} ± {}", -order, self.tolerance),
            ));
            series.push(Series::line_points(
                format!("{} (slope {slope:.2})", s.name()),
                pts,
            ));
        }
        o.rows("errors", &rows)?;
        let (data, sde) = exp.data_and_sde()?;
        o.chart(
            "errors",
            &Chart {
                title: format!(
                    "Endpoint error vs NFE, exact score, {} ({} SDE, {} particles)",
                    data.name(),
                    sde.name(),
                    self.particles
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
