//! The paths first written as SDEs: VP, sub-VP and VE (Song et al. 2021, App. B–C), with their
//! closed forms for f, g, the transition kernel and the inverse log-SNR. `Sde` is the name
//! [`crate::path::Path`] had before paths were the core; it remains an alias.

mod forward;
mod schedule;
mod spec;
mod subvp;
mod ve;
mod vp;

pub use forward::Forward;
pub use schedule::BetaSchedule;
pub use spec::{ScheduleKind, SdeKind, SdeSpec};
pub use subvp::SubVpSde;
pub use ve::VeSde;
pub use vp::VpSde;

pub use crate::path::{
    same_path as same_sde, AsDynPath as AsDynSde, Marginal, Path as Sde, Rates, PRIOR_DOMAIN,
};
