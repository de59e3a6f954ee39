//! Evaluating an exported policy file through policy-core, exactly as a device runs it.

use crate::envs::Env;
use anyhow::{bail, Result};
use rand::SeedableRng;

/// Returns of the evaluation episodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub returns: Vec<f64>,
    /// Acted with the mode (mean of the most probable component) instead of sampling.
    pub deterministic: bool,
}

impl Evaluation {
    pub fn mean(&self) -> f64 {
        self.returns.iter().sum::<f64>() / self.returns.len() as f64
    }

    /// Sample standard deviation (n − 1; 0 for one episode).
    pub fn std(&self) -> f64 {
        let n = self.returns.len() as f64;
        let mean = self.mean();
        let squares: f64 = self.returns.iter().map(|r| (r - mean).powi(2)).sum();
        (squares / (n - 1.0).max(1.0)).sqrt()
    }

    pub fn min(&self) -> f64 {
        self.returns.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.returns
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Runs `episodes` episodes of `policy` in `env`; start states and sampling from `seed`.
pub fn evaluate(
    policy: &policy_core::HostPolicy,
    env: &mut Env,
    episodes: usize,
    seed: u64,
    deterministic: bool,
) -> Result<Evaluation> {
    if episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let returns = roll_out(
        policy,
        env,
        episodes,
        seed,
        deterministic,
        usize::MAX,
        |_| {},
    )?;
    Ok(Evaluation {
        returns,
        deterministic,
    })
}

/// The observations `policy` meets in `episodes` episodes of `env`, sampling its actions
/// (start states and sampling from `seed`, as [`evaluate`] draws them), one `Vec` per step,
/// each episode cut after `max_steps` steps (an environment without a time limit, or one
/// the policy never finishes, would otherwise never end): the states a quantizer calibrates
/// on and an accuracy check compares at (`mixsac quantize`).
pub fn visited_states(
    policy: &policy_core::HostPolicy,
    env: &mut Env,
    episodes: usize,
    seed: u64,
    max_steps: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut states = Vec::new();
    roll_out(policy, env, episodes, seed, false, max_steps, |obs| {
        states.push(obs.to_vec())
    })?;
    Ok(states)
}

/// Plays `episodes` episodes of at most `max_steps` steps each, showing `visit` each
/// observation the policy acts on; returns each episode's return.
fn roll_out(
    policy: &policy_core::HostPolicy,
    env: &mut Env,
    episodes: usize,
    seed: u64,
    deterministic: bool,
    max_steps: usize,
    mut visit: impl FnMut(&[f32]),
) -> Result<Vec<f64>> {
    if policy.obs_dim() != env.obs_dim() || policy.action_dim() != env.action_dim() {
        bail!(
            "the policy takes {} observations and gives {} actions; {} has {} and {}",
            policy.obs_dim(),
            policy.action_dim(),
            env.spec().name,
            env.obs_dim(),
            env.action_dim()
        );
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut obs = vec![0.0f32; env.obs_dim()];
    let mut action = vec![0.0f32; env.action_dim()];
    let mut returns = Vec::with_capacity(episodes);
    for _ in 0..episodes {
        env.reset(&mut rng, &mut obs)?;
        let mut total = 0.0;
        for _ in 0..max_steps {
            visit(&obs);
            if deterministic {
                policy.mode(&obs, &mut action)?;
            } else {
                policy.sample(&obs, &mut rng, &mut action)?;
            }
            let a: Vec<f64> = action.iter().map(|&x| f64::from(x)).collect();
            let t = env.step(&a, &mut obs)?;
            total += t.reward;
            if t.terminated || t.truncated {
                break;
            }
        }
        returns.push(total);
    }
    Ok(returns)
}
