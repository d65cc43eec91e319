//! DDIM Table 1 on toy data (papers.md §10.1): DDIM with η ∈ {0, 0.2, 0.5, 1} and DDPM's larger
//! variance σ̂ on linear sub-sequences of S steps of the 1000-step schedule, exact ε*; energy
//! distance to exact draws, mean over seeds.

use super::cells::Cells;
use super::{Claim, Exact, Experiment, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::{config, sample, SampleSpec, Sampler, Variance};
use crate::stats::two_sample::EnergyReference;
use crate::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub n: Scale<usize>,
    pub seeds: Scale<u64>,
    /// DDPM schedule length the sub-sequences are taken from.
    pub schedule_steps: usize,
    pub etas: Vec<f64>,
    /// Sub-sequence lengths S.
    pub steps: Vec<usize>,
}

/// One row of `energy.csv`.
#[derive(Serialize)]
struct Row {
    setting: String,
    #[serde(rename = "S")]
    s: usize,
    energy_distance: Sci,
}

/// A row of the table: DDIM at one η, or ancestral steps with DDPM's σ̂.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub enum Setting {
    /// Index into `etas`.
    Eta(usize),
    /// σ̂: ancestral steps with the forward step variance.
    Ddpm,
}

/// One cell: a setting at S = `steps[step]`, over every seed.
#[derive(Serialize, Deserialize)]
pub struct Cell {
    setting: Setting,
    /// Index into `steps`.
    step: usize,
}

impl Params {
    /// The table's row label of `setting`.
    fn label(&self, setting: Setting) -> String {
        match setting {
            Setting::Eta(i) => format!("η = {}", self.etas[i]),
            Setting::Ddpm => "σ̂ (DDPM, larger variance)".into(),
        }
    }

    /// The sampler of `setting`.
    fn sampler(&self, setting: Setting) -> Sampler {
        match setting {
            Setting::Eta(i) => Sampler::Ddim(config::Ddim {
                eta: self.etas[i],
                discrete: Some(self.schedule_steps),
                ..Default::default()
            }),
            Setting::Ddpm => Sampler::Ddpm(config::Ddpm {
                variance: Some(Variance::Beta),
                discrete: Some(self.schedule_steps),
            }),
        }
    }

    /// Every setting in table order: each η, then σ̂.
    fn settings(&self) -> Vec<Setting> {
        let mut all: Vec<Setting> = (0..self.etas.len()).map(Setting::Eta).collect();
        all.push(Setting::Ddpm);
        all
    }
}

/// The exact set-up and the exact draws every energy distance is taken against.
pub struct Shared {
    exact: Exact,
    reference: EnergyReference,
}

impl Cells for Params {
    type Cell = Cell;
    /// The energy distance to the exact draws, mean over seeds.
    type Row = f64;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = Vec::new();
        for setting in self.settings() {
            cells.extend((0..self.steps.len()).map(|step| Cell { setting, step }));
        }
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let exact = exp.exact()?;
        let n = *self.n.at(o.quick);
        let reference = exact.mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
        Ok(Shared {
            exact,
            reference: EnergyReference::new(reference),
        })
    }

    fn compute(&self, _: &Experiment, sh: &Shared, cell: &Cell, o: &mut Outputs) -> Result<f64> {
        let (n, seeds) = (*self.n.at(o.quick), *self.seeds.at(o.quick));
        let (label, sampler) = (self.label(cell.setting), self.sampler(cell.setting));
        let s = self.steps[cell.step];
        let mut total = 0.0;
        for k in 0..seeds {
            let spec = SampleSpec {
                sampler: sampler.clone(),
                steps: s,
                n,
                seed: o.seed + k,
                ..Default::default()
            };
            let run = sample(sh.exact.sde.as_ref(), &sh.exact.score, &spec, None)?;
            if k == 0 {
                o.nfe.push((format!("{label} S={s}"), run.nfe));
            }
            total += sh.reference.distance(run.x.view());
        }
        Ok(total / seeds as f64)
    }

    fn render(
        &self,
        exp: &Experiment,
        cells: Vec<(Cell, f64)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let (data, _) = exp.exact_data()?;
        let (n, seeds) = (*p.n.at(o.quick), *p.seeds.at(o.quick));
        let ne = p.etas.len();
        // Rows: each η, then σ̂ (ancestral steps with the forward step variance).
        let labels: Vec<String> = p.settings().into_iter().map(|s| p.label(s)).collect();
        let mut table = vec![vec![0.0; p.steps.len()]; labels.len()];
        let mut rows = Vec::new();
        for (cell, e) in &cells {
            let r = match cell.setting {
                Setting::Eta(i) => i,
                Setting::Ddpm => ne,
            };
            let c = cell.step;
            table[r][c] = *e;
            rows.push(Row {
                setting: labels[r].clone(),
                s: p.steps[c],
                energy_distance: Sci(table[r][c]),
            });
        }
        o.rows("energy", &rows)?;
        let mut md = format!(
            "Energy distance to {n} exact draws of {}, mean over {seeds} seeds (exact ε*, {}-step DDPM schedule)\n\n| | {} |\n|---|{}\n",
            data.name(),
            p.schedule_steps,
            p.steps.iter().map(|s| format!("S = {s}")).collect::<Vec<_>>().join(" | "),
            "---|".repeat(p.steps.len())
        );
        for (label, row) in labels.iter().zip(&table) {
            md.push_str(&format!(
                "| {label} | {} |\n",
                row.iter()
                    .map(|v| format!("{v:.4}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        o.text("table.md", &md)?;
        o.chart(
            "energy",
            &Chart {
                title: format!("DDIM η × S on {} (exact ε*)", data.name()),
                x_label: "S (sampling steps = NFE)".into(),
                y_label: "energy distance to exact draws".into(),
                log_x: true,
                log_y: false,
                series: labels
                    .iter()
                    .zip(&table)
                    .map(|(l, row)| {
                        Series::line_points(
                            l.clone(),
                            p.steps
                                .iter()
                                .map(|&s| s as f64)
                                .zip(row.iter().copied())
                                .collect(),
                        )
                    })
                    .collect(),
                ..Default::default()
            },
        )?;
        let mut claims = Vec::new();
        for (c, &s) in p.steps.iter().enumerate().filter(|(_, &s)| s <= 20) {
            let col: Vec<f64> = (0..ne).map(|r| table[r][c]).collect();
            let monotone = col.windows(2).all(|w| w[1] >= w[0]);
            claims.push(
                Claim::new(
                    &format!("S = {s}: energy distance rises monotonically with η (η = 0 best)"),
                    monotone,
                    col.last().copied().unwrap_or(f64::NAN) / col[0],
                    "monotone in η",
                )
                .report_only(),
            );
        }
        for (r, label) in labels.iter().enumerate().take(ne) {
            let (first, last) = (table[r][0], table[r][p.steps.len() - 1]);
            claims.push(Claim::new(
                &format!("{label} improves from the fewest to the most steps"),
                last < first,
                last / first,
                "< 1",
            ));
        }
        Ok(claims)
    }
}
