//! Song et al. 2021 Fig. 3 on toy data: NFE and sample quality of the adaptive RK45 PF-ODE
//! solver against its tolerance (papers.md §4.5).

use super::cells::Cells;
use super::{Claim, Exact, Experiment, Num, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::convergence::EndpointOracle;
use crate::sample::{integrate, SampleSpec};
use crate::stats::two_sample::EnergyReference;
use crate::Result;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Samples per tolerance.
    pub n: Scale<usize>,
    /// rtol = atol values, loosest first.
    pub tolerances: Vec<f64>,
}

/// One row of `adaptive.csv`.
#[derive(Serialize)]
struct Row {
    tolerance: Sci,
    nfe: Num,
    endpoint_error: Sci,
    energy_distance: Sci,
}

/// One cell: the floor (RK45 at 1e-10 against exact draws), or RK45 at `tolerances[i]`.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    Floor,
    Tolerance(usize),
}

/// What a cell computes: the floor's energy distance, or one tolerance's NFE, endpoint error
/// and energy distance.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    Floor(f64),
    Tolerance { nfe: f64, error: f64, energy: f64 },
}

/// The exact set-up, the prior draws, exact draws and the RK45 solution at 1e-10.
pub struct Shared {
    exact: Exact,
    x_t: Array2<f64>,
    /// Exact draws, with their energy self-term.
    reference_draws: EnergyReference,
    exact_path: Array2<f64>,
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = vec![Cell::Floor];
        cells.extend((0..self.tolerances.len()).map(Cell::Tolerance));
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let exact = exp.exact()?;
        let n = *self.n.at(o.quick);
        let x_t = exact.sde.prior_sample(n, exact.data.dim(), o.seed);
        let reference_draws = exact.mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
        let exact_path =
            EndpointOracle::new(exact.sde.as_ref(), &exact.score, x_t.clone())?.reference;
        Ok(Shared {
            exact,
            x_t,
            reference_draws: EnergyReference::new(reference_draws),
            exact_path,
        })
    }

    fn compute(
        &self,
        _: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let tol = match *cell {
            Cell::Floor => {
                return Ok(Measured::Floor(
                    sh.reference_draws.distance(sh.exact_path.view()),
                ))
            }
            Cell::Tolerance(i) => self.tolerances[i],
        };
        let n = sh.x_t.nrows();
        let run = integrate(
            sh.exact.sde.as_ref(),
            &sh.exact.score,
            sh.x_t.clone(),
            &SampleSpec::pf_rk45(tol),
            None,
        )?;
        let error = (&run.x - &sh.exact_path)
            .rows()
            .into_iter()
            .map(|r| r.dot(&r).sqrt())
            .sum::<f64>()
            / n as f64;
        let energy = sh.reference_draws.distance(run.x.view());
        o.nfe.push((format!("pf-rk45 tol={tol:e}"), run.nfe));
        Ok(Measured::Tolerance {
            nfe: run.nfe,
            error,
            energy,
        })
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let (data, _) = exp.exact_data()?;
        let (mut rows, mut nfe_pts, mut err_pts, mut en_pts) = (vec![], vec![], vec![], vec![]);
        let mut floor = f64::NAN;
        for (cell, m) in cells {
            match (cell, m) {
                (_, Measured::Floor(f)) => floor = f,
                (Cell::Tolerance(i), Measured::Tolerance { nfe, error, energy }) => {
                    let tol = self.tolerances[i];
                    rows.push(Row {
                        tolerance: Sci(tol),
                        nfe: Num(nfe),
                        endpoint_error: Sci(error),
                        energy_distance: Sci(energy),
                    });
                    nfe_pts.push((tol, nfe));
                    err_pts.push((tol, error));
                    en_pts.push((tol, energy));
                }
                (Cell::Floor, _) => {}
            }
        }
        o.rows("adaptive", &rows)?;
        let monotone = nfe_pts.windows(2).all(|w| w[1].1 >= w[0].1);
        let loose = err_pts.first().map_or(f64::NAN, |p| p.1);
        let tight = err_pts.last().map_or(f64::NAN, |p| p.1);
        o.panels(
            "adaptive",
            &[
                Chart {
                    title: format!("RK45 NFE vs tolerance, {}", data.name()),
                    x_label: "rtol = atol".into(),
                    y_label: "NFE per sample (mean)".into(),
                    log_x: true,
                    log_y: true,
                    series: vec![Series::line_points("NFE", nfe_pts)],
                    ..Default::default()
                },
                Chart {
                    title: "Sample error vs tolerance".into(),
                    x_label: "rtol = atol".into(),
                    y_label: "error".into(),
                    log_x: true,
                    log_y: true,
                    series: vec![
                        Series::line_points("endpoint error vs RK45 at 1e-10", err_pts),
                        Series::line_points(
                            format!("energy distance to exact draws (floor {floor:.1e})"),
                            en_pts,
                        ),
                    ],
                    ..Default::default()
                },
            ],
        )?;
        Ok(vec![
            Claim::new(
                "NFE grows as the tolerance tightens",
                monotone,
                f64::from(u8::from(monotone)),
                "monotone",
            ),
            Claim::new(
                "loosest tolerance has a larger endpoint error than the tightest (ratio)",
                loose > 10.0 * tight,
                loose / tight,
                "> 10",
            ),
        ])
    }
}
