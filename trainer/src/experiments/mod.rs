//! The research tools built on runs: sweeps of many runs ([`sweep`]) on a worker pool
//! ([`workers`]) in a sweep directory ([`sweep_dir`]), cut into shards ([`shard`]) that
//! share the directory ([`shared_files`]) and run as Slurm job arrays ([`slurm`], scripts
//! quoted by [`shell`]), their results table ([`results`], derived by [`collect`]), their
//! figures ([`report`], drawn by [`plot`]), the bimodal-bandit stationary-point study
//! ([`stationary`]), and the variance and bias of the actor gradient estimators at fixed
//! parameters ([`grad_variance`]); the last two share a Gauss–Legendre rule (`quadrature`).
//!
//! May import `run`, `sac` (the actor, critic and estimators the studies measure), `config`
//! and `envs`; nothing below imports it.

pub mod collect;
pub mod grad_variance;
pub mod plot;
pub(crate) mod quadrature;
pub mod report;
pub mod results;
pub mod shard;
pub mod shared_files;
pub mod shell;
pub mod slurm;
pub mod stationary;
pub mod sweep;
pub mod sweep_dir;
pub mod workers;
