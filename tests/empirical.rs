//! The empirical score as a model: its streamed softmax against an independent computation
//! (N Gaussian components through the mixture oracle for a positive bandwidth; a direct
//! two-pass softmax for point masses), on the VP and rectified paths, at shared and per-row
//! times; faults as one-line errors; and what it samples: copies of the training points.

use ndarray::{Array2, ArrayView2};
use scoresde::data::GaussianMixture;
use scoresde::path::RectifiedPath;
use scoresde::sample::{sample, SampleSpec};
use scoresde::score::{EmpiricalScore, MixtureScore, Score};
use scoresde::sde::{Sde, VpSde};
use scoresde::solvers::Time;
use scoresde::stats::memorisation::{copy_fraction, distance_ratio, nearest, spacing};
use std::sync::Arc;

/// Deterministic, well-spread points (a low-discrepancy sequence scaled to [−2, 2]^d).
fn points(n: usize, d: usize) -> Array2<f64> {
    let phi = |j: usize| (2.0 + j as f64).sqrt().fract();
    Array2::from_shape_fn((n, d), |(i, j)| {
        4.0 * (((i + 1) as f64 * phi(j) + 0.31 * j as f64).fract()) - 2.0
    })
}

fn paths() -> Vec<Arc<dyn Sde>> {
    vec![
        Arc::new(VpSde::default()),
        Arc::new(RectifiedPath::default()),
    ]
}

fn worst(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f64::max)
}

/// Bandwidth h > 0: the same law as N isotropic Gaussians N(x⁽ⁱ⁾, h²I), so score, log p_t,
/// denoiser and velocity match the mixture oracle to 1e-9, across several point blocks.
#[test]
fn smoothed_empirical_field_equals_the_mixture_oracle() {
    let (n, d, h) = (2500, 3, 0.3);
    let train = points(n, d);
    let x = points(200, d).mapv(|v| 1.3 * v + 0.1);
    for sde in paths() {
        let emp = EmpiricalScore::new(train.clone(), h, sde.clone()).unwrap();
        let mix = GaussianMixture::isotropic(vec![1.0; n], train.clone(), &vec![h; n]).unwrap();
        let oracle = MixtureScore::new(Arc::new(mix), sde.clone());
        for t in [0.02, 0.3, 0.9] {
            let mut got = Array2::zeros(x.raw_dim());
            emp.score(Time::Shared(t), x.view(), got.view_mut());
            let want = scoresde::score::par_score(&oracle, Time::Shared(t), x.view());
            assert!(
                worst(got.view(), want.view()) < 1e-9,
                "{} t={t}: score",
                sde.name()
            );
            let lp = emp.log_prob(Time::Shared(t), x.view());
            let lw = oracle.log_prob(t, x.view());
            let e = lp
                .iter()
                .zip(&lw)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(e < 1e-9, "{} t={t}: log p {e:e}", sde.name());
            let dn = emp.denoise(Time::Shared(t), x.view());
            assert!(worst(dn.view(), oracle.denoise(t, x.view()).view()) < 1e-9);
            let mut u = Array2::zeros(x.raw_dim());
            assert!(emp.velocity(Time::Shared(t), x.view(), u.view_mut()));
            assert!(worst(u.view(), oracle.velocity_at(t, x.view()).view()) < 1e-8);
        }
        // Per-row times give each row what a shared call at its time gives.
        let ts: Vec<f64> = (0..x.nrows())
            .map(|i| 0.05 + 0.9 * i as f64 / 200.0)
            .collect();
        let mut per = Array2::zeros(x.raw_dim());
        emp.score(Time::PerRow(&ts), x.view(), per.view_mut());
        for i in [0, 77, 199] {
            let xi = x.slice(ndarray::s![i..i + 1, ..]);
            let mut one = Array2::zeros((1, d));
            emp.score(Time::Shared(ts[i]), xi, one.view_mut());
            assert!(worst(per.slice(ndarray::s![i..i + 1, ..]), one.view()) < 1e-12);
        }
    }
}

/// Point masses (h = 0) against a direct two-pass softmax written here.
#[test]
fn empirical_score_equals_a_direct_softmax() {
    let (n, d) = (3000, 5);
    let train = points(n, d);
    let x = points(64, d).mapv(|v| 0.7 * v - 0.2);
    for sde in paths() {
        let emp = EmpiricalScore::new(train.clone(), 0.0, sde.clone()).unwrap();
        for t in [0.05, 0.5] {
            let k = sde.marginal(t);
            let v = k.std * k.std;
            let mut want = Array2::<f64>::zeros(x.raw_dim());
            for (xr, mut o) in x.rows().into_iter().zip(want.rows_mut()) {
                let l: Vec<f64> = train
                    .rows()
                    .into_iter()
                    .map(|p| -(&xr - &(&p * k.mean)).mapv(|e| e * e).sum() / (2.0 * v))
                    .collect();
                let mx = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = l.iter().map(|a| (a - mx).exp()).collect();
                let z: f64 = w.iter().sum();
                let mut bar = ndarray::Array1::<f64>::zeros(d);
                for (wi, p) in w.iter().zip(train.rows()) {
                    bar.scaled_add(wi / z, &p);
                }
                o.assign(&((&bar * k.mean - xr) / v));
            }
            let mut got = Array2::zeros(x.raw_dim());
            emp.score(Time::Shared(t), x.view(), got.view_mut());
            assert!(
                worst(got.view(), want.view()) < 1e-9,
                "{} t={t}",
                sde.name()
            );
        }
    }
}

#[test]
fn bad_training_sets_are_one_line_errors() {
    let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
    let mut dup = points(10, 2);
    let row3 = dup.row(3).to_owned();
    dup.row_mut(7).assign(&row3);
    let mut nan = points(10, 2);
    nan[[4, 1]] = f64::NAN;
    for (x, h, needle) in [
        (Array2::zeros((0, 2)), 0.0, "at least one point"),
        (dup, 0.0, "training points 3 and 7 are equal"),
        (nan, 0.0, "training point 4 has a non-finite"),
        (points(10, 2), -0.1, "bandwidth must be finite and ≥ 0"),
    ] {
        let e = EmpiricalScore::new(x, h, sde.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(needle) && !e.contains('\n'), "{e}");
    }
}

/// The exact empirical score memorises: PF-ODE samples (DPM-Solver++(2M), 100 steps, to
/// t = 1e-3, then the denoiser) of N = 50 points in d = 2 and d = 8 are all copies (nearest training point closer
/// than a third of that point's spacing) and lie far closer to the training set than fresh
/// draws do; the smoothed version with h = the median spacing copies far less (power).
#[test]
fn the_empirical_score_copies_its_training_points() {
    for d in [2, 8] {
        let train = points(50, d);
        let gap = {
            let mut g = spacing(train.view());
            g.sort_by(f64::total_cmp);
            g[g.len() / 2]
        };
        let sde: Arc<dyn Sde> = Arc::new(VpSde::default());
        let spec = SampleSpec {
            n: 500,
            seed: 3,
            steps: 100,
            sampler: "dpm-solver-pp2m".parse().unwrap(),
            denoise: Some(true),
            ..Default::default()
        };
        let fresh = points(550, d).slice(ndarray::s![50.., ..]).to_owned();
        let emp = EmpiricalScore::new(train.clone(), 0.0, sde.clone()).unwrap();
        let x = sample(sde.as_ref(), &emp, &spec, None).unwrap().x;
        let copies = copy_fraction(x.view(), train.view(), 1.0 / 3.0);
        let ratio = distance_ratio(x.view(), train.view(), fresh.view());
        let smooth = EmpiricalScore::new(train.clone(), gap, sde.clone()).unwrap();
        let y = sample(sde.as_ref(), &smooth, &spec, None).unwrap().x;
        let smooth_copies = copy_fraction(y.view(), train.view(), 1.0 / 3.0);
        eprintln!("d={d}: copies {copies:.3}, distance ratio {ratio:.4}; smoothed (h = {gap:.3}) copies {smooth_copies:.3}");
        assert!(copies == 1.0 && ratio < 0.1, "d={d}: {copies}, {ratio}");
        assert!(
            smooth_copies < 0.5,
            "d={d}: smoothed copies {smooth_copies}"
        );
    }
    // The statistics themselves on a known case: a point at a training point is a copy.
    let train = points(20, 2);
    let (j, dist) = nearest(train.slice(ndarray::s![5..6, ..]), train.view())[0];
    assert_eq!((j, dist), (5, 0.0));
}
