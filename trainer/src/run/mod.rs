//! One training run: the training loop ([`train`]), its checkpoints ([`checkpoint`]) and
//! their checksum manifests ([`manifest`]), its metrics.csv ([`metrics`], with the CSV
//! conventions of [`table`]), the names of the files of a run directory ([`run_dir`]),
//! the evaluation of an exported policy through policy-core ([`evaluate`]), its int8 export
//! ([`int8`]), the directory of a population of runs trained together ([`population`]),
//! and a run's agent held fixed at a checkpoint or at its initialisation ([`frozen`]).
//!
//! May import `config`, `sac` and `envs`; never `experiments` (which drive many runs).

pub mod checkpoint;
pub mod evaluate;
pub mod frozen;
pub mod int8;
pub mod manifest;
pub mod metrics;
pub mod population;
pub mod run_dir;
pub mod table;
pub mod train;
