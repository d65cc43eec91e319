//! Autoguidance against classifier-free guidance on the 2-D tree mixture (Karras et al. 2024,
//! Fig. 1, on [`crate::data::tree_mixture`]), with exact fields: the good model is the exact
//! conditional p(x | c); autoguidance's bad model is the exact conditional of the same mixture
//! with every component `bad_widen` times wider (a blurrier version of the good one, the limit
//! of a well-trained good model); CFG guides away from the unconditional p(x). For each w:
//! the share of samples inside the class's support (Mahalanobis distance ≤ 3 to their most
//! responsible component, which is of class c), the coverage of the class's components, and the
//! energy distance to exact conditional draws.
//!
//! Beside the exact fields, the paper's own setting: a class-conditional network trained on the
//! tree with label dropout (`good`), and its bad version, a smaller network trained for fewer
//! steps from the same settings (`bad`), sampled at w = 0, with CFG and with autoguidance.

use super::cells::Cells;
use super::model::ModelSpec;
use super::{Claim, Experiment, Fixed, Outputs, Scale, Sci};
use crate::data::{tree_mixture, GaussianMixture, REFERENCE_DOMAIN};
use crate::plot::Chart;
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::{Guided, MixtureScore, Score, Scratch};
use crate::sde::Sde;
use crate::stats::two_sample::EnergyReference;
use crate::Result;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Levels of each class's tree.
    pub depth: usize,
    /// The class sampled.
    pub class: String,
    pub n: Scale<usize>,
    /// Guidance scales compared.
    pub ws: Vec<f64>,
    /// The bad model's components are this many times wider.
    pub bad_widen: f64,
    pub sampler: Sampler,
    pub steps: usize,
    /// The trained conditional network (data: the tree, written next to the outputs).
    pub good: Box<ModelSpec>,
    /// Its bad version (smaller, shorter), recorded as such.
    pub bad: Box<ModelSpec>,
}

/// One row of `autoguidance.csv`.
#[derive(Serialize)]
struct Row {
    method: String,
    w: Fixed<1>,
    inside_support: Fixed<4>,
    coverage: Fixed<4>,
    energy_distance: Sci,
}

/// (inside-support share, coverage) of `x` for class `target` of `m` at t = 0: coverage is the
/// share of the class's components that receive at least a quarter of their exact share of the
/// samples (their weight within the class).
fn assess(m: &GaussianMixture, target: usize, x: &Array2<f64>) -> (f64, f64) {
    let classes = m.classes().expect("labelled");
    let data = m.at(crate::sde::Marginal {
        mean: 1.0,
        std: 0.0,
    });
    let mut s = Scratch::default();
    let mut inside = 0usize;
    let mut counts = vec![0usize; m.n_components()];
    for row in x.rows() {
        let k = data.argmax_component(row, &mut s);
        let c = m.covariances()[k].matrix(2);
        let det = c[[0, 0]] * c[[1, 1]] - c[[0, 1]] * c[[1, 0]];
        let (dx, dy) = (row[0] - m.means()[[k, 0]], row[1] - m.means()[[k, 1]]);
        let maha2 = (c[[1, 1]] * dx * dx - 2.0 * c[[0, 1]] * dx * dy + c[[0, 0]] * dy * dy) / det;
        if classes.of_component[k] == target && maha2 <= 9.0 {
            inside += 1;
        }
        counts[k] += 1;
    }
    let n = x.nrows() as f64;
    let own: Vec<usize> = (0..m.n_components())
        .filter(|&k| classes.of_component[k] == target)
        .collect();
    let total: f64 = own.iter().map(|&k| m.weights()[k]).sum();
    let covered = own
        .iter()
        .filter(|&&k| counts[k] as f64 / n >= 0.25 * m.weights()[k] / total)
        .count();
    (inside as f64 / n, covered as f64 / own.len() as f64)
}

/// Which field a guided arm guides away from: the unconditional one (CFG) or the bad model
/// (autoguidance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Cfg,
    Autoguidance,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Cfg => "CFG",
            Method::Autoguidance => "autoguidance",
        }
    }
}

/// The guided arms at each w, in the order of the CSV rows.
const METHODS: [Method; 2] = [Method::Cfg, Method::Autoguidance];

/// One cell: a set of samples of the class. Exact fields: the exact draws of p(x|c) (the
/// reference), a guided arm at `ws[i]`, the power control (the bad model guided away from the
/// good one at the largest w); trained networks: the conditional network unguided, a guided
/// arm at `ws[i]`, the power control. The trained cells each load the two networks from the
/// run cache (the first one computed trains them).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Cell {
    Reference,
    Exact(usize, Method),
    ExactReversed,
    Trained,
    TrainedGuided(usize, Method),
    TrainedReversed,
}

/// What a cell measures: for an arm, the share inside the class's support, the coverage, the
/// energy distance to the exact draws (0 for the reference) and the samples when the figure
/// shows them; for a power control, its energy distance alone.
#[derive(Serialize, Deserialize)]
pub enum Measured {
    Arm {
        inside: f64,
        coverage: f64,
        energy: f64,
        shown: Option<Array2<f64>>,
    },
    Reversed(f64),
}

/// The exact set-up: the SDE, the tree, the index of the sampled class, the exact conditional
/// (good), widened conditional (bad) and unconditional fields, and the exact draws of p(x|c).
pub struct Shared {
    sde: Arc<dyn Sde>,
    m: Arc<GaussianMixture>,
    target: usize,
    good: Arc<MixtureScore>,
    bad: Arc<MixtureScore>,
    uncond: Arc<MixtureScore>,
    /// Exact draws, with their energy self-term.
    exact: EnergyReference,
}

/// The training data of the networks, beside the outputs: the tree as a mixture file.
const TREE: &str = "tree.toml";

/// `n` samples of `score` on `sde` by the experiment's sampler from the run's seed (every arm
/// starts from the same prior draws and noise).
fn draw(p: &Params, n: usize, seed: u64, sde: &dyn Sde, score: &dyn Score) -> Result<Array2<f64>> {
    let spec = SampleSpec {
        sampler: p.sampler.clone(),
        steps: p.steps,
        n,
        seed,
        denoise: Some(false),
        ..Default::default()
    };
    Ok(sample(sde, score, &spec, None)?.x)
}

/// An arm's statistics against the exact draws; its samples kept when `shown`.
fn measured(sh: &Shared, x: Array2<f64>, shown: bool) -> Measured {
    let (inside, coverage) = assess(&sh.m, sh.target, &x);
    let energy = sh.exact.distance(x.view());
    Measured::Arm {
        inside,
        coverage,
        energy,
        shown: shown.then_some(x),
    }
}

impl Cells for Params {
    type Cell = Cell;
    type Row = Measured;
    type Shared = Shared;

    fn cells(&self, _: &Experiment, _: &Outputs) -> Result<Vec<Cell>> {
        let mut cells = vec![Cell::Reference];
        for i in 0..self.ws.len() {
            cells.extend(METHODS.map(|m| Cell::Exact(i, m)));
        }
        cells.push(Cell::ExactReversed);
        cells.push(Cell::Trained);
        for i in 0..self.ws.len() {
            cells.extend(METHODS.map(|m| Cell::TrainedGuided(i, m)));
        }
        cells.push(Cell::TrainedReversed);
        Ok(cells)
    }

    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Shared> {
        let p = self;
        let sde: Arc<dyn Sde> = exp.sde.build(|| 8.0)?;
        let m = Arc::new(tree_mixture(p.depth)?);
        let n = *p.n.at(o.quick);
        let cond = Arc::new(m.conditional(&p.class)?);
        let target = m
            .classes()
            .and_then(|c| c.names.iter().position(|x| *x == p.class))
            .expect("checked by conditional");
        let good = Arc::new(MixtureScore::new(cond.clone(), sde.clone()));
        let bad = Arc::new(MixtureScore::new(
            Arc::new(cond.widened(p.bad_widen)?),
            sde.clone(),
        ));
        let uncond = Arc::new(MixtureScore::new(m.clone(), sde.clone()));
        let exact = cond.sample(n, o.seed, REFERENCE_DOMAIN).0;
        Ok(Shared {
            sde,
            m,
            target,
            good,
            bad,
            uncond,
            exact: EnergyReference::new(exact),
        })
    }

    fn compute(
        &self,
        exp: &Experiment,
        sh: &Shared,
        cell: &Cell,
        o: &mut Outputs,
    ) -> Result<Measured> {
        let p = self;
        let (n, seed) = (*p.n.at(o.quick), o.seed);
        let last = p.ws[p.ws.len() - 1];
        match *cell {
            Cell::Reference => {
                let (inside, coverage) = assess(&sh.m, sh.target, sh.exact.sample());
                Ok(Measured::Arm {
                    inside,
                    coverage,
                    energy: 0.0,
                    shown: Some(sh.exact.sample().clone()),
                })
            }
            Cell::Exact(i, method) => {
                let w = p.ws[i];
                let other = match method {
                    Method::Cfg => sh.uncond.clone(),
                    Method::Autoguidance => sh.bad.clone(),
                };
                let g = Guided::new(sh.good.clone(), other, w, [0.0, sh.sde.t_max()])?;
                let x = draw(p, n, seed, sh.sde.as_ref(), &g)?;
                let row = measured(sh, x, w == last);
                o.nfe
                    .push((format!("{} w={w}", method.name()), 2.0 * p.steps as f64));
                Ok(row)
            }
            Cell::ExactReversed => {
                // Power: with the roles reversed (the bad model guided away from the good one)
                // the same statistics must see the damage.
                let reversed =
                    Guided::new(sh.bad.clone(), sh.good.clone(), last, [0.0, sh.sde.t_max()])?;
                let x = draw(p, n, seed, sh.sde.as_ref(), &reversed)?;
                Ok(Measured::Reversed(sh.exact.distance(x.view())))
            }
            Cell::Trained => {
                let nets = trained_nets(exp, p, o, &sh.m)?;
                let x = draw(p, n, seed, nets.sde.as_ref(), nets.good.as_ref())?;
                Ok(measured(sh, x, true))
            }
            Cell::TrainedGuided(i, method) => {
                let nets = trained_nets(exp, p, o, &sh.m)?;
                let w = p.ws[i];
                let other = match method {
                    Method::Cfg => &nets.uncond,
                    Method::Autoguidance => &nets.bad,
                };
                let guided =
                    Guided::new(nets.good.clone(), other.clone(), w, [0.0, nets.sde.t_max()])?;
                let x = draw(p, n, seed, nets.sde.as_ref(), &guided)?;
                o.nfe.push((
                    format!("trained {} w={w}", method.name()),
                    2.0 * p.steps as f64,
                ));
                Ok(measured(sh, x, w == 0.0 || w == last))
            }
            Cell::TrainedReversed => {
                let nets = trained_nets(exp, p, o, &sh.m)?;
                let reversed = Guided::new(nets.bad, nets.good, last, [0.0, nets.sde.t_max()])?;
                let x = draw(p, n, seed, nets.sde.as_ref(), &reversed)?;
                Ok(Measured::Reversed(sh.exact.distance(x.view())))
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
        // The networks' training data, as an output of the run.
        o.text(TREE, &crate::data::mixture_toml(&tree_mixture(p.depth)?))?;
        let mut rows = Vec::new();
        let mut panels = Vec::new();
        // (method, w, inside, coverage, energy distance) of the exact and the trained arms.
        let mut results: Vec<(String, f64, f64, f64, f64)> = Vec::new();
        let mut trained_results: Vec<(String, f64, f64, f64, f64)> = Vec::new();
        let mut exact_inside = f64::NAN;
        let (mut e_rev, mut e_rev_trained) = (f64::NAN, f64::NAN);
        for (cell, m) in cells {
            let (inside, coverage, energy, shown) = match m {
                Measured::Arm {
                    inside,
                    coverage,
                    energy,
                    shown,
                } => (inside, coverage, energy, shown),
                Measured::Reversed(e) => {
                    match cell {
                        Cell::TrainedReversed => e_rev_trained = e,
                        _ => e_rev = e,
                    }
                    continue;
                }
            };
            let (method, w) = match cell {
                Cell::Reference => {
                    exact_inside = inside;
                    ("exact draws".to_string(), 0.0)
                }
                Cell::Exact(i, method) => (method.name().to_string(), p.ws[i]),
                Cell::Trained => ("trained".to_string(), 0.0),
                Cell::TrainedGuided(i, method) => (format!("trained {}", method.name()), p.ws[i]),
                Cell::ExactReversed | Cell::TrainedReversed => continue,
            };
            rows.push(Row {
                method: method.clone(),
                w: Fixed(w),
                inside_support: Fixed(inside),
                coverage: Fixed(coverage),
                energy_distance: Sci(energy),
            });
            if let Some(x) = shown {
                let title = match cell {
                    Cell::Reference => format!("exact p(x|{})", p.class),
                    _ => format!("{method}, w = {w}"),
                };
                panels.push(super::scatter(title, &x));
            }
            match cell {
                Cell::Exact(..) => results.push((method, w, inside, coverage, energy)),
                Cell::Trained | Cell::TrainedGuided(..) => {
                    trained_results.push((method, w, inside, coverage, energy))
                }
                _ => {}
            }
        }
        o.rows("autoguidance", &rows)?;
        let limits = Some([(-4.5, 4.5), (-2.5, 3.5)]);
        let panels: Vec<Chart> = panels
            .into_iter()
            .map(|mut c| {
                c.limits = limits;
                c
            })
            .collect();
        o.grid("autoguidance", &panels, 3)?;

        let get = |method: &str, w: f64| {
            results
                .iter()
                .find(|r| r.0 == method && r.1 == w)
                .expect("computed")
        };
        let mut claims = Vec::new();
        let (mut tips_auto, mut tips_cfg, mut e_ratio) = (f64::INFINITY, f64::INFINITY, 0.0f64);
        for &w in &p.ws {
            let (a, c) = (get("autoguidance", w), get("CFG", w));
            tips_auto = tips_auto.min(a.3);
            tips_cfg = tips_cfg.min(c.3);
            e_ratio = e_ratio.max(a.4 / c.4);
        }
        claims.push(Claim::new(
            "autoguidance keeps the whole tree at every w: smallest coverage (share of the class's components with ≥ ¼ of their exact share)",
            tips_auto >= 0.9,
            tips_auto,
            "≥ 0.9",
        ));
        claims.push(Claim::new(
            "CFG loses part of the tree at some w: smallest coverage (Karras et al. 2024, Fig. 1)",
            tips_cfg < 0.9,
            tips_cfg,
            "< 0.9",
        ));
        claims.push(Claim::new(
            "autoguidance stays closer to p(x|c) than CFG at every w: largest energy-distance ratio auto/CFG",
            e_ratio < 1.0,
            e_ratio,
            "< 1",
        ));
        let inside_auto =
            p.ws.iter()
                .map(|&w| get("autoguidance", w).2)
                .fold(f64::INFINITY, f64::min);
        claims.push(
            Claim::new(
                "autoguidance stays inside the class's support at least as often as exact draws (smallest share − exact's)",
                inside_auto >= exact_inside,
                inside_auto - exact_inside,
                "≥ 0",
            )
            .report_only(),
        );
        // Power: with the roles reversed (the bad model guided away from the good one) the same
        // statistics must see the damage: energy distance above the largest autoguidance one.
        let w = p.ws[p.ws.len() - 1];
        let e_auto =
            p.ws.iter()
                .map(|&w| get("autoguidance", w).4)
                .fold(0.0f64, f64::max);
        claims.push(Claim::new(
            &format!("power: the bad model guided away from the good one (w = {w}) is farther from p(x|c) than any autoguidance run (energy-distance ratio)"),
            e_rev > e_auto,
            e_rev / e_auto,
            "> 1",
        ));
        claims.extend(trained_claims(p, &trained_results, e_rev_trained));
        Ok(claims)
    }
}

/// The claims on the trained networks: autoguidance keeps at least CFG's coverage of the tree
/// and stays closer to p(x|c) than CFG at every w (asserted); whether it pulls samples into the
/// support beyond the unguided network's share (report-only: the paper's quality gain, which
/// depends on how undertrained the networks are); power: the bad network guided away from the
/// good one is farther from p(x|c) than any trained autoguidance run.
fn trained_claims(
    p: &Params,
    results: &[(String, f64, f64, f64, f64)],
    e_reversed: f64,
) -> Vec<Claim> {
    let get = |method: &str, w: f64| {
        results
            .iter()
            .find(|r| r.0 == method && r.1 == w)
            .expect("computed")
    };
    let (mut cov_margin, mut e_ratio, mut e_auto) = (f64::INFINITY, 0.0f64, 0.0f64);
    for &w in &p.ws {
        let (a, c) = (get("trained autoguidance", w), get("trained CFG", w));
        cov_margin = cov_margin.min(a.3 - c.3);
        e_ratio = e_ratio.max(a.4 / c.4);
        e_auto = e_auto.max(a.4);
    }
    let unguided = get("trained", 0.0).2;
    let best_inside =
        p.ws.iter()
            .map(|&w| get("trained autoguidance", w).2)
            .fold(0.0f64, f64::max);
    let w = p.ws[p.ws.len() - 1];
    vec![
        Claim::new(
            "trained networks: autoguidance keeps at least CFG's coverage of the tree at every w (smallest margin)",
            cov_margin >= 0.0,
            cov_margin,
            "≥ 0",
        ),
        Claim::new(
            "trained networks: autoguidance stays closer to p(x|c) than CFG at every w (largest energy-distance ratio auto/CFG)",
            e_ratio < 1.0,
            e_ratio,
            "< 1",
        ),
        Claim::new(
            "trained networks: autoguidance raises the share inside the support above the unguided network's (best w, minus unguided)",
            best_inside > unguided,
            best_inside - unguided,
            "> 0",
        )
        .report_only(),
        Claim::new(
            &format!("power: the bad network guided away from the good one (w = {w}) is farther from p(x|c) than any trained autoguidance run (energy-distance ratio)"),
            e_reversed > e_auto,
            e_reversed / e_auto,
            "> 1",
        ),
    ]
}

/// The trained fields: the conditional network at the class, the same network unconditional
/// (label dropped), the bad network at the class, and the networks' SDE.
struct Nets {
    good: Arc<dyn Score + Send>,
    uncond: Arc<dyn Score + Send>,
    bad: Arc<dyn Score + Send>,
    sde: Arc<dyn Sde>,
}

/// Trains the two networks (or loads them from the run cache), noting both in `o.models`.
/// Their training data is the tree as a mixture file beside the outputs (`OUT/NAME/tree.toml`,
/// the path their cached configs name): written here when absent or different, without
/// entering `o.files` (`render` writes it again as an output).
fn trained_nets(
    exp: &Experiment,
    p: &Params,
    o: &mut Outputs,
    m: &GaussianMixture,
) -> Result<Nets> {
    let file = o.dir.join(TREE);
    let body = crate::data::mixture_toml(m);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(body.as_str()) {
        let mut f = crate::io::AtomicFile::create(&file)?;
        std::io::Write::write_all(f.writer(), body.as_bytes())
            .map_err(|e| crate::Error::io(&file, e))?;
        f.commit()?;
    }
    let data = file.display().to_string();
    let mut good_spec = (*p.good).clone();
    good_spec.data = Some(data.clone());
    good_spec.train.conditional = true;
    let good = good_spec.trained(exp, o)?;
    let mut bad_spec = (*p.bad).clone();
    bad_spec.data = Some(data);
    bad_spec.train.conditional = true;
    bad_spec.train.bad_version_of = o.models.last().map(|u| u.dir.clone());
    let bad = bad_spec.trained(exp, o)?;
    let label = good.mlp().config().label_of(&p.class)?;
    let at = |net: &crate::nn::NetScore, l: Option<usize>| -> Result<Arc<dyn Score + Send>> {
        Ok(Arc::new(crate::nn::NetScore::new(
            net.mlp().with_label(l)?,
            net.sde().clone(),
        )))
    };
    Ok(Nets {
        good: at(&good, Some(label))?,
        uncond: at(&good, None)?,
        bad: at(&bad, Some(label))?,
        sde: good.sde().clone(),
    })
}
