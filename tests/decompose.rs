//! The error decomposition against closed forms and exact replacements: on Gaussian data a
//! deterministic sampler with the exact score is an affine map, and the sampled stage "exact
//! start, exact target at ε" must equal the closed-form sliced W₂² of the pushed-forward
//! Gaussian (minus the statistic's floor, within 3 standard errors); on a mixture a deliberately
//! wrong score shows up as the score contribution, the chain adds up, and with every source
//! replaced the distance falls to the floor.

use ndarray::{Array1, Array2};
use scoresde::data::{Dataset, GaussianMixture};
use scoresde::decompose::{
    affine_map, decompose, diffused_draws, directions, gaussian_sliced_w2, projected_quantiles,
    sliced_w2, sliced_w2_to_law, DecomposeSpec, Source,
};
use scoresde::model::Model;
use scoresde::sample::SampleSpec;
use scoresde::score::MixtureScore;
use scoresde::sde::{Sde, SdeSpec};
use std::sync::Arc;

fn gaussian() -> GaussianMixture {
    let cov = Array2::from_diag(&Array1::from(vec![0.25, 1.0, 2.25]));
    GaussianMixture::new(
        vec![1.0],
        ndarray::array![[1.0, -0.5, 0.3]],
        vec![scoresde::data::Covariance::full(cov).unwrap()],
    )
    .unwrap()
}

fn exact(m: &GaussianMixture, sde: &Arc<dyn Sde>) -> Model {
    Model::new(
        MixtureScore::new(Arc::new(m.clone()), sde.clone()),
        sde.clone(),
    )
    .unwrap()
}

/// N(μ, Σ) diffused to t: N(m μ, m² Σ + s² I).
fn diffused(g: &GaussianMixture, sde: &dyn Sde, t: f64) -> (Array1<f64>, Array2<f64>) {
    let k = sde.marginal(t);
    let c = g.covariances()[0].matrix(g.dim());
    (
        g.means().row(0).to_owned() * k.mean,
        c * (k.mean * k.mean) + Array2::<f64>::eye(g.dim()) * (k.std * k.std),
    )
}

#[test]
fn sampled_discretisation_error_equals_the_closed_form_on_gaussian_data() {
    let g = gaussian();
    let sde: Arc<dyn Sde> = SdeSpec::default().build(|| 1.0).unwrap();
    let model = exact(&g, &sde);
    let eps = sde.default_eps();
    let dirs = directions(32, 3, 5);
    let (mt, ct) = diffused(&g, sde.as_ref(), sde.t_max());
    let (me, ce) = diffused(&g, sde.as_ref(), eps);
    let closed = |steps: usize| {
        let spec = SampleSpec {
            sampler: "ddim".parse().unwrap(),
            steps,
            eps: Some(eps),
            ..Default::default()
        };
        let (a, b) = affine_map(&model, &spec).unwrap();
        let mo = a.dot(&mt) + &b;
        let co = a.dot(&ct).dot(&a.t());
        gaussian_sliced_w2(mo.view(), co.view(), me.view(), ce.view(), dirs.view())
    };
    let (n, seeds) = (20_000, 4);
    let law_q = projected_quantiles(
        &g.diffused_mixture(sde.marginal(eps)).unwrap(),
        dirs.view(),
        n,
    );
    let (mut excess, mut excess_law) = (Vec::new(), Vec::new());
    for s in 0..seeds {
        let start = diffused_draws(&g, &model, sde.t_max(), n, 100 + s);
        let target = diffused_draws(&g, &model, eps, n, 200 + s);
        let other = diffused_draws(&g, &model, eps, n, 300 + s);
        let spec = SampleSpec {
            sampler: "ddim".parse().unwrap(),
            steps: 4,
            eps: Some(eps),
            n,
            ..Default::default()
        };
        let x = model.integrate(start, &spec, None).unwrap().x;
        // Against draws of the target (two-sample) and against the target law (one-sample).
        let w = sliced_w2(x.view(), target.view(), dirs.view());
        let floor = sliced_w2(other.view(), target.view(), dirs.view());
        excess.push(w - floor);
        let w1 = sliced_w2_to_law(x.view(), dirs.view(), law_q.view());
        let floor1 = sliced_w2_to_law(other.view(), dirs.view(), law_q.view());
        excess_law.push(w1 - floor1);
    }
    let (c4, c16) = (closed(4), closed(16));
    for (what, v) in [("two-sample", &excess), ("to the law", &excess_law)] {
        let mean = v.iter().sum::<f64>() / seeds as f64;
        let se = (v.iter().map(|e| (e - mean).powi(2)).sum::<f64>()
            / (seeds as f64 * (seeds - 1) as f64))
            .sqrt();
        eprintln!("DDIM 4 steps, {what}: sampled SW2² − floor {mean:.5} ± {se:.5}, closed form {c4:.5} (16 steps: {c16:.5})");
        assert!(
            (mean - c4).abs() < 3.0 * se + 0.02 * c4,
            "{what}: {mean} vs {c4}"
        );
        // Power: the closed form of another step count is far outside.
        assert!((mean - c16).abs() > 3.0 * se + 0.02 * c16, "{what}");
    }
    // A stochastic sampler has no affine map.
    let em = SampleSpec {
        sampler: "em".parse().unwrap(),
        steps: 4,
        ..Default::default()
    };
    let e = affine_map(&model, &em).unwrap_err().to_string();
    assert!(e.contains("stochastic") && !e.contains('\n'), "{e}");
}

#[test]
fn a_wrong_score_shows_as_the_score_contribution_and_the_parts_add_up() {
    let data = Dataset::from_spec("8gaussians").unwrap();
    let mix = data.mixture().unwrap().clone();
    let sde: Arc<dyn Sde> = SdeSpec::default().build(|| 1.0).unwrap();
    let truth = exact(&mix, &sde);
    let wrong = exact(&mix.widened(1.5).unwrap(), &sde);
    let spec = DecomposeSpec {
        sampler: "dpm-solver-pp2m".parse().unwrap(),
        steps: 8,
        n: 2000,
        seeds: 4,
        seed: 7,
        ..Default::default()
    };
    let dec = decompose(&wrong, &truth, &mix, &spec).unwrap();
    let get = |v: &[(Source, scoresde::decompose::Estimate)], s: Source| {
        v.iter().find(|p| p.0 == s).unwrap().1
    };
    let score = get(&dec.contributions, Source::Score);
    let disc = get(&dec.contributions, Source::Discretisation);
    eprintln!("{dec:#?}");
    assert!(
        score.mean > 3.0 * score.stderr && score.mean > 0.0,
        "{score:?}"
    );
    assert!(disc.mean > 3.0 * disc.stderr, "{disc:?}");
    let sum: f64 = dec.contributions.iter().map(|c| c.1.mean).sum();
    let last = dec.chain.last().unwrap().1;
    assert!((sum - (dec.full.mean - last.mean)).abs() < 1e-12);
    // Everything replaced: the floor, within 3 standard errors.
    let gap = (last.mean - dec.floor.mean).abs();
    assert!(
        gap < 3.0 * (last.stderr + dec.floor.stderr),
        "{last:?} vs {:?}",
        dec.floor
    );
    // The exact model has no score contribution at all (the same runs).
    let clean = decompose(&truth, &truth, &mix, &spec).unwrap();
    assert_eq!(get(&clean.contributions, Source::Score).mean, 0.0);
    // Faults.
    let one = DecomposeSpec {
        seeds: 1,
        ..spec.clone()
    };
    let e = decompose(&truth, &truth, &mix, &one)
        .unwrap_err()
        .to_string();
    assert!(e.contains("≥ 2 seeds") && !e.contains('\n'), "{e}");
    let rect: Arc<dyn Sde> = Arc::new(scoresde::path::RectifiedPath::default());
    let e = decompose(&exact(&mix, &rect), &truth, &mix, &spec)
        .unwrap_err()
        .to_string();
    assert!(e.contains("share a path"), "{e}");
}
