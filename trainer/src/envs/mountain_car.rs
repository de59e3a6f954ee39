//! Gymnasium's MountainCarContinuous-v0 dynamics (power 0.0015, gravity 0.0025, speed ±0.07,
//! goal x ≥ 0.45 with v ≥ 0) with the paper's rewards. Like Gymnasium, the state is stored
//! as float32 after every step (a fresh start state is float64), and `3·x` is formed in
//! float32 when x is.

use super::Dynamics;
use rand::{Rng, RngCore};

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.45;
const GOAL_VELOCITY: f64 = 0.0;
const POWER: f64 = 0.0015;
const GRAVITY: f64 = 0.0025;

pub struct MountainCar {
    position: f64,
    velocity: f64,
    /// Whether the state holds float32 values (after a step) rather than float64 (a start).
    stored_as_f32: bool,
    shaped: bool,
}

impl MountainCar {
    pub fn new(shaped: bool) -> MountainCar {
        MountainCar {
            position: -0.5,
            velocity: 0.0,
            stored_as_f32: false,
            shaped,
        }
    }
}

impl Dynamics for MountainCar {
    fn obs_dim(&self) -> usize {
        2
    }

    fn observe(&self, obs: &mut [f32]) {
        let values = [self.position, self.velocity];
        obs.iter_mut().zip(values).for_each(|(o, v)| *o = v as f32);
    }

    fn reset(&mut self, rng: &mut dyn RngCore) {
        self.position = rng.random_range(-0.6..-0.4);
        self.velocity = 0.0;
        self.stored_as_f32 = false;
    }

    fn state(&self) -> Vec<f64> {
        vec![self.position, self.velocity]
    }

    fn state_layout(&self) -> &'static str {
        "position, velocity"
    }

    fn set_state(&mut self, state: &[f64]) {
        if let [position, velocity] = *state {
            (self.position, self.velocity) = (position, velocity);
            self.stored_as_f32 = false;
        }
    }

    fn advance(&mut self, action: &[f64]) -> (f64, bool) {
        let force = action.first().copied().unwrap_or(0.0);
        let three_x = if self.stored_as_f32 {
            f64::from(3.0 * self.position as f32)
        } else {
            3.0 * self.position
        };
        let mut velocity = self.velocity + (force * POWER - GRAVITY * three_x.cos());
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        let mut position = self.position + velocity;
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
        self.position = f64::from(position as f32);
        self.velocity = f64::from(velocity as f32);
        self.stored_as_f32 = true;
        let reward = if self.shaped {
            self.position - 0.6
        } else {
            -1.0
        };
        (reward, terminated)
    }
}
