//! `mixsac quantize`: post-training int8 quantization of an exported policy (format
//! version 2), calibrated on the states the policy itself visits, with its accuracy measured
//! on other episodes.

use anyhow::{Context, Result};
use policy_core::quantize::{self, Granularity, Options};
use policy_core::testing::quantization_error;
use policy_core::HostPolicy;
use std::path::PathBuf;
use trainer::envs::{EnvId, GymOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The f32 (format version 1) policy file.
    input: PathBuf,
    /// Where to write the int8 (format version 2) file.
    #[arg(long)]
    out: PathBuf,
    /// Environment whose states (visited by the f32 policy, sampling) set the activation
    /// ranges. int8 policies need them: the observation and every hidden layer are
    /// quantized at calibrated scales.
    #[arg(long)]
    calibrate_env: EnvId,
    /// Calibration episodes.
    #[arg(long, default_value_t = 20)]
    episodes: usize,
    /// Further episodes, with other start states, at whose states the int8 file's accuracy
    /// is measured and printed (0: none).
    #[arg(long, default_value_t = 10)]
    check_episodes: usize,
    /// Seed of the calibration episodes (the check episodes use seed + 1).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One weight scale per layer instead of per output (worse or equal; kept to compare).
    #[arg(long)]
    per_layer: bool,
    /// Python with gymnasium, for gym:<ID> [default: $MIXSAC_PYTHON, else python3].
    #[arg(long)]
    python: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    if args.episodes == 0 {
        anyhow::bail!("--episodes must be at least 1");
    }
    let path = &args.input;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let policy = HostPolicy::load(&bytes).with_context(|| format!("{}", path.display()))?;
    let mut env = args
        .calibrate_env
        .make(&GymOptions::new(args.python.as_deref()))?;
    let states = trainer::visited_states(&policy, &mut env, args.episodes, args.seed)
        .with_context(|| format!("calibrating on {}", args.calibrate_env))?;
    let flat: Vec<f32> = states.concat();
    let options = Options {
        granularity: if args.per_layer {
            Granularity::PerLayer
        } else {
            Granularity::PerOutput
        },
        ..Options::default()
    };
    let quantized = quantize::quantize_with(&bytes, &flat, &options)
        .with_context(|| format!("quantizing {}", path.display()))?;
    std::fs::write(&args.out, &quantized)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} ({} bytes, {:.1} % of {}; calibrated on {} states of {} episodes of {})",
        args.out.display(),
        quantized.len(),
        100.0 * quantized.len() as f64 / bytes.len() as f64,
        path.display(),
        states.len(),
        args.episodes,
        args.calibrate_env
    );
    if args.check_episodes > 0 {
        let q = HostPolicy::load(&quantized)?;
        let check = trainer::visited_states(&policy, &mut env, args.check_episodes, args.seed + 1)?;
        let r = quantization_error(&policy, &q, &check, 256)?;
        println!(
            "accuracy at {} states of {} other episodes (f32 policy sampling):",
            r.states, args.check_episodes
        );
        println!(
            "  mode action   max |Δ|/range {:.2e}  mean {:.2e}  same component {:.2} %",
            r.max_mode_error,
            r.mean_mode_error,
            100.0 * r.mode_agreement
        );
        println!(
            "  KL(f32‖int8)  mean {:.2e}  max {:.2e} nats (256 draws per state); joint bound mean {:.2e}  max {:.2e}",
            r.kl_mean, r.kl_max, r.kl_bound_mean, r.kl_bound_max
        );
    }
    Ok(())
}
