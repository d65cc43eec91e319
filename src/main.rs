//! `scoresde`: a thin command-line front end to the library.

use clap::ValueEnum;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use scoresde::data::{Dataset, BUILTINS, DATA_DOMAIN, REFERENCE_DOMAIN};
use scoresde::elbo::{continuous_bound, discrete_bound, TimeSampling};
use scoresde::experiments;
use scoresde::io::read_toml;
use scoresde::io::{read_csv, write_csv, AtomicFile};
use scoresde::likelihood::{pf_ode_nll, Divergence, NllSpec};
use scoresde::nn::NetConfig;
use scoresde::sample::{sample, SampleSpec, Sampler, SamplerOptions, Variance};
use scoresde::score::convert::Prediction;
use scoresde::score::{GaussianMixture, MixtureScore, Score};
use scoresde::sde::{Sde, SdeKind, SdeSpec};
use scoresde::stats::spread::component_spread;
use scoresde::stats::stderr;
use scoresde::stats::suite::Battery;
use scoresde::stats::two_sample::{energy_distance, knn_fraction};
use scoresde::stats::KNN_K;
use scoresde::train::eval::{bucket_edges, excess_loss};
use scoresde::train::{load_model, LrSchedule, RunConfig, RunDir, TrainConfig, Trainer, Weighting};
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
    /// Sample with the exact score of a mixture dataset, or with a trained network (--model).
    Sample(SampleArgs),
    /// Train an ε-network by denoising score matching into a run directory.
    Train(TrainArgs),
    /// Excess denoising loss against the exact optimum per t bucket, and sample tests.
    /// Exit 0: no test rejects; 1: a test rejects; 2: usage or input error.
    Eval(EvalArgs),
    /// ELBO terms (prior L_T, denoise L_{t−1}, recon L_0, total) of the exact ε* or a trained
    /// model, as CSV `term,t,nats,stderr`; the total (nats and bits/dim) on stdout.
    Elbo(ElboArgs),
    /// Exact negative log-likelihoods through the probability-flow ODE, one row per point.
    Nll(NllArgs),
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
    },
    /// Run every experiment tagged `paper` into OUT/NAME/ (exit codes as `run`).
    Figures {
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "figures")]
        out: PathBuf,
    },
    /// Test samples against exact draws: MMD, energy, kNN, χ² of component proportions, KS,
    /// judged as one family (Holm–Bonferroni). Exit 0: not rejected; 1: rejected at the
    /// family-wise level; 2: usage or input error.
    Test {
        /// CSV of samples (header x0,x1,…).
        #[arg(long)]
        samples: PathBuf,
        /// Builtin name or mixture .toml file the samples should follow.
        #[arg(long)]
        data: String,
        /// Family-wise significance level of the whole battery (Holm–Bonferroni).
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// Seed of the reference draws and of the permutations.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Permutations for the MMD, energy and kNN tests [default: 500, or the fewest that can
        /// reach the Holm threshold alpha/m when that is more].
        #[arg(long)]
        permutations: Option<usize>,
        /// At most this many points of each sample enter the permutation tests (O(n²) memory).
        #[arg(long, default_value_t = 5000)]
        max_points: usize,
    },
}

#[derive(Args)]
struct SampleArgs {
    /// Builtin mixture name or a mixture .toml file (exact score). With --model: optional.
    #[arg(long, required_unless_present = "model")]
    data: Option<String>,
    /// A run directory from `scoresde train`: sample with its EMA network and its SDE.
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    sde: SdeSpec,
    #[arg(long, value_enum, default_value_t = Sampler::Em)]
    sampler: Sampler,
    /// Steps N (per sampler: steps, grid points, NFE budget or iterations; see the README).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    #[command(flatten)]
    options: SamplerOptions,
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

/// The model an ELBO or likelihood is computed for, and the points.
#[derive(Args)]
struct ModelArgs {
    /// Builtin mixture or mixture .toml: the points' distribution (and the exact model with
    /// --exact). With --model: default the run's training data.
    #[arg(long)]
    data: Option<String>,
    /// Use the exact score of --data.
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    exact: bool,
    /// A run directory from `scoresde train` (EMA weights and the run's SDE).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    sde: SdeSpec,
    /// Points drawn from --data (seed --seed).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ElboArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Steps T of the discrete bound.
    #[arg(long = "T", default_value_t = 1000)]
    steps: usize,
    #[arg(long, value_enum, default_value_t = Variance::Beta)]
    variance: Variance,
    /// The continuous-time bound instead (rows prior, diffusion, recon, total).
    #[arg(long)]
    continuous: bool,
    /// Continuous bound: draws of t per point.
    #[arg(long, default_value_t = 16)]
    draws: usize,
    /// Continuous bound: how t is drawn.
    #[arg(long, value_enum, default_value_t = TimeSampling::Importance)]
    sampling: TimeSampling,
    /// Continuous bound: lower end ε.
    #[arg(long, default_value_t = 1e-5)]
    eps: f64,
}

#[derive(Args)]
struct NllArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A CSV of points (header x0,x1,…) instead of --n draws.
    #[arg(long)]
    points: Option<PathBuf>,
    #[arg(long, default_value_t = 1e-5)]
    rtol: f64,
    #[arg(long, default_value_t = 1e-5)]
    atol: f64,
    /// Where the data sit on the time axis.
    #[arg(long, default_value_t = 1e-5)]
    eps: f64,
    #[arg(long, value_enum, default_value_t = Divergence::Exact)]
    divergence: Divergence,
}

#[derive(Args)]
struct TrainArgs {
    /// Builtin name, mixture .toml or a .csv of points (header x0,x1,…).
    #[arg(long)]
    data: Option<String>,
    /// A training config (.toml with optional data, [sde], [net] and [train] tables).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Total optimiser steps (with --resume: the new total).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    hidden: Option<usize>,
    #[arg(long)]
    layers: Option<usize>,
    /// Size of the sinusoidal time embedding.
    #[arg(long)]
    time_dim: Option<usize>,
    /// Number of random Fourier features of x (0: raw x only).
    #[arg(long)]
    fourier: Option<usize>,
    /// Standard deviation of the Fourier frequencies.
    #[arg(long)]
    fourier_scale: Option<f64>,
    /// Residual hidden layers (true/false).
    #[arg(long)]
    residual: Option<bool>,
    #[arg(long, value_enum)]
    weighting: Option<Weighting>,
    #[arg(long, value_enum)]
    prediction: Option<Prediction>,
    #[arg(long)]
    lr: Option<f64>,
    /// Learning rate after warm-up: constant or cosine decay to lr/100.
    #[arg(long, value_enum)]
    lr_schedule: Option<LrSchedule>,
    /// Train on DDPM's integer grid with N steps (VP only).
    #[arg(long)]
    discrete: Option<usize>,
    #[arg(long = "sde", value_enum)]
    sde_kind: Option<SdeKind>,
    #[arg(long)]
    seed: Option<u64>,
    /// The run directory (created; must not hold a run unless --resume).
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
}

#[derive(Args)]
struct EvalArgs {
    /// A run directory from `scoresde train`.
    #[arg(long)]
    model: PathBuf,
    /// The exact mixture to compare with (default: the run's training data).
    #[arg(long)]
    data: Option<String>,
    /// Draws per t bucket for the excess loss, and samples for the tests.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// Number of t buckets (log-spaced from the run's t_eps to T).
    #[arg(long, default_value_t = 8)]
    buckets: usize,
    /// Reverse EM steps for the sample tests (0: skip them).
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the per-bucket losses as CSV.
    #[arg(long)]
    out: Option<PathBuf>,
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
    // The score: a trained network (its own SDE) or the exact score of a mixture.
    let (score, sde, data_name, d): (Box<dyn Score>, Arc<dyn Sde>, String, usize) = match &a.model {
        Some(dir) => {
            let (cfg, net) = load_model(dir)?;
            let sde = net.sde().clone();
            (Box::new(net), sde, cfg.data, cfg.net.dim)
        }
        None => {
            let data = Dataset::from_spec(a.data.as_deref().unwrap_or_default())?;
            let mixture = exact_mixture(&data)?;
            let sde = a.sde.build(|| data.diameter())?;
            let name = data.name().to_string();
            (
                Box::new(MixtureScore::new(mixture, sde.clone())),
                sde,
                name,
                data.dim(),
            )
        }
    };
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
        options: a.options.clone(),
    };
    // Fail on an unwritable --out before spending any time.
    let out = AtomicFile::create(&a.out)?;
    let pb = progress_bar(a.n as u64);
    let tick = pb.as_ref().map(|pb| move |k: u64| pb.inc(k));
    let run = sample(
        sde.as_ref(),
        score.as_ref(),
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
        d,
        data_name,
        sde.name(),
        a.sampler.name(),
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

/// The score, its SDE, the points' dataset name and the points (drawn, or from `points`).
type Loaded = (Box<dyn Score>, Arc<dyn Sde>, String, Array2<f64>);

fn load_model_and_points(a: &ModelArgs, points: Option<&PathBuf>) -> Result<Loaded> {
    let (score, sde, data_spec): (Box<dyn Score>, Arc<dyn Sde>, String) = match &a.model {
        Some(dir) => {
            let (cfg, net) = load_model(dir)?;
            let sde = net.sde().clone();
            (Box::new(net), sde, a.data.clone().unwrap_or(cfg.data))
        }
        None => {
            let spec = a
                .data
                .clone()
                .ok_or_else(|| invalid!("--exact needs --data"))?;
            let data = Dataset::from_spec(&spec)?;
            let sde = a.sde.build(|| data.diameter())?;
            let score = MixtureScore::new(exact_mixture(&data)?, sde.clone());
            (Box::new(score), sde, spec)
        }
    };
    let x = match points {
        Some(p) => read_csv(p)?,
        None => {
            if a.n == 0 {
                return Err(invalid!("--n must be at least 1"));
            }
            Dataset::from_spec(&data_spec)?.sample(a.n, a.seed, REFERENCE_DOMAIN)
        }
    };
    if x.ncols() != score.dim() {
        return Err(Error::Data(format!(
            "the points have dimension {} but the model has {}",
            x.ncols(),
            score.dim()
        )));
    }
    Ok((score, sde, data_spec, x))
}

fn cmd_elbo(a: ElboArgs) -> Result<()> {
    let m = &a.model;
    if !a.continuous {
        scoresde::error::check_range("--T", a.steps, 1_000_000)?;
    }
    let mut out = AtomicFile::create(&m.out)?;
    let (score, sde, data, x) = load_model_and_points(m, None)?;
    if x.nrows() < 2 {
        return Err(invalid!(
            "the bound's standard error needs at least 2 points, got {}",
            x.nrows()
        ));
    }
    let d = x.ncols() as f64;
    let mut csv = String::from("term,t,nats,stderr\n");
    let (total, se) = if a.continuous {
        let b = continuous_bound(
            sde.as_ref(),
            score.as_ref(),
            x.view(),
            a.eps,
            a.draws,
            a.sampling,
            m.seed,
        )?;
        csv.push_str(&format!(
            "prior,{},{:e},{:e}\n",
            sde.t_max(),
            b.prior.mean().unwrap_or(f64::NAN),
            stderr(&b.prior)
        ));
        csv.push_str(&format!(
            "diffusion,,{:e},{:e}\n",
            b.diffusion.mean().unwrap_or(f64::NAN),
            stderr(&b.diffusion)
        ));
        csv.push_str(&format!("recon,{},{:e},0\n", a.eps, b.recon));
        (b.total(), b.stderr())
    } else {
        let b = discrete_bound(
            sde.as_ref(),
            score.as_ref(),
            x.view(),
            a.steps,
            a.variance,
            m.seed,
        )?;
        for t in &b.terms {
            csv.push_str(&format!(
                "{},{},{:e},{:e}\n",
                t.kind.name(),
                t.step,
                t.nats,
                t.stderr
            ));
        }
        (b.total(), b.stderr())
    };
    csv.push_str(&format!("total,,{total:e},{se:e}\n"));
    if !(total.is_finite() && se.is_finite()) || csv.contains("NaN") || csv.contains("inf") {
        return Err(Error::Data(format!(
            "the bound is not finite (total {total}, stderr {se}): nothing written to {}",
            m.out.display()
        )));
    }
    std::io::Write::write_all(out.writer(), csv.as_bytes()).map_err(|e| Error::io(&m.out, e))?;
    out.commit()?;
    let what = if a.continuous {
        format!(
            "continuous bound (ε = {}, {} {} draws)",
            a.eps,
            a.draws,
            a.sampling
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default()
        )
    } else {
        format!(
            "T = {}, variance {}",
            a.steps,
            a.variance
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default()
        )
    };
    println!(
        "-ELBO = {total:.5} ± {se:.5} nats ({:.5} bits/dim) over n={} points of {data}, {what}, sde={}",
        total / (d * std::f64::consts::LN_2),
        x.nrows(),
        sde.name()
    );
    Ok(())
}

fn cmd_nll(a: NllArgs) -> Result<()> {
    let m = &a.model;
    let mut out = AtomicFile::create(&m.out)?;
    let (score, sde, data, x) = load_model_and_points(m, a.points.as_ref())?;
    let spec = NllSpec {
        rtol: a.rtol,
        atol: a.atol,
        eps: a.eps,
        divergence: a.divergence,
        seed: m.seed,
        chunk: 0,
    };
    let run = pf_ode_nll(sde.as_ref(), score.as_ref(), x.view(), &spec)?;
    let d = x.ncols();
    let mut csv = (0..d)
        .map(|j| format!("x{j}"))
        .collect::<Vec<_>>()
        .join(",");
    csv.push_str(",nll\n");
    for (row, nll) in x.rows().into_iter().zip(&run.nll) {
        for v in row {
            csv.push_str(&format!("{v:e},"));
        }
        csv.push_str(&format!("{nll:e}\n"));
    }
    std::io::Write::write_all(out.writer(), csv.as_bytes()).map_err(|e| Error::io(&m.out, e))?;
    out.commit()?;
    let se = stderr(&run.nll);
    println!(
        "NLL = {:.5} ± {se:.5} nats ({:.5} bits/dim) over n={} points of {data}, PF-ODE RK45 rtol={} atol={} eps={}, nfe={:.1}, sde={}, wall={:.2}s",
        run.mean(),
        run.mean() / (d as f64 * std::f64::consts::LN_2),
        x.nrows(),
        a.rtol,
        a.atol,
        a.eps,
        run.nfe,
        sde.name(),
        run.wall.as_secs_f64()
    );
    Ok(())
}

/// Runs experiments, printing one line each and every failed claim on stderr; returns whether
/// every asserted claim held.
fn run_experiments(
    list: &[experiments::Experiment],
    out: &std::path::Path,
    quick: bool,
    seed: Option<u64>,
) -> Result<bool> {
    let mut ok = true;
    for e in list {
        let r = experiments::run(e, out, quick, seed)?;
        let failed = r.failures();
        println!(
            "{}: {} claims, {} failed, {:.1}s -> {}",
            e.name,
            r.claims.len(),
            failed.len(),
            r.wall,
            r.dir.display()
        );
        for c in &r.claims {
            if !c.passed() {
                eprintln!(
                    "{}: claim {}: '{}' statistic {:.4e}, threshold {}",
                    e.name,
                    if c.asserted {
                        "FAILED"
                    } else {
                        "not met (reported only)"
                    },
                    c.name,
                    c.statistic,
                    c.threshold
                );
            }
        }
        ok &= failed.is_empty();
    }
    Ok(ok)
}

fn exact_mixture(data: &Dataset) -> Result<Arc<GaussianMixture>> {
    data.mixture().cloned().ok_or_else(|| {
        Error::Data(format!(
            "dataset '{}' has no exact score (it is not a Gaussian mixture)",
            data.name()
        ))
    })
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let dir = RunDir::new(&a.out);
    let mut trainer = if a.resume {
        let given = [
            ("--data", a.data.is_some()),
            ("--config", a.config.is_some()),
            ("--batch", a.batch.is_some()),
            ("--hidden", a.hidden.is_some()),
            ("--layers", a.layers.is_some()),
            ("--time-dim", a.time_dim.is_some()),
            ("--fourier", a.fourier.is_some()),
            ("--fourier-scale", a.fourier_scale.is_some()),
            ("--residual", a.residual.is_some()),
            ("--weighting", a.weighting.is_some()),
            ("--prediction", a.prediction.is_some()),
            ("--lr", a.lr.is_some()),
            ("--lr-schedule", a.lr_schedule.is_some()),
            ("--discrete", a.discrete.is_some()),
            ("--sde", a.sde_kind.is_some()),
            ("--seed", a.seed.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            return Err(invalid!(
                "{flag} cannot change a run on --resume (the run's settings are in {})",
                a.out.join("run.toml").display()
            ));
        }
        let mut t = dir.resume()?;
        if let Some(steps) = a.steps {
            t.cfg.train.steps = steps;
        }
        t
    } else {
        if dir.exists() {
            return Err(invalid!(
                "{} already holds a run: pass --resume to continue it, or choose another --out",
                a.out.display()
            ));
        }
        let mut cfg = match &a.config {
            Some(p) => read_toml::<RunConfig>(p)?,
            None => RunConfig {
                data: String::new(),
                sde: SdeSpec::default(),
                net: NetConfig::default(),
                train: TrainConfig::default(),
            },
        };
        let t = &mut cfg.train;
        let n = &mut cfg.net;
        macro_rules! set {
            ($($dst:expr => $src:expr),*) => { $(if let Some(v) = $src { $dst = v; })* };
        }
        set!(cfg.data => a.data, t.steps => a.steps, t.batch => a.batch, n.hidden => a.hidden,
             n.layers => a.layers, n.time_dim => a.time_dim, n.fourier => a.fourier,
             n.fourier_scale => a.fourier_scale, n.residual => a.residual, t.weighting => a.weighting,
             n.prediction => a.prediction, t.lr => a.lr, t.lr_schedule => a.lr_schedule, t.seed => a.seed, cfg.sde.kind => a.sde_kind);
        if a.discrete.is_some() {
            t.discrete = a.discrete;
        }
        Trainer::new(cfg)?
    };
    let total = trainer.cfg.train.steps;
    let start_step = trainer.state.step;
    if total <= start_step {
        return Err(invalid!(
            "the run is already at step {start_step}; pass --steps larger than that to continue"
        ));
    }
    let pb = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(total as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:30} {pos}/{len} steps {per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        pb.set_position(start_step as u64);
        pb.reset_eta();
        Some(pb)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let mut smooth = f64::NAN;
    trainer.run_to_end(&dir, |rec| {
        smooth = if smooth.is_nan() {
            rec.loss
        } else {
            0.98 * smooth + 0.02 * rec.loss
        };
        if let Some(pb) = &pb {
            pb.inc(1);
            if rec.step % 10 == 0 {
                pb.set_message(format!("loss {smooth:.4}"));
            }
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let done = total - start_step;
    let window = (done / 100).max(10);
    let final_loss = trainer.recent_loss(window);
    eprintln!(
        "trained data={} sde={} net={}x{} (+{}-d time embedding, {} parameters) steps={}..{} batch={} loss={:.5} (mean of last {}) wall={:.1}s {:.1} steps/s -> {}",
        trainer.cfg.data,
        trainer.sde().name(),
        trainer.cfg.net.layers,
        trainer.cfg.net.hidden,
        trainer.cfg.net.time_dim,
        trainer.cfg.net.parameters(),
        start_step,
        total,
        trainer.cfg.train.batch,
        final_loss,
        window.min(trainer.history.len()),
        secs,
        done as f64 / secs,
        a.out.display()
    );
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<bool> {
    if !(2..=10_000_000).contains(&a.n) {
        return Err(invalid!("--n must lie in [2, 10000000], got {}", a.n));
    }
    scoresde::error::check_range("--buckets", a.buckets, 1000)?;
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        return Err(invalid!("--alpha must lie in (0, 1), got {}", a.alpha));
    }
    // The output location is checked before any work.
    let out_file = a.out.as_ref().map(AtomicFile::create).transpose()?;
    let (cfg, net) = load_model(&a.model)?;
    let spec = a.data.clone().unwrap_or(cfg.data.clone());
    let data = Dataset::from_spec(&spec)?;
    let mixture = exact_mixture(&data)?;
    if data.dim() != cfg.net.dim {
        return Err(Error::Data(format!(
            "the model has dimension {} but dataset '{spec}' has {}",
            cfg.net.dim,
            data.dim()
        )));
    }
    let sde = net.sde().clone();
    let (_, step) = RunDir::new(&a.model).load_config()?;
    let edges = bucket_edges(cfg.train.t_eps, sde.t_max(), a.buckets);
    let rows = excess_loss(&net, &mixture, &sde, &edges, a.n, a.seed);
    println!(
        "model {} (step {step}, EMA weights) against the exact ε* of {} under the {} SDE; n={} per bucket, seed={}",
        a.model.display(),
        data.name(),
        sde.name(),
        a.n,
        a.seed
    );
    println!("losses per coordinate: dsm = E‖ε_θ−ε‖², optimum = E‖ε*−ε‖², excess = E‖ε_θ−ε*‖² = dsm − optimum");
    println!(
        "  {:>21}  {:>10}  {:>10}  {:>10}  {:>9}  {:>8}",
        "t bucket", "dsm", "optimum", "excess", "± se", "excess %"
    );
    let mut csv = String::from("t_lo,t_hi,dsm,optimum,excess,excess_se\n");
    for r in &rows {
        println!(
            "  [{:>8.2e}, {:>8.2e})  {:>10.5}  {:>10.5}  {:>10.6}  {:>9.6}  {:>7.2}%",
            r.t_lo,
            r.t_hi,
            r.dsm,
            r.optimum,
            r.excess,
            r.excess_se,
            100.0 * r.excess / r.dsm.max(f64::MIN_POSITIVE)
        );
        csv.push_str(&format!(
            "{:e},{:e},{:e},{:e},{:e},{:e}\n",
            r.t_lo, r.t_hi, r.dsm, r.optimum, r.excess, r.excess_se
        ));
    }
    let mean_excess = rows.iter().map(|r| r.excess).sum::<f64>() / rows.len() as f64;
    println!("  mean excess over buckets: {mean_excess:.6}");
    if !rows
        .iter()
        .all(|r| r.dsm.is_finite() && r.excess.is_finite() && r.excess_se.is_finite())
    {
        return Err(Error::Data(
            "the excess loss is not finite: nothing written".into(),
        ));
    }
    if let (Some(out), Some(mut f)) = (&a.out, out_file) {
        std::io::Write::write_all(f.writer(), csv.as_bytes()).map_err(|e| Error::io(out, e))?;
        f.commit()?;
    }
    if a.steps == 0 {
        return Ok(false);
    }
    let spec = SampleSpec {
        steps: a.steps,
        n: a.n,
        seed: a.seed,
        ..Default::default()
    };
    let learned = sample(sde.as_ref(), &net, &spec, None)?;
    let exact = sample(
        sde.as_ref(),
        &MixtureScore::new(mixture.clone(), sde.clone()),
        &spec,
        None,
    )?;
    let reference = data.sample(a.n, a.seed, REFERENCE_DOMAIN);
    let e_learned = energy_distance(learned.x.view(), reference.view());
    let e_exact = energy_distance(exact.x.view(), reference.view());
    println!(
        "reverse EM ({} steps, n={}): energy distance to exact draws: learned {e_learned:.5}, exact score {e_exact:.5} (ratio {:.2})",
        a.steps,
        a.n,
        e_learned / e_exact.max(f64::MIN_POSITIVE)
    );
    let frac = |x: &ndarray::Array2<f64>| knn_fraction(x.view(), reference.view(), KNN_K);
    println!(
        "local structure: kNN same-sample fraction ({KNN_K} neighbours; chance ≈ 0.50, a blurred model is higher): learned {:.3}, exact score {:.3}",
        frac(&learned.x),
        frac(&exact.x)
    );
    let spread = |x: &ndarray::Array2<f64>| {
        let s = component_spread(&mixture, x.view());
        let have: Vec<f64> = s.ratios.iter().flatten().copied().collect();
        let lo = have.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = have.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("median {:.3} (range {lo:.3}–{hi:.3})", s.median)
    };
    println!(
        "within-component spread (fitted / true std per component; 1 = exact, > 1 blurred): learned {}, exact score {}",
        spread(&learned.x),
        spread(&exact.x)
    );
    report_tests(
        &learned.x,
        &data,
        "learned samples",
        &Battery {
            alpha: a.alpha,
            seed: a.seed,
            progress: true,
            ..Default::default()
        },
    )
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
    permutations: Option<usize>,
    max_points: usize,
) -> Result<bool> {
    let data = Dataset::from_spec(&data)?;
    let battery = Battery {
        alpha,
        seed,
        permutations,
        max_points,
        progress: true,
    };
    battery.validate(&data).map_err(flag_names)?;
    let x = read_csv(&samples)?;
    report_tests(&x, &data, &samples.display().to_string(), &battery)
}

/// Runs the sample tests of `x` against exact draws of `data` and prints one line per test.
/// Returns whether the family rejects.
fn report_tests(
    x: &ndarray::Array2<f64>,
    data: &Dataset,
    what: &str,
    battery: &Battery,
) -> Result<bool> {
    let r = battery.run(x.view(), data).map_err(flag_names)?;
    let alpha = battery.alpha;
    println!(
        "testing {what} (n={}, d={}) against exact draws of {} (seed={}), family-wise alpha={alpha}",
        r.n,
        x.ncols(),
        data.name(),
        battery.seed
    );
    if r.points < r.n {
        println!(
            "note: the permutation tests use the first {} points of each sample (--max-points)",
            r.points
        );
    }
    for (t, q) in r.outcomes.iter().zip(&r.adjusted) {
        let verdict = if *q <= alpha { "REJECT" } else { "ok" };
        println!(
            "  {:<7} statistic={:<12.6e} p={:<8.4} adjusted p={:<8.4} {:<6} {}",
            t.name, t.statistic, t.p_value, q, verdict, t.detail
        );
    }
    let groups = if r.oracle_rows > 0 {
        format!("min-P within the permutation tests ({} relabellings) and within the exact-oracle tests ({} null sets, proportions and log-density law from {} exact draws), weighted Bonferroni alpha/3 : 2alpha/3 over the two", r.resamples, r.resamples, r.oracle_rows)
    } else {
        format!(
            "min-P over the permutation tests, {} relabellings",
            r.resamples
        )
    };
    println!(
        "result: {} at family-wise alpha={alpha} ({groups})",
        if r.rejected {
            "rejected"
        } else {
            "not rejected"
        },
    );
    Ok(r.rejected)
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
            let data = Dataset::from_spec(&data)?;
            scoresde::error::check_points("--n", n, data.dim())?;
            let file = AtomicFile::create(&out)?;
            write_csv(file, data.sample(n, seed, DATA_DOMAIN).view())?;
        }
        Cmd::Sample(a) => cmd_sample(a)?,
        Cmd::Elbo(a) => cmd_elbo(a)?,
        Cmd::List => {
            for e in experiments::builtin()? {
                let tags = if e.tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", e.tags.join(", "))
                };
                println!("{:<18} {}{tags}", e.name, e.description);
            }
        }
        Cmd::Run {
            experiment,
            quick,
            out,
            seed,
        } => {
            let e = experiments::Experiment::load(&experiment)?;
            if !run_experiments(&[e], &out, quick, seed)? {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Figures { quick, out } => {
            let all: Vec<_> = experiments::builtin()?
                .into_iter()
                .filter(|e| e.tags.iter().any(|t| t == "paper"))
                .collect();
            if !run_experiments(&all, &out, quick, None)? {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Nll(a) => cmd_nll(a)?,
        Cmd::Train(a) => cmd_train(a)?,
        Cmd::Eval(a) => {
            if cmd_eval(a)? {
                return Ok(ExitCode::from(1));
            }
        }
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

#[path = "cli/flags.rs"]
mod flags;
use flags::{flag_names, refuse_unread_flags};

fn main() -> ExitCode {
    scoresde::nn::tune_runtime();
    // SIGINT/SIGTERM: no temporary output file survives (exit 130, one line).
    let _ = ctrlc::set_handler(|| {
        scoresde::io::remove_pending_files();
        eprintln!("error: interrupted; partial outputs removed, existing files untouched");
        std::process::exit(130);
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
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
