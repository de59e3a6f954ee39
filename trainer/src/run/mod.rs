//! One training run: the training loop with checkpoints, metrics and the exported policy
//! ([`train`]).
//!
//! May import `config`, `sac`, `envs` and `nn`; never `experiments` (which drive many runs).

pub mod train;
