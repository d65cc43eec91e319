//! The command line: bad input gives one clear line, a non-zero exit and no output file;
//! same seed, same bytes, whatever the thread count or chunk size; `test` exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scoresde"))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts a failed run: non-zero exit, one stderr line containing `needle`, no file at `out`.
fn assert_fails(o: &Output, needle: &str, out: &Path) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "want one line, got: {e}");
    assert!(e.contains(needle), "stderr {e:?} lacks {needle:?}");
    assert!(!out.exists(), "{} was written", out.display());
    let leftovers: Vec<PathBuf> = out
        .parent()
        .and_then(|p| std::fs::read_dir(p).ok())
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_input_is_one_clear_line_and_no_file() {
    let dir = tmp();
    let out = dir.path().join("s.csv");
    let o = out.to_str().unwrap();
    // Bad arguments: (arguments before --out, expected cause).
    let cases: [(&[&str], &str); 9] = [
        (
            &["sample", "--data", "9gaussians"],
            "unknown dataset '9gaussians'",
        ),
        (&["data", "--data", "nope"], "unknown dataset"),
        (
            &["sample", "--data", "8gaussians", "--steps", "0"],
            "--steps",
        ),
        (&["sample", "--data", "8gaussians", "--eps", "0"], "--eps"),
        (&["sample", "--data", "8gaussians", "--eps", "1.5"], "--eps"),
        (&["sample", "--data", "8gaussians", "--steps", "-3"], "-3"),
        (
            &["sample", "--data", "8gaussians", "--sampler", "magic"],
            "magic",
        ),
        (&["sample", "--data", "moons"], "no exact score"),
        (&["data", "--data", "8gaussians", "--n", "0"], "--n"),
    ];
    for (args, cause) in cases {
        let mut all = args.to_vec();
        all.extend(["--out", o]);
        assert_fails(&run(&all), cause, &out);
    }
    let unwritable = dir.path().join("no/such/dir/s.csv");
    assert_fails(
        &run(&[
            "sample",
            "--data",
            "8gaussians",
            "--out",
            unwritable.to_str().unwrap(),
        ]),
        "cannot write",
        &unwritable,
    );

    // Bad mixture files: (content, expected cause).
    let toml = dir.path().join("m.toml");
    let cases = [
        ("[[components]]\nweight = 0.5\nmean = [0.0, 1.0\n", "malformed mixture TOML at line 3"),
        ("[[components]]\nweight = 1.0\nmean = [0.0, 0.0]\ncov = [[1.0, 2.0], [2.0, 1.0]]\n", "not positive definite"),
        ("[[components]]\nweight = 1.0\nmean = [0.0, 0.0]\nstd = 1.0\ncolour = 3\n", "unknown field `colour`"),
        ("[[components]]\nweight = 1.0\nmean = [0.0, 0.0]\nstd = 1.0\n[[components]]\nweight = 1.0\nmean = [0.0]\nstd = 1.0\n", "component 1"),
        ("[[components]]\nweight = -1.0\nmean = [0.0]\nstd = 1.0\n", "weight must be positive"),
    ];
    for (content, cause) in cases {
        std::fs::write(&toml, content).unwrap();
        for cmd in ["sample", "data"] {
            assert_fails(
                &run(&[cmd, "--data", toml.to_str().unwrap(), "--out", o]),
                cause,
                &out,
            );
        }
    }
}

#[test]
fn failed_run_keeps_an_existing_file() {
    let dir = tmp();
    let out = dir.path().join("s.csv");
    std::fs::write(&out, "x0,x1\n1,2\n").unwrap();
    let r = run(&[
        "sample",
        "--data",
        "8gaussians",
        "--steps",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "x0,x1\n1,2\n");
}

#[test]
fn sample_is_reproducible_across_threads_and_chunks_and_reports_nfe() {
    let dir = tmp();
    let mut files = vec![];
    for (threads, chunk) in [("1", "0"), ("2", "0"), ("2", "13")] {
        let out = dir.path().join(format!("s{threads}_{chunk}.csv"));
        let o = bin()
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "sample",
                "--data",
                "8gaussians",
                "--steps",
                "200",
                "--n",
                "500",
                "--seed",
                "5",
                "--chunk",
                chunk,
            ])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("nfe=200") && e.contains("wall="), "summary: {e}");
        files.push(std::fs::read(&out).unwrap());
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]), "outputs differ");
    let text = String::from_utf8(files.remove(0)).unwrap();
    assert!(text.starts_with("x0,x1\n"));
    assert_eq!(text.lines().count(), 501);
}

#[test]
fn csv_round_trips_f64_exactly() {
    let dir = tmp();
    let path = dir.path().join("x.csv");
    let x = ndarray::array![
        [0.1, -1e-300],
        [std::f64::consts::PI, 1.0 / 3.0],
        [5e-324, -0.0]
    ];
    scoresde::io::write_csv(scoresde::io::AtomicFile::create(&path).unwrap(), x.view()).unwrap();
    let y = scoresde::io::read_csv(&path).unwrap();
    assert!(x
        .iter()
        .zip(y.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn test_command_exit_codes() {
    let dir = tmp();
    let good = dir.path().join("good.csv");
    let bad = dir.path().join("bad.csv");
    assert!(run(&[
        "data",
        "--data",
        "ncsn",
        "--n",
        "1500",
        "--seed",
        "3",
        "--out",
        good.to_str().unwrap()
    ])
    .status
    .success());
    let o = run(&[
        "sample",
        "--data",
        "8gaussians",
        "--steps",
        "100",
        "--n",
        "1500",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = |samples: &Path, data: &str| {
        run(&[
            "test",
            "--samples",
            samples.to_str().unwrap(),
            "--data",
            data,
        ])
    };
    // A resample count with which min-P cannot reject (k/(B+1) over a group) is refused.
    let few = run(&[
        "test",
        "--samples",
        good.to_str().unwrap(),
        "--data",
        "ncsn",
        "--permutations",
        "30",
    ]);
    assert_eq!(few.status.code(), Some(2));
    assert!(
        stderr(&few).contains("--permutations 30 cannot reject at --alpha 0.01"),
        "{}",
        stderr(&few)
    );
    let ok = t(&good, "ncsn");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    for name in ["mmd", "energy", "chi2", "logp-ks", "ks", "mmd-p0"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    assert_eq!(t(&bad, "ncsn").status.code(), Some(1));
    let missing = dir.path().join("missing.csv");
    assert_eq!(t(&missing, "ncsn").status.code(), Some(2));
    assert_eq!(
        t(&good, "bimodal-1d").status.code(),
        Some(2),
        "dimension mismatch is an input error"
    );
    std::fs::write(&bad, "x0,x1\n1,nan\n").unwrap();
    let o = t(&bad, "ncsn");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.csv:2"), "{}", stderr(&o));
}

#[test]
fn toy_datasets_and_user_mixtures_sample() {
    let dir = tmp();
    for name in [
        "moons",
        "swissroll",
        "checkerboard",
        "rings",
        "pinwheel",
        "2spirals",
        "25gaussians",
        "bimodal-1d",
    ] {
        let out = dir.path().join(format!("{name}.csv"));
        let o = run(&[
            "data",
            "--data",
            name,
            "--n",
            "100",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let x = scoresde::io::read_csv(&out).unwrap();
        assert_eq!(x.nrows(), 100);
        assert!(x.iter().all(|v| v.is_finite() && v.abs() < 20.0), "{name}");
    }
    let toml = dir.path().join("m.toml");
    std::fs::write(&toml, "[[components]]\nweight = 0.3\nmean = [-2.0, 1.0]\ncov = [[0.30, 0.10], [0.10, 0.20]]\n\n[[components]]\nweight = 0.7\nmean = [2.0, 0.0]\nstd = 0.5\n").unwrap();
    let out = dir.path().join("m.csv");
    for sde in ["vp", "subvp", "ve"] {
        let o = run(&[
            "sample",
            "--data",
            toml.to_str().unwrap(),
            "--sde",
            sde,
            "--sampler",
            "pf-rk45",
            "--n",
            "300",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{sde}: {}", stderr(&o));
        let t = run(&[
            "test",
            "--samples",
            out.to_str().unwrap(),
            "--data",
            toml.to_str().unwrap(),
        ]);
        assert_eq!(
            t.status.code(),
            Some(0),
            "{sde}: {}",
            String::from_utf8_lossy(&t.stdout)
        );
    }
}

#[test]
fn train_sample_eval_and_resume_through_the_cli() {
    let dir = tmp();
    let run_dir = dir.path().join("runs/small");
    let r = run_dir.to_str().unwrap();
    let base = [
        "train",
        "--data",
        "ncsn",
        "--hidden",
        "32",
        "--layers",
        "2",
        "--time-dim",
        "16",
        "--batch",
        "64",
        "--seed",
        "4",
        "--out",
        r,
    ];
    let o = run(&[&base[..], &["--steps", "40"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("steps=0..40"), "{}", stderr(&o));
    for f in [
        "model.1.safetensors",
        "ema.1.safetensors",
        "optimizer.1.safetensors",
        "run.toml",
        "loss.csv",
        "loss.png",
    ] {
        assert!(run_dir.join(f).is_file(), "{f} missing");
    }
    // An existing run is never overwritten without --resume.
    let o = run(&[&base[..], &["--steps", "40"]].concat());
    assert!(
        !o.status.success() && stderr(&o).contains("--resume"),
        "{}",
        stderr(&o)
    );
    // --resume refuses changes to the run and continues the step counter and loss log.
    let o = run(&[
        "train", "--resume", "--hidden", "64", "--steps", "60", "--out", r,
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--hidden cannot change"),
        "{}",
        stderr(&o)
    );
    let o = run(&["train", "--resume", "--steps", "60", "--out", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("steps=40..60"), "{}", stderr(&o));
    let log = std::fs::read_to_string(run_dir.join("loss.csv")).unwrap();
    assert_eq!(log.lines().count(), 61, "header + 60 steps");

    let out = dir.path().join("s.csv");
    let o = run(&[
        "sample",
        "--model",
        r,
        "--sampler",
        "pf-heun",
        "--steps",
        "15",
        "--n",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nfe=30"),
        "network evaluations counted: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 51);

    let csv = dir.path().join("eval.csv");
    let o = run(&[
        "eval",
        "--model",
        r,
        "--n",
        "200",
        "--buckets",
        "3",
        "--steps",
        "50",
        "--out",
        csv.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("excess") && text.contains("energy distance"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 4);

    // A damaged checkpoint: one line, exit 2, nothing written.
    let ema = scoresde::train::RunDir::new(r).weight_files().unwrap()[1].clone();
    std::fs::write(&ema, b"\x08\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    let out2 = dir.path().join("s2.csv");
    let o = run(&["sample", "--model", r, "--out", out2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_fails(&o, &ema.file_name().unwrap().to_string_lossy(), &out2);
}

#[test]
fn bad_training_input_is_one_line() {
    let dir = tmp();
    let out = dir.path().join("r");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "data = \"ncsn\"\n[train]\nbatchsize = 3\n").unwrap();
    for (args, needle) in [
        (
            vec!["train", "--data", "nope", "--out"],
            "unknown dataset 'nope'",
        ),
        (vec!["train", "--out"], "no training data"),
        (
            vec!["train", "--data", "ncsn", "--time-dim", "7", "--out"],
            "time embedding size must be even",
        ),
        (
            vec!["train", "--config", cfg.to_str().unwrap(), "--out"],
            "bad.toml at line 3",
        ),
        (
            vec![
                "train",
                "--data",
                "ncsn",
                "--discrete",
                "100",
                "--sde",
                "ve",
                "--out",
            ],
            "discrete training needs the VP SDE",
        ),
    ] {
        let o = run(&[&args[..], &[out.to_str().unwrap()]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_fails(&o, needle, &out.join("run.toml"));
    }
}

/// The zoo from the CLI: options reach the samplers, `nfe=` follows each formula, and a
/// contradictory choice is one line.
#[test]
fn sampler_zoo_from_the_cli() {
    let dir = tmp();
    let out = dir.path().join("s.csv");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "--sampler",
                "pc",
                "--predictor",
                "ancestral",
                "--corrector-steps",
                "2",
                "--steps",
                "50",
            ],
            "nfe=150 ",
        ),
        (&["--sampler", "edm-heun", "--steps", "18"], "nfe=35 "),
        (&["--sampler", "dpm-solver-3", "--steps", "20"], "nfe=20 "),
        (
            &[
                "--sampler",
                "ddim",
                "--steps",
                "20",
                "--eta",
                "0.5",
                "--discrete",
                "1000",
            ],
            "nfe=20 ",
        ),
        (
            &[
                "--sampler",
                "ddpm",
                "--steps",
                "100",
                "--variance",
                "beta-tilde",
            ],
            "nfe=100 ",
        ),
        (
            &[
                "--sampler",
                "edm-sde",
                "--steps",
                "30",
                "--s-churn",
                "40",
                "--denoise",
                "false",
            ],
            "nfe=58 ",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["sample", "--data", "8gaussians", "--n", "300", "--out", o];
        all.extend_from_slice(args);
        let r = run(&all);
        let e = stderr(&r);
        assert!(r.status.success(), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e} lacks {want}");
        std::fs::remove_file(&out).unwrap();
    }
    let r = run(&[
        "sample",
        "--data",
        "8gaussians",
        "--sde",
        "ve",
        "--sampler",
        "ddpm",
        "--out",
        o,
    ]);
    assert_fails(&r, "needs the VP SDE", &out);
    let r = run(&[
        "sample",
        "--data",
        "8gaussians",
        "--sampler",
        "pc",
        "--predictor",
        "none",
        "--corrector",
        "none",
        "--out",
        o,
    ]);
    assert_fails(&r, "as configured it does no work", &out);
}

/// `elbo` and `nll` from the CLI: CSV layouts, totals on stdout, errors as one line.
#[test]
fn elbo_and_nll_commands() {
    let dir = tmp();
    let terms = dir.path().join("terms.csv");
    let t = terms.to_str().unwrap();
    let r = run(&[
        "elbo",
        "--data",
        "bimodal-1d",
        "--exact",
        "--T",
        "50",
        "--n",
        "200",
        "--seed",
        "1",
        "--out",
        t,
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let out = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(
        out.contains("-ELBO = ") && out.contains("bits/dim"),
        "{out}"
    );
    let csv = std::fs::read_to_string(&terms).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "term,t,nats,stderr");
    assert!(lines[1].starts_with("prior,50,"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("denoise,")).count(),
        49
    );
    assert!(lines[lines.len() - 2].starts_with("recon,1,"));
    assert!(lines[lines.len() - 1].starts_with("total,,"));

    let nll = dir.path().join("nll.csv");
    let o = nll.to_str().unwrap();
    let r = run(&[
        "nll",
        "--data",
        "8gaussians",
        "--exact",
        "--n",
        "50",
        "--out",
        o,
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(String::from_utf8_lossy(&r.stdout).contains("NLL = "));
    let csv = std::fs::read_to_string(&nll).unwrap();
    assert!(csv.starts_with("x0,x1,nll\n"));
    assert_eq!(csv.lines().count(), 51);
    // Points from a CSV.
    let pts = dir.path().join("pts.csv");
    let r = run(&[
        "data",
        "--data",
        "8gaussians",
        "--n",
        "20",
        "--out",
        pts.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    std::fs::remove_file(&nll).unwrap();
    let r = run(&[
        "nll",
        "--data",
        "8gaussians",
        "--exact",
        "--points",
        pts.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(&nll).unwrap().lines().count(), 21);
    std::fs::remove_file(&nll).unwrap();
    // Errors.
    let r = run(&["nll", "--data", "moons", "--exact", "--out", o]);
    assert_fails(&r, "no exact score", &nll);
    let r = run(&[
        "elbo",
        "--data",
        "8gaussians",
        "--exact",
        "--sde",
        "ve",
        "--out",
        o,
    ]);
    assert_fails(&r, "needs the VP SDE", &nll);
    let r = run(&[
        "nll",
        "--data",
        "bimodal-1d",
        "--exact",
        "--points",
        pts.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert_fails(&r, "dimension", &nll);
}

/// Experiments: `list`, a user's own file, `--quick` outputs with a manifest of claims, and a
/// malformed file named with its line and field.
#[test]
fn experiments_list_run_and_errors() {
    let dir = tmp();
    let r = run(&["list"]);
    assert!(r.status.success());
    let listing = String::from_utf8_lossy(&r.stdout).to_string();
    for name in ["samplers-vs-nfe", "elbo-vs-T", "ncsn-langevin"] {
        assert!(listing.contains(name), "{listing}");
    }
    let mine = dir.path().join("mine.toml");
    std::fs::write(
        &mine,
        "name = \"my-orders\"\ndescription = \"orders on a 1D mixture\"\nkind = \"samplers-vs-nfe\"\ndata = \"bimodal-1d\"\n\n[samplers_vs_nfe]\nparticles = 50\nnfe = { full = [48, 96, 192], quick = [48, 96, 192] }\nsamplers = [\"pf-euler\", \"dpm-solver-2\"]\nfit_last = 3\ntolerance = 0.4\n",
    )
    .unwrap();
    let out = dir.path().join("figs");
    let r = run(&[
        "run",
        mine.to_str().unwrap(),
        "--quick",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let d = out.join("my-orders");
    for f in ["errors.png", "errors.svg", "errors.csv", "manifest.json"] {
        assert!(d.join(f).exists(), "{f} missing");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["claims"].as_array().unwrap().len(), 2);
    for c in m["claims"].as_array().unwrap() {
        assert_eq!(c["verdict"], "pass", "{c}");
        assert!(c["statistic"].is_number() && c["threshold"].is_string());
    }
    assert!(m["git_revision"].is_string() && m["wall_seconds"].is_number() && m["nfe"].is_array());
    // A malformed file: unknown field on line 3.
    std::fs::write(
        &mine,
        "name = \"x\"\ndescription = \"d\"\nkindd = \"samplers-vs-nfe\"\n",
    )
    .unwrap();
    let r = run(&[
        "run",
        mine.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{e}");
    assert!(
        e.contains("mine.toml") && e.contains("line 3") && e.contains("kindd"),
        "{e}"
    );
    let r = run(&["run", "no-such-experiment"]);
    assert!(stderr(&r).contains("unknown experiment"));
}

/// Absurd sizes, diverging samplers and bounds that cannot be finite: one line naming the
/// cause, exit 2, nothing written (issue classes 4, 6 and 7; table-driven).
#[test]
fn absurd_sizes_divergence_and_non_finite_results_are_refused() {
    let dir = tmp();
    let out = dir.path().join("o.csv");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--steps",
                "10000000000",
                "--n",
                "10",
            ],
            "--steps must lie in [1, 100000000]",
        ),
        (
            &["sample", "--data", "8gaussians", "--n", "1000000000"],
            "--n must lie in [1, ",
        ),
        (
            &["data", "--data", "8gaussians", "--n", "1000000000"],
            "--n must lie in [1, ",
        ),
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sampler",
                "langevin",
                "--step-size",
                "10",
                "--n",
                "50",
            ],
            "the sampler diverged: at step",
        ),
        (
            &[
                "sample",
                "--data",
                "8gaussians",
                "--sampler",
                "pc",
                "--snr",
                "1e6",
                "--n",
                "50",
            ],
            "the sampler diverged: at step",
        ),
        (
            &["elbo", "--data", "8gaussians", "--exact", "--n", "1"],
            "at least 2 points",
        ),
        (
            &[
                "elbo",
                "--data",
                "8gaussians",
                "--exact",
                "--T",
                "10000000000",
                "--n",
                "10",
            ],
            "--T must lie in [1, 1000000]",
        ),
        (
            &[
                "test",
                "--samples",
                "/nonexistent.csv",
                "--data",
                "8gaussians",
                "--permutations",
                "10",
                "--alpha",
                "0.05",
            ],
            "--permutations 10 cannot reject",
        ),
    ];
    for (args, needle) in cases {
        let mut a: Vec<&str> = args.to_vec();
        if a[0] != "test" {
            a.extend(["--out", o]);
        }
        let r = run(&a);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
        assert_fails(&r, needle, &out);
    }
    let r = run(&[
        "train",
        "--data",
        "8gaussians",
        "--batch",
        "100000000",
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("batch must lie in [1, 1048576]"),
        "{}",
        stderr(&r)
    );
    assert!(
        !dir.path().join("r").exists(),
        "a failed train left a directory"
    );
}

/// SIGTERM and SIGINT in the middle of a long run: exit 130, the temporary output file is gone
/// and the file already at `--out` is untouched.
#[test]
fn a_signal_leaves_no_temporary_file_and_keeps_the_old_output() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let dir = tmp();
        let out = dir.path().join("s.csv");
        std::fs::write(&out, "x0,x1\n1,2\n").unwrap();
        let mut child = bin()
            .args([
                "sample",
                "--data",
                "8gaussians",
                "--n",
                "3000000",
                "--steps",
                "1000",
            ])
            .args(["--out", out.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let tmp_exists = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        };
        let start = std::time::Instant::now();
        while !tmp_exists() && start.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(tmp_exists(), "the run never created its temporary file");
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(child.id() as libc::pid_t, sig);
        }
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "signal {sig}");
        assert!(!tmp_exists(), "signal {sig}: a temporary file survived");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "x0,x1\n1,2\n");
    }
}

/// Every option that the chosen sampler, SDE or mode does not read is an error naming it.
#[test]
fn options_that_do_not_apply_are_refused() {
    let dir = tmp();
    let out = dir.path().join("o.csv");
    let o = out.to_str().unwrap();
    let s = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["sample", "--data", "8gaussians", "--n", "20"];
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            s(&["--snr", "5", "--eta", "3", "--rtol", "7"]),
            "--snr, --eta, --rtol do not apply to --sampler em",
        ),
        (
            s(&["--sigma-max", "3"]),
            "--sigma-max does not apply to --sde vp",
        ),
        (
            s(&["--sde", "ve", "--beta-max", "3"]),
            "--beta-max does not apply to --sde ve",
        ),
        (
            s(&["--sampler", "pf-rk45", "--steps", "10"]),
            "--steps does not apply to --sampler pf-rk45",
        ),
        (
            s(&["--sampler", "ddim", "--variance", "beta"]),
            "--variance does not apply to --sampler ddim",
        ),
        (
            s(&["--sampler", "edm-heun", "--s-churn", "10"]),
            "--s-churn does not apply to --sampler edm-heun",
        ),
        (
            s(&["--sampler", "em", "--rho", "3"]),
            "--rho does not apply to --sampler em",
        ),
        (
            s(&["--sampler", "pc", "--corrector", "none", "--snr", "0.2"]),
            "--snr does not apply to --sampler pc",
        ),
        (
            s(&["--sampler", "langevin", "--spacing", "edm"]),
            "--spacing does not apply to --sampler langevin",
        ),
        (
            s(&[
                "--sampler",
                "pc",
                "--predictor",
                "none",
                "--corrector-steps",
                "0",
            ]),
            "does no work",
        ),
        (
            vec!["elbo", "--exact", "--data", "8gaussians", "--draws", "4"],
            "--draws does not apply to the discrete bound",
        ),
        (
            vec![
                "elbo",
                "--exact",
                "--data",
                "8gaussians",
                "--continuous",
                "--T",
                "50",
            ],
            "--T does not apply to --continuous",
        ),
    ];
    for (args, needle) in cases {
        let mut a = args.clone();
        a.extend(["--out", o]);
        assert_fails(&run(&a), needle, &out);
    }
    // What does apply still runs: ρ on an EDM grid, the churn of edm-sde, tolerances of pf-rk45.
    for extra in [
        &["--sampler", "edm-heun", "--rho", "5", "--steps", "8"][..],
        &[
            "--sampler",
            "em",
            "--spacing",
            "edm",
            "--rho",
            "5",
            "--steps",
            "8",
        ],
        &["--sampler", "edm-sde", "--s-churn", "10", "--steps", "8"],
        &["--sampler", "pf-rk45", "--rtol", "1e-4"],
        &["--sde", "ve", "--sigma-max", "10", "--steps", "8"],
    ] {
        let mut a = s(extra);
        a.extend(["--out", o]);
        let r = run(&a);
        assert!(r.status.success(), "{extra:?}: {}", stderr(&r));
    }
}

/// Experiment files with empty lists or zero sizes are refused with the field's name.
#[test]
fn experiment_files_with_zero_sizes_or_empty_lists_are_refused() {
    let dir = tmp();
    let out = dir.path().join("out");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/samplers-vs-nfe.toml"),
    )
    .unwrap();
    for (from, to, needle) in [
        (
            "nfe = { full = [12,",
            "nfe = { full = [0, 12,",
            "samplers_vs_nfe.nfe.full = 0 must lie in [1, 100000000]",
        ),
        (
            "particles = 200",
            "particles = 0",
            "samplers_vs_nfe.particles = 0 must lie in",
        ),
        (
            "quick = [24, 48, 96, 192]",
            "quick = []",
            "nfe.quick = [] must not be empty",
        ),
        (
            "tolerance = 0.4",
            "tolerance = nan",
            "tolerance = nan must be finite",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let file = dir.path().join("e.toml");
        std::fs::write(&file, base.replacen(from, to, 1)).unwrap();
        let o = run(&[
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim_end().lines().count(), 1);
        assert!(!out.exists());
    }
}

/// `sample --class` draws p(x | c) of a labelled mixture, with CFG costing two evaluations per
/// step; a class the data lack, data without classes, --class with --model: one-line errors,
/// nothing written.
#[test]
fn class_conditional_sampling() {
    let d = tmp();
    let out = d.path().join("s.csv");
    let o = run(&[
        "sample",
        "--data",
        "8gaussians",
        "--class",
        "sector-2",
        "--guidance-scale",
        "1.5",
        "--sampler",
        "unipc",
        "--steps",
        "8",
        "--n",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("nfe=16"), "{}", stderr(&o));
    let bad = d.path().join("bad.csv");
    for (args, needle) in [
        (
            vec!["--data", "8gaussians", "--class", "north"],
            "unknown class 'north'",
        ),
        (
            vec!["--data", "bimodal-1d", "--class", "a"],
            "no class labels",
        ),
        (
            vec!["--data", "8gaussians", "--guidance-scale", "1"],
            "--guidance-scale needs --class",
        ),
    ] {
        let mut a = vec!["sample"];
        a.extend(args);
        a.extend(["--steps", "4", "--n", "5", "--out", bad.to_str().unwrap()]);
        assert_fails(&run(&a), needle, &bad);
    }
}

/// `train --conditional` records the data's classes; `--bad-version-of` trains a smaller or
/// shorter run recorded as the bad version; `sample --model` with --class, CFG (two NFE per step)
/// and autoguidance; bad input one-line errors with nothing written.
#[test]
fn conditional_training_cfg_and_autoguidance() {
    let d = tmp();
    let (good, bad, plain) = (
        d.path().join("good"),
        d.path().join("bad"),
        d.path().join("plain"),
    );
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let train = |extra: &[&str], out: &std::path::Path| {
        let mut a = vec!["train", "--batch", "32"];
        a.extend(extra);
        let o = p(out);
        a.extend(["--out", &o]);
        run(&a)
    };
    let small = ["--steps", "30", "--hidden", "16"];
    let o = train(
        &[
            &small[..],
            &[
                "--data",
                "8gaussians",
                "--conditional",
                "--label-dropout",
                "0.2",
            ],
        ]
        .concat(),
        &good,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = std::fs::read_to_string(good.join("run.toml")).unwrap();
    assert!(
        toml.contains("\"sector-3\"") && toml.contains("label_dropout = 0.2"),
        "{toml}"
    );
    let o = train(&["--bad-version-of", &p(&good), "--hidden", "8"], &bad);
    assert!(o.status.success(), "{}", stderr(&o));
    let toml = std::fs::read_to_string(bad.join("run.toml")).unwrap();
    assert!(
        toml.contains("bad_version_of") && toml.contains("conditional = true"),
        "{toml}"
    );
    let o = train(&[&small[..], &["--data", "8gaussians"]].concat(), &plain);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("s.csv");
    let good_dir = p(&good);
    for (extra, nfe) in [
        (vec!["--class", "sector-1"], "nfe=6"),
        (
            vec!["--class", "sector-1", "--guidance-scale", "2"],
            "nfe=12",
        ),
        (
            vec!["--autoguidance", &p(&bad), "--guidance-scale", "1"],
            "nfe=12",
        ),
    ] {
        let mut a = vec!["sample", "--model", &good_dir];
        a.extend(extra.iter().copied());
        let o = p(&out);
        a.extend([
            "--sampler",
            "unipc",
            "--steps",
            "6",
            "--n",
            "10",
            "--out",
            &o,
        ]);
        let r = run(&a);
        assert!(r.status.success(), "{:?}: {}", extra, stderr(&r));
        assert!(stderr(&r).contains(nfe), "{:?}: {}", extra, stderr(&r));
    }
    let drawn = d.path().join("drawn.csv");
    let o = run(&[
        "data",
        "--data",
        "8gaussians",
        "--class",
        "sector-0",
        "--n",
        "50",
        "--out",
        &p(&drawn),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&drawn).unwrap();
    // sector-0 holds the components at 0° and 45°: every draw has x0 > 0.
    assert!(text.lines().skip(1).all(|l| !l.starts_with('-')), "{text}");
    // Each case: the command (GOOD and PLAIN stand for the runs), what its error says, and the
    // file or directory it must not leave behind.
    for (command, needle, target) in [
        (
            "train --data bimodal-1d --conditional",
            "has no class labels",
            "r1",
        ),
        (
            "train --bad-version-of GOOD",
            "a bad version must be smaller or shorter",
            "shorter",
        ),
        (
            "train --data 8gaussians --conditional --label-dropout 1",
            "label_dropout must lie in [0, 1)",
            "r2",
        ),
        ("data --data ncsn --class a", "no class labels", "d.csv"),
        (
            "sample --model PLAIN --class sector-1",
            "not class-conditional",
            "x.csv",
        ),
        (
            "sample --model GOOD --class sector-1 --guidance-scale -1",
            "must be non-negative",
            "x.csv",
        ),
        (
            "sample --model GOOD --autoguidance /nonexistent --guidance-scale 1",
            "no run here",
            "x.csv",
        ),
        (
            "sample --model GOOD --class north",
            "unknown class 'north'",
            "x.csv",
        ),
        (
            "sample --model GOOD --autoguidance PLAIN --class sector-1",
            "not class-conditional",
            "x.csv",
        ),
    ] {
        let command = command
            .replace("GOOD", &p(&good))
            .replace("PLAIN", &p(&plain));
        let target = d.path().join(target);
        let o = p(&target);
        let mut a: Vec<&str> = command.split_whitespace().collect();
        if a[0] != "data" && !a.contains(&"--bad-version-of") {
            a.extend(["--steps", "4"]);
        }
        a.extend(["--out", &o]);
        if a[0] == "sample" {
            a.extend(["--n", "5"]);
        }
        assert_fails(&run(&a), needle, &target);
    }
}

/// `decompose` writes its table (stages, contributions, interaction) and prints the summary;
/// fewer than 2 seeds, data without an exact score: one-line errors, nothing written.
#[test]
fn decompose_writes_the_table() {
    let d = tmp();
    let out = d.path().join("dec.csv");
    let o = run(&[
        "decompose",
        "--data",
        "8gaussians",
        "--sampler",
        "ddim",
        "--steps",
        "6",
        "--n",
        "200",
        "--seeds",
        "2",
        "--projections",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("discretisation=") && summary.contains("floor="),
        "{summary}"
    );
    let table = std::fs::read_to_string(&out).unwrap();
    assert_eq!(table.lines().next(), Some("stage,source,sw2,stderr"));
    assert_eq!(table.lines().count(), 16, "{table}");
    let bad = d.path().join("bad.csv");
    for (args, needle) in [
        (vec!["--data", "8gaussians", "--seeds", "1"], "≥ 2 seeds"),
        (vec!["--data", "moons"], "no exact score"),
    ] {
        let mut a = vec!["decompose"];
        a.extend(args);
        a.extend(["--n", "50", "--out", bad.to_str().unwrap()]);
        assert_fails(&run(&a), needle, &bad);
    }
}

/// `sample --empirical` samples the exact score of a point set: with the final denoiser every
/// sample is a training point; duplicates and a negative bandwidth are one-line errors.
#[test]
fn empirical_sampling_copies_the_training_points() {
    let d = tmp();
    let (train, out) = (d.path().join("train.csv"), d.path().join("s.csv"));
    let o = run(&[
        "data",
        "--data",
        "8gaussians",
        "--n",
        "25",
        "--out",
        train.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "sample",
        "--empirical",
        train.to_str().unwrap(),
        "--sampler",
        "unipc",
        "--steps",
        "40",
        "--denoise",
        "true",
        "--n",
        "100",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: &std::path::Path| scoresde::io::read_csv(p).unwrap();
    let (t, x) = (read(&train), read(&out));
    let copies = scoresde::stats::memorisation::copy_fraction(x.view(), t.view(), 1.0 / 3.0);
    assert_eq!(copies, 1.0);
    let dup = d.path().join("dup.csv");
    std::fs::write(&dup, "x0,x1\n1,2\n3,4\n1,2\n").unwrap();
    let bad = d.path().join("bad.csv");
    for (args, needle) in [
        (
            vec!["--empirical", dup.to_str().unwrap()],
            "training points 0 and 2 are equal",
        ),
        (
            vec!["--empirical", train.to_str().unwrap(), "--bandwidth", "-1"],
            "bandwidth must be finite and ≥ 0",
        ),
    ] {
        let mut a = vec!["sample"];
        a.extend(args);
        a.extend(["--n", "5", "--out", bad.to_str().unwrap()]);
        assert_fails(&run(&a), needle, &bad);
    }
}
