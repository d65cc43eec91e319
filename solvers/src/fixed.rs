//! Fixed-grid solvers: Euler–Maruyama for SDEs; Euler, Heun and RK4 for ODEs.

use crate::{
    first_non_finite, run_chunks, Noise, OdeSystem, SdeSystem, Solution, SolveError, SolveOptions,
    Stats, Time, TimeGrid,
};
use ndarray::{Array2, ArrayViewMut2, Zip};

/// Fixed-step ODE methods. Evaluations per step: Euler 1, Heun 2, RK4 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixedMethod {
    Euler,
    Heun,
    Rk4,
}

impl FixedMethod {
    /// Right-hand-side evaluations per step.
    pub fn evals_per_step(self) -> u64 {
        match self {
            FixedMethod::Euler => 1,
            FixedMethod::Heun => 2,
            FixedMethod::Rk4 => 4,
        }
    }
}

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
pub fn euler_maruyama<S, N>(
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

/// Fixed-step ODE integration of `dx/dt = F(x, t)` on `grid` with `method`.
pub fn ode_fixed<S>(
    sys: &S,
    method: FixedMethod,
    x0: Array2<f64>,
    grid: &TimeGrid,
    opts: &SolveOptions<'_>,
) -> Result<Solution, SolveError>
where
    S: OdeSystem + ?Sized,
{
    let rec = grid.record_indices(&opts.record)?;
    let ts = grid.times();
    run_chunks(x0, opts, &opts.record, |row0, mut x| {
        let (n, d) = x.dim();
        let mut k1 = Array2::zeros((n, d));
        let mut k2 = Array2::zeros((n, d));
        let (mut k3, mut k4, mut tmp) = match method {
            FixedMethod::Rk4 => (
                Array2::zeros((n, d)),
                Array2::zeros((n, d)),
                Array2::zeros((n, d)),
            ),
            FixedMethod::Heun => (
                Array2::zeros((0, d)),
                Array2::zeros((0, d)),
                Array2::zeros((n, d)),
            ),
            FixedMethod::Euler => (
                Array2::zeros((0, d)),
                Array2::zeros((0, d)),
                Array2::zeros((0, d)),
            ),
        };
        let mut recorder = Recorder::new(&rec);
        recorder.visit(0, &x);
        for k in 0..ts.len() - 1 {
            let (t, h) = (ts[k], ts[k + 1] - ts[k]);
            sys.rhs(Time::Shared(t), x.view(), k1.view_mut());
            match method {
                FixedMethod::Euler => x.scaled_add(h, &k1),
                FixedMethod::Heun => {
                    // Trapezoidal predictor–corrector (Heun's second-order method).
                    Zip::from(&mut tmp)
                        .and(&x)
                        .and(&k1)
                        .for_each(|o, &x, &k| *o = x + h * k);
                    sys.rhs(Time::Shared(ts[k + 1]), tmp.view(), k2.view_mut());
                    Zip::from(&mut x)
                        .and(&k1)
                        .and(&k2)
                        .for_each(|x, &a, &b| *x += 0.5 * h * (a + b));
                }
                FixedMethod::Rk4 => {
                    let tm = t + 0.5 * h;
                    Zip::from(&mut tmp)
                        .and(&x)
                        .and(&k1)
                        .for_each(|o, &x, &k| *o = x + 0.5 * h * k);
                    sys.rhs(Time::Shared(tm), tmp.view(), k2.view_mut());
                    Zip::from(&mut tmp)
                        .and(&x)
                        .and(&k2)
                        .for_each(|o, &x, &k| *o = x + 0.5 * h * k);
                    sys.rhs(Time::Shared(tm), tmp.view(), k3.view_mut());
                    Zip::from(&mut tmp)
                        .and(&x)
                        .and(&k3)
                        .for_each(|o, &x, &k| *o = x + h * k);
                    sys.rhs(Time::Shared(ts[k + 1]), tmp.view(), k4.view_mut());
                    Zip::from(&mut x)
                        .and(&k1)
                        .and(&k2)
                        .and(&k3)
                        .and(&k4)
                        .for_each(|x, &a, &b, &c, &e| *x += h / 6.0 * (a + 2.0 * b + 2.0 * c + e));
                }
            }
            check_finite(&x, row0, k as u64, ts[k + 1])?;
            recorder.visit(k + 1, &x);
        }
        let steps = (ts.len() - 1) as u64;
        let stats = Stats {
            particles: n as u64,
            evals: n as u64 * steps * method.evals_per_step(),
            accepted: n as u64 * steps,
            rejected: 0,
        };
        Ok((stats, recorder.finish()))
    })
}
