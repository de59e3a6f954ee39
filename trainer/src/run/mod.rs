//! One training run: the training loop with checkpoints, metrics and the exported policy
//! ([`train`]), and the evaluation of an exported policy through policy-core
//! ([`evaluate`]).
//!
//! May import `config`, `sac`, `envs` and `nn`; never `experiments` (which drive many runs).

pub mod evaluate;
pub mod train;
