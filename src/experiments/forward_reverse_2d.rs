//! Song et al. 2021 Fig. 1 on toy data: the forward SDE's marginals and the reverse SDE's (exact
//! score) at the same times, each tested against exact draws of p_t (papers.md §4.1).

use super::cells::Cells;
use super::{scatter, Claim, Exact, Experiment, Num, Outputs, Scale, Sci};
use crate::data::{GaussianMixture, DATA_DOMAIN, REFERENCE_DOMAIN};
use crate::domain::Domain;
use crate::sample::{integrate, SampleSpec, Sampler};
use crate::sde::{Forward, Sde};
use crate::stats::two_sample::mmd_test;
use crate::{invalid, Result};
use ndarray::Array2;
use scoresde_solvers::{solve, KeyedNormal, Method, Problem, SolveOptions, Steps, TimeGrid};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

impl Params {
    /// The test times snapped to the Euler–Maruyama grid and clamped to [ε, t_max], and
    /// ε = t_max / steps; refuses data that is not 2D and times outside (0, t_max].
    fn snapped_times(&self, exp: &Experiment) -> Result<(Vec<f64>, f64)> {
        let (data, _) = exp.exact_data()?;
        if data.dim() != 2 {
            return Err(invalid!("{}: needs 2D data", exp.name));
        }
        let sde = exp.sde.build(|| data.diameter())?;
        let t_max = sde.t_max();
        let eps = t_max / self.steps as f64;
        super::check_times("times", &self.times, t_max)?;
        let snap = |t: f64| (t / eps).round() * eps;
        let times = self
            .times
            .iter()
            .map(|&t| snap(t).clamp(eps, t_max))
            .collect();
        Ok((times, eps))
    }
}

/// The mixture and SDE, the snapped times, and both processes recorded at those times: the
/// forward SDE by Euler–Maruyama from exact data, the reverse SDE (exact score) from the prior.
pub struct Shared {
    mixture: Arc<GaussianMixture>,
    sde: Arc<dyn Sde>,
    times: Vec<f64>,
    /// Forward states, one per time in `times` order.
    forward: Vec<(f64, Array2<f64>)>,
    /// Reverse states, as the sampler records them (looked up by time).
    reverse: Vec<(f64, Array2<f64>)>,
    reverse_nfe: f64,
}

/// One time's panels and tests: the forward and reverse states at `t` and the MMD p-value of
/// each against exact draws of p_t.
#[derive(Serialize, Deserialize)]
pub struct AtTime {
    t: f64,
    forward: Array2<f64>,
    reverse: Array2<f64>,
    forward_p: f64,
    reverse_p: f64,
}

impl Cells for Params {
    /// Index into the snapped `times`: both processes tested at one time.
    type Cell = usize;
    type Row = AtTime;
    type Shared = Shared;

    fn cells(&self, exp: &Experiment, _: &Outputs) -> Result<Vec<usize>> {
        let (times, _) = self.snapped_times(exp)?;
        Ok((0..times.len()).collect())
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let (times, eps) = self.snapped_times(exp)?;
        let Exact {
            mixture,
            sde,
            score,
            ..
        } = exp.exact()?;
        let t_max = sde.t_max();
        let n = *self.n.at(o.quick);
        // Forward: EM from exact data on [0, t_max].
        let x0 = mixture.sample(n, o.seed, DATA_DOMAIN).0;
        let fwd = Forward {
            sde: sde.as_ref(),
            dim: 2,
        };
        let fgrid = TimeGrid::uniform(0.0, t_max, self.steps)?;
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
        let mut rev_times = times.clone();
        rev_times.reverse();
        let spec = SampleSpec {
            sampler: Sampler::default(),
            steps: self.steps - 1,
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
        Ok(Shared {
            mixture,
            sde,
            times,
            forward: fsol.records,
            reverse: rsol.records,
            reverse_nfe: rsol.nfe,
        })
    }

    fn compute(&self, _: &Experiment, sh: &Shared, &k: &usize, o: &mut Outputs) -> Result<AtTime> {
        if k == 0 {
            // The one reverse run's NFE, noted once (by the first time's cell).
            o.nfe.push(("reverse em".into(), sh.reverse_nfe));
        }
        let n = *self.n.at(o.quick);
        let t = sh.times[k];
        let pt = sh.mixture.diffused_mixture(sh.sde.marginal(t))?;
        let exact = pt.sample(n, o.seed + k as u64, REFERENCE_DOMAIN).0;
        let f = &sh.forward[k].1;
        let r = &sh
            .reverse
            .iter()
            .find(|(s, _)| (*s - t).abs() < 1e-12)
            .expect("every time recorded")
            .1;
        let forward_p = mmd_test(f.view(), exact.view(), self.permutations, o.seed).p_value;
        let reverse_p = mmd_test(r.view(), exact.view(), self.permutations, o.seed).p_value;
        Ok(AtTime {
            t,
            forward: f.clone(),
            reverse: r.clone(),
            forward_p,
            reverse_p,
        })
    }

    fn render(
        &self,
        _: &Experiment,
        cells: Vec<(usize, AtTime)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>> {
        let p = self;
        let count = cells.len();
        let level = p.alpha / (2 * count) as f64;
        let (mut claims, mut rows, mut fcharts, mut rcharts) = (vec![], vec![], vec![], vec![]);
        for (_, a) in &cells {
            let t = a.t;
            rows.push(Row {
                t: Num(t),
                forward_p: Sci(a.forward_p),
                reverse_p: Sci(a.reverse_p),
            });
            for (name, pv) in [("forward", a.forward_p), ("reverse", a.reverse_p)] {
                claims.push(Claim::new(
                    &format!("{name} SDE at t = {t}: MMD test against exact p_t does not reject"),
                    pv >= level,
                    pv,
                    &format!("p ≥ {level:.2e} (α = {} / {})", p.alpha, 2 * count),
                ));
            }
            fcharts.push(scatter(format!("forward, t = {t}"), &a.forward));
            rcharts.push(scatter(format!("reverse, t = {t}"), &a.reverse));
        }
        o.rows("mmd", &rows)?;
        let cols = count.div_ceil(2);
        o.grid("forward", &fcharts, cols)?;
        o.grid("reverse", &rcharts, cols)?;
        Ok(claims)
    }
}
