//! A run's agent held fixed, for studies of the actor's gradient at fixed parameters
//! (`experiments::grad_variance`): as a run of a config starts (its seed's initialisation),
//! or as the run's latest checkpoint left it, with its replay buffer. Nothing is trained, and
//! no file of the run directory is created or changed, with one exception: loading, like
//! `--resume`, completes a checkpoint swap cut short between its two renames (it renames the
//! whole old checkpoint back into place; see `checkpoint::load_checkpoint`). Always on the
//! CPU.

use super::checkpoint::load_checkpoint;
use super::run_dir::RunDir;
use super::train::new_agent;
use crate::config::Config;
use crate::envs::EnvBatch;
use crate::sac::replay::ReplayBuffer;
use crate::sac::Agent;
use anyhow::{Context, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// Why a directory cannot be loaded as a frozen run (besides a missing or damaged
/// checkpoint, [`super::checkpoint::CheckpointError`]).
#[derive(Debug, thiserror::Error)]
pub enum FrozenRunError {
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error(
        "{} is not a run directory (it has no config.toml); for a population, name one member's directory",
        .0.display()
    )]
    NotARunDirectory(PathBuf),
}

/// One run's agent (member 0) and replay buffer at a fixed step.
pub struct FrozenRun {
    pub config: Config,
    pub agent: Agent,
    pub buffer: ReplayBuffer,
    /// Steps the run had taken (0: freshly initialised).
    pub step: usize,
    pub obs_dim: usize,
    pub action_dim: usize,
}

impl FrozenRun {
    /// The agent a run of `config` starts with (drawn from `config.seed` as the run draws
    /// it), with an empty replay buffer.
    pub fn fresh(config: &Config) -> Result<FrozenRun> {
        let envs = EnvBatch::make(&config.env, 1, &config.gym_options())?;
        let (obs_dim, action_dim) = (envs.obs_dim(), envs.action_dim());
        let (agent, _) = new_agent(std::slice::from_ref(config), &envs, &Device::Cpu)?;
        Ok(FrozenRun {
            config: config.clone(),
            agent,
            buffer: ReplayBuffer::new(config.buffer_size, obs_dim, action_dim),
            step: 0,
            obs_dim,
            action_dim,
        })
    }

    /// The run in `dir` at its latest checkpoint (checked against its manifest first, as
    /// `--resume` checks it).
    pub fn load(dir: &Path) -> Result<FrozenRun> {
        let run = RunDir::new(dir);
        if !dir.is_dir() {
            return Err(FrozenRunError::NotADirectory(dir.to_path_buf()).into());
        }
        if !run.config().exists() {
            return Err(FrozenRunError::NotARunDirectory(dir.to_path_buf()).into());
        }
        let config = Config::load(&run.config())?;
        let mut frozen = FrozenRun::fresh(&config)?;
        let (state, _) =
            load_checkpoint(&run, &mut frozen.agent, 0, &mut frozen.buffer, &Device::Cpu)
                .with_context(|| format!("cannot load the checkpoint of {}", dir.display()))?;
        frozen.step = state.step;
        Ok(frozen)
    }
}
