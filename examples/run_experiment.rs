//! Running a named experiment from code and reading its claims. The builtin `samplers-vs-nfe`
//! (every deterministic sampler's endpoint error against NFE with the exact score, fitted orders)
//! must pass; the same experiment with a tolerance of 0.01 on each fitted order (a claim no real
//! sampler meets on toy data) must fail some claim — the claims can fail.
//! Run: `cargo run --release --example run_experiment`.

use scoresde::experiments::{run, Experiment, Params};

fn main() -> scoresde::Result<()> {
    let out = tempfile::tempdir().map_err(|e| scoresde::Error::io("tempdir", e))?;
    let exp = Experiment::load("samplers-vs-nfe")?;
    let mut strict = exp.clone();
    strict.name = "samplers-vs-nfe-strict".into();
    let Params::SamplersVsNfe(p) = &mut strict.params else {
        panic!("samplers-vs-nfe has its own kind");
    };
    p.tolerance = 0.01;
    for (e, should_pass) in [(exp, true), (strict, false)] {
        let report = run(&e, out.path(), true, None)?;
        for c in &report.claims {
            println!(
                "{:<5} {} (statistic {:.3}, {})",
                c.verdict, c.name, c.statistic, c.threshold
            );
        }
        let failed = report.failures().len();
        println!(
            "{}: {} claims, {failed} failed, {:.1} s -> {}\n",
            e.name,
            report.claims.len(),
            report.wall,
            report.dir.display()
        );
        assert_eq!(failed == 0, should_pass, "{}", e.name);
    }
    Ok(())
}
