//! One closed-loop episode: observe, sample an action from the policy, step the plant.

use crate::plant::Pendulum;
use policy_core::math::Math;
use policy_core::{ActError, Policy};
use rand_core::RngCore;

/// Steps per episode, as Pendulum-v1's time limit.
pub const EPISODE_STEPS: usize = 200;
/// Episodes the firmware runs, one after the other from one random stream.
pub const EPISODES: usize = 5;
/// Seed of that stream (`rand_pcg::Pcg32::seed_from_u64`).
pub const SEED: u64 = 2026;

/// What an episode leaves behind: enough to compare two runs exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// Sum of the rewards.
    pub total_reward: f32,
    /// FNV-1a over the bit patterns of every action, in order.
    pub checksum: u32,
    /// The mixture component drawn at each step.
    pub components: [u8; EPISODE_STEPS],
}

/// Hooks around each policy call, so the firmware can count the cost of an action.
pub trait ActionMeter {
    fn start(&mut self) {}
    fn stop(&mut self) {}
}

/// Measures nothing (the host).
pub struct NoMeter;

impl ActionMeter for NoMeter {}

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

fn fnv1a(hash: u32, bytes: [u8; 4]) -> u32 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ u32::from(b)).wrapping_mul(FNV_PRIME))
}

/// Runs one episode from a fresh start state drawn from `rng`, which then also drives the
/// policy's sampling. Fails only if the policy does not fit the plant (wrong dimensions).
pub fn run_episode<M, R, const A: usize, const K: usize, const W: usize>(
    policy: &Policy<'_, M, A, K, W>,
    rng: &mut R,
    meter: &mut impl ActionMeter,
) -> Result<Episode, ActError>
where
    M: Math,
    R: RngCore + ?Sized,
{
    let mut plant = Pendulum::reset(rng);
    let mut episode = Episode {
        total_reward: 0.0,
        checksum: FNV_OFFSET,
        components: [0; EPISODE_STEPS],
    };
    let mut action = [0.0f32; Pendulum::ACTION_DIM];
    for component in episode.components.iter_mut() {
        let obs = plant.observe();
        meter.start();
        let sample = policy.sample(&obs, rng, &mut action);
        meter.stop();
        // One byte per step: a policy with more than 256 components would wrap here.
        *component = sample?.component as u8;
        let torque = action[0];
        episode.checksum = fnv1a(episode.checksum, torque.to_bits().to_le_bytes());
        episode.total_reward += plant.step(torque);
    }
    Ok(episode)
}
