//! The workstation half of mixpolicy: environments, SAC with a mixture-policy actor and
//! every estimator of DESIGN.md §4, training runs that export `.mxp` files through
//! policy-core, and the experiment tools. The `mixsac` command is `src/bin/mixsac/`.
//!
//! The layers, each a folder whose module comment says what it owns and may import:
//!
//! | layer | owns | imports |
//! |---|---|---|
//! | `nn` | dense layers, the fused CPU dense op | candle |
//! | `envs` | classic control, bandits, the Gymnasium bridge, environment names | — |
//! | `config` | one definition of every hyperparameter; typed names (estimator, policy, α, device) | `envs` |
//! | `sac` | actor, double critic, estimators, Adam, replay, the SAC update | `nn`, `config` |
//! | `run` | the training loop, checkpoints, metrics, run directories, evaluation | `sac`, `envs`, `config` |
//! | `experiments` | sweeps (sharded, as Slurm job arrays), results, figures, the stationary study, the estimators' gradient variance | `run`, `sac`, `config`, `envs` |

pub mod config;
mod experiments;
mod nn;
mod run;
mod sac;

pub mod envs;

pub use config::{Alpha, Config, PolicyKind, TrainArgs};
pub use experiments::results::ResultRow;
pub use experiments::shard::{Shard, ShardError};
pub use experiments::sweep_dir::SweepDir;
pub use experiments::{collect, grad_variance, report, results, shell, slurm, stationary, sweep};
pub use nn::to_f32_vec;
pub use run::checkpoint::CheckpointError;
pub use run::evaluate::{evaluate, visited_states, Evaluation};
pub use run::frozen::FrozenRun;
pub use run::int8::{export_int8, Int8Export, Int8Settings};
pub use run::manifest::ManifestError;
pub use run::metrics::MetricsRow;
pub use run::population::{MemberGrid, PopulationDir};
pub use run::run_dir::{CheckpointDir, RunDir};
pub use run::train::{self, saved_config, Mode, Summary, TrainEvent};
pub use sac::actor::{Heads, MixturePolicy};
pub use sac::estimators::{self, actor_loss, Critic, Estimator, EstimatorSettings};
pub use sac::replay::{Batch, DeviceReplay, ReplayBuffer};
pub use sac::{Agent, CriticSource, Minibatch, UpdateStats};
