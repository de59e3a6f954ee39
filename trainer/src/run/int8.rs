//! Post-training int8 export (format version 3): calibrate policy-core's quantizer on the
//! states the f32 policy visits in an environment, and measure the int8 file on other
//! episodes. `mixsac quantize` and `mixsac train --export-int8` both run this.

use crate::envs::Env;
use crate::run::evaluate::visited_states;
use anyhow::{Context, Result};
use policy_core::quantize::{self, Options};
use policy_core::testing::{quantization_error, QuantizationReport};
use policy_core::HostPolicy;

/// How the states are gathered.
#[derive(Debug, Clone, Copy)]
pub struct Int8Settings {
    /// Calibration episodes (at least 1).
    pub episodes: usize,
    /// Further episodes whose states the int8 file's accuracy is measured at (0: none).
    pub check_episodes: usize,
    /// Seed of the calibration episodes; the check episodes use `seed + 1`.
    pub seed: u64,
    /// Each episode is cut after this many steps (environments without a time limit).
    pub max_steps: usize,
    /// The quantizer's settings.
    pub options: Options,
}

impl Default for Int8Settings {
    fn default() -> Self {
        Int8Settings {
            episodes: 20,
            check_episodes: 10,
            seed: 0,
            max_steps: 1000,
            options: Options::default(),
        }
    }
}

/// A quantized policy and what was measured about it.
#[derive(Debug, Clone)]
pub struct Int8Export {
    /// The version-3 file.
    pub bytes: Vec<u8>,
    /// States calibrated on.
    pub calibration_states: usize,
    /// Accuracy at the check episodes' states (none if `check_episodes` is 0).
    pub accuracy: Option<QuantizationReport>,
}

/// KL draws per state for the sampled KL estimate.
const KL_DRAWS: usize = 256;

/// Quantizes the version-1 policy `f32_file`, calibrated on the states it visits in `env`.
pub fn export_int8(f32_file: &[u8], env: &mut Env, settings: &Int8Settings) -> Result<Int8Export> {
    if settings.episodes == 0 {
        anyhow::bail!("calibration needs at least 1 episode");
    }
    let policy = HostPolicy::load(f32_file)?;
    let (seed, max_steps) = (settings.seed, settings.max_steps);
    let states = visited_states(&policy, env, settings.episodes, seed, max_steps)
        .with_context(|| format!("calibrating on {}", env.spec().name))?;
    let flat: Vec<f32> = states.concat();
    let bytes = quantize::quantize_with(f32_file, &flat, &settings.options)?;
    let accuracy = if settings.check_episodes > 0 {
        let q = HostPolicy::load(&bytes)?;
        let check = visited_states(
            &policy,
            env,
            settings.check_episodes,
            seed.wrapping_add(1),
            max_steps,
        )?;
        Some(quantization_error(&policy, &q, &check, KL_DRAWS)?)
    } else {
        None
    };
    Ok(Int8Export {
        bytes,
        calibration_states: states.len(),
        accuracy,
    })
}

impl Int8Export {
    /// The accuracy report, a few lines (empty without check episodes).
    pub fn accuracy_lines(&self, check_episodes: usize) -> String {
        let Some(r) = &self.accuracy else {
            return String::new();
        };
        format!(
            "accuracy at {} states of {check_episodes} other episodes (f32 policy sampling):\n  \
             mode action   max |Δ|/range {:.2e}  mean {:.2e}  same component {:.2} %\n  \
             KL(f32‖int8)  mean {:.2e}  max {:.2e} nats ({KL_DRAWS} draws per state); joint bound mean {:.2e}  max {:.2e}",
            r.states,
            r.max_mode_error,
            r.mean_mode_error,
            100.0 * r.mode_agreement,
            r.kl_mean,
            r.kl_max,
            r.kl_bound_mean,
            r.kl_bound_max
        )
    }
}
