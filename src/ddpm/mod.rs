//! Discrete DDPM (Ho et al. 2020) as the special case of the VP-SDE on a grid.

mod schedule;

pub use schedule::{DiscreteSchedule, Posterior};
