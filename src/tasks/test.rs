//! `scoresde test`: the calibrated battery on a CSV of samples against exact draws.

use crate::data::Dataset;
use crate::io::read_csv;
use crate::stats::suite::{Battery, Report};
use crate::Result;
use ndarray::ArrayView2;
use std::fmt::Write;
use std::path::PathBuf;

/// Test samples against exact draws: MMD, energy, kNN, χ² of component proportions, KS and the
/// one-sample MMD to the exact mixture, judged as one family.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TestTask {
    /// CSV of samples (header x0,x1,…).
    #[cfg_attr(feature = "cli", arg(long))]
    pub samples: PathBuf,
    /// Builtin name or mixture .toml file the samples should follow.
    #[cfg_attr(feature = "cli", arg(long))]
    pub data: String,
    /// Family-wise significance level of the whole battery.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.01))]
    pub alpha: f64,
    /// Seed of the reference draws and of the permutations.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Permutations for the MMD, energy and kNN tests [default: 500, or the fewest that can
    /// reach the group level when that is more].
    #[cfg_attr(feature = "cli", arg(long))]
    pub permutations: Option<usize>,
    /// At most this many points of each sample enter the permutation tests (O(n²) memory).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5000))]
    pub max_points: usize,
}

impl TestTask {
    /// The battery's report and its rendering.
    pub fn run(&self) -> Result<(Report, String)> {
        let data = Dataset::from_spec(&self.data)?;
        let battery = Battery {
            alpha: self.alpha,
            seed: self.seed,
            permutations: self.permutations,
            max_points: self.max_points,
            progress: true,
        };
        battery.validate(&data)?;
        let x = read_csv(&self.samples)?;
        let what = self.samples.display().to_string();
        run_battery(x.view(), &data, &what, &battery)
    }
}

/// Runs `battery` on `x` against `data` and renders the report.
pub(crate) fn run_battery(
    x: ArrayView2<f64>,
    data: &Dataset,
    what: &str,
    battery: &Battery,
) -> Result<(Report, String)> {
    let r = battery.run(x, data)?;
    let text = render_report(&r, what, data.name(), x.ncols(), battery.seed);
    Ok((r, text))
}

/// One line per test and the family verdict.
pub fn render_report(r: &Report, what: &str, data: &str, dim: usize, seed: u64) -> String {
    let alpha = r.alpha;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "testing {what} (n={}, d={dim}) against exact draws of {data} (seed={seed}), family-wise alpha={alpha}",
        r.n
    );
    if r.points < r.n {
        let _ = writeln!(
            s,
            "note: the permutation tests use the first {} points of each sample (--max-points)",
            r.points
        );
    }
    for (t, q) in r.outcomes.iter().zip(&r.adjusted) {
        let verdict = if *q <= alpha * (1.0 + 1e-9) {
            "REJECT"
        } else {
            "ok"
        };
        let _ = writeln!(
            s,
            "  {:<7} statistic={:<12.6e} p={:<10.4e} adjusted p={:<10.4e} {:<6} {}",
            t.name, t.statistic, t.p_value, q, verdict, t.detail
        );
    }
    let groups = if r.oracle_rows > 0 {
        format!("min-P within the permutation tests ({} relabellings) and within the exact-oracle tests ({} null sets, proportions and log-density law from {} exact draws), weighted Bonferroni 0.99alpha/3 : 2(0.99alpha)/3 over the two", r.resamples, r.resamples, r.oracle_rows)
    } else {
        format!(
            "min-P over the permutation tests, {} relabellings",
            r.resamples
        )
    };
    if r.floor_limited {
        let _ = writeln!(
            s,
            "note: a p-value sits at its floor 1/(B+1) = {:.2e}: more permutations (`permutations`) could reject",
            1.0 / (r.resamples + 1) as f64
        );
    }
    let _ = write!(
        s,
        "result: {} at family-wise alpha={alpha} ({groups}; the range test apart, alpha share {})",
        if r.rejected {
            "rejected"
        } else {
            "not rejected"
        },
        crate::stats::suite::RANGE_SHARE
    );
    s
}
