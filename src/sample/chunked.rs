//! The samplers that integrate the reverse SDE or the PF-ODE with the solvers crate, in
//! independent row chunks ([`StepContext::solve`]): reverse Euler–Maruyama (and Huang et al.'s
//! plug-in family), and the PF-ODE by any explicit Runge–Kutta tableau, on a grid or adaptive.

use super::engine::{Dynamics, StepContext};
use super::grid::Grid;
use super::Method;
use crate::reverse::Diffusion;
use crate::sde::Sde;
use crate::Result;
use ndarray::Array2;
use scoresde_solvers::{Method as Step, Steps, Tableau, TimeGrid, Tolerances, DOPRI5};

/// `em` and `plug-in`: Euler–Maruyama on the reverse dynamics
/// `dx = [u − ½ w² ∇log p_t] dt + w dw̄` with w(t) any member of [`Diffusion`] (w = g: the
/// reverse SDE; w² = (1 − λ) g²: Huang, Lim & Courville 2021's plug-in family), N steps,
/// N evaluations.
#[derive(Clone, Debug)]
pub struct ReverseEm {
    pub diffusion: Diffusion,
    pub grid: Grid,
}

impl Method for ReverseEm {
    fn name(&self) -> String {
        match self.diffusion {
            Diffusion::PlugIn { .. } => "plug-in",
            Diffusion::Kind { .. } => "em",
        }
        .into()
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        self.grid.times(sde, eps, steps + 1)
    }
    /// N.
    fn nfe(&self, steps: usize) -> Option<u64> {
        Some(steps as u64)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        times: &[f64],
        _: usize,
    ) -> Result<()> {
        let t_end = *times.last().expect("a grid has points");
        self.diffusion.check(ctx.sde, times[0], t_end)?;
        let steps = Steps::Grid(TimeGrid::new(times.to_vec())?);
        ctx.solve(
            Dynamics::ReverseSde {
                diffusion: self.diffusion,
            },
            Step::EulerMaruyama,
            &steps,
            x,
        )
    }
}

/// The PF-ODE `dx/dt = f − ½ g² s` by an explicit Runge–Kutta tableau: on a grid of N steps
/// (pf-euler, pf-heun, pf-rk4: stages × N evaluations), or adaptive with embedded error control
/// (pf-rk45: Dormand–Prince, evaluations counted, not declared).
#[derive(Clone, Debug)]
pub struct PfOde {
    pub tableau: &'static Tableau,
    pub steps: PfSteps,
}

/// Where a [`PfOde`] steps: on a grid of N steps, or adaptively within tolerances.
#[derive(Clone, Debug)]
pub enum PfSteps {
    Grid(Grid),
    Adaptive(Tolerances),
}

impl PfOde {
    pub fn fixed(tableau: &'static Tableau, grid: Grid) -> Self {
        Self {
            tableau,
            steps: PfSteps::Grid(grid),
        }
    }
    pub fn adaptive(tol: Tolerances) -> Self {
        Self {
            tableau: &DOPRI5,
            steps: PfSteps::Adaptive(tol),
        }
    }
}

impl Method for PfOde {
    fn name(&self) -> String {
        match &self.steps {
            PfSteps::Grid(_) => format!("pf-{}", self.tableau.name),
            PfSteps::Adaptive(_) => "pf-rk45".into(),
        }
    }
    fn grid(&self, sde: &dyn Sde, eps: f64, steps: usize) -> Result<Vec<f64>> {
        match &self.steps {
            PfSteps::Grid(g) => g.times(sde, eps, steps + 1),
            PfSteps::Adaptive(_) => Ok(vec![sde.t_max(), eps]),
        }
    }
    /// stages × N on a grid; adaptive: not known before the run.
    fn nfe(&self, steps: usize) -> Option<u64> {
        match &self.steps {
            PfSteps::Grid(_) => Some((self.tableau.stages() * steps) as u64),
            PfSteps::Adaptive(_) => None,
        }
    }
    fn reads_steps(&self) -> bool {
        matches!(self.steps, PfSteps::Grid(_))
    }
    /// The tableau's order on a grid.
    fn order(&self) -> Option<u32> {
        self.reads_steps().then_some(self.tableau.order)
    }
    fn run(
        &self,
        ctx: &mut StepContext<'_>,
        x: &mut Array2<f64>,
        times: &[f64],
        _: usize,
    ) -> Result<()> {
        let steps = match self.steps {
            PfSteps::Grid(_) => Steps::Grid(TimeGrid::new(times.to_vec())?),
            PfSteps::Adaptive(tol) => Steps::Adaptive {
                t0: times[0],
                t1: *times.last().expect("two times"),
                tol,
            },
        };
        ctx.solve(Dynamics::ProbabilityFlow, Step::Rk(self.tableau), &steps, x)
    }
}
