//! The workstation half of mixpolicy: environments today; SAC with mixture policies, the
//! estimators and the `.mxp` export to come. The `mixsac` command is `main.rs`.

pub mod envs;
