//! Hostile input and tampered run directories: each case failed before the fix it guards
//! (issue: "runs that cannot be turned against each other"). A run directory reaches nothing
//! outside itself and has one writer; resume checks its data; limits hold before any
//! allocation; `test` rejects absurd samples at every size it accepts and can reject at every
//! permutation count it accepts; a closed stdout ends quietly. Slower cases (signals at random
//! points of a save) are `#[ignore]`d: `cargo test --release --test hostile -- --ignored`.

use scoresde::nn::NetConfig;
use scoresde::sde::SdeSpec;
use scoresde::train::{RunConfig, RunDir, TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scoresde"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A non-zero exit (`code`) with one stderr line containing `needle`.
fn assert_refused(o: &Output, code: i32, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "want one line, got: {e}");
    assert!(e.contains(needle), "stderr {e:?} lacks {needle:?}");
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A tiny trained run in `dir` (40 steps).
fn train(dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--data",
        "8gaussians",
        "--steps",
        "40",
        "--batch",
        "32",
        "--hidden",
        "16",
        "--out",
    ];
    args.push(p(dir));
    args.extend(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// File names and contents of a directory (the lock file apart: each writer records its
/// pid there), for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "run.lock")
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().filter_map(|e| e.ok()) {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, s.replace(from, to)).unwrap();
}

#[test]
fn a_run_directory_reaches_nothing_outside_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    let base = tmp.path().join("base");
    train(&victim, &[]);
    train(&base, &[]);
    let before = snapshot(&victim);
    let out = tmp.path().join("s.csv");
    let so = p(&out);

    // run.toml naming another run's weights: sample and resume refuse, the victim is intact.
    let evil = tmp.path().join("evil");
    copy_dir(&base, &evil);
    edit(
        &evil.join("run.toml"),
        "name = \"model.1.safetensors\"",
        "name = \"../victim/model.1.safetensors\"",
    );
    let o = run(&["sample", "--model", p(&evil), "--n", "10", "--out", so]);
    assert_refused(&o, 2, "never reads files outside its directory");
    let o = run(&["train", "--resume", "--out", p(&evil), "--steps", "80"]);
    assert_refused(&o, 2, "never reads files outside its directory");
    assert_eq!(snapshot(&victim), before, "the victim run changed");

    // An edited generation counter: refused, and no weights are lost.
    let edited = tmp.path().join("edited");
    copy_dir(&base, &edited);
    edit(&edited.join("run.toml"), "generation = 1", "generation = 0");
    let kept = snapshot(&edited);
    let o = run(&["train", "--resume", "--out", p(&edited), "--steps", "80"]);
    assert_refused(&o, 2, "generation 0");
    assert_eq!(snapshot(&edited), kept);

    // Symlinked run.toml and weight files are refused, not followed.
    #[cfg(unix)]
    for file in ["run.toml", "ema.1.safetensors"] {
        let linked = tmp.path().join(format!("linked-{file}"));
        copy_dir(&base, &linked);
        std::fs::remove_file(linked.join(file)).unwrap();
        std::os::unix::fs::symlink(victim.join(file), linked.join(file)).unwrap();
        let o = run(&["sample", "--model", p(&linked), "--n", "10", "--out", so]);
        assert_refused(&o, 2, "symbolic link");
    }
    assert!(!out.exists());
    assert_eq!(snapshot(&victim), before);

    // Stray files of a later generation (an interrupted save) are never overwritten: the
    // next save numbers past them, and resuming twice keeps exactly one generation.
    let stray = tmp.path().join("stray");
    copy_dir(&base, &stray);
    std::fs::write(stray.join("model.2.safetensors"), b"not mine").unwrap();
    let o = run(&["train", "--resume", "--out", p(&stray), "--steps", "80"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(stray.join("model.2.safetensors")).unwrap(),
        b"not mine"
    );
    assert!(stray.join("model.3.safetensors").is_file());
    assert!(!stray.join("model.1.safetensors").exists());
}

#[test]
fn one_writer_per_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let held = RunDir::new(&dir).lock().unwrap();
    let o = run(&[
        "train",
        "--data",
        "8gaussians",
        "--steps",
        "20",
        "--batch",
        "16",
        "--out",
        p(&dir),
    ]);
    assert_refused(&o, 2, &format!("pid {}", std::process::id()));
    assert!(!dir.join("run.toml").exists());
    drop(held);
    train(&dir, &[]);
    // A lock left by a dead holder is no lock: flock is released with the process.
    let o = run(&["train", "--resume", "--out", p(&dir), "--steps", "60"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A failed fresh run leaves no directory behind (lock file included).
    let fresh = tmp.path().join("fresh");
    let o = run(&[
        "train",
        "--data",
        "no-such.csv",
        "--steps",
        "20",
        "--out",
        p(&fresh),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!fresh.exists());
}

fn small_config() -> RunConfig {
    RunConfig {
        data: "8gaussians".into(),
        sde: SdeSpec::default(),
        net: NetConfig {
            hidden: 16,
            time_dim: 8,
            ..Default::default()
        },
        train: TrainConfig {
            steps: 1000,
            batch: 16,
            ..Default::default()
        },
    }
}

#[test]
fn readers_see_a_complete_checkpoint_while_a_writer_saves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("r"));
    let mut t = Trainer::new(small_config()).unwrap();
    let _lock = dir.lock().unwrap();
    t.step().unwrap();
    dir.save(&t).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..150 {
                t.step().unwrap();
                dir.save(&t).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            dir.load_mlp(true)
                .expect("a reader met a half-replaced checkpoint");
            reads += 1;
        }
        assert!(reads > 0);
    });
}

#[test]
fn resume_and_load_check_the_data_they_were_trained_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d.csv");
    let run_dir = tmp.path().join("r");
    draws("8gaussians", 300, 0, &data);
    let o = run(&[
        "train",
        "--data",
        p(&data),
        "--steps",
        "30",
        "--batch",
        "16",
        "--hidden",
        "16",
        "--out",
        p(&run_dir),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same file rewritten with 3-D points.
    let mut text = String::from("x0,x1,x2\n");
    for i in 0..300 {
        text.push_str(&format!("{},{},{}\n", i % 7, i % 5, i % 3));
    }
    std::fs::write(&data, text).unwrap();
    let o = run(&["train", "--resume", "--out", p(&run_dir), "--steps", "60"]);
    assert_refused(&o, 2, "changed since this run was trained");
    let out = tmp.path().join("s.csv");
    let o = run(&[
        "sample",
        "--model",
        p(&run_dir),
        "--n",
        "5",
        "--out",
        p(&out),
    ]);
    assert_refused(&o, 2, "changed since this run was trained");
}

#[test]
fn the_prior_must_cover_p_t_and_covariances_obey_the_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s.csv");
    let big = tmp.path().join("big.toml");
    // Inside the mixture file limits (means and stds up to 1e6), far outside VP's prior.
    std::fs::write(
        &big,
        "[[components]]\nweight = 1\nmean = [1e6, -1e6]\nstd = 1.0\n\n[[components]]\nweight = 1\nmean = [0.0, 0.0]\nstd = 1e6\n",
    )
    .unwrap();
    for sde in ["vp", "subvp"] {
        for cmd in ["sample", "nll", "elbo"] {
            let mut args = vec![cmd, "--data", p(&big), "--sde", sde, "--out", p(&out)];
            if cmd != "sample" {
                args.extend(["--exact", "--n", "10"]);
            }
            assert_refused(&run(&args), 2, "does not cover p_T");
            assert!(!out.exists());
        }
    }
    // VE with σ_max past the data's scale covers it.
    let o = run(&[
        "sample",
        "--data",
        p(&big),
        "--sde",
        "ve",
        "--n",
        "50",
        "--steps",
        "50",
        "--out",
        p(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Power: the bound passes every builtin mixture under every SDE.
    for data in ["8gaussians", "25gaussians", "ncsn"] {
        for sde in ["vp", "subvp", "ve"] {
            let o = run(&[
                "sample",
                "--data",
                data,
                "--sde",
                sde,
                "--n",
                "10",
                "--steps",
                "10",
                "--out",
                p(&out),
            ]);
            assert!(o.status.success(), "{data} {sde}: {}", stderr(&o));
        }
    }
    // A tiny β leaves p_T at the data: refused the same way.
    let o = run(&[
        "sample",
        "--data",
        "ncsn",
        "--beta-min",
        "1e-300",
        "--beta-max",
        "1e-299",
        "--out",
        p(&out),
    ]);
    assert_refused(&o, 2, "does not cover p_T");

    let mixture = |cov: &str| {
        let f = tmp.path().join("cov.toml");
        std::fs::write(
            &f,
            format!("[[components]]\nweight = 1\nmean = [0.0, 0.0]\ncov = {cov}\n"),
        )
        .unwrap();
        run(&["data", "--data", p(&f), "--n", "5", "--out", p(&out)])
    };
    assert_refused(
        &mixture("[[1e-300, 0.0], [0.0, 1e-300]]"),
        2,
        "outside [1e-6",
    );
    assert_refused(
        &mixture("[[1e-320, 0.0], [0.0, 1e-320]]"),
        2,
        "outside [1e-6",
    );
    assert_refused(&mixture("[[1e12, 0.0], [0.0, 1.0]]"), 2, "condition number");
    assert_refused(
        &mixture("[[1.0, 2.0], [2.0, 1.0]]"),
        2,
        "not positive definite",
    );
}

#[test]
fn sizes_and_work_are_bounded_before_any_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s.csv");
    let o = p(&out);
    let huge = "100000000000";
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sampler",
                "ddpm",
                "--discrete",
                huge,
            ],
            "discrete schedule",
        ),
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sampler",
                "annealed-langevin",
                "--levels",
                huge,
            ],
            "--levels",
        ),
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sampler",
                "pc",
                "--corrector-steps",
                huge,
            ],
            "--corrector-steps",
        ),
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sampler",
                "pc",
                "--corrector-steps",
                "1000000",
                "--steps",
                "1000",
            ],
            "score evaluations per particle",
        ),
        (
            &[
                "elbo",
                "--exact",
                "--data",
                "8gaussians",
                "--continuous",
                "--draws",
                huge,
                "--n",
                "10",
            ],
            "--draws",
        ),
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sde",
                "ve",
                "--sigma-max",
                "1e170",
            ],
            "sigma_max",
        ),
    ];
    for (args, needle) in cases {
        let mut all = args.to_vec();
        all.extend(["--out", o]);
        let started = std::time::Instant::now();
        assert_refused(&run(&all), 2, needle);
        assert!(
            started.elapsed().as_secs() < 5,
            "{args:?} worked before refusing"
        );
        assert!(!out.exists());
    }
}

/// `n` exact draws (seed `seed`) of `data` written to `out` by `scoresde data`.
fn draws(data: &str, n: usize, seed: u64, out: &Path) {
    let (n, seed) = (n.to_string(), seed.to_string());
    let o = run(&[
        "data",
        "--data",
        data,
        "--n",
        &n,
        "--seed",
        &seed,
        "--out",
        p(out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `n` exact draws of 8gaussians written to `path`, with `extra` rows appended.
fn samples_with(path: &Path, n: usize, extra: &[&str]) {
    draws("8gaussians", n, 0, path);
    let mut text = std::fs::read_to_string(path).unwrap();
    for row in extra {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn test_rejects_absurd_samples_and_can_reject_at_its_default_count() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("x.csv");
    // α = 0.01, n = 301, seed 0, the default (smallest sufficient) permutation count.
    for bad in ["1e150,1e150", "1e300,-1e300", "1e5,0"] {
        samples_with(&f, 300, &[bad]);
        let o = run(&["test", "--samples", p(&f), "--data", "8gaussians"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{bad}: {out}{}", stderr(&o));
        assert!(out.contains("range") && out.contains("REJECT"), "{out}");
    }
    // Power check's other side: the same exact draws without the outlier are not rejected.
    samples_with(&f, 300, &[]);
    let o = run(&["test", "--samples", p(&f), "--data", "8gaussians"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Every point the same: rejected at α = 0.01 with the default count (500 before: the kNN
    // p-value's floor 0.002 adjusted to 0.018 and nothing rejected).
    let mut text = String::from("x0,x1\n");
    for _ in 0..300 {
        text.push_str("2.0,0.0\n");
    }
    std::fs::write(&f, text).unwrap();
    let o = run(&["test", "--samples", p(&f), "--data", "8gaussians"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A count that cannot reject is refused, naming the count needed.
    let o = run(&[
        "test",
        "--samples",
        p(&f),
        "--data",
        "8gaussians",
        "--permutations",
        "299",
    ]);
    assert_refused(&o, 2, "use at least");
    // An α no allowed count can serve names α, not a flag that was never given.
    let o = run(&[
        "test",
        "--samples",
        p(&f),
        "--data",
        "8gaussians",
        "--alpha",
        "1e-7",
    ]);
    assert_refused(&o, 2, "--alpha 1e-7");
}

#[test]
fn min_p_at_the_smallest_count_rejects_a_sample_extreme_in_one_test() {
    use scoresde::stats::suite::{min_p_adjusted, PERMUTATION_SHARE, RANGE_SHARE};
    // Three tests, B resamples; the observed set is the most extreme in test 0 only, and each
    // other test's most extreme resample is a different one: the adjusted p is 3/(B + 1).
    let alpha = 0.01;
    let share = (1.0 - RANGE_SHARE) * PERMUTATION_SHARE;
    let b = ((3.0 / (alpha * share)) * (1.0 - 1e-9)).ceil() as usize - 1;
    let nulls: Vec<Vec<f64>> = (0..3)
        .map(|j| {
            (0..b)
                .map(|r| {
                    if j > 0 && r == j {
                        1e9
                    } else {
                        (r % 97) as f64
                    }
                })
                .collect()
        })
        .collect();
    let refs: Vec<&[f64]> = nulls.iter().map(Vec::as_slice).collect();
    let q = min_p_adjusted(&[1e6, 0.0, 0.0], &refs);
    assert!((q[0] - 3.0 / (b + 1) as f64).abs() < 1e-15, "{q:?}");
    assert!(
        q[0] / share <= alpha * (1.0 + 1e-9),
        "B = {b}: {}",
        q[0] / share
    );
    // One resample fewer and it cannot: the count is the smallest.
    assert!(3.0 / b as f64 / share > alpha);
}

#[test]
fn test_handles_exact_draws_in_256_dimensions() {
    let tmp = tempfile::tempdir().unwrap();
    let mix = tmp.path().join("d256.toml");
    let mean = |c: f64| vec![format!("{c}"); 256].join(", ");
    std::fs::write(
        &mix,
        format!(
            "[[components]]\nweight = 1\nmean = [{}]\nstd = 1.0\n\n[[components]]\nweight = 1\nmean = [{}]\nstd = 0.5\n",
            mean(0.5),
            mean(-0.5)
        ),
    )
    .unwrap();
    let x = tmp.path().join("x.csv");
    draws(p(&mix), 200, 7, &x);
    let o = run(&[
        "test",
        "--samples",
        p(&x),
        "--data",
        p(&mix),
        "--max-points",
        "200",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("mmd-p0"), "{out}");
}

#[test]
fn small_things_users_hit() {
    let tmp = tempfile::tempdir().unwrap();
    // A closed stdout ends quietly; a full one is one line, exit 2.
    let mut child = bin()
        .args(["datasets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    if Path::new("/dev/full").exists() {
        let o = bin()
            .args(["datasets"])
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert_refused(&o, 2, "No space left");
    }
    // Numbers in messages: no 330-digit decimals.
    let out = tmp.path().join("s.csv");
    let o = run(&[
        "train",
        "--data",
        "8gaussians",
        "--lr=-5e-324",
        "--out",
        p(&tmp.path().join("r")),
    ]);
    assert_refused(&o, 2, "-5e-324");
    // A CSV without a header is refused, not read with its first point as the header.
    let nohead = tmp.path().join("nohead.csv");
    std::fs::write(&nohead, "0.5,1.0\n0.25,2.0\n").unwrap();
    let o = run(&["test", "--samples", p(&nohead), "--data", "8gaussians"]);
    assert_refused(&o, 2, "not a header");
    // One point has no standard error.
    let o = run(&[
        "nll",
        "--exact",
        "--data",
        "8gaussians",
        "--n",
        "1",
        "--out",
        p(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.contains("no standard error") && !line.contains("NaN"),
        "{line}"
    );
    // A temporary file of a process that no longer runs is removed by the next run there.
    let stale = tmp.path().join(".scoresde-2147483-stale.tmp");
    std::fs::write(&stale, b"half").unwrap();
    let o = run(&["data", "--data", "8gaussians", "--n", "5", "--out", p(&out)]);
    assert!(o.status.success());
    assert!(!stale.exists(), "the stale temporary file survived");
    // A config that passes validation trains: heads = 2 is refused up front.
    let cfg = tmp.path().join("h.toml");
    std::fs::write(&cfg, "[net]\nheads = 2\n").unwrap();
    let o = run(&[
        "train",
        "--data",
        "8gaussians",
        "--config",
        p(&cfg),
        "--steps",
        "5",
        "--out",
        p(&tmp.path().join("h")),
    ]);
    assert_refused(&o, 2, "heads = 2");
    assert!(!tmp.path().join("h").exists());
}

#[test]
fn experiment_values_out_of_range_are_refused_and_leave_no_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/forward-reverse-2d.toml");
    let text = std::fs::read_to_string(src).unwrap();
    let bad = tmp.path().join("bad.toml");
    let line = text
        .lines()
        .find(|l| l.starts_with("times = "))
        .unwrap()
        .to_string();
    std::fs::write(&bad, text.replace(&line, "times = [2.0, -1.0]")).unwrap();
    let out = tmp.path().join("figs");
    let o = run(&["run", p(&bad), "--quick", "--out", p(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("times must lie in (0, 1], got 2"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join("forward-reverse-2d").exists());
}

/// SIGTERM at random points of a training with a checkpoint every step: no temporary file
/// survives, and the run loads at some complete checkpoint.
#[test]
#[ignore]
#[cfg(unix)]
fn sigterm_during_saves_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[train]\ncheckpoint_every = 1\n").unwrap();
    for k in 0..20u64 {
        let dir = tmp.path().join(format!("r{k}"));
        let mut child = bin()
            .args([
                "train",
                "--data",
                "8gaussians",
                "--config",
                p(&cfg),
                "--steps",
                "100000",
                "--batch",
                "16",
                "--hidden",
                "16",
                "--out",
                p(&dir),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300 + 37 * k));
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
        let temps: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".scoresde-"))
            .collect();
        assert!(temps.is_empty(), "try {k}: {temps:?}");
        RunDir::new(&dir)
            .load_mlp(true)
            .expect("the run does not load");
    }
}
