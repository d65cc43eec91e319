//! NCSN Fig. 2 on its own data (Song & Ermon 2019, §3.2; papers.md §11): the data score and a
//! learned score as quiver plots over the density, and the learned score's error as a heat map —
//! accurate near the modes, wrong where there was no data to learn from.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{Claim, Experiment, Outputs};
use crate::plot::{Heatmap, Overlay, Panel};
use crate::score::{par_score, MixtureScore};
use crate::Result;
use ndarray::{Array1, Array2};
use plotters::style::RGBColor;
use scoresde_solvers::Time;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The grid spans [−extent, extent]² with `cells` points per side.
    pub extent: f64,
    pub cells: usize,
    /// Every `arrow_every`-th grid point carries an arrow.
    pub arrow_every: usize,
    /// Diffusion time at which both scores are compared (the data score at t → 0).
    pub t: f64,
    /// High-density region: p ≥ this × max p; low-density region: p ≤ `low_density` × max p.
    pub high_density: f64,
    pub low_density: f64,
    /// Asserted: mean error (low region) / mean error (high region) above this.
    pub min_ratio: f64,
    /// The power control's uniform error: the exact score plus this constant vector.
    pub offset: [f64; 2],
    /// The learned score.
    pub model: ModelSpec,
}

/// One row of `field.csv`.
#[derive(Serialize)]
struct Row {
    x: f64,
    y: f64,
    log_density: f64,
    data_score_x: f64,
    data_score_y: f64,
    learned_score_x: f64,
    learned_score_y: f64,
    error: f64,
}

/// Mean of `err` over the points of each region; their ratio (low / high).
fn region_ratio(err: &Array1<f64>, high: &[bool], low: &[bool]) -> (f64, f64, f64) {
    let mean = |mask: &[bool]| {
        let (s, c) = err
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m)
            .fold((0.0, 0usize), |(s, c), (e, _)| (s + e, c + 1));
        s / c.max(1) as f64
    };
    let (h, l) = (mean(high), mean(low));
    (h, l, l / h)
}

/// Points per side of the grid (at least 2).
fn side(p: &Params) -> usize {
    p.cells.max(2)
}

/// The grid's points, row r = (x index r / g, y index r % g).
fn grid_points(p: &Params) -> Array2<f64> {
    let g = side(p);
    let coord = |i: usize| -p.extent + 2.0 * p.extent * i as f64 / (g - 1) as f64;
    Array2::from_shape_fn((g * g, 2), |(r, j)| {
        coord(if j == 0 { r / g } else { r % g })
    })
}

/// What the one cell computes, over the grid's points: the data score, the learned score and
/// the log density at `t`.
#[derive(Serialize, Deserialize)]
pub struct Field {
    s_data: Array2<f64>,
    s_net: Array2<f64>,
    logp: Array1<f64>,
}

impl Cells for Params {
    /// One cell: training (or loading) the network dominates, and the rest is one pass over
    /// the grid.
    type Cell = ();
    type Row = Field;
    type Shared = ();

    fn cells(&self, exp: &Experiment, _: &Outputs) -> Result<Vec<()>> {
        let (data, _) = exp.exact_data()?;
        if data.dim() != 2 {
            return Err(crate::invalid!(
                "{}: needs 2D data, got d = {}",
                exp.name,
                data.dim()
            ));
        }
        Ok(vec![()])
    }

    fn shared(&self, _: &Experiment, _: &Outputs) -> Result<()> {
        Ok(())
    }

    fn compute(&self, exp: &Experiment, _: &(), _: &(), o: &mut Outputs) -> Result<Field> {
        let p = self;
        let (_, mixture) = exp.exact_data()?;
        let net = p.model.trained(exp, o)?;
        let exact = MixtureScore::new(mixture, net.sde().clone());
        let pts = grid_points(p);
        let t = Time::Shared(p.t);
        let s_data = par_score(&exact, t, pts.view());
        let s_net = par_score(&net, t, pts.view());
        let logp = exact.log_prob(p.t, pts.view());
        Ok(Field {
            s_data,
            s_net,
            logp,
        })
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<((), Field)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let Field {
            s_data,
            s_net,
            logp,
        } = cells
            .into_iter()
            .next()
            .map(|c| c.1)
            .ok_or_else(|| crate::invalid!("{}: no field computed", exp.name))?;
        let g = side(p);
        let pts = grid_points(p);
        let top = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let high: Vec<bool> = logp
            .iter()
            .map(|&l| l >= top + p.high_density.ln())
            .collect();
        let low: Vec<bool> = logp
            .iter()
            .map(|&l| l <= top + p.low_density.ln())
            .collect();
        let norm = |a: &Array2<f64>| -> Array1<f64> {
            a.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect()
        };
        let err = norm(&(&s_net - &s_data));
        let (e_high, e_low, ratio) = region_ratio(&err, &high, &low);
        let mut claims = vec![Claim::new(
            &format!(
                "learned score error is larger in the low-density region (p ≤ {:e} max) than near the modes (p ≥ {:e} max): mean ‖s_θ − ∇log p‖ {e_low:.3} vs {e_high:.3}, ratio",
                p.low_density, p.high_density
            ),
            ratio > p.min_ratio,
            ratio,
            &format!("> {}", p.min_ratio),
        )
        .learned(o.quick)];
        // Power: a score wrong by the same constant vector everywhere has no such contrast.
        let offset = Array1::from(p.offset.to_vec());
        let uniform = norm(&(&s_data + &offset - &s_data));
        let (_, _, flat) = region_ratio(&uniform, &high, &low);
        claims.push(Claim::new(
            &format!(
                "power: a score off by the constant vector {:?} everywhere fails the ratio claim",
                p.offset
            ),
            flat <= p.min_ratio,
            flat,
            &format!("≤ {}", p.min_ratio),
        ));
        let rows: Vec<Row> = (0..g * g)
            .map(|r| Row {
                x: pts[[r, 0]],
                y: pts[[r, 1]],
                log_density: logp[r],
                data_score_x: s_data[[r, 0]],
                data_score_y: s_data[[r, 1]],
                learned_score_x: s_net[[r, 0]],
                learned_score_y: s_net[[r, 1]],
                error: err[r],
            })
            .collect();
        o.rows("field", &rows)?;

        // Heat maps over the grid (cell i along x, j along y), with direction arrows.
        let grid = |v: &Array1<f64>| Array2::from_shape_fn((g, g), |(i, j)| v[i * g + j]);
        let density = grid(&logp.mapv(|l| (l - top).max(-30.0)));
        let step = 2.0 * p.extent / (g - 1) as f64 * p.arrow_every as f64 * 0.8;
        let arrows = |s: &Array2<f64>| -> Vec<Vec<(f64, f64)>> {
            let every = p.arrow_every.max(1);
            (0..g * g)
                .filter(|r| (r / g).is_multiple_of(every) && (r % g).is_multiple_of(every))
                .map(|r| {
                    let (x, y) = (pts[[r, 0]], pts[[r, 1]]);
                    let n = (s[[r, 0]].powi(2) + s[[r, 1]].powi(2)).sqrt().max(1e-12);
                    vec![(x, y), (x + step * s[[r, 0]] / n, y + step * s[[r, 1]] / n)]
                })
                .collect()
        };
        let heat =
            |title: String, label: &str, values: Array2<f64>, overlay: Option<Overlay>| Heatmap {
                title,
                x_label: "x₁".into(),
                y_label: "x₂".into(),
                value_label: label.into(),
                x_range: (-p.extent, p.extent),
                y_range: (-p.extent, p.extent),
                values,
                overlays: overlay.into_iter().collect(),
            };
        let quiver = |label: &str, s: &Array2<f64>| Overlay {
            label: label.into(),
            paths: arrows(s),
            color: RGBColor(255, 255, 255),
            width: 1,
        };
        let panels = [
            Panel::Heat(heat(
                format!("data score ∇log p_t, t = {} (directions)", p.t),
                "log p − log max p",
                density.clone(),
                Some(quiver("data score", &s_data)),
            )),
            Panel::Heat(heat(
                format!("learned score s_θ ({})", p.model.label),
                "log p − log max p",
                density,
                Some(quiver("learned score", &s_net)),
            )),
            Panel::Heat(heat(
                format!("error ‖s_θ − ∇log p_t‖ (low/high-density ratio {ratio:.1})"),
                "log₁₀ error",
                grid(&err.mapv(|e| e.max(1e-6).log10())),
                None,
            )),
        ];
        o.figure("score-field", &panels, 3)?;
        Ok(claims)
    }
}
