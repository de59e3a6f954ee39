//! The research tools built on runs: sweeps of many runs ([`sweep`]) on a worker pool
//! ([`workers`]), their figures ([`report`], drawn by [`plot`]), and the bimodal-bandit
//! stationary-point study ([`stationary`]).
//!
//! May import `run`, `envs` and `sac`; nothing below imports it.

pub mod plot;
pub mod report;
pub mod stationary;
pub mod sweep;
pub mod workers;
