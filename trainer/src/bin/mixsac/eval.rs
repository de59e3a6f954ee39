//! `mixsac eval`: run an exported policy file through policy-core, as a device runs it.

use anyhow::{Context, Result};
use std::path::PathBuf;
use trainer::envs::{EnvId, EnvKwargs, GymOptions};

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
    /// Keyword arguments for gym.make, a JSON object [default: the `env_kwargs` of the
    /// config.toml beside the policy file, if it trained on the same --env].
    #[arg(long)]
    env_kwargs: Option<EnvKwargs>,
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
    let mut env = env_for_policy(
        path,
        &args.env,
        args.env_kwargs.clone(),
        args.python.as_deref(),
    )?;
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

/// The keyword arguments the policy was trained with: those of the run's config.toml beside
/// the policy file, when that run trained on `env` (a policy copied elsewhere has none).
/// `env` made to run the policy file at `policy`: with `kwargs` when given, else with those
/// of its training run ([`trained_kwargs`]); kwargs for one of our own environments are an
/// error. Shared by `eval` and `quantize --calibrate-env`.
pub fn env_for_policy(
    policy: &std::path::Path,
    env: &EnvId,
    kwargs: Option<EnvKwargs>,
    python: Option<&str>,
) -> Result<trainer::envs::Env> {
    let kwargs = kwargs.unwrap_or_else(|| trained_kwargs(policy, env));
    if !kwargs.is_empty() && !matches!(env, EnvId::Gym(_)) {
        anyhow::bail!("--env-kwargs applies to gym:<ID> environments only");
    }
    let options = GymOptions {
        kwargs,
        ..GymOptions::new(python)
    };
    Ok(env.make(&options)?)
}

pub fn trained_kwargs(policy: &std::path::Path, env: &EnvId) -> EnvKwargs {
    let file = policy.with_file_name("config.toml");
    if !file.exists() {
        return EnvKwargs::default();
    }
    let config = match trainer::Config::load(&file) {
        Ok(config) => config,
        Err(e) => {
            // The policy file is what eval needs; a config it cannot read only costs the
            // keywords, which --env-kwargs can give.
            eprintln!("note: not using {} ({e:#})", file.display());
            return EnvKwargs::default();
        }
    };
    if config.env != *env || config.env_kwargs.is_empty() {
        return EnvKwargs::default();
    }
    eprintln!(
        "making {env} with the env_kwargs of its training run ({}): {}",
        file.display(),
        config.env_kwargs
    );
    config.env_kwargs
}
