//! Song et al. 2021 Fig. 1 on toy data: the forward SDE's marginals and the reverse SDE's (exact
//! score) at the same times, each tested against exact draws of p_t (papers.md §4.1).

use super::{scatter, Claim, Experiment, Num, Outputs, Scale, Sci};
use crate::data::{DATA_DOMAIN, REFERENCE_DOMAIN};
use crate::domain::Domain;
use crate::sample::{integrate, SampleSpec, Sampler};
use crate::score::MixtureScore;
use crate::sde::Forward;
use crate::stats::two_sample::mmd_test;
use crate::{invalid, Result};
use scoresde_solvers::{solve, KeyedNormal, Method, Problem, SolveOptions, Steps, TimeGrid};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub n: Scale<usize>,
    /// Euler–Maruyama steps over [0, 1] (every time below must be a multiple of 1/steps).
    pub steps: usize,
    /// Times at which both processes are shown and tested (≥ ε = 1/steps).
    pub times: Vec<f64>,
    /// Family-wise level, Bonferroni-split over the tests.
    pub alpha: f64,
    pub permutations: usize,
}

/// One row of `mmd.csv`.
#[derive(Serialize)]
struct Row {
    t: Num,
    forward_p: Sci,
    reverse_p: Sci,
}

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
    let (data, mixture) = exp.exact_data()?;
    if data.dim() != 2 {
        return Err(invalid!("{}: needs 2D data", exp.name));
    }
    let sde = exp.sde.build(|| data.diameter())?;
    let t_max = sde.t_max();
    let n = *p.n.at(o.quick);
    let eps = t_max / p.steps as f64;
    super::check_times("times", &p.times, t_max)?;
    let snap = |t: f64| (t / eps).round() * eps;
    let times: Vec<f64> = p.times.iter().map(|&t| snap(t).clamp(eps, t_max)).collect();
    // Forward: EM from exact data on [0, t_max].
    let x0 = mixture.sample(n, o.seed, DATA_DOMAIN).0;
    let fwd = Forward {
        sde: sde.as_ref(),
        dim: 2,
    };
    let fgrid = TimeGrid::uniform(0.0, t_max, p.steps)?;
    let fsol = solve(
        Problem::Sde(
            &fwd,
            &KeyedNormal::new(o.seed, Domain::ForwardReverse2d.key()),
        ),
        Method::EulerMaruyama,
        &Steps::Grid(fgrid),
        x0,
        &SolveOptions {
            record: times.clone(),
            ..Default::default()
        },
    )?;
    // Reverse: EM with the exact score from the prior down to ε on the same grid.
    let score = MixtureScore::new(mixture.clone(), sde.clone());
    let mut rev_times = times.clone();
    rev_times.reverse();
    let spec = SampleSpec {
        sampler: Sampler::default(),
        steps: p.steps - 1,
        eps: Some(eps),
        n,
        seed: o.seed,
        record: rev_times,
        ..Default::default()
    };
    let rsol = integrate(
        sde.as_ref(),
        &score,
        sde.prior_sample(n, 2, o.seed),
        &spec,
        None,
    )?;
    o.nfe.push(("reverse em".into(), rsol.nfe));
    let level = p.alpha / (2 * times.len()) as f64;
    let (mut claims, mut rows, mut fcharts, mut rcharts) = (vec![], vec![], vec![], vec![]);
    for (k, &t) in times.iter().enumerate() {
        let pt = mixture.diffused_mixture(sde.marginal(t))?;
        let exact = pt.sample(n, o.seed + k as u64, REFERENCE_DOMAIN).0;
        let f = &fsol.records[k].1;
        let r = &rsol
            .records
            .iter()
            .find(|(s, _)| (*s - t).abs() < 1e-12)
            .expect("every time recorded")
            .1;
        let pf = mmd_test(f.view(), exact.view(), p.permutations, o.seed).p_value;
        let pr = mmd_test(r.view(), exact.view(), p.permutations, o.seed).p_value;
        rows.push(Row {
            t: Num(t),
            forward_p: Sci(pf),
            reverse_p: Sci(pr),
        });
        for (name, pv) in [("forward", pf), ("reverse", pr)] {
            claims.push(Claim::new(
                &format!("{name} SDE at t = {t}: MMD test against exact p_t does not reject"),
                pv >= level,
                pv,
                &format!("p ≥ {level:.2e} (α = {} / {})", p.alpha, 2 * times.len()),
            ));
        }
        fcharts.push(scatter(format!("forward, t = {t}"), f));
        rcharts.push(scatter(format!("reverse, t = {t}"), r));
    }
    o.rows("mmd", &rows)?;
    let cols = times.len().div_ceil(2);
    o.grid("forward", &fcharts, cols)?;
    o.grid("reverse", &rcharts, cols)?;
    Ok(claims)
}

super::cells::legacy_cells!();
