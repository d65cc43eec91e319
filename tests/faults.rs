//! Fault injection (its own test binary: the injected failure is process-wide). A checkpoint
//! save that fails at any of its writes — as on a full disk or when killed between two renames —
//! leaves the run directory loading at its last complete checkpoint, with no temporary file
//! and no part of the failed generation behind.

use scoresde::nn::NetConfig;
use scoresde::sde::SdeSpec;
use scoresde::train::{RunConfig, RunDir, TrainConfig, Trainer};

#[test]
fn an_interrupted_save_leaves_the_last_complete_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        data: "8gaussians".into(),
        sde: SdeSpec::default(),
        net: NetConfig {
            hidden: 16,
            time_dim: 8,
            fourier: 4,
            ..Default::default()
        },
        train: TrainConfig {
            steps: 10,
            batch: 32,
            ..Default::default()
        },
    };
    let mut t = Trainer::new(cfg).unwrap();
    t.step().unwrap();
    let run = RunDir::new(dir.path().join("r"));
    run.save(&t).unwrap();
    let first = t.state.clone();
    t.step().unwrap();
    let second = t.state.clone();
    let (mut failed, mut saved) = (0, false);
    // Fail the k-th write of the save, for every k until a save gets through.
    for k in 0..20 {
        scoresde::io::inject_write_failure(Some(k));
        let result = run.save(&t);
        scoresde::io::inject_write_failure(None);
        let loaded = run.resume().expect("the run no longer loads").state;
        let leftovers: Vec<_> = std::fs::read_dir(&run.path)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        // A failed save removes the part of its generation it had written.
        let weights = std::fs::read_dir(&run.path)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
            .count();
        assert!(
            result.is_ok() || weights == 3,
            "failure at write {k} left {weights} weight files"
        );
        match result {
            Err(e) => {
                assert!(!saved, "a later write failed after a complete save");
                assert!(e.to_string().contains("injected"), "{e}");
                assert_eq!(loaded, first, "failure at write {k} damaged the checkpoint");
                failed += 1;
            }
            Ok(()) => {
                assert_eq!(loaded, second);
                saved = true;
                break;
            }
        }
    }
    assert!(
        saved && failed >= 6,
        "{failed} failing writes before a save went through"
    );
    // The previous generation's weight files are gone once the new one is complete.
    let weights: Vec<String> = std::fs::read_dir(&run.path)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    assert_eq!(weights.len(), 3, "{weights:?}");
}
