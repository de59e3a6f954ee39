//! `mixsac quantize`: post-training int8 quantization of an exported policy (format
//! version 3), calibrated on the states the policy itself visits, with its accuracy measured
//! on other episodes (`trainer::export_int8`).

use anyhow::{Context, Result};
use policy_core::quantize::{Granularity, Options};
use std::path::PathBuf;
use trainer::envs::{EnvId, EnvKwargs};
use trainer::Int8Settings;

#[derive(clap::Args)]
pub struct Args {
    /// The f32 (format version 1) policy file.
    input: PathBuf,
    /// Where to write the int8 (format version 3) file.
    #[arg(long)]
    out: PathBuf,
    /// Environment whose states (visited by the f32 policy, sampling) set the activation
    /// ranges. int8 policies need them: the observation and every hidden layer are
    /// quantized at calibrated scales.
    #[arg(long)]
    calibrate_env: EnvId,
    /// Keyword arguments for gym.make, a JSON object, as `mixsac train` takes them [default:
    /// the `env_kwargs` of the config.toml beside the policy file, if it trained on the same
    /// environment].
    #[arg(long)]
    env_kwargs: Option<EnvKwargs>,
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
    /// Longest episode, in steps (for environments without a time limit).
    #[arg(long, default_value_t = 1000)]
    max_steps: usize,
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
    if args.max_steps == 0 {
        anyhow::bail!("--max-steps must be at least 1");
    }
    let path = &args.input;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut env = crate::eval::env_for_policy(
        path,
        &args.calibrate_env,
        args.env_kwargs.clone(),
        args.python.as_deref(),
    )?;
    let settings = Int8Settings {
        episodes: args.episodes,
        check_episodes: args.check_episodes,
        seed: args.seed,
        max_steps: args.max_steps,
        options: Options {
            granularity: if args.per_layer {
                Granularity::PerLayer
            } else {
                Granularity::PerOutput
            },
            ..Options::default()
        },
    };
    let export = trainer::export_int8(&bytes, &mut env, &settings)
        .with_context(|| format!("quantizing {}", path.display()))?;
    std::fs::write(&args.out, &export.bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} ({} bytes, {:.1} % of {}; calibrated on {} states of {} episodes of {})",
        args.out.display(),
        export.bytes.len(),
        100.0 * export.bytes.len() as f64 / bytes.len() as f64,
        path.display(),
        export.calibration_states,
        args.episodes,
        args.calibrate_env
    );
    if export.accuracy.is_some() {
        println!("{}", export.accuracy_lines(args.check_episodes));
    }
    Ok(())
}
