//! `mixsac envs` (the list) and `mixsac env-replay` (step an environment from a given state
//! with actions from stdin, for the conformance check against Gymnasium).

use anyhow::{Context, Result};
use std::io::{BufRead, Write};
use trainer::envs::{EnvId, GymOptions};

pub fn list() -> Result<()> {
    println!(
        "{:<22} {:>4} {:>14} {:>7}  description / state layout",
        "name", "obs", "action box", "cut-off"
    );
    for id in EnvId::builtin() {
        let env = id.make(&GymOptions::default())?;
        let spec = env.spec();
        let bounds: Vec<String> = spec
            .action_low
            .iter()
            .zip(&spec.action_high)
            .map(|(l, h)| format!("[{l}, {h}]"))
            .collect();
        println!(
            "{:<22} {:>4} {:>14} {:>7}  {}",
            id.listed_name(),
            env.obs_dim(),
            bounds.join(" x "),
            spec.cutoff,
            spec.description
        );
        println!(
            "{:<22} {:>4} {:>14} {:>7}  state: {}",
            "",
            "",
            "",
            "",
            env.state_layout()
        );
    }
    println!(
        "{:<22} {:>4} {:>14} {:>7}  any Gymnasium environment with Box actions, run by a Python worker \
         (--python, MIXSAC_PYTHON); e.g. gym:Hopper-v5, gym:dm_control/cartpole-swingup_sparse-v0",
        "gym:<ID>", "", "", ""
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Environment name (see `mixsac envs`).
    #[arg(long)]
    env: String,
    /// Start state, comma-separated (its layout is in `mixsac envs`); default: a random
    /// start state from --seed.
    #[arg(long, allow_hyphen_values = true)]
    state: Option<String>,
    /// Seed for the random start state.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_numbers(text: &str, what: &str) -> Result<Vec<f64>> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<f64>()
                .with_context(|| format!("{what}: `{s}` is not a number"))
        })
        .collect()
}

pub fn replay(args: ReplayArgs) -> Result<()> {
    use rand::SeedableRng;
    let mut env = trainer::envs::make(&args.env)?;
    let mut obs = vec![0.0f32; env.obs_dim()];
    match &args.state {
        Some(s) => env.reset_to(&parse_numbers(s, "--state")?, &mut obs)?,
        None => env.reset(&mut rand_pcg::Pcg64::seed_from_u64(args.seed), &mut obs)?,
    }
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    writeln!(
        out,
        "{}",
        serde_json::json!({"step": 0, "obs": obs, "state": env.state()})
    )?;
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading actions from stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let action = parse_numbers(&line, &format!("action on line {}", i + 1))?;
        let t = env
            .step(&action, &mut obs)
            .with_context(|| format!("line {}", i + 1))?;
        let record = serde_json::json!({
            "step": i + 1, "obs": obs, "reward": t.reward, "terminated": t.terminated,
            "truncated": t.truncated, "state": env.state(),
        });
        writeln!(out, "{record}")?;
    }
    Ok(())
}
