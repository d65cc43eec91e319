//! Sweeps from the command line: the task table; tasks run in any order, sharding or engine
//! merge to the same bytes; a failed task leaves an error record, a killed one only a partial
//! folder that the rerun replaces; faults are one line and exit 2.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scoresde"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The 8-task sweep shared with `scripts/slurm_check.sh`.
const SPEC: &str = include_str!("data/sweep.toml");

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn plan_lists_every_task() {
    let d = tempfile::tempdir().unwrap();
    let spec = write(d.path(), "s.toml", SPEC);
    let o = run(&["sweep", "plan", &spec]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 9, "{out}");
    assert!(out.starts_with("sweep nfe-by-data: 8 tasks"), "{out}");
    // Task 5 = (data 1, size 0, seed 1): the last grid key varies fastest, then the seed.
    let line5 = out.lines().nth(6).unwrap();
    assert!(
        line5.contains("25gaussians")
            && line5.contains("particles=30")
            && line5.ends_with("seed=2"),
        "{line5}"
    );
}

/// Local with two jobs, one task at a time in reverse order, and every task through
/// `SLURM_ARRAY_TASK_ID` as a Slurm array element sees it: the same merged bytes.
#[test]
fn merged_output_is_the_same_whatever_ran_the_tasks() {
    let d = tempfile::tempdir().unwrap();
    let spec = write(d.path(), "s.toml", SPEC);
    let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
    let o = run(&[
        "sweep",
        "local",
        &spec,
        "--out",
        a.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for i in (0..8).rev() {
        let o = run(&[
            "sweep",
            "run",
            &spec,
            "--task",
            &i.to_string(),
            "--out",
            b.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    for i in [3, 0, 6, 1, 7, 2, 5, 4] {
        let o = bin()
            .args(["sweep", "run", &spec, "--out", c.to_str().unwrap()])
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    for out in [&a, &b, &c] {
        let o = run(&["sweep", "merge", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(text(&o.stdout).contains("merged 8 of 8 tasks"));
        assert!(text(&o.stdout).contains("fit 8gaussians, "));
    }
    for f in [
        "merged.csv",
        "merged.jsonl",
        "fit.csv",
        "summary.png",
        "summary.svg",
    ] {
        assert_eq!(read(a.join(f)), read(b.join(f)), "{f}: local vs one by one");
        assert_eq!(
            read(a.join(f)),
            read(c.join(f)),
            "{f}: local vs array elements"
        );
    }
    // 8 tasks × 8 samplers × 4 NFE rows, a header, the task's settings in front.
    let csv = text(&read(a.join("merged.csv")));
    assert_eq!(csv.lines().count(), 1 + 8 * 8 * 4);
    assert!(
        csv.starts_with("task,data,samplers_vs_nfe.particles,seed,sampler,nfe,endpoint_error\n")
    );
    // A rerun skips finished tasks: the records keep their bytes.
    let before = read(a.join("tasks/3/record.json"));
    let o = run(&["sweep", "local", &spec, "--out", a.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains("0 done, 8 finished before"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(before, read(a.join("tasks/3/record.json")));
    // Every task finished: the Slurm array is empty, nothing is written.
    let o = run(&["sweep", "slurm", &spec, "--out", a.to_str().unwrap()]);
    assert!(text(&o.stdout).contains("nothing to submit"));
    assert!(!a.join("sweep.sbatch").exists());
}

/// A task that fails at run time leaves a record with its error; merge names it and exits 1;
/// the Slurm script then holds only that task.
#[test]
fn failed_tasks_leave_an_error_record_and_are_resubmitted() {
    let d = tempfile::tempdir().unwrap();
    let spec = write(
        d.path(),
        "f.toml",
        "name = \"f\"\nexperiment = \"samplers-vs-nfe\"\nquick = true\n[grid]\ndata = [\"8gaussians\", \"no-such-data\", \"25gaussians\"]\n",
    );
    let out = d.path().join("o");
    let o = run(&[
        "sweep",
        "local",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("2 done, 0 finished before, 1 failed"));
    let rec: serde_json::Value =
        serde_json::from_slice(&read(out.join("tasks/1/record.json"))).unwrap();
    assert_eq!(rec["status"], "failed");
    assert!(rec["error"]
        .as_str()
        .unwrap()
        .contains("unknown dataset 'no-such-data'"));
    let o = run(&["sweep", "merge", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("merged 2 of 3 tasks") && text(&o.stdout).contains("failed: [1]")
    );
    let o = run(&[
        "sweep",
        "slurm",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--parallel",
        "2",
        "--time",
        "5",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let script = text(&read(out.join("sweep.sbatch")));
    assert!(script.contains("#SBATCH --array=1%2\n"), "{script}");
    assert!(script.contains("#SBATCH --time=5\n"), "{script}");
    assert!(script.contains("sweep run '"), "{script}");
}

/// SIGKILL in the middle of a task: no task folder, only the partial one; merge reports the
/// task missing; the rerun keeps the cells finished before the kill (not rewritten), computes
/// the rest, and merges to the bytes of an uninterrupted run.
#[cfg(unix)]
#[test]
fn a_killed_task_resumes_from_its_finished_cells() {
    let d = tempfile::tempdir().unwrap();
    let spec = write(
        d.path(),
        "k.toml",
        "name = \"k\"\nexperiment = \"error-vs-dimension\"\nquick = true\n[grid]\n\"error_vs_dimension.k\" = [1]\n",
    );
    let out = d.path().join("o");
    let mut child = bin()
        .args([
            "sweep",
            "run",
            &spec,
            "--task",
            "0",
            "--out",
            out.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = out.join("tasks/.0.partial");
    let cells = partial.join("cells/error-vs-dimension");
    let stored = |dir: &Path| -> Vec<(std::ffi::OsString, std::time::SystemTime)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "cbor"))
                    .map(|e| (e.file_name(), e.metadata().unwrap().modified().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let t0 = std::time::Instant::now();
    while stored(&cells).is_empty() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(partial.exists() && !out.join("tasks/0").exists());
    let before = stored(&cells);
    assert!(!before.is_empty(), "no cell finished before the kill");
    let o = run(&["sweep", "merge", out.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains("missing: [0]"),
        "{}",
        text(&o.stdout)
    );
    let o = run(&[
        "sweep",
        "run",
        &spec,
        "--task",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!partial.exists() && out.join("tasks/0/record.json").exists());
    let after = stored(&out.join("tasks/0/cells/error-vs-dimension"));
    for cell in &before {
        assert!(after.contains(cell), "{cell:?} was recomputed");
    }
    let o = run(&["sweep", "merge", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    let whole = d.path().join("w");
    let w = whole.to_str().unwrap();
    assert!(run(&["sweep", "run", &spec, "--task", "0", "--out", w])
        .status
        .success());
    assert!(run(&["sweep", "merge", w]).status.success());
    for f in ["merged.csv", "merged.jsonl"] {
        assert_eq!(read(out.join(f)), read(whole.join(f)), "{f}");
    }
}

#[test]
fn faults_are_one_line_errors() {
    let d = tempfile::tempdir().unwrap();
    let good = write(d.path(), "s.toml", SPEC);
    let other = write(d.path(), "t.toml", &SPEC.replace("nfe-by-data", "other"));
    let out = d.path().join("o");
    let o = out.to_str().unwrap();
    let malformed = write(d.path(), "m.toml", "name = \"m\"\n[grid\n");
    let unknown = write(
        d.path(),
        "u.toml",
        "name = \"u\"\nexperiment = \"samplers-vs-nfe\"\n[grid]\n\"samplers_vs_nfe.bogus\" = [1]\n",
    );
    let field = write(
        d.path(),
        "x.toml",
        "name = \"x\"\nexperiment = \"samplers-vs-nfe\"\nworkers = 3\n",
    );
    assert!(run(&["sweep", "run", &good, "--task", "0", "--out", o])
        .status
        .success());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sweep", "plan", &malformed], "sweep "),
        (vec!["sweep", "plan", &unknown], "unknown field `bogus`"),
        (vec!["sweep", "plan", &field], "unknown field `workers`"),
        (
            vec!["sweep", "run", &good, "--task", "8", "--out", o],
            "task index 8 is out of range",
        ),
        (
            vec!["sweep", "run", &good, "--out", o],
            "no --task and no SLURM_ARRAY_TASK_ID",
        ),
        (
            vec!["sweep", "run", &other, "--task", "0", "--out", o],
            "holds another sweep",
        ),
        (
            vec!["sweep", "merge", d.path().to_str().unwrap()],
            "holds no sweep",
        ),
        (
            vec!["sweep", "slurm", &good, "--out", o, "--mem", "4G; rm -rf /"],
            "is not a Slurm value",
        ),
    ];
    for (args, needle) in cases {
        let r = run(&args);
        let e = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    // No sbatch on PATH: the submission is refused in one line.
    let r = bin()
        .args(["sweep", "slurm", &good, "--out", o, "--submit"])
        .env("PATH", d.path())
        .output()
        .unwrap();
    let e = text(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{e}");
    assert!(
        e.contains("sbatch not found") && e.trim_end().lines().count() == 1,
        "{e}"
    );
}
