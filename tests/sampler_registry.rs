//! Every registered sampler, without a hand-written row: each name of the sampler table runs
//! on every path (or refuses with a one-line error naming the cause), its counted NFE equals
//! its declared formula, its output is finite, and it refuses every setting it does not read.
//! The newer samplers (UniPC, DEIS, iPNDM, SA-Solver, SEEDS-2, ER-SDE) must run on every path.

mod common;

use scoresde::path::{EdmPath, Path, RectifiedPath, TrigPath};
use scoresde::sample::config::NAMES;
use scoresde::sample::{sample, SampleSpec, Sampler};
use scoresde::score::MixtureScore;
use scoresde::sde::{SubVpSde, VeSde, VpSde};
use std::sync::Arc;

/// The samplers that must run on every path.
const EVERY_PATH: &[&str] = &["unipc", "deis", "ipndm", "sa-solver", "seeds-2", "er-sde"];

fn paths() -> Vec<Arc<dyn Path>> {
    vec![
        Arc::new(VpSde::default()),
        Arc::new(SubVpSde::default()),
        Arc::new(VeSde::new(0.02, 30.0).unwrap()),
        Arc::new(EdmPath { sigma_max: 40.0 }),
        Arc::new(RectifiedPath::default()),
        Arc::new(TrigPath),
    ]
}

#[test]
fn every_sampler_runs_counts_its_nfe_or_refuses_in_one_line() {
    let mixture = common::builtin("8gaussians");
    for &name in NAMES {
        let sampler: Sampler = name.parse().unwrap();
        for path in paths() {
            let score = MixtureScore::new(mixture.clone(), path.clone());
            for steps in [1usize, 2, 5, 12] {
                let spec = SampleSpec {
                    sampler: sampler.clone(),
                    steps,
                    n: 40,
                    seed: 3,
                    ..Default::default()
                };
                let declared = sampler.nfe(steps, None).unwrap();
                match sample(path.as_ref(), &score, &spec, None) {
                    Ok(run) => {
                        if let Some(d) = declared {
                            assert_eq!(
                                run.nfe,
                                d as f64,
                                "{name} on {} with N = {steps}",
                                path.name()
                            );
                        }
                        assert!(
                            run.x.iter().all(|v| v.is_finite()),
                            "{name} on {}",
                            path.name()
                        );
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        assert!(
                            !EVERY_PATH.contains(&name),
                            "{name} must run on {} (N = {steps}): {msg}",
                            path.name()
                        );
                        assert!(!msg.contains('\n') && !msg.is_empty(), "{name}: {msg:?}");
                    }
                }
            }
        }
    }
}

/// Every setting of any sampler, given to a sampler that does not have it, is refused by name.
#[test]
fn every_sampler_refuses_the_settings_it_does_not_read() {
    let all: Vec<String> = {
        let mut v: Vec<String> = NAMES
            .iter()
            .flat_map(|n| n.parse::<Sampler>().unwrap().settings())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    for &name in NAMES {
        let own = name.parse::<Sampler>().unwrap().settings();
        for setting in all.iter().filter(|s| !own.contains(s)) {
            let text = format!("sampler = \"{name}\"\n{setting} = 1");
            let e = toml::from_str::<Sampler>(&text).expect_err(&text);
            assert!(e.to_string().contains(setting.as_str()), "{text}: {e}");
        }
    }
}

/// Orders and settings out of range: one-line errors naming the setting.
#[test]
fn out_of_range_settings_are_refused() {
    for (table, what) in [
        ("sampler = \"unipc\"\norder = 4", "order"),
        ("sampler = \"unipc\"\norder = 0", "order"),
        ("sampler = \"deis\"\norder = 5", "order"),
        ("sampler = \"ipndm\"\norder = 0", "order"),
        (
            "sampler = \"sa-solver\"\npredictor_order = 5",
            "predictor_order",
        ),
        (
            "sampler = \"sa-solver\"\ncorrector_order = 5",
            "corrector_order",
        ),
        ("sampler = \"sa-solver\"\ntau = -0.1", "tau"),
        (
            "sampler = \"sa-solver\"\ntau_window = [0.8, 0.2]",
            "tau_window",
        ),
        ("sampler = \"seeds-2\"\nr = 0.0", "r"),
        ("sampler = \"seeds-2\"\neta = -1.0", "eta"),
        ("sampler = \"er-sde\"\norder = 4", "order"),
    ] {
        let s: Sampler = toml::from_str(table).unwrap();
        let e = s
            .method(None)
            .err()
            .unwrap_or_else(|| panic!("{table} accepted"));
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("`{what}`")) && !msg.contains('\n'),
            "{table}: {msg}"
        );
    }
}
