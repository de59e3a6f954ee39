//! Gymnasium's Pendulum-v1 in `f32`: g = 10, m = l = 1, dt = 0.05, speed limit 8 rad/s,
//! torque limit 2 N·m, reward −(θ² + 0.1 θ̇² + 0.001 u²) with θ wrapped to [−π, π).
//!
//! It is the trainer's `shaped-pendulum` in single precision, so a policy trained there
//! faces the same task here; returns differ from the f64 trainer only by rounding.

use core::f32::consts::PI;
use libm::{cosf, fmodf, sinf};
use rand_core::RngCore;

const G: f32 = 10.0;
const DT: f32 = 0.05;
const MAX_SPEED: f32 = 8.0;
/// Torque limit; the policy's action box is the same.
pub const MAX_TORQUE: f32 = 2.0;

/// Pendulum state; θ = 0 is upright.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pendulum {
    pub theta: f32,
    pub theta_dot: f32,
}

impl Pendulum {
    /// Observations per step: cos θ, sin θ, θ̇.
    pub const OBS_DIM: usize = 3;
    /// Actions per step: the torque.
    pub const ACTION_DIM: usize = 1;

    /// Gymnasium's start distribution: θ ~ U[−π, π), θ̇ ~ U[−1, 1).
    pub fn reset<R: RngCore + ?Sized>(rng: &mut R) -> Pendulum {
        Pendulum {
            theta: -PI + 2.0 * PI * unit_uniform(rng),
            theta_dot: -1.0 + 2.0 * unit_uniform(rng),
        }
    }

    pub fn observe(&self) -> [f32; Self::OBS_DIM] {
        [cosf(self.theta), sinf(self.theta), self.theta_dot]
    }

    /// Applies `torque` (clipped to the limit; NaN counts as −limit) for one step and
    /// returns the reward of the state it started from.
    #[allow(clippy::manual_clamp)] // `clamp` would let a NaN torque into the state
    pub fn step(&mut self, torque: f32) -> f32 {
        let u = torque.max(-MAX_TORQUE).min(MAX_TORQUE);
        let th = self.theta;
        let angle = angle_normalize(th);
        let reward = -(angle * angle + 0.1 * self.theta_dot * self.theta_dot + 0.001 * u * u);
        let theta_dot = self.theta_dot + (3.0 * G / 2.0 * sinf(th) + 3.0 * u) * DT;
        self.theta_dot = theta_dot.max(-MAX_SPEED).min(MAX_SPEED);
        self.theta = th + self.theta_dot * DT;
        reward
    }
}

/// `((x + π) mod 2π) − π` with a floored modulo, as Gymnasium's `angle_normalize`.
fn angle_normalize(x: f32) -> f32 {
    let r = fmodf(x + PI, 2.0 * PI);
    let r = if r < 0.0 { r + 2.0 * PI } else { r };
    r - PI
}

/// Uniform on [0, 1) with 24 random bits, the most an f32 in that range can hold evenly.
fn unit_uniform<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}
