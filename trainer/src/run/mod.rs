//! One training run: its configuration ([`config`]), the training loop with checkpoints,
//! metrics and the exported policy ([`train`]).
//!
//! May import `sac`, `envs` and `nn`; never `experiments` (which drive many runs).

pub mod config;
pub mod train;
