//! EDM Fig. 4 on toy data (Karras et al. 2022, §4, Alg. 2; papers.md §8.3): the stochastic
//! sampler's churn S_churn against the step count N, with the exact denoiser (churn must cost
//! nothing: "analytical denoisers … have not shown such degradation") and a learned one
//! (excess churn degrades; S_noise > 1 partly compensates — reported).

use super::cells::Cells;
use super::model::ModelSpec;
use super::{Claim, Exact, Experiment, Fixed, Num, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::config::EdmSde;
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::{MixtureScore, Score};
use crate::sde::Sde;
use crate::stats::two_sample::{energy_test, knn_test, EnergyReference};
use crate::Result;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Samples per configuration (and exact draws to compare with).
    pub n: Scale<usize>,
    /// Grid points N of Algorithm 2 (NFE 2(N − 1)). Its γ = min(S_churn/N, √2 − 1) saturates
    /// from S_churn ≈ 0.41 N: heavier churn only differs at large N.
    pub steps: Vec<usize>,
    pub churn: Vec<f64>,
    /// EDM's S_tmin, S_tmax (in σ̃ = s/m).
    pub s_tmin: f64,
    pub s_tmax: f64,
    /// S_noise of the learned model's extra arm (EDM's ImageNet value 1.003).
    pub s_noise: f64,
    /// Family-wise level of the exact-denoiser tests (Bonferroni over the churn values).
    pub alpha: f64,
    pub permutations: usize,
    /// Neighbours of the kNN test.
    pub knn_k: usize,
    /// The power control's wrong model: components this many times wider.
    pub wrong_widen: f64,
    /// The learned denoiser.
    pub model: ModelSpec,
}

/// One row of `churn.csv`.
#[derive(Serialize)]
struct Row {
    denoiser: String,
    steps: Num,
    s_churn: Num,
    s_noise: Num,
    energy_distance: Sci,
    /// The smaller of the energy and kNN tests' p-values.
    min_p_value: Option<Fixed<4>>,
}

/// One cell: the exact-draws floor, one denoiser at one N over every S_churn, or the power
/// control.
#[derive(Serialize, Deserialize)]
pub enum Cell {
    /// Energy distance between two independent sets of exact draws.
    Floor,
    /// The exact (`learned` false, `s_noise` 1) or the learned denoiser at N = `steps`, every
    /// value of `churn` in turn.
    Denoiser {
        learned: bool,
        s_noise: f64,
        steps: usize,
    },
    /// The exact score of a wrong mixture (components `wrong_widen`× wider) at the largest N
    /// and the first positive S_churn, under the exact denoiser's tests.
    Power,
}

/// What a cell computes.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    Floor(f64),
    /// Per value of `churn`: the energy distance to the exact draws, and the smaller test
    /// p-value where tested (the exact denoiser at the largest N).
    Sweep(Vec<(f64, Option<f64>)>),
    /// The wrong model's smaller test p-value.
    Power(f64),
}

/// The exact set-up and the exact draws every configuration is compared with.
pub struct Shared {
    exact: Exact,
    /// Exact draws, with their energy self-term.
    exact_draws: EnergyReference,
}

impl Params {
    /// The per-test level: α/(2·#churn) (Bonferroni over both tests and every churn value).
    fn level(&self) -> f64 {
        self.alpha / (2 * self.churn.len()) as f64
    }

    /// The largest N, where the exact denoiser is tested.
    fn big(&self) -> usize {
        *self.steps.iter().max().unwrap_or(&2)
    }

    /// `n` samples of Algorithm 2 at N = `steps` with this churn and S_noise.
    fn draw(
        &self,
        sde: &dyn Sde,
        score: &dyn Score,
        steps: usize,
        churn: f64,
        noise: f64,
        o: &Outputs,
    ) -> Result<Array2<f64>> {
        let spec = SampleSpec {
            sampler: Sampler::EdmSde(EdmSde {
                s_churn: churn,
                s_tmin: self.s_tmin,
                s_tmax: self.s_tmax,
                s_noise: noise,
                ..Default::default()
            }),
            steps,
            n: *self.n.at(o.quick),
            seed: o.seed,
            ..Default::default()
        };
        Ok(sample(sde, score, &spec, None)?.x)
    }

    /// Energy (global shape) and kNN (local spread) tests against the exact draws: the smaller
    /// p-value.
    fn test(&self, x: &Array2<f64>, exact_draws: &Array2<f64>, seed: u64) -> f64 {
        let e = energy_test(x.view(), exact_draws.view(), self.permutations, seed).p_value;
        let k = knn_test(
            x.view(),
            exact_draws.view(),
            self.knn_k,
            self.permutations,
            seed,
        )
        .p_value;
        e.min(k)
    }

    /// One denoiser at N = `steps` over every churn value: energy distance and (exact
    /// denoiser at the largest N) the smaller test p-value of each.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &self,
        sh: &Shared,
        sde: &dyn Sde,
        score: &dyn Score,
        name: &str,
        learned: bool,
        steps: usize,
        noise: f64,
        o: &mut Outputs,
    ) -> Result<Vec<(f64, Option<f64>)>> {
        let tested = !learned && steps == self.big();
        let mut out = Vec::new();
        for &churn in &self.churn {
            let x = self.draw(sde, score, steps, churn, noise, o)?;
            let t = tested.then(|| self.test(&x, sh.exact_draws.sample(), o.seed));
            let e = sh.exact_draws.distance(x.view());
            o.nfe.push((
                format!("{name} N={steps} churn={churn} noise={noise}"),
                2.0 * (steps - 1) as f64,
            ));
            out.push((e, t));
        }
        Ok(out)
    }
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, exp: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let level = self.level();
        if level * (self.permutations + 1) as f64 <= 1.0 {
            return Err(crate::invalid!(
                "{}: {} permutations cannot reach the per-test level {level} (the smallest p is 1/{})",
                exp.name,
                self.permutations,
                self.permutations + 1
            ));
        }
        let mut cells = vec![Cell::Floor];
        cells.extend(self.steps.iter().map(|&steps| Cell::Denoiser {
            learned: false,
            s_noise: 1.0,
            steps,
        }));
        for noise in [1.0, self.s_noise] {
            cells.extend(self.steps.iter().map(|&steps| Cell::Denoiser {
                learned: true,
                s_noise: noise,
                steps,
            }));
        }
        cells.push(Cell::Power);
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let exact = exp.exact()?;
        let n = *self.n.at(o.quick);
        let exact_draws = exact.mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
        Ok(Shared {
            exact,
            exact_draws: EnergyReference::new(exact_draws),
        })
    }

    fn compute(
        &self,
        exp: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let ex = &sh.exact;
        match *cell {
            Cell::Floor => {
                let n = *self.n.at(o.quick);
                Ok(Measured::Floor(sh.exact_draws.distance(
                    ex.mixture.sample(n, o.seed + 1, REFERENCE_DOMAIN).0.view(),
                )))
            }
            Cell::Denoiser {
                learned: false,
                s_noise,
                steps,
            } => Ok(Measured::Sweep(self.sweep(
                sh,
                ex.sde.as_ref(),
                &ex.score,
                "exact",
                false,
                steps,
                s_noise,
                o,
            )?)),
            Cell::Denoiser {
                learned: true,
                s_noise,
                steps,
            } => {
                let net = self.model.trained(exp, o)?;
                let net_sde = net.sde().clone();
                Ok(Measured::Sweep(self.sweep(
                    sh,
                    net_sde.as_ref(),
                    &net,
                    &self.model.label,
                    true,
                    steps,
                    s_noise,
                    o,
                )?))
            }
            // Power: the same test rejects a wrong model (components wider) at the largest N
            // and the first positive S_churn.
            Cell::Power => {
                let wrong = MixtureScore::new(
                    Arc::new(ex.mixture.widened(self.wrong_widen)?),
                    ex.sde.clone(),
                );
                let mid = self.churn.iter().copied().find(|&c| c > 0.0).unwrap_or(0.0);
                let wx = self.draw(ex.sde.as_ref(), &wrong, self.big(), mid, 1.0, o)?;
                Ok(Measured::Power(self.test(
                    &wx,
                    sh.exact_draws.sample(),
                    o.seed,
                )))
            }
        }
    }

    fn render(
        &self,
        _: &Experiment,
        cells: Vec<(Cell, Measured)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let n = *p.n.at(o.quick);
        let seed = o.seed;
        let level = p.level();
        let big = p.big();
        let (mut floor, mut wt) = (f64::NAN, f64::NAN);
        for (_, m) in &cells {
            match m {
                Measured::Floor(f) => floor = *f,
                Measured::Power(t) => wt = *t,
                Measured::Sweep(_) => {}
            }
        }
        let (mut rows, mut claims) = (Vec::new(), Vec::new());
        let mut panels = Vec::new();
        let mut learned_energy = Vec::new();
        for (name, learned) in [("exact", false), (p.model.label.as_str(), true)] {
            let mut series = Vec::new();
            for (cell, m) in &cells {
                let (
                    &Cell::Denoiser {
                        learned: l,
                        s_noise: noise,
                        steps,
                    },
                    Measured::Sweep(sweep),
                ) = (cell, m)
                else {
                    continue;
                };
                if l != learned {
                    continue;
                }
                let mut pts = Vec::new();
                for (&churn, &(e, t)) in p.churn.iter().zip(sweep) {
                    rows.push(Row {
                        denoiser: name.to_string(),
                        steps: Num(steps as f64),
                        s_churn: Num(churn),
                        s_noise: Num(noise),
                        energy_distance: Sci(e),
                        min_p_value: t.map(Fixed),
                    });
                    pts.push((churn.max(1.0), e));
                    if learned {
                        learned_energy.push((steps, churn, noise, e));
                    } else if let Some(t) = t {
                        claims.push(Claim::new(
                            &format!("exact denoiser, N = {steps}, S_churn = {churn}: energy and kNN tests vs exact draws do not reject (min p ≥ α/{} = {level:.4}, n = {n}, {} permutations, seed {seed})", 2 * p.churn.len(), p.permutations),
                            t >= level,
                            t,
                            &format!("≥ {level:.4}"),
                        ));
                    }
                }
                // The learned denoiser runs at two S_noise values, the exact one at 1 only.
                let tag = if learned {
                    format!(", S_noise {noise}")
                } else {
                    String::new()
                };
                series.push(Series::line_points(format!("N = {steps}{tag}"), pts));
            }
            series.push(Series::line(
                "exact draws (floor)",
                vec![
                    (1.0, floor),
                    (p.churn.iter().copied().fold(1.0, f64::max), floor),
                ],
            ));
            panels.push(Chart {
                title: format!("{name} denoiser"),
                x_label: "S_churn (0 plotted at 1)".into(),
                y_label: "energy distance to exact draws".into(),
                log_x: true,
                log_y: true,
                series,
                ..Default::default()
            });
        }
        // Power: the same test rejects a wrong model (components wider) at N = big, S_churn = 40.
        let mid = p.churn.iter().copied().find(|&c| c > 0.0).unwrap_or(0.0);
        claims.push(Claim::new(
            &format!("power: a wrong model (components {}× wider), N = {big}, S_churn = {mid}, is rejected (p < {level:.4})", p.wrong_widen),
            wt < level,
            wt,
            &format!("< {level:.4}"),
        ));
        // Learned denoiser (reported): degradation with heavy churn at the largest N, and S_noise.
        let find = |steps: usize, churn: f64, noise: f64| {
            learned_energy
                .iter()
                .find(|r| r.0 == steps && r.1 == churn && r.2 == noise)
                .map_or(f64::NAN, |r| r.3)
        };
        let top = p.churn.iter().copied().fold(0.0, f64::max);
        let base = find(big, 0.0, 1.0);
        claims.push(
            Claim::new(
                &format!("learned denoiser, N = {big}: energy distance at S_churn = {top} over S_churn = 0 (> 1: churn degrades; on this toy churn corrects the learned flow's error instead)"),
                find(big, top, 1.0) > base,
                find(big, top, 1.0) / base,
                "> 1",
            )
            .learned(o.quick)
            .report_only(),
        );
        claims.push(
            Claim::new(
                &format!("learned denoiser, N = {big}, S_churn = {top}: S_noise = {} over S_noise = 1 (< 1: compensates)", p.s_noise),
                find(big, top, p.s_noise) < find(big, top, 1.0),
                find(big, top, p.s_noise) / find(big, top, 1.0),
                "< 1",
            )
            .report_only(),
        );
        let small = *p.steps.iter().min().unwrap_or(&2);
        let best_small = p
            .churn
            .iter()
            .map(|&c| find(small, c, 1.0))
            .fold(f64::INFINITY, f64::min);
        claims.push(
            Claim::new(
                &format!("learned denoiser, N = {small}: best energy distance over S_churn relative to S_churn = 0 (< 1: stochasticity helps)"),
                best_small < find(small, 0.0, 1.0),
                best_small / find(small, 0.0, 1.0),
                "< 1",
            )
            .report_only(),
        );
        o.rows("churn", &rows)?;
        o.panels("churn", &panels)?;
        Ok(claims)
    }
}
