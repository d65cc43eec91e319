//! Every noise domain: the second key of [`KeyedNormal`](crate::solvers::KeyedNormal) streams
//! (and of mixture and toy draws), so two uses of one seed never share random numbers. One enum
//! with explicit values: a stream never changes when domains are added, and the compiler
//! refuses two domains with the same value.

/// A noise domain.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Prior draws x_T of a sampler.
    Prior = 0x0050_5249_4f52,
    /// Reverse-SDE and step-map sampler noise.
    Solver = 0x50_4C56,
    /// Training and demo data draws.
    Data = 0xDA7A,
    /// Exact reference draws of the tests.
    Reference = 0x4EF0,
    /// The exact null sets of the battery's oracle group.
    Null = 0x9017,
    /// The discrete ELBO's x_t draws.
    Elbo = 0x454C_424F,
    /// The continuous ELBO's (t, ε) draws.
    ElboTimes = 0x454C_424F ^ 0xC0,
    /// `eval`'s excess-loss draws.
    Eval = 0xE7A1,
    /// Training noise (t and ε).
    Train = 0x7EA1,
    /// Training data draws.
    TrainData = 0x7EA2,
    /// The draws that measure a training set's scale (diameter).
    TrainScale = 0x5D47,
    /// Hutchinson probe vectors of the PF-ODE likelihood.
    Hutchinson = 0x4855_5443,
    /// Random Fourier feature frequencies of a network.
    Fourier = 0xF0F1,
    /// Network initialisation.
    Init = 0x1A17,
    /// forward-reverse-2d: the forward SDE's noise.
    ForwardReverse2d = 0xF0,
    /// sde-trajectories: forward SDE, reverse SDE and the wrong-reverse control.
    TrajectoryForward = 0xF1,
    TrajectoryReverse = 0xF2,
    TrajectoryWrong = 0xF3,
    /// elbo-terms: the rate–distortion draws.
    RateDistortion = 0xD157,
    /// toy-gallery: the wrong-reverse power control.
    GalleryControl = 0x6A11,
    /// swiss-roll: forward q(x_t | x_0) draws.
    SwissRollForward = 0x5E11,
}

impl Domain {
    /// The key of the stream.
    pub const fn key(self) -> u64 {
        self as u64
    }
}
