//! `mixsac`: environments, policy files, and (to come) training.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use policy_core::format::{self, Header};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;
use trainer::envs::{self, Env};

#[derive(Parser)]
#[command(
    name = "mixsac",
    version,
    about = "Soft Actor-Critic with mixture policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the header of an .mxp policy file (checks its CRC and dimensions).
    Inspect {
        /// The policy file.
        file: std::path::PathBuf,
    },
    /// List every environment with its observation size, action bounds and cut-off.
    Envs,
    /// Step an environment from a given state with actions read from stdin (one action per
    /// line, entries separated by spaces or commas); write one JSON object per step.
    EnvReplay {
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
    },
    /// Measure nanoseconds per environment step (random actions, resets included).
    BenchEnvs {
        /// Only this environment (default: all, with random-bandit:0).
        #[arg(long)]
        env: Option<String>,
        /// Steps per environment.
        #[arg(long, default_value_t = 2_000_000)]
        steps: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train a policy (not implemented yet in this version).
    Train,
    /// Evaluate a policy file (not implemented yet in this version).
    Eval,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { file } => inspect(&file),
        Command::Envs => list_envs(),
        Command::EnvReplay { env, state, seed } => env_replay(&env, state.as_deref(), seed),
        Command::BenchEnvs { env, steps, json } => bench_envs(env.as_deref(), steps, json),
        Command::Train | Command::Eval => {
            eprintln!("error: this command is not implemented yet in this version");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(path: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (header, weights) = format::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    print!(
        "{}",
        describe(
            &path.display().to_string(),
            bytes.len(),
            &header,
            weights.len() / 4
        )
    );
    Ok(())
}

fn describe(path: &str, file_len: usize, h: &Header, weights: usize) -> String {
    let kind = match (h.components, h.squash) {
        (1, true) => "squashed Gaussian",
        (1, false) => "Gaussian",
        (_, true) => "squashed Gaussian mixture",
        (_, false) => "Gaussian mixture",
    };
    let hidden: Vec<String> = h.hidden.iter().map(usize::to_string).collect();
    format!(
        "file:          {path} ({file_len} bytes, format version {})\n\
         policy:        {kind}, {} component(s)\n\
         network:       obs {} -> hidden {} ({:?}) -> action {}\n\
         log-std clamp: [{}, {}]\n\
         action low:    {:?}\n\
         action high:   {:?}\n\
         parameters:    {weights}\n",
        format::FORMAT_VERSION,
        h.components,
        h.obs_dim,
        hidden.join("x"),
        h.activation,
        h.action_dim,
        h.log_std_min,
        h.log_std_max,
        h.action_low.as_slice(),
        h.action_high.as_slice(),
    )
}

fn list_envs() -> Result<()> {
    println!(
        "{:<22} {:>4} {:>14} {:>7}  description / state layout",
        "name", "obs", "action box", "cut-off"
    );
    for name in envs::NAMES {
        let env = envs::make(&name.replace("<seed>", "0"))?;
        let spec = env.spec();
        let bounds: Vec<String> = spec
            .action_low
            .iter()
            .zip(&spec.action_high)
            .map(|(l, h)| format!("[{l}, {h}]"))
            .collect();
        println!(
            "{:<22} {:>4} {:>14} {:>7}  {}",
            name,
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
    Ok(())
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

fn env_replay(name: &str, state: Option<&str>, seed: u64) -> Result<()> {
    use rand::SeedableRng;
    let mut env = envs::make(name)?;
    let mut obs = vec![0.0f32; env.obs_dim()];
    match state {
        Some(s) => env.reset_to(&parse_numbers(s, "--state")?, &mut obs)?,
        None => env.reset(&mut rand_pcg::Pcg64::seed_from_u64(seed), &mut obs),
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

/// ns per step of `env` under uniformly random actions, resetting at episode ends.
pub fn time_env(env: &mut Env, steps: usize) -> f64 {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let mut obs = vec![0.0f32; env.obs_dim()];
    let (low, high) = (
        env.spec().action_low.clone(),
        env.spec().action_high.clone(),
    );
    let actions: Vec<Vec<f64>> = (0..1024)
        .map(|_| {
            low.iter()
                .zip(&high)
                .map(|(&l, &h)| rng.random_range(l..h))
                .collect()
        })
        .collect();
    env.reset(&mut rng, &mut obs);
    let start = Instant::now();
    for i in 0..steps {
        match env.step(&actions[i % actions.len()], &mut obs) {
            Ok(t) if t.terminated || t.truncated => env.reset(&mut rng, &mut obs),
            Ok(_) => {}
            Err(e) => panic!("benchmark actions are valid: {e}"),
        }
    }
    std::hint::black_box(&obs);
    start.elapsed().as_nanos() as f64 / steps as f64
}

fn bench_envs(only: Option<&str>, steps: usize, json: bool) -> Result<()> {
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => envs::NAMES
            .iter()
            .map(|n| n.replace("<seed>", "0"))
            .collect(),
    };
    for name in names {
        let mut env = envs::make(&name)?;
        let ns = time_env(&mut env, steps);
        if json {
            println!(
                "{}",
                serde_json::json!({"env": name, "ns_per_step": (ns * 10.0).round() / 10.0, "steps": steps})
            );
        } else {
            println!("{name:<22} {ns:>9.1} ns/step");
        }
    }
    Ok(())
}
