//! Gymnasium's Acrobot-v1 with the "book" dynamics, integrated over dt = 0.2 by its
//! one-step RK4, with a continuous torque in [−1, 1] in place of the three discrete ones.
//! Operations follow Gymnasium's order so trajectories match to the last bit (the system
//! is chaotic: any rounding difference grows).

use super::{pow2, Dynamics};
use rand::RngCore;
use std::f64::consts::PI;

const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const G: f64 = 9.8;

/// (θ1, θ2, θ̇1, θ̇2, torque): the state augmented with the action, as Gymnasium integrates it.
type Augmented = [f64; 5];

pub struct Acrobot {
    s: [f64; 4],
    shaped: bool,
}

impl Acrobot {
    pub fn new(shaped: bool) -> Acrobot {
        Acrobot {
            s: [0.0; 4],
            shaped,
        }
    }

    /// −cos θ1 − cos(θ1 + θ2): the tip's height above the pivot, in link lengths.
    fn height(&self) -> f64 {
        -self.s[0].cos() - (self.s[1] + self.s[0]).cos()
    }
}

/// Gymnasium's `_dsdt` ("book" variant).
fn dsdt(y: &Augmented) -> Augmented {
    let (m1, m2, l1, lc1, lc2, i1, i2) = (
        LINK_MASS_1,
        LINK_MASS_2,
        LINK_LENGTH_1,
        LINK_COM_POS_1,
        LINK_COM_POS_2,
        LINK_MOI,
        LINK_MOI,
    );
    let [theta1, theta2, dtheta1, dtheta2, a] = *y;
    let d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * (lc2 * lc2 + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * G * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * pow2(dtheta2) * theta2.sin()
        - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * G * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * pow2(dtheta1) * theta2.sin() - phi2)
        / (m2 * lc2 * lc2 + i2 - pow2(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// y + c·k, elementwise.
fn axpy(y: &Augmented, c: f64, k: &Augmented) -> Augmented {
    std::array::from_fn(|i| y[i] + c * k[i])
}

/// Gymnasium's `rk4` over the single interval [0, dt].
fn rk4(y0: &Augmented, dt: f64) -> Augmented {
    let dt2 = dt / 2.0;
    let k1 = dsdt(y0);
    let k2 = dsdt(&axpy(y0, dt2, &k1));
    let k3 = dsdt(&axpy(y0, dt2, &k2));
    let k4 = dsdt(&axpy(y0, dt, &k3));
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Gymnasium's `wrap`: shifts by whole periods into [m, M].
fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

impl Dynamics for Acrobot {
    fn obs_dim(&self) -> usize {
        6
    }

    fn observe(&self, obs: &mut [f32]) {
        let s = &self.s;
        let values = [s[0].cos(), s[0].sin(), s[1].cos(), s[1].sin(), s[2], s[3]];
        obs.iter_mut().zip(values).for_each(|(o, v)| *o = v as f32);
    }

    /// The paper's start state: hanging still (Gymnasium draws U(−0.1, 0.1) instead).
    fn reset(&mut self, _rng: &mut dyn RngCore) {
        self.s = [0.0; 4];
    }

    fn state(&self) -> Vec<f64> {
        self.s.to_vec()
    }

    fn state_layout(&self) -> &'static str {
        "theta1, theta2, theta1_dot, theta2_dot"
    }

    fn set_state(&mut self, state: &[f64]) {
        for (s, &v) in self.s.iter_mut().zip(state) {
            *s = v;
        }
    }

    fn advance(&mut self, action: &[f64]) -> (f64, bool) {
        let torque = action.first().copied().unwrap_or(0.0);
        let [t1, t2, v1, v2] = self.s;
        let ns = rk4(&[t1, t2, v1, v2, torque], DT);
        self.s = [
            wrap(ns[0], -PI, PI),
            wrap(ns[1], -PI, PI),
            ns[2].clamp(-MAX_VEL_1, MAX_VEL_1),
            ns[3].clamp(-MAX_VEL_2, MAX_VEL_2),
        ];
        let height = self.height();
        let terminated = height > 1.0;
        let reward = match (self.shaped, terminated) {
            (true, _) => height - 1.0,
            (false, true) => 0.0,
            (false, false) => -1.0,
        };
        (reward, terminated)
    }
}
