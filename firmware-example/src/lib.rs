//! The target-independent half of the firmware: a pendulum plant and the closed-loop episode
//! that drives it with a policy. The MCU binary (`src/main.rs`) and the host check
//! (`tests/tests/firmware.rs`) both run this code, so their episodes can be compared exactly.
#![no_std]

pub mod episode;
pub mod plant;

pub use episode::{run_episode, ActionMeter, Episode, NoMeter, EPISODES, EPISODE_STEPS, SEED};
pub use plant::Pendulum;
