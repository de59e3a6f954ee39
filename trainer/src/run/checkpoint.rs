//! Checkpoints: the agent's tensors, the replay buffer and the loop's [`LoopState`], written so
//! that an interruption at any moment leaves a whole checkpoint, and read back by `--resume`.
//! The files are named by [`CheckpointDir`].

use super::run_dir::{CheckpointDir, RunDir};
use crate::sac::replay::ReplayBuffer;
use crate::sac::{Agent, UpdateStats};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Everything besides tensors that a checkpoint needs to continue the run exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    pub step: usize,
    pub rng: Pcg64,
    pub env_state: Vec<f64>,
    pub env_steps: usize,
    pub obs: Vec<f32>,
    pub episode: usize,
    pub episode_return: f64,
    pub episode_length: usize,
    pub window: Window,
    /// The metrics.csv line of `step` (see [`crate::run::metrics::keep_until`]).
    pub last_row: Option<String>,
}

impl LoopState {
    /// A run at step 0, its environment reset to `env_state` with observation `obs`.
    pub fn new(rng: Pcg64, env_state: Vec<f64>, obs: Vec<f32>) -> LoopState {
        LoopState {
            step: 0,
            rng,
            env_state,
            env_steps: 0,
            obs,
            episode: 0,
            episode_return: 0.0,
            episode_length: 0,
            window: Window::default(),
            last_row: None,
        }
    }

    /// Books the episode that just ended into the metrics window.
    pub fn end_episode(&mut self) {
        self.window.returns.push(self.episode_return);
        self.window.lengths.push(self.episode_length);
        self.episode += 1;
        self.episode_return = 0.0;
        self.episode_length = 0;
    }
}

/// Sums since the last metrics row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    pub returns: Vec<f64>,
    pub lengths: Vec<usize>,
    pub updates: usize,
    pub critic_loss: f64,
    pub actor_loss: f64,
    pub log_prob: f64,
}

impl Window {
    pub fn add(&mut self, s: &UpdateStats) {
        self.updates += 1;
        self.critic_loss += f64::from(s.critic_loss.unwrap_or(f32::NAN));
        self.actor_loss += f64::from(s.actor_loss);
        self.log_prob += f64::from(s.log_prob_mean);
    }
}

/// Writes the checkpoint to a fresh directory and swaps it in, so an interruption at any
/// moment leaves the previous checkpoint or the new one, whole.
pub fn save_checkpoint(
    run: &RunDir,
    agent: &Agent,
    buffer: &ReplayBuffer,
    state: &LoopState,
) -> Result<()> {
    let fresh = CheckpointDir::new(run.checkpoint_new());
    let _ = std::fs::remove_dir_all(&fresh.root);
    std::fs::create_dir_all(&fresh.root)?;
    let tensors: HashMap<String, Tensor> = agent.state()?.into_iter().collect();
    candle_core::safetensors::save(&tensors, fresh.model())?;
    std::fs::write(fresh.replay(), postcard::to_allocvec(buffer)?)?;
    std::fs::write(fresh.progress(), serde_json::to_vec(state)?)?;
    let old = run.checkpoint_old();
    let _ = std::fs::remove_dir_all(&old);
    if run.checkpoint().exists() {
        std::fs::rename(run.checkpoint(), &old)?;
    }
    std::fs::rename(&fresh.root, run.checkpoint())?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Loads the run's checkpoint into `agent` and `buffer`; returns the loop's state.
pub fn load_checkpoint(
    run: &RunDir,
    agent: &mut Agent,
    buffer: &mut ReplayBuffer,
    device: &Device,
) -> Result<LoopState> {
    let dir = CheckpointDir::new(run.checkpoint());
    let old = run.checkpoint_old();
    if !dir.root.exists() && old.exists() {
        // Interrupted between the two renames of save_checkpoint: the old one is whole.
        std::fs::rename(&old, &dir.root)?;
    }
    if !dir.root.exists() {
        bail!("{} has no checkpoint to resume from", run.root.display());
    }
    let tensors = candle_core::safetensors::load(dir.model(), device)
        .with_context(|| format!("cannot read {}", dir.model().display()))?;
    agent.load_state(&tensors)?;
    let bytes = std::fs::read(dir.replay())?;
    *buffer =
        postcard::from_bytes(&bytes).context("the checkpoint's replay buffer is unreadable")?;
    let state: LoopState = serde_json::from_slice(&std::fs::read(dir.progress())?)
        .context("the checkpoint's progress.json is unreadable")?;
    Ok(state)
}
