//! Toy generators without a closed-form density (FFJORD `lib/toy_data.py` definitions,
//! papers.md §2). Where FFJORD uses a deterministic grid of angles (moons, rings), these draw
//! the angle uniformly: the continuum version of the same distribution, so that every draw is
//! independent and keyed by its row.

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use scoresde_solvers::KeyedNormal;
use std::f64::consts::PI;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toy {
    Moons,
    SwissRoll,
    Checkerboard,
    Rings,
    Pinwheel,
    TwoSpirals,
}

impl Toy {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "moons" => Toy::Moons,
            "swissroll" => Toy::SwissRoll,
            "checkerboard" => Toy::Checkerboard,
            "rings" => Toy::Rings,
            "pinwheel" => Toy::Pinwheel,
            "2spirals" => Toy::TwoSpirals,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Toy::Moons => "moons",
            Toy::SwissRoll => "swissroll",
            Toy::Checkerboard => "checkerboard",
            Toy::Rings => "rings",
            Toy::Pinwheel => "pinwheel",
            Toy::TwoSpirals => "2spirals",
        }
    }

    /// `n` draws keyed by (seed, domain, row).
    pub fn sample(&self, n: usize, seed: u64, domain: u64) -> Array2<f64> {
        let key = KeyedNormal::new(seed, domain);
        let mut x = Array2::zeros((n, 2));
        for (i, mut row) in x.rows_mut().into_iter().enumerate() {
            let mut r = key.rng(i as u64, 0);
            let (a, b) = self.draw(&mut r);
            row[0] = a;
            row[1] = b;
        }
        x
    }

    fn draw<R: Rng>(&self, r: &mut R) -> (f64, f64) {
        fn normal<R: Rng>(r: &mut R) -> f64 {
            r.sample(StandardNormal)
        }
        match self {
            Toy::Moons => {
                // sklearn make_moons(noise = 0.1), then ×2 + (−1, −0.2).
                let th = PI * r.random::<f64>();
                let (x, y) = if r.random::<bool>() {
                    (th.cos(), th.sin())
                } else {
                    (1.0 - th.cos(), 1.0 - th.sin() - 0.5)
                };
                (
                    2.0 * (x + 0.1 * normal(r)) - 1.0,
                    2.0 * (y + 0.1 * normal(r)) - 0.2,
                )
            }
            Toy::SwissRoll => {
                // sklearn make_swiss_roll(noise = 1.0)[:, [0, 2]] / 5.
                let t = 1.5 * PI * (1.0 + 2.0 * r.random::<f64>());
                (
                    (t * t.cos() + normal(r)) / 5.0,
                    (t * t.sin() + normal(r)) / 5.0,
                )
            }
            Toy::Checkerboard => {
                let x1 = 4.0 * r.random::<f64>() - 2.0;
                let x2 = r.random::<f64>() - 2.0 * f64::from(r.random::<bool>() as u8);
                let x2 = x2 + (x1.floor()).rem_euclid(2.0);
                (2.0 * x1, 2.0 * x2)
            }
            Toy::Rings => {
                let radius = [1.0, 0.75, 0.5, 0.25][r.random_range(0..4)] * 3.0;
                let th = 2.0 * PI * r.random::<f64>();
                (
                    radius * th.cos() + 0.08 * normal(r),
                    radius * th.sin() + 0.08 * normal(r),
                )
            }
            Toy::Pinwheel => {
                let label = r.random_range(0..5) as f64;
                let f0 = 0.3 * normal(r) + 1.0;
                let f1 = 0.1 * normal(r);
                let angle = 2.0 * PI * label / 5.0 + 0.25 * f0.exp();
                let (s, c) = angle.sin_cos();
                (2.0 * (f0 * c + f1 * s), 2.0 * (-f0 * s + f1 * c))
            }
            Toy::TwoSpirals => {
                let n = r.random::<f64>().sqrt() * 540.0 * 2.0 * PI / 360.0;
                let x = -n.cos() * n + 0.5 * r.random::<f64>();
                let y = n.sin() * n + 0.5 * r.random::<f64>();
                let sign = if r.random::<bool>() { 1.0 } else { -1.0 };
                (
                    sign * x / 3.0 + 0.1 * normal(r),
                    sign * y / 3.0 + 0.1 * normal(r),
                )
            }
        }
    }
}
