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

use super::model::ModelSpec;
use super::{Claim, Experiment, Fixed, Outputs, Scale, Sci};
use crate::data::{tree_mixture, GaussianMixture, REFERENCE_DOMAIN};
use crate::plot::Chart;
use crate::sample::{sample, SampleSpec, Sampler};
use crate::score::{Guided, MixtureScore, Score, Scratch};
use crate::sde::Sde;
use crate::stats::two_sample::energy_distance;
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

pub fn run(exp: &Experiment, p: &Params, o: &mut Outputs) -> Result<Vec<Claim>> {
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
    let seed = o.seed;
    let draw_on = |sde: &dyn Sde, score: &dyn Score| -> Result<Array2<f64>> {
        let spec = SampleSpec {
            sampler: p.sampler.clone(),
            steps: p.steps,
            n,
            seed,
            denoise: Some(false),
            ..Default::default()
        };
        Ok(sample(sde, score, &spec, None)?.x)
    };
    let draw = |score: &dyn Score| draw_on(sde.as_ref(), score);
    let (exact_inside, exact_tips) = assess(&m, target, &exact);
    let mut rows = vec![Row {
        method: "exact draws".into(),
        w: Fixed(0.0),
        inside_support: Fixed(exact_inside),
        coverage: Fixed(exact_tips),
        energy_distance: Sci(0.0),
    }];
    let mut results = Vec::new();
    let mut panels = vec![super::scatter(format!("exact p(x|{})", p.class), &exact)];
    for &w in &p.ws {
        for (method, other) in [("CFG", uncond.clone()), ("autoguidance", bad.clone())] {
            let g = Guided::new(good.clone(), other, w, [0.0, sde.t_max()])?;
            let x = draw(&g)?;
            let (inside, tips) = assess(&m, target, &x);
            let e = energy_distance(x.view(), exact.view());
            rows.push(Row {
                method: method.into(),
                w: Fixed(w),
                inside_support: Fixed(inside),
                coverage: Fixed(tips),
                energy_distance: Sci(e),
            });
            o.nfe
                .push((format!("{method} w={w}"), 2.0 * p.steps as f64));
            if w == p.ws[p.ws.len() - 1] {
                panels.push(super::scatter(format!("{method}, w = {w}"), &x));
            }
            results.push((method, w, inside, tips, e));
        }
    }
    let (trained, reversed_trained) = trained_arms(exp, p, o, &m, &draw_on)?;
    let mut trained_results = Vec::new();
    for (method, w, x) in &trained {
        let (inside, tips) = assess(&m, target, x);
        let e = energy_distance(x.view(), exact.view());
        trained_results.push((method.clone(), *w, inside, tips, e));
        rows.push(Row {
            method: method.clone(),
            w: Fixed(*w),
            inside_support: Fixed(inside),
            coverage: Fixed(tips),
            energy_distance: Sci(e),
        });
        if *w == 0.0 || *w == p.ws[p.ws.len() - 1] {
            panels.push(super::scatter(format!("{method}, w = {w}"), x));
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
            .copied()
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
    let reversed = Guided::new(bad.clone(), good.clone(), w, [0.0, sde.t_max()])?;
    let e_rev = energy_distance(draw(&reversed)?.view(), exact.view());
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
    claims.extend(trained_claims(
        p,
        &trained_results,
        energy_distance(reversed_trained.view(), exact.view()),
    ));
    Ok(claims)
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

/// Samples of the trained networks, as (method, w, samples): the conditional network at w = 0,
/// then CFG and autoguidance (the bad version at the same class) at each w; and the power
/// control, the bad network guided away from the good one at the largest w.
type Arms = (Vec<(String, f64, Array2<f64>)>, Array2<f64>);

/// Samples of a field on a path.
type Draw<'a> = &'a dyn Fn(&dyn Sde, &dyn Score) -> Result<Array2<f64>>;

fn trained_arms(
    exp: &Experiment,
    p: &Params,
    o: &mut Outputs,
    m: &GaussianMixture,
    draw_on: Draw<'_>,
) -> Result<Arms> {
    // The tree as a mixture file beside the outputs: the networks' training data.
    let file = o.dir.join("tree.toml");
    let mut f = crate::io::AtomicFile::create(&file)?;
    std::io::Write::write_all(f.writer(), crate::data::mixture_toml(m).as_bytes())
        .map_err(|e| crate::Error::io(&file, e))?;
    f.commit()?;
    o.files.push("tree.toml".into());
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
    let sde = good.sde().clone();
    let (g, uncond, b) = (
        at(&good, Some(label))?,
        at(&good, None)?,
        at(&bad, Some(label))?,
    );
    let mut out = vec![(
        "trained".to_string(),
        0.0,
        draw_on(sde.as_ref(), g.as_ref())?,
    )];
    for &w in &p.ws {
        for (method, other) in [("trained CFG", &uncond), ("trained autoguidance", &b)] {
            let guided = Guided::new(g.clone(), other.clone(), w, [0.0, sde.t_max()])?;
            out.push((method.to_string(), w, draw_on(sde.as_ref(), &guided)?));
            o.nfe
                .push((format!("{method} w={w}"), 2.0 * p.steps as f64));
        }
    }
    let w = p.ws[p.ws.len() - 1];
    let reversed = Guided::new(b, g, w, [0.0, sde.t_max()])?;
    Ok((out, draw_on(sde.as_ref(), &reversed)?))
}

super::cells::legacy_cells!();
