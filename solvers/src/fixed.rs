//! Fixed-grid solvers: Euler–Maruyama for SDEs, any explicit Runge–Kutta tableau for ODEs.

use crate::{
    first_non_finite, run_chunks, Noise, OdeSystem, SdeSystem, Solution, SolveError, SolveOptions,
    Stats, Tableau, Time, TimeGrid,
};
use ndarray::{Array2, ArrayViewMut2, Zip};

/// Keeps copies of the state at the grid indices that were asked for.
struct Recorder<'a> {
    at: &'a [usize],
    got: Vec<Option<Array2<f64>>>,
}

impl<'a> Recorder<'a> {
    fn new(at: &'a [usize]) -> Self {
        Self {
            at,
            got: vec![None; at.len()],
        }
    }
    fn visit(&mut self, k: usize, x: &ArrayViewMut2<f64>) {
        for (slot, &i) in self.got.iter_mut().zip(self.at) {
            if i == k {
                *slot = Some(x.to_owned());
            }
        }
    }
    fn finish(self) -> Vec<Array2<f64>> {
        self.got
            .into_iter()
            .map(|r| r.expect("every record index is visited"))
            .collect()
    }
}

fn check_finite(x: &ArrayViewMut2<f64>, row0: usize, step: u64, t: f64) -> Result<(), SolveError> {
    match first_non_finite(x.view()) {
        Some(i) => Err(SolveError::NonFinite {
            step,
            t,
            row: row0 + i,
        }),
        None => Ok(()),
    }
}

/// Euler–Maruyama on `grid`: `x ← x + f(x, t_k) Δ + g(t_k) √|Δ| z_k`, `Δ = t_{k+1} − t_k`.
///
/// The noise of step k for global row i is `noise.fill(i, k)`. A decreasing grid integrates
/// the SDE backward in time (as a reverse-time SDE is written: `dw̄` has variance |dt|).
pub(crate) fn euler_maruyama<S, N>(
    sys: &S,
    x0: Array2<f64>,
    grid: &TimeGrid,
    noise: &N,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError>
where
    S: SdeSystem + ?Sized,
    N: Noise + ?Sized,
{
    let rec = grid.record_indices(&opts.record)?;
    let ts = grid.times();
    run_chunks(x0, opts, &opts.record, |row0, mut x| {
        let (n, d) = x.dim();
        let mut f = Array2::zeros((n, d));
        let mut z = Array2::zeros((n, d));
        let mut recorder = Recorder::new(&rec);
        recorder.visit(0, &x);
        for k in 0..ts.len() - 1 {
            let (t, dt) = (ts[k], ts[k + 1] - ts[k]);
            sys.drift(Time::Shared(t), x.view(), f.view_mut());
            noise.fill(row0, k as u64, z.view_mut());
            let gs = sys.diffusion(t) * dt.abs().sqrt();
            Zip::from(&mut x)
                .and(&f)
                .and(&z)
                .for_each(|x, &f, &z| *x += f * dt + gs * z);
            check_finite(&x, row0, k as u64, ts[k + 1])?;
            recorder.visit(k + 1, &x);
        }
        let steps = (ts.len() - 1) as u64;
        let stats = Stats {
            particles: n as u64,
            evals: n as u64 * steps,
            accepted: n as u64 * steps,
            rejected: 0,
        };
        Ok((stats, recorder.finish()))
    })
}

/// Fixed-step explicit Runge–Kutta integration of `dx/dt = F(x, t)` on `grid` with the
/// tableau `tab`: stages on `x + h Σ_j a_ij k_j` at `t + c_i h` (at the next grid time where
/// `c_i = 1`), then `x ← x + (h / b_den) Σ_j b_j k_j`.
pub(crate) fn rk_fixed<S>(
    sys: &S,
    tab: &Tableau,
    x0: Array2<f64>,
    grid: &TimeGrid,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError>
where
    S: OdeSystem + ?Sized,
{
    let rec = grid.record_indices(&opts.record)?;
    let ts = grid.times();
    let stages = tab.stages();
    run_chunks(x0, opts, &opts.record, |row0, mut x| {
        let (n, d) = x.dim();
        let mut k: Vec<Array2<f64>> = (0..stages).map(|_| Array2::zeros((n, d))).collect();
        let mut acc = Array2::<f64>::zeros((n, d));
        let mut y = Array2::<f64>::zeros(if stages > 1 { (n, d) } else { (0, d) });
        let mut recorder = Recorder::new(&rec);
        recorder.visit(0, &x);
        for step in 0..ts.len() - 1 {
            let (t, h) = (ts[step], ts[step + 1] - ts[step]);
            for i in 0..stages {
                let ti = if tab.c[i] == 1.0 {
                    ts[step + 1]
                } else {
                    t + tab.c[i] * h
                };
                let (done, rest) = k.split_at_mut(i);
                if i == 0 {
                    sys.rhs(Time::Shared(ti), x.view(), rest[0].view_mut());
                    continue;
                }
                weighted_sum(&mut acc, tab.a[i], done);
                Zip::from(&mut y)
                    .and(&x)
                    .and(&acc)
                    .for_each(|y, &x, &a| *y = x + h * a);
                sys.rhs(Time::Shared(ti), y.view(), rest[0].view_mut());
            }
            weighted_sum(&mut acc, tab.b, &k);
            let hb = h / tab.b_den;
            Zip::from(&mut x).and(&acc).for_each(|x, &a| *x += hb * a);
            check_finite(&x, row0, step as u64, ts[step + 1])?;
            recorder.visit(step + 1, &x);
        }
        let steps = (ts.len() - 1) as u64;
        let stats = Stats {
            particles: n as u64,
            evals: n as u64 * steps * stages as u64,
            accepted: n as u64 * steps,
            rejected: 0,
        };
        Ok((stats, recorder.finish()))
    })
}

/// `acc = Σ_j w_j k_j` over the nonzero weights, summed in order.
fn weighted_sum(acc: &mut Array2<f64>, w: &[f64], k: &[Array2<f64>]) {
    acc.fill(0.0);
    for (&w, k) in w.iter().zip(k).filter(|(w, _)| **w != 0.0) {
        if w == 1.0 {
            *acc += k;
        } else {
            acc.scaled_add(w, k);
        }
    }
}
