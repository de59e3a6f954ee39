//! The research tools built on runs: sweeps of many runs ([`sweep`]) on a worker pool
//! ([`workers`]) in a sweep directory ([`sweep_dir`]), their results table ([`results`]), their
//! figures ([`report`], drawn by [`plot`]), and the bimodal-bandit stationary-point study
//! ([`stationary`]).
//!
//! May import `run`, `config` and `envs`; nothing below imports it.

pub mod plot;
pub mod report;
pub mod results;
pub mod stationary;
pub mod sweep;
pub mod sweep_dir;
pub mod workers;
