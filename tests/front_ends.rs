//! What the front ends (CLI flags, TOML files, Python keywords) share: one serde type per
//! setting, flat run-config overrides, and an external whole-batch field.

use ndarray::{Array2, ArrayView2};
use scoresde::data::Dataset;
use scoresde::model::Model;
use scoresde::sample::SampleSpec;
use scoresde::score::convert::Prediction;
use scoresde::score::{External, MixtureScore};
use scoresde::sde::{SdeSpec, VpSde};
use scoresde::solvers::Time;
use scoresde::train::RunConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn overrides_reach_every_table_and_unknown_names_are_listed() {
    let mut o = toml::Table::new();
    o.insert("hidden".into(), 48.into());
    o.insert("path".into(), "rectified".into());
    o.insert("path_sigma_min".into(), 0.01.into());
    o.insert("ema_decay".into(), 0.99.into());
    o.insert("discrete".into(), 100.into());
    o.insert("data".into(), "moons".into());
    let cfg = RunConfig::default().with_overrides(&o).unwrap();
    assert_eq!(cfg.net.hidden, 48);
    assert_eq!(cfg.sde.kind, scoresde::sde::SdeKind::Rectified);
    assert_eq!(cfg.sde.path_sigma_min, 0.01);
    assert_eq!(cfg.train.ema_decay, 0.99);
    assert_eq!(cfg.train.discrete, Some(100));
    assert_eq!(cfg.data, "moons");
    // A whole path as one table.
    let mut whole = toml::Table::new();
    let path: toml::Table = toml::from_str("kind = \"ve\"\nsigma_max = 5.0").unwrap();
    whole.insert("path".into(), path.into());
    let cfg = RunConfig::default().with_overrides(&whole).unwrap();
    assert_eq!(cfg.sde.kind, scoresde::sde::SdeKind::Ve);
    assert_eq!(cfg.sde.sigma_max, Some(5.0));
    let mut bad = toml::Table::new();
    bad.insert("hiden".into(), 3.into());
    let e = RunConfig::default()
        .with_overrides(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`hiden`") && e.contains("hidden") && e.contains("beta_max"),
        "{e}"
    );
    let mut wrong_type = toml::Table::new();
    wrong_type.insert("hidden".into(), "wide".into());
    assert!(RunConfig::default().with_overrides(&wrong_type).is_err());
    // Every override name is a field somewhere (none of the tables shares one).
    let names = RunConfig::override_names();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
}

/// An external field returning the exact ε is called once per step on the whole batch and
/// samples what the built-in exact model samples; a field that fails stops the run.
#[test]
fn external_whole_batch_field() {
    let data = Dataset::from_spec("8gaussians").unwrap();
    let model = Model::exact(&data, &SdeSpec::default()).unwrap();
    let oracle = MixtureScore::new(data.mixture().unwrap().clone(), Arc::new(VpSde::default()));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let f = Box::new(move |t: Time<'_>, x: ArrayView2<f64>| {
        c.fetch_add(1, Ordering::SeqCst);
        let Time::Shared(t) = t else { return Err(()) };
        Ok(oracle.eps(t, x))
    });
    let path = model.sde().clone();
    let ext = External::new(f, 2, Prediction::Eps, 0.0, path.clone()).unwrap();
    let external = Model::new(ext, path.clone()).unwrap();
    for sampler in ["em", "pf-heun", "ddim", "dpm-solver-pp2m"] {
        calls.store(0, Ordering::SeqCst);
        let spec = SampleSpec {
            sampler: sampler.parse().unwrap(),
            steps: 30,
            n: 700,
            ..Default::default()
        };
        let a = model.sample(&spec, None).unwrap();
        let b = external.sample(&spec, None).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst) as f64, b.nfe, "{sampler}");
        let err = (&a.x - &b.x).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v));
        assert!(err < 1e-9, "{sampler}: {err}");
    }
    let failing = Box::new(|_: Time<'_>, _: ArrayView2<f64>| Err::<Array2<f64>, ()>(()));
    let ext = External::new(failing, 2, Prediction::Eps, 0.0, path.clone()).unwrap();
    let broken = Model::new(ext, path).unwrap();
    let spec = SampleSpec {
        steps: 30,
        n: 10,
        ..Default::default()
    };
    assert!(broken.sample(&spec, None).is_err());
}
