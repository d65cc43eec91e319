//! NCSN Fig. 3 (Song & Ermon 2019; papers.md §11): exact draws, plain Langevin with the exact
//! data score, and annealed Langevin, started uniform on a box — the positive control for the
//! sampler tests (plain Langevin gets the mode weights wrong).

use super::cells::Cells;
use super::{Claim, Experiment, Outputs};
use crate::data::{GaussianMixture, REFERENCE_DOMAIN};
use crate::plot::{Chart, Series};
use crate::sample::{config, integrate, SampleSpec, Sampler};
use crate::score::MixtureScore;
use crate::sde::{Sde, VeSde};
use crate::stats::chi2::component_chi2;
use crate::Result;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Samples of each method.
    pub n: usize,
    /// Initial points uniform on [−half_width, half_width]^d.
    pub half_width: f64,
    /// Plain Langevin iterations at the data score.
    pub plain_steps: usize,
    /// Langevin step ε.
    pub step_size: f64,
    /// Annealed: L geometric noise levels from sigma_max to sigma_min, steps_per_level each.
    pub levels: usize,
    pub steps_per_level: usize,
    pub sigma_max: f64,
    pub sigma_min: f64,
    /// Significance level of the χ² test of mode proportions.
    pub alpha: f64,
}

/// One cell: a panel of the figure.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Exact draws of the mixture (the χ² reference).
    Exact,
    /// Plain Langevin at the data score.
    Plain,
    /// Annealed Langevin.
    Annealed,
}

/// What a cell draws: its samples, and for the Langevin cells the χ² p-value of their mode
/// proportions against the exact draws.
#[derive(Serialize, Deserialize)]
pub struct Drawn {
    x: Array2<f64>,
    p: Option<f64>,
}

/// The mixture, the uniform initial points and the exact draws.
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    init: Array2<f64>,
    reference: Array2<f64>,
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Drawn;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        Ok(vec![Cell::Exact, Cell::Plain, Cell::Annealed])
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let p = self;
        let (data, mixture) = exp.exact_data()?;
        let d = data.dim();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(o.seed);
        let init =
            Array2::from_shape_fn((p.n, d), |_| rng.random_range(-p.half_width..p.half_width));
        let reference = mixture.sample(p.n, o.seed, REFERENCE_DOMAIN).0;
        Ok(Shared {
            mixture,
            init,
            reference,
        })
    }

    fn compute(&self, _: &Experiment, sh: &Shared, cell: &Cell, o: &mut Outputs) -> Result<Drawn> {
        let p = self;
        let langevin =
            |sde: Arc<dyn Sde>, sampler: Sampler, steps, eps| -> Result<(Array2<f64>, f64)> {
                let score = MixtureScore::new(sh.mixture.clone(), sde.clone());
                let spec = SampleSpec {
                    sampler,
                    steps,
                    eps: Some(eps),
                    seed: o.seed,
                    ..Default::default()
                };
                let r = integrate(sde.as_ref(), &score, sh.init.clone(), &spec, None)?;
                Ok((r.x, r.nfe))
            };
        let (x, name, nfe) = match cell {
            Cell::Exact => {
                return Ok(Drawn {
                    x: sh.reference.clone(),
                    p: None,
                })
            }
            // Plain: σ(ε) ≈ 1e-3 · (σ_max/1e-3)^1e-9 ≈ 1e-3, i.e. the data score.
            Cell::Plain => {
                let (x, nfe) = langevin(
                    Arc::new(VeSde::new(1e-3, p.sigma_max)?),
                    Sampler::Langevin(config::Langevin {
                        step_size: p.step_size,
                    }),
                    p.plain_steps,
                    1e-9,
                )?;
                (x, "langevin", nfe)
            }
            // Annealed: VE levels uniform in t = geometric σ from σ_max to σ_min.
            Cell::Annealed => {
                let (x, nfe) = langevin(
                    Arc::new(VeSde::new(p.sigma_min, p.sigma_max)?),
                    Sampler::AnnealedLangevin(config::AnnealedLangevin {
                        step_size: p.step_size,
                        levels: p.levels,
                        ..Default::default()
                    }),
                    p.steps_per_level,
                    1e-12,
                )?;
                (x, "annealed-langevin", nfe)
            }
        };
        o.nfe.push((name.into(), nfe));
        let pv = component_chi2(&sh.mixture, x.view(), sh.reference.view()).p_value;
        Ok(Drawn { x, p: Some(pv) })
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, Drawn)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        let d = data.dim();
        let (mut p_plain, mut p_ann) = (f64::NAN, f64::NAN);
        let mut rows = Vec::new();
        let mut charts = Vec::new();
        let upper = |x: &Array2<f64>| {
            x.rows().into_iter().filter(|r| r.sum() > 0.0).count() as f64 / x.nrows() as f64
        };
        for (cell, drawn) in &cells {
            let name = match cell {
                Cell::Exact => "exact draws",
                Cell::Plain => "Langevin, exact data score",
                Cell::Annealed => "annealed Langevin (L = 10)",
            };
            let (x, pv) = (&drawn.x, drawn.p);
            match (cell, pv) {
                (Cell::Plain, Some(v)) => p_plain = v,
                (Cell::Annealed, Some(v)) => p_ann = v,
                _ => {}
            }
            for r in x.rows() {
                let coords: Vec<String> = r.iter().map(|v| format!("{v:e}")).collect();
                rows.push(format!("{name},{}", coords.join(",")));
            }
            let test = pv.map_or(String::new(), |p| format!(", χ² p = {p:.2e}"));
            charts.push(Chart {
                title: name.to_string(),
                x_label: "x₀".into(),
                y_label: "x₁".into(),
                log_x: false,
                log_y: false,
                series: vec![Series::scatter(
                    format!("upper mode {:.3}{test}", upper(x)),
                    x.rows()
                        .into_iter()
                        .map(|r| (r[0], if d > 1 { r[1] } else { 0.0 }))
                        .collect(),
                )],
                ..Default::default()
            });
        }
        let header = format!(
            "method,{}",
            (0..d)
                .map(|j| format!("x{j}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        o.csv("samples", &header, &rows)?;
        o.panels("samples", &charts)?;
        Ok(vec![
            Claim::new(
                "plain Langevin gets the mode weights wrong: χ² of proportions rejects",
                p_plain < p.alpha,
                p_plain,
                &format!("p < {}", p.alpha),
            ),
            Claim::new(
                "annealed Langevin recovers the weights: χ² does not reject",
                p_ann >= p.alpha,
                p_ann,
                &format!("p ≥ {}", p.alpha),
            ),
        ])
    }
}
