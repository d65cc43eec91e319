//! Explicit Runge–Kutta methods as Butcher tableaux (Hairer, Nørsett & Wanner, *Solving ODEs I*,
//! §II.1): stage i is evaluated at `t + c_i h` on `x + h Σ_j a_ij k_j`, and the step is
//! `x + (h / b_den) Σ_j b_j k_j`. A new explicit method is a new constant.

/// A Butcher tableau, with optional embedded error weights for adaptive stepping.
#[derive(Debug, PartialEq)]
pub struct Tableau {
    pub name: &'static str,
    /// Order of the solution the step returns.
    pub order: u32,
    /// Stage times `c_i` (`c_0 = 0`).
    pub c: &'static [f64],
    /// Row i holds `a_i0 … a_i,i−1` (row 0 is empty).
    pub a: &'static [&'static [f64]],
    /// Weights `b_j`, taken over the common denominator `b_den` (RK4: 1, 2, 2, 1 over 6).
    pub b: &'static [f64],
    pub b_den: f64,
    /// `b − b̂`, the difference to the embedded lower-order weights (adaptive methods).
    pub err: Option<&'static [f64]>,
    /// First same as last: the last stage is evaluated on the step's solution, so its
    /// derivative starts the next step (`a` of the last row = `b`, `c` = 1).
    pub fsal: bool,
}

impl Tableau {
    /// Right-hand-side evaluations per step (an FSAL method reuses one per accepted step).
    pub fn stages(&self) -> usize {
        self.c.len()
    }
}

/// Forward Euler (order 1).
pub const EULER: Tableau = Tableau {
    name: "euler",
    order: 1,
    c: &[0.0],
    a: &[&[]],
    b: &[1.0],
    b_den: 1.0,
    err: None,
    fsal: false,
};

/// Heun's second-order method, the explicit trapezoid rule.
pub const HEUN: Tableau = Tableau {
    name: "heun",
    order: 2,
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[1.0, 1.0],
    b_den: 2.0,
    err: None,
    fsal: false,
};

/// The classical fourth-order Runge–Kutta method.
pub const RK4: Tableau = Tableau {
    name: "rk4",
    order: 4,
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0, 2.0, 2.0, 1.0],
    b_den: 6.0,
    err: None,
    fsal: false,
};

/// Dormand & Prince 1980, 5(4) with FSAL (Hairer et al. Table II.5.2); the step returns the
/// fifth-order solution.
pub const DOPRI5: Tableau = Tableau {
    name: "dopri5",
    order: 5,
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ],
    b: &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
        0.0,
    ],
    b_den: 1.0,
    err: Some(&[
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ]),
    fsal: true,
};
