//! `scoresde`: a thin command-line front end to the library.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use scoresde::data::{Dataset, BUILTINS, DATA_DOMAIN, REFERENCE_DOMAIN};
use scoresde::io::{read_csv, write_csv, AtomicFile};
use scoresde::sample::{sample, SampleSpec, Sampler};
use scoresde::score::MixtureScore;
use scoresde::sde::{BetaSchedule, Sde, SubVpSde, VeSde, VpSde};
use scoresde::stats::{mixture_tests, two_sample_tests, SuiteConfig};
use scoresde::{invalid, Error, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "scoresde",
    version,
    about = "Score-based diffusion models with exact ground truth"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the builtin datasets.
    Datasets,
    /// Exact draws from a dataset, written as CSV.
    Data {
        /// Builtin name (see `scoresde datasets`) or a mixture .toml file.
        #[arg(long)]
        data: String,
        #[arg(long, default_value_t = 2000)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sample with the exact score of a mixture dataset.
    Sample(SampleArgs),
    /// Test samples against exact draws: MMD, energy, χ² of component proportions, KS.
    /// Exit 0: no test rejects; 1: a test rejects; 2: usage or input error.
    Test {
        /// CSV of samples (header x0,x1,…).
        #[arg(long)]
        samples: PathBuf,
        /// Builtin name or mixture .toml file the samples should follow.
        #[arg(long)]
        data: String,
        /// Significance level of each test.
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// Seed of the reference draws and of the permutations.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Permutations for the MMD and energy tests.
        #[arg(long, default_value_t = 500)]
        permutations: usize,
        /// At most this many points of each sample enter the permutation tests (O(n²) memory).
        #[arg(long, default_value_t = 5000)]
        max_points: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SdeKind {
    Vp,
    Subvp,
    Ve,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScheduleKind {
    Linear,
    Cosine,
}

#[derive(Args)]
struct SampleArgs {
    /// Builtin mixture name or a mixture .toml file.
    #[arg(long)]
    data: String,
    #[arg(long, value_enum, default_value_t = SdeKind::Vp)]
    sde: SdeKind,
    /// β schedule of the VP and sub-VP SDEs.
    #[arg(long, value_enum, default_value_t = ScheduleKind::Linear)]
    schedule: ScheduleKind,
    #[arg(long, default_value_t = 0.1)]
    beta_min: f64,
    #[arg(long, default_value_t = 20.0)]
    beta_max: f64,
    #[arg(long, default_value_t = 0.01)]
    sigma_min: f64,
    /// VE σ_max (default: the data diameter).
    #[arg(long)]
    sigma_max: Option<f64>,
    #[arg(long, value_enum, default_value_t = Sampler::Em)]
    sampler: Sampler,
    /// Steps of a fixed-grid sampler.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    #[arg(long, default_value_t = 1e-5)]
    rtol: f64,
    #[arg(long, default_value_t = 1e-5)]
    atol: f64,
    /// Final time ε (default 1e-3 for VP/sub-VP, 1e-5 for VE).
    #[arg(long)]
    eps: Option<f64>,
    #[arg(long, default_value_t = 2000)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    /// Rows per work chunk; results do not depend on it.
    #[arg(long, default_value_t = 0, hide = true)]
    chunk: usize,
}

fn build_sde(a: &SampleArgs, data: &Dataset) -> Result<Arc<dyn Sde>> {
    let schedule = match a.schedule {
        ScheduleKind::Linear => BetaSchedule::Linear {
            beta_min: a.beta_min,
            beta_max: a.beta_max,
        },
        ScheduleKind::Cosine => BetaSchedule::cosine(),
    };
    schedule.validate()?;
    Ok(match a.sde {
        SdeKind::Vp => Arc::new(VpSde { schedule }),
        SdeKind::Subvp => Arc::new(SubVpSde { schedule }),
        SdeKind::Ve => Arc::new(VeSde::new(
            a.sigma_min,
            a.sigma_max.unwrap_or_else(|| data.diameter()),
        )?),
    })
}

fn progress_bar(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} particles ({eta})",
        )
        .expect("valid template"),
    );
    Some(pb)
}

fn cmd_sample(a: SampleArgs) -> Result<()> {
    let data = Dataset::from_spec(&a.data)?;
    let mixture = data.mixture().cloned().ok_or_else(|| {
        Error::Data(format!(
            "dataset '{}' has no exact score (it is not a Gaussian mixture)",
            data.name()
        ))
    })?;
    let sde = build_sde(&a, &data)?;
    let spec = SampleSpec {
        sampler: a.sampler,
        steps: a.steps,
        rtol: a.rtol,
        atol: a.atol,
        eps: a.eps,
        n: a.n,
        seed: a.seed,
        chunk: a.chunk,
        record: vec![],
    };
    // Fail on an unwritable --out before spending any time.
    let out = AtomicFile::create(&a.out)?;
    let score = MixtureScore::new(mixture, sde.clone());
    let pb = progress_bar(a.n as u64);
    let tick = pb.as_ref().map(|pb| move |k: u64| pb.inc(k));
    let run = sample(
        sde.as_ref(),
        &score,
        &spec,
        tick.as_ref().map(|f| f as &(dyn Fn(u64) + Sync)),
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    write_csv(out, run.x.view())?;
    let steps = run.stats.accepted as f64 / run.stats.particles.max(1) as f64;
    let secs = run.wall.as_secs_f64();
    eprintln!(
        "sampled n={} d={} data={} sde={} sampler={} steps={} eps={} nfe={} rejected={} wall={:.3}s throughput={:.2}M particle-steps/s -> {}",
        a.n,
        data.dim(),
        data.name(),
        sde.name(),
        a.sampler.to_possible_value().expect("no skipped variants").get_name(),
        format_num(steps),
        a.eps.unwrap_or(sde.default_eps()),
        format_num(run.nfe),
        run.stats.rejected,
        secs,
        run.stats.accepted as f64 / secs / 1e6,
        a.out.display()
    );
    Ok(())
}

/// Integers without a fraction, others with four decimals.
fn format_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn cmd_test(
    samples: PathBuf,
    data: String,
    alpha: f64,
    seed: u64,
    permutations: usize,
    max_points: usize,
) -> Result<bool> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(invalid!("--alpha must lie in (0, 1), got {alpha}"));
    }
    if permutations == 0 {
        return Err(invalid!("--permutations must be at least 1"));
    }
    let data = Dataset::from_spec(&data)?;
    let x = read_csv(&samples)?;
    if x.ncols() != data.dim() {
        return Err(Error::Data(format!(
            "{} has {} columns but dataset '{}' has dimension {}",
            samples.display(),
            x.ncols(),
            data.name(),
            data.dim()
        )));
    }
    let n = x.nrows();
    let reference = data.sample(n, seed, REFERENCE_DOMAIN);
    let m = n.min(max_points.max(2));
    println!(
        "testing {} (n={n}, d={}) against exact draws of {} (n={n}, seed={seed}), alpha={alpha} per test",
        samples.display(),
        x.ncols(),
        data.name()
    );
    if m < n {
        println!(
            "note: the permutation tests use the first {m} points of each sample (--max-points)"
        );
    }
    let mut outcomes = two_sample_tests(
        x.slice(ndarray::s![..m, ..]),
        reference.slice(ndarray::s![..m, ..]),
        SuiteConfig { permutations, seed },
    );
    if let Some(mix) = data.mixture() {
        // The exact-mixture tests are O(n): they use every point.
        outcomes.extend(mixture_tests(x.view(), reference.view(), mix));
    }
    let mut rejected = false;
    for t in &outcomes {
        let verdict = if t.rejects(alpha) { "REJECT" } else { "ok" };
        rejected |= t.rejects(alpha);
        println!(
            "  {:<7} statistic={:<12.6e} p={:<8.4} {:<6} {}",
            t.name, t.statistic, t.p_value, verdict, t.detail
        );
    }
    if rejected {
        println!("result: at least one test rejects at alpha={alpha}");
    } else {
        println!("result: no test rejects at alpha={alpha}");
    }
    Ok(rejected)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Datasets => {
            for (name, about) in BUILTINS {
                println!("{name:<14} {about}");
            }
            println!(
                "{:<14} a mixture file: [[components]] with weight, mean and cov (or std)",
                "FILE.toml"
            );
        }
        Cmd::Data { data, n, seed, out } => {
            if n == 0 {
                return Err(invalid!("--n must be at least 1"));
            }
            let data = Dataset::from_spec(&data)?;
            let file = AtomicFile::create(&out)?;
            write_csv(file, data.sample(n, seed, DATA_DOMAIN).view())?;
        }
        Cmd::Sample(a) => cmd_sample(a)?,
        Cmd::Test {
            samples,
            data,
            alpha,
            seed,
            permutations,
            max_points,
        } => {
            if cmd_test(samples, data, alpha, seed, permutations, max_points)? {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // One line: clap's message without its help hint.
            let msg: Vec<String> = e
                .to_string()
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("For more information")
                        && !l.starts_with("Usage:")
                })
                .map(String::from)
                .collect();
            eprintln!("{}", msg.join(" "));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
