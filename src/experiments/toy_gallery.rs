//! Every toy dataset beside samples of a score network trained on it (papers.md §2): one
//! trained model per dataset, sampled by one sampler, with two-sample statistics against
//! held-out data and a wrong reverse process as the power control.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{Claim, Experiment, Fixed, Outputs, Scale, Sci, SciP};
use crate::data::DATA_DOMAIN;
use crate::domain::Domain;
use crate::plot::{Chart, Series};
use crate::reverse::{ReverseSde, WrongReverse};
use crate::sample::{sample, SampleSpec, Sampler};
use crate::sde::Marginal;
use crate::stats::chi2::component_chi2;
use crate::stats::spread::component_spread;
use crate::stats::two_sample::{energy_test, knn_test, mmd_test, EnergyReference};
use crate::stats::KNN_K;
use crate::train::TrainData;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{solve, KeyedNormal, Method, Problem, SolveOptions, Steps, TimeGrid};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// One model per dataset (`data` set on each); the gallery shows them in this order.
    pub models: Vec<ModelSpec>,
    /// The sampler of the learned panels and its steps.
    pub sampler: Sampler,
    pub steps: usize,
    /// Samples per dataset for the statistics (and under `--quick`); at most `shown` are drawn.
    pub n: Scale<usize>,
    pub shown: usize,
    /// Reported against `max_ratio`: energy distance to held-out data over the data-vs-data
    /// floor, each the mean over `replicates` independent blocks of `n` points (at n = 2000 a
    /// single block's ratio exceeds 1.5 for exact draws of 25gaussians in about 30 % of seeds).
    pub max_ratio: f64,
    pub replicates: usize,
    /// Asserted: Schilling's kNN same-sample fraction at most this (data vs data ≈ 0.50).
    pub max_knn_fraction: f64,
    /// Asserted for exact mixtures: median within-component spread ratio in this range.
    pub spread: [f64; 2],
    /// Level of the asserted component χ² test, of the (reported) kNN test, and permutations of
    /// the MMD and kNN tests.
    pub alpha: f64,
    pub permutations: usize,
}

/// Histogram bins of 1D panels.
const BINS: usize = 60;

/// One dataset's row of the gallery.
#[derive(Serialize, Deserialize)]
pub struct Entry {
    name: String,
    data: Array2<f64>,
    model: Array2<f64>,
    /// Exact density on a grid (1D mixtures).
    density: Option<Vec<(f64, f64)>>,
}

/// One row of `gallery.csv` (χ² and spread only for exact mixtures).
#[derive(Serialize)]
struct GalleryRow {
    dataset: String,
    dim: usize,
    train_steps: usize,
    n: usize,
    energy_floor: Sci,
    energy_ratio: Fixed<3>,
    wrong_reverse_energy_ratio: Fixed<3>,
    mmd_p: Fixed<4>,
    knn_fraction: Fixed<4>,
    knn_p: Fixed<4>,
    knn_fraction_data_vs_data: Fixed<4>,
    component_chi2_p: Option<SciP<3>>,
    spread: Option<Fixed<3>>,
}

/// What one dataset's cell computes: its statistics, its claims and its panels.
#[derive(Serialize, Deserialize)]
pub struct Computed {
    stats: Stats,
    claims: Vec<Claim>,
    entry: Entry,
}

/// The numbers of one row of `gallery.csv`.
#[derive(Serialize, Deserialize)]
struct Stats {
    dataset: String,
    dim: usize,
    train_steps: usize,
    floor: f64,
    ratio: f64,
    wrong_ratio: f64,
    mmd_p: f64,
    knn_fraction: f64,
    knn_p: f64,
    knn_null: f64,
    chi2_p: Option<f64>,
    spread: Option<f64>,
}

impl Cells for Params {
    /// Index into `models`: one dataset.
    type Cell = usize;
    type Row = Computed;
    type Shared = ();

    fn cells(&self, exp: &Experiment, o: &Outputs) -> Result<Vec<usize>> {
        if self.models.is_empty() {
            return Err(invalid!("{}: [toy_gallery] lists no models", exp.name));
        }
        if *self.n.at(o.quick) < 2 || self.replicates == 0 {
            return Err(invalid!(
                "{}: n must be at least 2 and replicates at least 1",
                exp.name
            ));
        }
        Ok((0..self.models.len()).collect())
    }

    fn shared(&self, _: &Experiment, _: &Outputs) -> Result<()> {
        Ok(())
    }

    fn compute(&self, exp: &Experiment, _: &(), &i: &usize, o: &mut Outputs) -> Result<Computed> {
        let (p, spec) = (self, &self.models[i]);
        let n = *p.n.at(o.quick);
        let reps = p.replicates;
        let mut claims = Vec::new();
        let cfg = spec.config(exp, o.quick);
        let data = TrainData::from_spec(&cfg.data)?;
        let name = data.name().to_string();
        let net = spec.trained(exp, o)?;
        let sde = net.sde().clone();
        let run = sample(
            sde.as_ref(),
            &net,
            &SampleSpec {
                sampler: p.sampler.clone(),
                steps: p.steps,
                n: n * reps,
                seed: o.seed,
                ..Default::default()
            },
            None,
        )?;
        let all = run.x;
        let block = |r: usize| all.slice(ndarray::s![r * n..(r + 1) * n, ..]);
        let model = block(0).to_owned();
        o.nfe
            .push((format!("{name}: {}", p.sampler.name()), run.nfe));
        // Power control: the wrong reverse process from the same prior draws, same steps.
        let grid = TimeGrid::uniform(sde.t_max(), sde.default_eps(), p.steps)?;
        let wrong = solve(
            Problem::Sde(
                &WrongReverse(ReverseSde::new(sde.as_ref(), &net)),
                &KeyedNormal::new(o.seed, Domain::GalleryControl.key()),
            ),
            Method::EulerMaruyama,
            &Steps::Grid(grid),
            sde.prior_sample(n, data.dim(), o.seed),
            &SolveOptions::default(),
        )?
        .x;
        let shown = data.draw(n, o.seed, DATA_DOMAIN);
        let held = data.draw(n, o.seed + 7, DATA_DOMAIN);
        // Energy over replicate blocks: block r of the model and of fresh data, each against
        // its own held-out block.
        // Each held-out block's energy self-term once (`held`'s serves the wrong model too).
        let held_ref = EnergyReference::new(held.clone());
        let (mut e_model, mut e_floor) = (0.0, 0.0);
        for r in 0..reps {
            let fresh;
            let (d_r, h_r) = if r == 0 {
                (shown.clone(), &held_ref)
            } else {
                let s = o.seed + 1000 * r as u64;
                fresh = EnergyReference::new(data.draw(n, s + 7, DATA_DOMAIN));
                (data.draw(n, s, DATA_DOMAIN), &fresh)
            };
            e_model += h_r.distance(block(r));
            e_floor += h_r.distance(d_r.view());
        }
        let floor = (e_floor / reps as f64).max(1e-12);
        let ratio = e_model / reps as f64 / floor;
        let wrong_ratio = held_ref.distance(wrong.view()) / floor;
        let energy_p = energy_test(model.view(), held.view(), p.permutations, o.seed).p_value;
        let mmd_p = mmd_test(model.view(), held.view(), p.permutations, o.seed).p_value;
        // Local structure: Schilling's kNN same-sample fraction (chance level: data vs data).
        let knn = knn_test(model.view(), held.view(), KNN_K, p.permutations, o.seed);
        let knn_null = knn_test(shown.view(), held.view(), KNN_K, p.permutations, o.seed);
        let mixture = data.dataset().and_then(|d| d.mixture()).cloned();
        let wrong_knn = knn_test(wrong.view(), held.view(), KNN_K, p.permutations, o.seed);
        let chi2_p = mixture
            .as_ref()
            .filter(|m| m.n_components() > 1)
            .map(|m| component_chi2(m, model.view(), held.view()).p_value);
        let spread = mixture
            .as_ref()
            .map(|m| component_spread(m, all.view()).median);
        let at = format!("n = {n}, seed {}", o.seed);
        claims.push(
            Claim::new(
                &format!("{name}: learned samples ({}, {} steps) within {}× the data-vs-data energy floor (means over {reps} blocks; {at})", p.sampler.name(), p.steps, p.max_ratio),
                ratio <= p.max_ratio,
                ratio,
                &format!("≤ {}", p.max_ratio),
            )
            .report_only(),
        );
        claims.push(
            Claim::new(
                &format!("{name}: energy test (B = {}) of learned samples vs held-out data does not reject at α = {} ({at})", p.permutations, p.alpha),
                energy_p >= p.alpha,
                energy_p,
                &format!("p ≥ {}", p.alpha),
            )
            .report_only(),
        );
        claims.push(Claim::new(
            &format!("{name}: kNN same-sample fraction ({KNN_K} neighbours) of learned samples vs held-out data at most {} (data vs data {:.3}; {at})", p.max_knn_fraction, knn_null.statistic),
            knn.statistic <= p.max_knn_fraction,
            knn.statistic,
            &format!("≤ {}", p.max_knn_fraction),
        ));
        claims.push(Claim::new(
            &format!("{name}: power — the wrong reverse process (PF drift + SDE noise) exceeds the energy bound and the kNN bound ({at}; kNN fraction {:.3})", wrong_knn.statistic),
            wrong_ratio > p.max_ratio && wrong_knn.statistic > p.max_knn_fraction,
            wrong_ratio,
            &format!("> {}", p.max_ratio),
        ));
        if let (Some(m), Some(s)) = (&mixture, spread) {
            let [lo, hi] = p.spread;
            claims.push(Claim::new(
                &format!("{name}: within-component spread (fitted / true std, median over components) in [{lo}, {hi}] ({at})"),
                (lo..=hi).contains(&s),
                s,
                &format!("in [{lo}, {hi}]"),
            ));
            // Power: exact draws of the same mixture with every component 1.5× wider.
            let blurred = m.widened(1.5)?.sample(n, o.seed, DATA_DOMAIN).0;
            let sb = component_spread(m, blurred.view()).median;
            claims.push(Claim::new(
                &format!("{name}: power — exact draws with components 1.5× wider leave the spread range ({at})"),
                !(lo..=hi).contains(&sb),
                sb,
                &format!("outside [{lo}, {hi}]"),
            ));
        }
        if let Some(pv) = chi2_p {
            claims.push(Claim::new(
                &format!("{name}: χ² of component proportions, learned vs held-out data, does not reject at α = {} ({at})", p.alpha),
                pv >= p.alpha,
                pv,
                &format!("p ≥ {}", p.alpha),
            ));
        }
        claims.push(
            Claim::new(
                &format!("{name}: kNN test ({KNN_K} neighbours, B = {}) of learned samples vs held-out data does not reject at α = {} ({at}; same-sample fraction {:.3}, data vs data {:.3})", p.permutations, p.alpha, knn.statistic, knn_null.statistic),
                knn.p_value >= p.alpha,
                knn.p_value,
                &format!("p ≥ {}", p.alpha),
            )
            .report_only(),
        );
        let stats = Stats {
            dataset: name.to_string(),
            dim: data.dim(),
            train_steps: cfg.train.steps,
            floor,
            ratio,
            wrong_ratio,
            mmd_p,
            knn_fraction: knn.statistic,
            knn_p: knn.p_value,
            knn_null: knn_null.statistic,
            chi2_p,
            spread,
        };
        let density = mixture.filter(|m| m.dim() == 1).map(|m| {
            let p0 = m.at(Marginal {
                mean: 1.0,
                std: 0.0,
            });
            let mut scratch = crate::score::Scratch::default();
            let (lo, hi) = bounds(shown.column(0).iter().copied());
            (0..=200)
                .map(|k| {
                    let x = lo + (hi - lo) * k as f64 / 200.0;
                    let lp = p0.log_prob(ndarray::arr1(&[x]).view(), &mut scratch);
                    (x, lp.exp())
                })
                .collect()
        });
        Ok(Computed {
            stats,
            claims,
            entry: Entry {
                name,
                data: shown,
                model,
                density,
            },
        })
    }

    fn render(
        &self,
        _: &Experiment,
        cells: Vec<(usize, Computed)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let (p, n) = (self, *self.n.at(o.quick));
        let (mut rows, mut claims, mut entries) = (vec![], vec![], vec![]);
        for (_, c) in cells {
            let s = c.stats;
            rows.push(GalleryRow {
                dataset: s.dataset,
                dim: s.dim,
                train_steps: s.train_steps,
                n,
                energy_floor: Sci(s.floor),
                energy_ratio: Fixed(s.ratio),
                wrong_reverse_energy_ratio: Fixed(s.wrong_ratio),
                mmd_p: Fixed(s.mmd_p),
                knn_fraction: Fixed(s.knn_fraction),
                knn_p: Fixed(s.knn_p),
                knn_fraction_data_vs_data: Fixed(s.knn_null),
                component_chi2_p: s.chi2_p.map(SciP),
                spread: s.spread.map(Fixed),
            });
            claims.extend(c.claims);
            entries.push(c.entry);
        }
        o.rows("gallery", &rows)?;
        let mut table = String::from(
            "| dataset | train steps | energy / floor | wrong reverse / floor | MMD p | kNN fraction (data: ≈ 0.50) | kNN p | component χ² p | spread |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let cell = |v: Option<String>| v.unwrap_or_default();
        for r in &rows {
            table += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.dataset,
                r.train_steps,
                r.energy_ratio,
                r.wrong_reverse_energy_ratio,
                r.mmd_p,
                r.knn_fraction,
                r.knn_p,
                cell(r.component_chi2_p.map(|v| v.to_string())),
                cell(r.spread.map(|v| v.to_string())),
            );
        }
        o.text("gallery.md", &table)?;
        let charts: Vec<Chart> = entries
            .iter()
            .flat_map(|e| {
                panels(
                    e,
                    p.shown,
                    &format!("{}, {} steps", p.sampler.name(), p.steps),
                )
            })
            .collect();
        o.grid("toy-gallery", &charts, 4)?;
        Ok(claims.into_iter().map(|c| c.learned(o.quick)).collect())
    }
}

/// Range of `v` padded by 5% on each side.
fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let pad = 0.05 * (hi - lo).max(1e-9);
    (lo - pad, hi + pad)
}

/// The data panel and the learned panel of one dataset, on the data's axes (learned points
/// outside them are counted in the title, not drawn).
fn panels(e: &Entry, shown: usize, how: &str) -> [Chart; 2] {
    let k = shown.min(e.data.nrows());
    if e.data.ncols() == 1 {
        let (lo, hi) = bounds(e.data.column(0).iter().copied());
        let hist = |x: &Array2<f64>, label: &str| -> (Series, usize) {
            let w = (hi - lo) / BINS as f64;
            let mut counts = [0usize; BINS];
            let mut outside = 0;
            for &v in x.column(0) {
                let b = ((v - lo) / w).floor();
                if (0.0..BINS as f64).contains(&b) {
                    counts[b as usize] += 1;
                } else {
                    outside += 1;
                }
            }
            let scale = 1.0 / (x.nrows() as f64 * w);
            let points = (0..BINS)
                .flat_map(|b| {
                    let h = counts[b] as f64 * scale;
                    [(lo + b as f64 * w, h), (lo + (b + 1) as f64 * w, h)]
                })
                .collect();
            let series = Series::line(label, points);
            (series, outside)
        };
        let exact = e
            .density
            .clone()
            .map(|points| Series::line("exact density", points));
        let chart = |title: String, s: Series| Chart {
            title,
            x_label: "x".into(),
            y_label: "density".into(),
            series: [Some(s), exact.clone()].into_iter().flatten().collect(),
            ..Default::default()
        };
        let (d, _) = hist(&e.data, "data histogram");
        let (m, out) = hist(&e.model, "learned histogram");
        let top = [&d, &m]
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(exact.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
            .fold(0.0, f64::max);
        let mut pair = [
            chart(format!("{}: data (n = {})", e.name, e.data.nrows()), d),
            chart(
                format!("{}: learned ({how}){}", e.name, outside_note(out)),
                m,
            ),
        ];
        for c in &mut pair {
            c.limits = Some([(lo, hi), (0.0, 1.05 * top)]);
        }
        return pair;
    }
    let lim = [
        bounds(e.data.column(0).iter().copied()),
        bounds(e.data.column(1).iter().copied()),
    ];
    let inside = |r: &ndarray::ArrayView1<f64>| {
        (lim[0].0..=lim[0].1).contains(&r[0]) && (lim[1].0..=lim[1].1).contains(&r[1])
    };
    let scatter = |x: &Array2<f64>, title: String| {
        let rows: Vec<_> = x.rows().into_iter().take(k).collect();
        let out = rows.iter().filter(|r| !inside(r)).count();
        Chart {
            title: format!("{title}{}", outside_note(out)),
            x_label: "x₀".into(),
            y_label: "x₁".into(),
            series: vec![Series::scatter(
                "",
                rows.iter()
                    .filter(|r| inside(r))
                    .map(|r| (r[0], r[1]))
                    .collect(),
            )],
            limits: Some(lim),
            ..Default::default()
        }
    };
    [
        scatter(&e.data, format!("{}: data ({k} shown)", e.name)),
        scatter(&e.model, format!("{}: learned ({how})", e.name)),
    ]
}

fn outside_note(out: usize) -> String {
    if out == 0 {
        String::new()
    } else {
        format!(", {out} off-axes")
    }
}

#[cfg(test)]
mod tests {
    use crate::data::BUILTINS;

    /// The shipped gallery shows every builtin dataset, each once.
    #[test]
    fn builtin_gallery_covers_every_dataset() {
        let exps = super::super::builtin().unwrap();
        let gallery = exps.iter().find(|e| e.name == "toy-gallery").unwrap();
        let super::super::Params::ToyGallery(p) = &gallery.params else {
            panic!("toy-gallery has the toy-gallery kind");
        };
        let mut shown: Vec<String> = p
            .models
            .iter()
            .map(|m| m.data.clone().unwrap_or_else(|| gallery.data.clone()))
            .collect();
        shown.sort();
        let mut all: Vec<String> = BUILTINS.iter().map(|b| b.0.to_string()).collect();
        all.sort();
        assert_eq!(shown, all);
    }
}
