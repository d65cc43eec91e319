//! EDM Fig. 4 on toy data (Karras et al. 2022, §4, Alg. 2; papers.md §8.3): the stochastic
//! sampler's churn S_churn against the step count N, with the exact denoiser (churn must cost
//! nothing: "analytical denoisers … have not shown such degradation") and a learned one
//! (excess churn degrades; S_noise > 1 partly compensates — reported).

use super::model::ModelSpec;
use super::{Claim, Exact, Experiment, Fixed, Num, Outputs, Scale, Sci};
use crate::data::REFERENCE_DOMAIN;
use crate::plot::{Chart, Series};
use crate::sample::config::EdmSde;
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::{MixtureScore, Score};
use crate::sde::Sde;
use crate::stats::two_sample::{energy_distance, energy_test, knn_test};
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

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let Exact {
        mixture,
        sde,
        score,
        ..
    } = exp.exact()?;
    let n = *p.n.at(o.quick);
    let seed = o.seed;
    let net = p.model.trained(exp, o)?;
    let exact_draws = mixture.sample(n, o.seed, REFERENCE_DOMAIN).0;
    let floor = energy_distance(
        mixture.sample(n, o.seed + 1, REFERENCE_DOMAIN).0.view(),
        exact_draws.view(),
    );
    let draw = |sde: &dyn Sde,
                score: &dyn Score,
                steps: usize,
                churn: f64,
                noise: f64|
     -> Result<Array2<f64>> {
        let spec = SampleSpec {
            sampler: Sampler::EdmSde(EdmSde {
                s_churn: churn,
                s_tmin: p.s_tmin,
                s_tmax: p.s_tmax,
                s_noise: noise,
                ..Default::default()
            }),
            steps,
            n,
            seed,
            ..Default::default()
        };
        Ok(sample(sde, score, &spec, None)?.x)
    };
    // Energy (global shape) and kNN (local spread) tests; a configuration passes when neither
    // rejects at α/(2·#churn) (Bonferroni over both tests and every churn value).
    let test = |x: &Array2<f64>| {
        let e = energy_test(x.view(), exact_draws.view(), p.permutations, seed).p_value;
        let k = knn_test(x.view(), exact_draws.view(), p.knn_k, p.permutations, seed).p_value;
        e.min(k)
    };
    let net_sde = net.sde().clone();
    let level = p.alpha / (2 * p.churn.len()) as f64;
    if level * (p.permutations + 1) as f64 <= 1.0 {
        return Err(crate::invalid!(
            "{}: {} permutations cannot reach the per-test level {level} (the smallest p is 1/{})",
            exp.name,
            p.permutations,
            p.permutations + 1
        ));
    }
    let big = *p.steps.iter().max().unwrap_or(&2);
    let (mut rows, mut claims) = (Vec::new(), Vec::new());
    let mut panels = Vec::new();
    let mut learned_energy = Vec::new();
    for (name, learned) in [("exact", false), (p.model.label.as_str(), true)] {
        let mut series = Vec::new();
        let noises: &[f64] = if learned { &[1.0, p.s_noise] } else { &[1.0] };
        for &noise in noises {
            for &steps in &p.steps {
                let mut pts = Vec::new();
                for &churn in &p.churn {
                    let x = if learned {
                        draw(net_sde.as_ref(), &net, steps, churn, noise)?
                    } else {
                        draw(sde.as_ref(), &score, steps, churn, noise)?
                    };
                    let tested = !learned && steps == big;
                    let t = tested.then(|| test(&x));
                    let e = energy_distance(x.view(), exact_draws.view());
                    rows.push(Row {
                        denoiser: name.to_string(),
                        steps: Num(steps as f64),
                        s_churn: Num(churn),
                        s_noise: Num(noise),
                        energy_distance: Sci(e),
                        min_p_value: t.map(Fixed),
                    });
                    o.nfe.push((
                        format!("{name} N={steps} churn={churn} noise={noise}"),
                        2.0 * (steps - 1) as f64,
                    ));
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
                let tag = if noises.len() > 1 {
                    format!(", S_noise {noise}")
                } else {
                    String::new()
                };
                series.push(Series::line_points(format!("N = {steps}{tag}"), pts));
            }
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
    let wrong = MixtureScore::new(Arc::new(mixture.widened(p.wrong_widen)?), sde.clone());
    let mid = p.churn.iter().copied().find(|&c| c > 0.0).unwrap_or(0.0);
    let wx = draw(sde.as_ref(), &wrong, big, mid, 1.0)?;
    let wt = test(&wx);
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

super::cells::legacy_cells!();
