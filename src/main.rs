//! `scoresde`: a thin command-line front end to the library.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use scoresde::data::{Dataset, BUILTINS, DATA_DOMAIN};
use scoresde::experiments;
use scoresde::io::{write_csv, AtomicFile};
use scoresde::tasks::{
    DecomposeTask, ElboTask, EvalTask, NllTask, SampleTask, ScheduleTask, TestTask, TrainTask,
};
use scoresde::Result;
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// Draw from p(x | CLASS) of a class-labelled mixture.
        #[arg(long = "class")]
        class: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sample with the exact score of a mixture dataset, or with a trained network (--model).
    Sample(Box<SampleTask>),
    /// The time grid that minimises a sampler's endpoint error with the exact score at N steps,
    /// written as a grid file for `--spacing file:GRID.csv`.
    Schedule(Box<ScheduleTask>),
    /// A sampler's error against a mixture split into initialisation, truncation,
    /// discretisation and score, each replaced by its exact version (CSV table; summary on
    /// stdout).
    Decompose(Box<DecomposeTask>),
    /// Train an ε-network by denoising score matching into a run directory.
    Train(TrainTask),
    /// Excess denoising loss against the exact optimum per t bucket, and sample tests.
    /// Exit 0: no test rejects; 1: a test rejects; 2: usage or input error.
    Eval(EvalTask),
    /// ELBO terms (prior L_T, denoise L_{t−1}, recon L_0, total) of the exact ε* or a trained
    /// model, as CSV `term,t,nats,stderr`; the total (nats and bits/dim) on stdout.
    Elbo(ElboTask),
    /// Exact negative log-likelihoods through the probability-flow ODE, one row per point.
    Nll(NllTask),
    /// List the named experiments.
    List,
    /// Run one experiment (a name from `list` or a .toml file) into OUT/NAME/.
    /// Exit 0: every asserted claim holds; 1: a claim fails; 2: usage or input error.
    Run {
        /// Experiment name or path to an experiment .toml.
        experiment: String,
        /// Smaller sizes (CI).
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        /// Override the experiment's seed.
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        part: Part,
    },
    /// Run every experiment tagged `paper` into OUT/NAME/ (exit codes as `run`).
    Figures {
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        #[command(flatten)]
        part: Part,
    },
    /// Test samples against exact draws: MMD, energy, kNN, χ² of component proportions, KS and
    /// the one-sample MMD to p₀, judged as one family (min-P within groups, Bonferroni between).
    /// Exit 0: not rejected; 1: rejected at the family-wise level; 2: usage or input error.
    Test(TestTask),
    /// Sweeps: an experiment over a grid of its settings and seeds, as independent tasks run
    /// here, on a Slurm array or by any launcher, and merged byte-identically.
    #[command(subcommand)]
    Sweep(SweepCmd),
}

/// Which part of an experiment a run does: its cells are stored in OUT/cells/NAME/ and a rerun
/// skips finished ones.
#[derive(clap::Args)]
struct Part {
    /// Compute only shard I of N (cell k belongs to shard k mod N); render nothing.
    #[arg(long, value_name = "I/N", conflicts_with = "render_only")]
    shard: Option<experiments::cells::Mode>,
    /// Judge the claims and draw the figures from stored cells; a missing cell is an error.
    #[arg(long)]
    render_only: bool,
    /// Cells computed at once, each on its own thread, and (`figures`) experiments run at once
    /// (default: the thread pool's size, the number of CPUs unless RAYON_NUM_THREADS says
    /// otherwise); the outputs are the same bytes for every value.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

impl Part {
    fn mode(&self) -> experiments::cells::Mode {
        match (self.shard, self.render_only) {
            (Some(s), _) => s,
            (None, true) => experiments::cells::Mode::RenderOnly,
            (None, false) => experiments::cells::Mode::All,
        }
    }

    /// `--jobs`, or the thread pool's size; also the process's cell concurrency.
    fn jobs(&self) -> usize {
        let n = self
            .jobs
            .map_or_else(rayon::current_num_threads, usize::from);
        experiments::cells::set_concurrency(n);
        n
    }
}

#[derive(Subcommand)]
enum SweepCmd {
    /// Print the task table (index → settings) and its size.
    Plan { spec: PathBuf },
    /// Run one task into OUT/tasks/I/ (I from SLURM_ARRAY_TASK_ID when --task is not given);
    /// a finished task is skipped.
    Run {
        spec: PathBuf,
        #[arg(long)]
        task: Option<usize>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run every unfinished task on this machine, J at a time.
    Local {
        spec: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Write OUT/sweep.sbatch, a Slurm job array of the unfinished tasks; --submit runs sbatch.
    Slurm {
        spec: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Wall-clock limit per task (Slurm's format).
        #[arg(long)]
        time: Option<String>,
        /// Memory per task (4G, 500M).
        #[arg(long)]
        mem: Option<String>,
        /// CPUs per task.
        #[arg(long)]
        cpus: Option<usize>,
        /// Tasks running at once.
        #[arg(long)]
        parallel: Option<usize>,
        #[arg(long)]
        partition: Option<String>,
        /// Submit the script with sbatch.
        #[arg(long)]
        submit: bool,
        /// With --submit: wait until every task ends (sbatch --wait).
        #[arg(long, requires = "submit")]
        wait: bool,
    },
    /// Gather every task's record into OUT/merged.jsonl and OUT/merged.csv; name missing and
    /// failed tasks (exit 1 when there are any).
    Merge { out: PathBuf },
}

fn sweep(cmd: SweepCmd) -> Result<ExitCode> {
    use scoresde::sweep::{self, Spec};
    match cmd {
        SweepCmd::Plan { spec } => {
            let s = Spec::load(&spec)?;
            for line in s.plan()?.lines() {
                say(line)?;
            }
        }
        SweepCmd::Run { spec, task, out } => {
            let s = Spec::load(&spec)?;
            let index = sweep::task_index(task)?;
            match sweep::run_task(&s, &out, index)? {
                sweep::TaskOutcome::Skipped => eprintln!("task {index}: finished before, skipped"),
                sweep::TaskOutcome::Done { claims_failed } => eprintln!(
                    "task {index}: done ({claims_failed} asserted claims not met) -> {}",
                    out.join("tasks").join(index.to_string()).display()
                ),
            }
        }
        SweepCmd::Local { spec, out, jobs } => {
            let s = Spec::load(&spec)?;
            let (done, skipped, failed) = sweep::local(&s, &spec, &out, jobs)?;
            say(&format!(
                "sweep {}: {done} done, {skipped} finished before, {} failed{}",
                s.name,
                failed.len(),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" (tasks {failed:?}; rerun to retry them)")
                }
            ))?;
            return Ok(verdict(!failed.is_empty()));
        }
        SweepCmd::Slurm {
            spec,
            out,
            time,
            mem,
            cpus,
            parallel,
            partition,
            submit,
            wait,
        } => {
            let s = Spec::load(&spec)?;
            let flags = sweep::SlurmSettings {
                time,
                mem,
                cpus,
                parallel,
                partition,
            };
            let exe = std::env::current_exe()
                .map_err(|e| scoresde::Error::io("the scoresde executable", e))?;
            let Some(path) = sweep::write_slurm(&s, &spec, &out, &exe, &s.slurm.with(&flags))?
            else {
                say(&format!(
                    "sweep {}: every task has finished; nothing to submit",
                    s.name
                ))?;
                return Ok(ExitCode::SUCCESS);
            };
            say(&format!("wrote {}", path.display()))?;
            if submit {
                say(&sweep::submit(&path, wait)?)?;
            }
        }
        SweepCmd::Merge { out } => {
            let m = sweep::merge(&out)?;
            let list = |v: &[usize]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    format!("{v:?}")
                }
            };
            say(&format!(
                "merged {} of {} tasks -> {}; missing: {}; failed: {}",
                m.merged,
                m.tasks,
                out.join("merged.csv").display(),
                list(&m.missing),
                list(&m.failed)
            ))?;
            for line in &m.fits {
                say(&format!("fit {line}"))?;
            }
            return Ok(verdict(!m.missing.is_empty() || !m.failed.is_empty()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 when `failed`, success otherwise.
fn verdict(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints one line on stdout. A closed pipe (`| head`) ends the program quietly with exit 0,
/// as Unix filters do; any other write error (a full device) is an error naming the cause.
fn say(line: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                scoresde::io::remove_pending_files();
                std::process::exit(0);
            }
            scoresde::Error::io("standard output", e)
        })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Datasets => {
            for (name, about) in BUILTINS {
                say(&format!("{name:<14} {about}"))?;
            }
            say(&format!(
                "{:<14} a mixture file: [[components]] with weight, mean and cov (or std)",
                "FILE.toml"
            ))?;
        }
        Cmd::Data {
            data,
            n,
            seed,
            class,
            out,
        } => {
            let data = Dataset::from_spec(&data)?;
            scoresde::error::check_points("n", n, data.dim())?;
            let x = match class {
                Some(c) => {
                    data.exact_mixture()?
                        .conditional(&c)?
                        .sample(n, seed, DATA_DOMAIN)
                        .0
                }
                None => data.sample(n, seed, DATA_DOMAIN),
            };
            write_csv(AtomicFile::create(&out)?, x.view())?;
        }
        Cmd::Sample(a) => eprintln!("{}", a.run()?),
        Cmd::Schedule(a) => eprintln!("{}", a.run()?),
        Cmd::Decompose(a) => say(&a.run()?)?,
        Cmd::Train(a) => eprintln!("{}", a.run()?),
        Cmd::Elbo(a) => say(&a.run()?)?,
        Cmd::Nll(a) => say(&a.run()?)?,
        Cmd::Eval(a) => {
            let mut failed = None;
            let rejected = a.run(&mut |s| {
                if failed.is_none() {
                    failed = say(s).err();
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            return Ok(verdict(rejected));
        }
        Cmd::Test(a) => {
            let (report, text) = a.run()?;
            say(&text)?;
            return Ok(verdict(report.rejected));
        }
        Cmd::List => {
            for e in experiments::builtin()? {
                say(&e.list_line())?;
            }
        }
        Cmd::Run {
            experiment,
            quick,
            out,
            seed,
            part,
        } => {
            let e = experiments::Experiment::load(&experiment)?;
            let ok = experiments::run_all(&[e], &out, quick, seed, part.mode(), part.jobs())?;
            return Ok(verdict(!ok));
        }
        Cmd::Sweep(cmd) => return sweep(cmd),
        Cmd::Figures { quick, out, part } => {
            let all = experiments::tagged("paper")?;
            let ok = experiments::run_all(&all, &out, quick, None, part.mode(), part.jobs())?;
            return Ok(verdict(!ok));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[path = "cli/flags.rs"]
mod flags;
use flags::{flag_names, refuse_unread_flags};

fn main() -> ExitCode {
    scoresde::nn::tune_runtime();
    // SIGINT/SIGTERM: no temporary output file survives (exit 130, one line).
    let _ = ctrlc::set_handler(|| {
        scoresde::io::exit_removing_pending(
            130,
            "error: interrupted; partial outputs removed, existing files untouched",
        )
    });
    // A panic is a bug, but the user still gets one line, no backtrace and no temporary file.
    std::panic::set_hook(Box::new(|info| {
        scoresde::io::remove_pending_files();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!(
            "error: internal error (a bug, please report it with the command line): {msg}{at}"
        );
        std::process::exit(70);
    }));
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
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
    match refuse_unread_flags(&cli, &matches).and_then(|()| run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", flag_names(e));
            ExitCode::from(2)
        }
    }
}
