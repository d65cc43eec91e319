//! DDIM Table 1 on toy data (papers.md §10.1): DDIM with η ∈ {0, 0.2, 0.5, 1} and DDPM's larger
//! variance σ̂ on linear sub-sequences of S steps of the 1000-step schedule, exact ε*; energy
//! distance to exact draws, mean over seeds.

use super::{Claim, Exact, Experiment, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::{config, sample, SampleSpec, Sampler, Variance};
use crate::stats::two_sample::energy_distance;
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

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        data,
        mixture,
        sde,
        score,
    } = exp.exact()?;
    let (n, seeds) = (*p.n.at(o.quick), *p.seeds.at(o.quick));
    let reference = mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
    // Rows: each η, then σ̂ (ancestral steps with the forward step variance).
    let mut labels: Vec<String> = p.etas.iter().map(|e| format!("η = {e}")).collect();
    labels.push("σ̂ (DDPM, larger variance)".into());
    let mut table = vec![vec![0.0; p.steps.len()]; labels.len()];
    let mut rows = Vec::new();
    for (r, label) in labels.iter().enumerate() {
        for (c, &s) in p.steps.iter().enumerate() {
            let sampler = match p.etas.get(r) {
                Some(&eta) => Sampler::Ddim(config::Ddim {
                    eta,
                    discrete: Some(p.schedule_steps),
                    ..Default::default()
                }),
                None => Sampler::Ddpm(config::Ddpm {
                    variance: Some(Variance::Beta),
                    discrete: Some(p.schedule_steps),
                }),
            };
            let mut total = 0.0;
            for k in 0..seeds {
                let spec = SampleSpec {
                    sampler: sampler.clone(),
                    steps: s,
                    n,
                    seed: o.seed + k,
                    ..Default::default()
                };
                let run = sample(sde.as_ref(), &score, &spec, None)?;
                if k == 0 {
                    o.nfe.push((format!("{label} S={s}"), run.nfe));
                }
                total += energy_distance(run.x.view(), reference.view());
            }
            table[r][c] = total / seeds as f64;
            rows.push(Row {
                setting: label.clone(),
                s,
                energy_distance: Sci(table[r][c]),
            });
        }
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
    let ne = p.etas.len();
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

super::cells::legacy_cells!();
