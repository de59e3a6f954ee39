//! The files of a run directory, each name defined here once.
//!
//! ```text
//! <run>/config.toml        the resolved config (`--resume` reads it)
//! <run>/metrics.csv        one row per log interval (run::metrics)
//! <run>/policy.mxp         the exported policy, rewritten at every log interval
//! <run>/checkpoint/        the latest checkpoint (see CheckpointDir), with its manifest
//! <run>/checkpoint.new/    a checkpoint being written
//! <run>/checkpoint.old/    the previous one, while the new one is swapped in
//! <run>/summary.json       a sweep's outcome of the run, once finished
//! ```

use std::path::PathBuf;

/// Files of a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy.mxp")
    }
    /// The int8 (format version 3) export of the policy (`mixsac train --export-int8`).
    pub fn policy_int8(&self) -> PathBuf {
        self.root.join("policy-int8.mxp")
    }
    /// The latest whole checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// Where the next checkpoint is written before it is swapped in.
    pub fn checkpoint_new(&self) -> PathBuf {
        self.root.join("checkpoint.new")
    }
    /// Where the previous checkpoint waits while the new one is swapped in.
    pub fn checkpoint_old(&self) -> PathBuf {
        self.root.join("checkpoint.old")
    }
    /// Whether the run has a checkpoint to resume from (possibly still named `.old`, if a
    /// crash came between the two renames of the swap).
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint().exists() || self.checkpoint_old().exists()
    }
    /// What a sweep writes once the run has finished (or failed).
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
}

/// Files of one checkpoint directory (`checkpoint/`, or `checkpoint.new/` while written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDir {
    pub root: PathBuf,
}

impl CheckpointDir {
    pub fn new(root: impl Into<PathBuf>) -> CheckpointDir {
        CheckpointDir { root: root.into() }
    }
    /// The agent's tensors (safetensors).
    pub fn model(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }
    /// The replay buffer (postcard).
    pub fn replay(&self) -> PathBuf {
        self.root.join("replay.postcard")
    }
    /// Everything else needed to continue exactly (JSON).
    pub fn progress(&self) -> PathBuf {
        self.root.join("progress.json")
    }
    /// The size and CRC-32 of each of [`CheckpointDir::files`], written last (see
    /// `run::manifest`).
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.txt")
    }
    /// The files the manifest covers: all of the checkpoint but the manifest itself.
    pub fn files(&self) -> Vec<PathBuf> {
        vec![self.model(), self.replay(), self.progress()]
    }
}
