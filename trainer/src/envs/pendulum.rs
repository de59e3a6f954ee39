//! Gymnasium's Pendulum-v1 (g = 10, m = l = 1, dt = 0.05, max speed 8, torque ±2),
//! with the same operations in the same order so states match to the last bit.

use super::{pow2, Dynamics};
use rand::{Rng, RngCore};
use std::f64::consts::PI;

const G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;
const DT: f64 = 0.05;
const MAX_SPEED: f64 = 8.0;

/// Angle from upright within which the unshaped reward is 1.
const UPRIGHT: f64 = 0.25;

pub struct Pendulum {
    theta: f64,
    theta_dot: f64,
    shaped: bool,
}

impl Pendulum {
    pub fn new(shaped: bool) -> Pendulum {
        Pendulum {
            theta: PI,
            theta_dot: 0.0,
            shaped,
        }
    }
}

/// Gymnasium's `angle_normalize`: `((x + π) mod 2π) − π` with Python's floored modulo.
fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Dynamics for Pendulum {
    fn obs_dim(&self) -> usize {
        3
    }

    fn observe(&self, obs: &mut [f32]) {
        let values = [self.theta.cos(), self.theta.sin(), self.theta_dot];
        obs.iter_mut().zip(values).for_each(|(o, v)| *o = v as f32);
    }

    fn reset(&mut self, rng: &mut dyn RngCore) {
        self.theta = rng.random_range(-PI..PI);
        self.theta_dot = rng.random_range(-1.0..1.0);
    }

    fn state(&self) -> Vec<f64> {
        vec![self.theta, self.theta_dot]
    }

    fn state_layout(&self) -> &'static str {
        "theta (0 = upright), theta_dot"
    }

    fn set_state(&mut self, state: &[f64]) {
        if let [theta, theta_dot] = *state {
            (self.theta, self.theta_dot) = (theta, theta_dot);
        }
    }

    fn advance(&mut self, action: &[f64]) -> (f64, bool) {
        let u = action.first().copied().unwrap_or(0.0);
        let th = self.theta;
        let thdot = self.theta_dot;
        // Both rewards look at the state before the step, as Gymnasium's cost does.
        let reward = if self.shaped {
            let costs = pow2(angle_normalize(th)) + 0.1 * pow2(thdot) + 0.001 * pow2(u);
            -costs
        } else if angle_normalize(th).abs() < UPRIGHT {
            1.0
        } else {
            0.0
        };
        let new_thdot = thdot + (3.0 * G / (2.0 * L) * th.sin() + 3.0 / (M * L * L) * u) * DT;
        let new_thdot = new_thdot.clamp(-MAX_SPEED, MAX_SPEED);
        self.theta = th + new_thdot * DT;
        self.theta_dot = new_thdot;
        (reward, false)
    }
}
