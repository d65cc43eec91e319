//! Experiments as cells from the command line: an experiment run in shards (any split, any
//! order) and rendered from its stored rows writes the same bytes as an unsharded run; a rerun
//! reuses finished cells; a missing cell and a bad `--shard` are one-line errors with exit 2.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scoresde"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Every CSV and Markdown file of `dir/name/`, by file name.
fn outputs(dir: &Path, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("csv" | "md")))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.file_name().unwrap().to_str().unwrap().to_string(), bytes)
        })
        .collect();
    v.sort();
    v
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
}

/// Sharded in several ways and in reverse order, then rendered: the same bytes as one run.
#[test]
fn shards_render_to_the_unsharded_bytes() {
    for name in ["samplers-vs-nfe", "dpm-solver", "ncsn-langevin"] {
        let whole = tempfile::tempdir().unwrap();
        let w = whole.path().to_str().unwrap();
        ok(&run(&["run", name, "--quick", "--out", w]));
        let reference = outputs(whole.path(), name);
        assert!(!reference.is_empty());
        for count in [1usize, 2, 5] {
            let d = tempfile::tempdir().unwrap();
            let out = d.path().to_str().unwrap();
            for i in (0..count).rev() {
                let shard = format!("{i}/{count}");
                let o = run(&["run", name, "--quick", "--out", out, "--shard", &shard]);
                ok(&o);
                assert!(
                    text(&o.stdout).contains("cells computed"),
                    "{}",
                    text(&o.stdout)
                );
                // A shard renders nothing.
                assert!(!d.path().join(name).join("manifest.json").exists());
            }
            let o = run(&["run", name, "--quick", "--out", out, "--render-only"]);
            ok(&o);
            assert!(text(&o.stdout).contains(" 0 of "), "{}", text(&o.stdout));
            assert_eq!(
                outputs(d.path(), name),
                reference,
                "{name} in {count} shards"
            );
        }
    }
}

/// A rerun reuses every stored cell; a deleted cell is recomputed, to the same bytes.
#[test]
fn reruns_reuse_cells() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().to_str().unwrap();
    let name = "samplers-vs-nfe";
    ok(&run(&["run", name, "--quick", "--out", out]));
    let first = outputs(d.path(), name);
    // Reruns: how many cells each computes, and the same bytes every time.
    let again = |computed: usize| {
        let o = run(&["run", name, "--quick", "--out", out]);
        ok(&o);
        let said = format!(" {computed} of 32 cells computed");
        assert!(text(&o.stdout).contains(&said), "{}", text(&o.stdout));
        assert_eq!(outputs(d.path(), name), first);
    };
    again(0);
    let cells = d.path().join("cells").join(name);
    let one = std::fs::read_dir(&cells).unwrap().next().unwrap();
    let one = one.unwrap().path();
    std::fs::remove_file(&one).unwrap();
    again(1);
    // A cut-short cell is recomputed, not trusted.
    std::fs::write(&one, b"\xa1").unwrap();
    again(1);
}

/// Faults: one line on stderr, exit 2, nothing rendered.
#[test]
fn faults_are_one_line() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().to_str().unwrap();
    let name = "samplers-vs-nfe";
    // Half the shards, then a render: the missing cells are named.
    ok(&run(&[
        "run", name, "--quick", "--out", out, "--shard", "0/2",
    ]));
    let cases: [(&[&str], &str); 5] = [
        (&["--render-only"], "16 of 32 cells not computed"),
        (&["--shard", "2/2"], "must be I/N"),
        (&["--shard", "x"], "must be I/N"),
        (&["--shard", "0/2", "--render-only"], "cannot be used with"),
        (&["--shard", "0/0"], "must be I/N"),
    ];
    for (extra, said) in cases {
        let mut args = vec!["run", name, "--quick", "--out", out];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains(said), "{extra:?}: {err}");
        assert!(!d.path().join(name).join("manifest.json").exists());
    }
}

/// Experiments run side by side on threads (`figures --jobs`) write the bytes of one at a time,
/// and a failing experiment is the run's error after the others end.
#[test]
fn concurrent_experiments_write_the_sequential_bytes() {
    use scoresde::experiments::{cells::Mode, run_all, Experiment};
    let names = ["samplers-vs-nfe", "dpm-solver", "ncsn-langevin", "ddim-eta"];
    let list: Vec<Experiment> = names.iter().map(|n| Experiment::load(n).unwrap()).collect();
    let one = tempfile::tempdir().unwrap();
    assert!(run_all(&list, one.path(), true, None, Mode::All, 1).unwrap());
    let many = tempfile::tempdir().unwrap();
    assert!(run_all(&list, many.path(), true, None, Mode::All, 3).unwrap());
    for n in names {
        let a = outputs(one.path(), n);
        assert!(!a.is_empty());
        assert_eq!(a, outputs(many.path(), n), "{n}");
    }
    // A file where an experiment's folder belongs: that experiment fails, the run says so.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("dpm-solver"), "in the way").unwrap();
    let e = run_all(&list, bad.path(), true, None, Mode::All, 2).unwrap_err();
    assert!(e.to_string().contains("dpm-solver"), "{e}");
}

/// Cells computed one at a time (`--jobs 1`) and side by side (`--jobs 3`): the same bytes;
/// `--jobs 0` is a one-line usage error.
#[test]
fn cells_side_by_side_write_the_sequential_bytes() {
    for name in ["samplers-vs-nfe", "dpm-solver", "ncsn-langevin"] {
        let mut seen = Vec::new();
        for jobs in ["1", "3"] {
            let d = tempfile::tempdir().unwrap();
            let out = d.path().to_str().unwrap();
            ok(&run(&[
                "run", name, "--quick", "--out", out, "--jobs", jobs,
            ]));
            seen.push(outputs(d.path(), name));
        }
        assert!(!seen[0].is_empty());
        assert_eq!(seen[0], seen[1], "{name}");
    }
    let d = tempfile::tempdir().unwrap();
    let o = run(&[
        "run",
        "dpm-solver",
        "--quick",
        "--out",
        d.path().to_str().unwrap(),
        "--jobs",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr).trim().lines().count(),
        1,
        "{}",
        text(&o.stderr)
    );
}
