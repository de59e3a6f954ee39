//! Checkpoints: the agent's tensors, the replay buffer and the loop's [`LoopState`], written so
//! that an interruption at any moment leaves a whole checkpoint, and read back by `--resume`.
//! The files are named by [`CheckpointDir`]; a manifest (`run::manifest`) records the size and
//! CRC-32 of each, and `--resume` refuses a checkpoint whose files do not match it.
//!
//! Only the latest checkpoint is kept (the previous one is removed once the new one is in
//! place), so there is none to fall back to: a damaged checkpoint is refused, with a message
//! naming the file and what is wrong, and the run directory is left as it was.

use super::manifest::{self, ManifestError};
use super::run_dir::{CheckpointDir, RunDir};
use crate::sac::replay::ReplayBuffer;
use crate::sac::{Agent, UpdateStats};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

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

/// Why a run cannot continue from its checkpoint. Nothing in the run directory has been
/// changed when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The run has no checkpoint (it was stopped before its first one, or is no run).
    #[error("{} has no checkpoint to resume from", run.display())]
    Missing { run: PathBuf },
    /// A file of the checkpoint, or its manifest, is damaged or missing. There is no older
    /// checkpoint to fall back to: restore `checkpoint` from a backup, or start the run again.
    #[error(
        "cannot resume {}: {problem}. Nothing was changed; this checkpoint cannot be used: \
         restore {} from a backup or start the run again",
        run.display(),
        checkpoint.display()
    )]
    Damaged {
        run: PathBuf,
        checkpoint: PathBuf,
        problem: ManifestError,
    },
}

/// Whether a loaded checkpoint's files were checked against its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Every file matched the size and CRC-32 its manifest records.
    Verified,
    /// The checkpoint has no manifest: one written by a mixsac from before checkpoints were
    /// checksummed (or its manifest was deleted). Its files were loaded unchecked.
    Unverified,
}

/// Writes a checkpoint in two halves, so an interruption at any moment leaves the previous
/// checkpoint or the new one, whole. This first half writes the whole new checkpoint to
/// `checkpoint.new/`: its files are made durable and recorded in its manifest, written last.
/// A population writes every member's before swapping any in ([`swap_in_pending_checkpoint`]),
/// so that an interruption leaves every member able to reach one common step
/// ([`reconcile_population`]).
pub fn write_pending_checkpoint(
    run: &RunDir,
    agent: &Agent,
    member: usize,
    buffer: &ReplayBuffer,
    state: &LoopState,
) -> Result<()> {
    let fresh = CheckpointDir::new(run.checkpoint_new());
    let _ = std::fs::remove_dir_all(&fresh.root);
    std::fs::create_dir_all(&fresh.root)?;
    let tensors: HashMap<String, Tensor> = agent.state(member)?.into_iter().collect();
    candle_core::safetensors::save(&tensors, fresh.model())?;
    std::fs::write(fresh.replay(), postcard::to_allocvec(buffer)?)?;
    std::fs::write(fresh.progress(), serde_json::to_vec(state)?)?;
    manifest::write(&fresh.manifest(), &fresh.files())?;
    Ok(())
}

/// The second half of a checkpoint: `checkpoint.new/` becomes `checkpoint/`; the swap is made
/// durable before the previous checkpoint is removed.
pub fn swap_in_pending_checkpoint(run: &RunDir) -> Result<()> {
    let old = run.checkpoint_old();
    let _ = std::fs::remove_dir_all(&old);
    if run.checkpoint().exists() {
        std::fs::rename(run.checkpoint(), &old)?;
    }
    std::fs::rename(run.checkpoint_new(), run.checkpoint())?;
    manifest::sync_dir(&run.root)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The step of a whole checkpoint in `dir` (its manifest and files intact), if it holds one.
fn step_of(dir: &CheckpointDir) -> Option<usize> {
    manifest::verify(&dir.manifest(), &dir.files()).ok()?;
    let bytes = std::fs::read(dir.progress()).ok()?;
    serde_json::from_slice::<LoopState>(&bytes)
        .ok()
        .map(|s| s.step)
}

/// Brings the members of an interrupted population to one common step before they resume:
/// the latest step every member holds a whole checkpoint of, as its current one
/// (`checkpoint/`, or `checkpoint.old/` if a swap was cut short) or as a pending one
/// (`checkpoint.new/`, complete with its manifest). Members behind finish their swap to it;
/// pending checkpoints of a step not every member reached are discarded. Checkpoints whose
/// files do not match their manifest count as absent here; loading them reports the damage.
pub fn reconcile_population(runs: &[RunDir]) -> Result<()> {
    let steps: Vec<(Option<usize>, Option<usize>)> = runs
        .iter()
        .map(|run| {
            let current = step_of(&CheckpointDir::new(run.checkpoint()))
                .or_else(|| step_of(&CheckpointDir::new(run.checkpoint_old())));
            (current, step_of(&CheckpointDir::new(run.checkpoint_new())))
        })
        .collect();
    let reachable = |s: usize| steps.iter().all(|&(c, p)| c == Some(s) || p == Some(s));
    let candidates = steps.iter().flat_map(|&(c, p)| [c, p]).flatten();
    let Some(target) = candidates.filter(|&s| reachable(s)).max() else {
        let found: Vec<String> = runs
            .iter()
            .zip(&steps)
            .map(|(run, (c, p))| format!("{}: {c:?} (pending {p:?})", run.root.display()))
            .collect();
        anyhow::bail!(
            "the population's checkpoints have no step in common ({}); resume each run on its own",
            found.join(", ")
        );
    };
    for (run, &(current, pending)) in runs.iter().zip(&steps) {
        if current != Some(target) && pending == Some(target) {
            if !run.checkpoint().exists() && run.checkpoint_old().exists() {
                // A swap cut short between its renames: the old one is whole; put it back
                // first so that the swap below starts from the usual state.
                std::fs::rename(run.checkpoint_old(), run.checkpoint())?;
            }
            swap_in_pending_checkpoint(run)?;
        } else if pending.is_some() || run.checkpoint_new().exists() {
            let _ = std::fs::remove_dir_all(run.checkpoint_new());
        }
    }
    Ok(())
}

/// Loads the run's checkpoint into member `member` of `agent` and into `buffer`; returns the loop's state. Every
/// file is checked against the checkpoint's manifest before anything is read or changed: a
/// damaged checkpoint is refused with [`CheckpointError::Damaged`]. One without a manifest
/// (from an older mixsac) is loaded unchecked and reported as [`Integrity::Unverified`].
pub fn load_checkpoint(
    run: &RunDir,
    agent: &mut Agent,
    member: usize,
    buffer: &mut ReplayBuffer,
    device: &Device,
) -> Result<(LoopState, Integrity)> {
    let dir = CheckpointDir::new(run.checkpoint());
    let old = CheckpointDir::new(run.checkpoint_old());
    // Interrupted between the two renames of save_checkpoint: the old one is the whole one.
    let found = if dir.root.exists() {
        &dir
    } else if old.root.exists() {
        &old
    } else {
        return Err(CheckpointError::Missing {
            run: run.root.clone(),
        }
        .into());
    };
    let integrity = match manifest::verify(&found.manifest(), &found.files()) {
        Ok(()) => Integrity::Verified,
        Err(ManifestError::NoManifest { .. }) => Integrity::Unverified,
        Err(problem) => {
            return Err(CheckpointError::Damaged {
                run: run.root.clone(),
                checkpoint: found.root.clone(),
                problem,
            }
            .into())
        }
    };
    if found == &old {
        std::fs::rename(&old.root, &dir.root)?;
    }
    let tensors = candle_core::safetensors::load(dir.model(), device)
        .with_context(|| format!("cannot read {}", dir.model().display()))?;
    agent.load_state(member, &tensors)?;
    let bytes = std::fs::read(dir.replay())
        .with_context(|| format!("cannot read {}", dir.replay().display()))?;
    *buffer = postcard::from_bytes(&bytes)
        .with_context(|| format!("the replay buffer {} is unreadable", dir.replay().display()))?;
    let bytes = std::fs::read(dir.progress())
        .with_context(|| format!("cannot read {}", dir.progress().display()))?;
    let state: LoopState = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is unreadable", dir.progress().display()))?;
    Ok((state, integrity))
}
