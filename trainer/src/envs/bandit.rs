//! One-step continuous bandits whose reward is a scaled sum of Gaussian densities,
//! r(a) = c · Σ_i N(a; m_i, s_i), with c chosen so that max over the action range is 1.
//! The reward exists as plain f64 (evaluation) and as candle tensor operations, so
//! reparameterised estimators can differentiate through it (the bandit "critic" is r).

use super::Dynamics;
use candle_core::{Tensor, D};
use rand::{Rng, RngCore, SeedableRng};

/// Action range of every bandit.
pub const ACTION_RANGE: (f64, f64) = (-3.0, 3.0);
/// Gaussians in a random bandit.
pub const RANDOM_COMPONENTS: usize = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct Bandit {
    means: Vec<f64>,
    stds: Vec<f64>,
    /// c: makes the maximum reward over the action range exactly 1.
    scale: f64,
}

fn normal_pdf(a: f64, mean: f64, std: f64) -> f64 {
    let z = (a - mean) / std;
    (-0.5 * z * z).exp() / (std * (2.0 * std::f64::consts::PI).sqrt())
}

impl Bandit {
    /// `bimodal-bandit`: N(a; −1, 0.5) + N(a; 1, 0.5), scaled to a maximum of 1.
    pub fn bimodal() -> Bandit {
        Bandit::normalised(vec![-1.0, 1.0], vec![0.5, 0.5])
    }

    /// `random-bandit:<seed>`: 30 Gaussians with means ~ U[−3, 3] and stds ~ U[0.1, 1],
    /// drawn from a PCG stream seeded by `seed` alone.
    pub fn random(seed: u64) -> Bandit {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut means = Vec::with_capacity(RANDOM_COMPONENTS);
        let mut stds = Vec::with_capacity(RANDOM_COMPONENTS);
        for _ in 0..RANDOM_COMPONENTS {
            means.push(rng.random_range(-3.0..=3.0));
            stds.push(rng.random_range(0.1..=1.0));
        }
        Bandit::normalised(means, stds)
    }

    fn normalised(means: Vec<f64>, stds: Vec<f64>) -> Bandit {
        let mut bandit = Bandit {
            means,
            stds,
            scale: 1.0,
        };
        bandit.scale = 1.0 / bandit.unscaled_max();
        bandit
    }

    fn unscaled(&self, a: f64) -> f64 {
        self.means
            .iter()
            .zip(&self.stds)
            .map(|(&m, &s)| normal_pdf(a, m, s))
            .sum()
    }

    /// Maximum of the unscaled sum over the action range: the best of a 0.0001-spaced grid,
    /// refined by golden-section search within one grid step on either side (narrowest
    /// peak: s = 0.1, so the grid cannot step over one).
    fn unscaled_max(&self) -> f64 {
        let (lo, hi) = ACTION_RANGE;
        let n = 60_000;
        let step = (hi - lo) / n as f64;
        let best = (0..=n)
            .map(|i| lo + step * i as f64)
            .max_by(|&x, &y| self.unscaled(x).total_cmp(&self.unscaled(y)))
            .unwrap_or(0.0);
        let (mut a, mut b) = ((best - step).max(lo), (best + step).min(hi));
        let ratio = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..100 {
            let c = b - ratio * (b - a);
            let d = a + ratio * (b - a);
            if self.unscaled(c) > self.unscaled(d) {
                b = d;
            } else {
                a = c;
            }
        }
        self.unscaled(best).max(self.unscaled((a + b) / 2.0))
    }

    /// The Gaussians (mean, std) whose scaled sum is the reward.
    pub fn components(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.means.iter().copied().zip(self.stds.iter().copied())
    }

    /// E[r(a)] for a ~ N(mean, std²) on the whole real line (the reward not clipped to the
    /// action range), in closed form: c Σ_i N(mean; m_i, √(std² + s_i²)).
    pub fn gaussian_expectation(&self, mean: f64, std: f64) -> f64 {
        self.scale
            * self
                .components()
                .map(|(m, s)| normal_pdf(mean, m, (std * std + s * s).sqrt()))
                .sum::<f64>()
    }

    /// r(a) in f64. Actions outside the range are clipped to it, as the environment does.
    pub fn reward(&self, a: f64) -> f64 {
        let (lo, hi) = ACTION_RANGE;
        self.scale * self.unscaled(a.clamp(lo, hi))
    }

    /// r(a) for a batch of actions of shape `[B, 1]` (or `[B]`), as differentiable tensor
    /// operations in the actions' dtype and on their device. Actions are not clipped here:
    /// squashed policies already act inside the range.
    pub fn reward_tensor(&self, actions: &Tensor) -> candle_core::Result<Tensor> {
        let (device, dtype) = (actions.device(), actions.dtype());
        let n = self.means.len();
        let row = |values: Vec<f64>| Tensor::from_vec(values, (1, n), device)?.to_dtype(dtype);
        let means = row(self.means.clone())?;
        let inv_stds = row(self.stds.iter().map(|s| 1.0 / s).collect())?;
        let sqrt_tau = (2.0 * std::f64::consts::PI).sqrt();
        let coefs = row(self
            .stds
            .iter()
            .map(|s| self.scale / (s * sqrt_tau))
            .collect())?;
        let a = if actions.rank() == 1 {
            actions.unsqueeze(1)?
        } else {
            actions.clone()
        };
        let z = a.broadcast_sub(&means)?.broadcast_mul(&inv_stds)?;
        let densities = (z.sqr()? * -0.5)?.exp()?.broadcast_mul(&coefs)?;
        let r = densities.sum_keepdim(D::Minus1)?;
        if actions.rank() == 1 {
            r.squeeze(1)
        } else {
            Ok(r)
        }
    }
}

impl Dynamics for Bandit {
    fn obs_dim(&self) -> usize {
        1
    }

    /// One dummy state: the observation is always 0.
    fn observe(&self, obs: &mut [f32]) {
        obs.iter_mut().for_each(|o| *o = 0.0);
    }

    fn reset(&mut self, _rng: &mut dyn RngCore) {}

    fn state(&self) -> Vec<f64> {
        Vec::new()
    }

    fn state_layout(&self) -> &'static str {
        "none (one dummy state)"
    }

    fn set_state(&mut self, _state: &[f64]) {}

    fn advance(&mut self, action: &[f64]) -> (f64, bool) {
        (self.reward(action.first().copied().unwrap_or(0.0)), true)
    }
}
