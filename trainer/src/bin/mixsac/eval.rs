//! `mixsac eval`: run an exported policy file through policy-core, as a device runs it.

use anyhow::{Context, Result};
use std::path::PathBuf;
use trainer::envs::{EnvId, GymOptions};

#[derive(clap::Args)]
pub struct Args {
    /// The .mxp file.
    #[arg(long)]
    policy: PathBuf,
    /// Environment (see `mixsac envs`).
    #[arg(long)]
    env: EnvId,
    /// Episodes to run.
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    /// Seed of the start states and the policy's sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Act with the mode (mean of the most probable component) instead of sampling.
    #[arg(long)]
    deterministic: bool,
    /// Python with gymnasium, for gym:<ID> [default: $MIXSAC_PYTHON, else python3].
    #[arg(long)]
    python: Option<String>,
    /// One JSON object (with every episode's return) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.episodes == 0 {
        anyhow::bail!("--episodes must be at least 1");
    }
    let path = &args.policy;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let policy =
        policy_core::HostPolicy::load(&bytes).with_context(|| format!("{}", path.display()))?;
    let mut env = args.env.make(&GymOptions::new(args.python.as_deref()))?;
    let result = trainer::evaluate(
        &policy,
        &mut env,
        args.episodes,
        args.seed,
        args.deterministic,
    )
    .with_context(|| format!("{} on {}", path.display(), args.env))?;
    let mode = if args.deterministic {
        "deterministic"
    } else {
        "stochastic"
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({"env": args.env.to_string(), "episodes": args.episodes, "mode": mode,
                "mean_return": result.mean(), "std_return": result.std(),
                "min_return": result.min(), "max_return": result.max(), "returns": result.returns})
        );
    } else {
        println!("policy    {}", path.display());
        println!("env       {}", args.env);
        println!("episodes  {} ({mode}, seed {})", args.episodes, args.seed);
        println!(
            "return    mean {:.3}  std {:.3}  min {:.3}  max {:.3}",
            result.mean(),
            result.std(),
            result.min(),
            result.max()
        );
    }
    Ok(())
}
