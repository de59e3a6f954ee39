//! The workstation half of mixpolicy: environments, the mixture-policy actor in candle and
//! its export to `.mxp`, SAC with every estimator, and the experiment tools. The `mixsac`
//! command is `main.rs`.

pub mod config;
pub mod critic;
pub mod dense_op;
pub mod envs;
pub mod estimators;
pub mod nn;
pub mod optim;
pub mod plot;
pub mod policy;
pub mod replay;
pub mod report;
pub mod sac;
pub mod stationary;
pub mod sweep;
pub mod train;
pub mod workers;
