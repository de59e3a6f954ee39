//! `mixsac`: environments, policy files, and (to come) training.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use policy_core::format::{self, Header};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;
use trainer::envs::{self, Env, GymOptions};

/// candle allocates for every small tensor; mimalloc makes that cheap (issue #4: ≈ 2× per update).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Only this environment (default: all, with random-bandit:0). For gym:<ID>, the
        /// bridge's cost per step is reported next to Python's own env.step time.
        #[arg(long)]
        env: Option<String>,
        /// Steps per environment [default: 2000000; 20000 for gym:<ID>].
        #[arg(long)]
        steps: Option<usize>,
        /// Python with gymnasium, for gym:<ID> [default: $MIXSAC_PYTHON, else python3].
        #[arg(long)]
        python: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train a policy with SAC and export it to DIR/policy.mxp.
    Train {
        #[command(flatten)]
        args: Box<trainer::TrainArgs>,
        /// Continue the run in --out from its last checkpoint.
        #[arg(long)]
        resume: bool,
    },
    /// Measure training throughput (steps/s, one update per step) of the estimator and
    /// policy combinations of the paper at classic-control settings.
    Bench {
        /// Environment.
        #[arg(long, default_value = "pendulum")]
        env: String,
        /// Steps per combination (including the 1000 random first steps).
        #[arg(long, default_value_t = 10_000)]
        steps: usize,
        /// Repetitions per combination; the median is reported.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Only these combinations, named estimator-policy (e.g. `halfrep-sgm`); repeatable.
        #[arg(long)]
        only: Vec<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The stationary-point study of the bimodal bandit (paper §3.3): maximise the exact
    /// objective E[r] + α H for a Gaussian and a 2-component mixture from random starts;
    /// writes OUT/stationary.csv and the figure OUT/stationary.{png,svg}.
    Stationary {
        /// Output directory.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Random starts per α and policy.
        #[arg(long, default_value_t = 100)]
        starts: usize,
        /// Seed of the random starts.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Comma-separated α values [default: the paper's 15, 0.05 to 0.6].
        #[arg(long, value_delimiter = ',')]
        alphas: Vec<f64>,
        /// Worker threads (one α at a time each) [default: the number of CPUs].
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Run a grid of training runs from a spec file (experiments/*.toml) on N threads;
    /// resumable. Writes OUT/results.csv and OUT/runs/<id>/.
    Sweep {
        /// The sweep spec (TOML).
        #[arg(long)]
        spec: std::path::PathBuf,
        /// Output directory [default: runs/<spec file name>].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Runs trained at once, one thread each.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Figures of a sweep: learning curves with 95 % bootstrap bands, final return vs α,
    /// every run's curve; PNG and SVG.
    Plot {
        /// The sweep directory (holding results.csv).
        #[arg(long)]
        sweep: std::path::PathBuf,
        /// Where the figures go [default: SWEEP/plots].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Evaluate an exported policy file through policy-core (the deployed artifact).
    Eval {
        /// The .mxp file.
        #[arg(long)]
        policy: std::path::PathBuf,
        /// Environment (see `mixsac envs`).
        #[arg(long)]
        env: String,
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
    },
}

fn main() -> ExitCode {
    // candle's CPU kernels use rayon; for these small networks threads cost more than they
    // give (measured: 4000 pendulum steps 7.0 s with 2 threads, 2.6 s with 1). Set
    // RAYON_NUM_THREADS to override.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { file } => inspect(&file),
        Command::Stationary {
            out,
            starts,
            seed,
            alphas,
            jobs,
        } => stationary(&out, starts, seed, &alphas, jobs),
        Command::Envs => list_envs(),
        Command::Sweep { spec, out, jobs } => sweep(&spec, out, jobs),
        Command::Plot { sweep, out } => {
            let out = out.unwrap_or_else(|| trainer::SweepDir::new(&sweep).plots());
            trainer::report::plot_sweep(&sweep, &out).map(|figures| {
                for f in figures.written {
                    eprintln!("wrote {}", f.display());
                }
                for note in figures.skipped {
                    eprintln!("{note}");
                }
            })
        }
        Command::EnvReplay { env, state, seed } => env_replay(&env, state.as_deref(), seed),
        Command::BenchEnvs {
            env,
            steps,
            python,
            json,
        } => bench_envs(
            env.as_deref(),
            steps,
            &GymOptions::new(python.as_deref()),
            json,
        ),
        Command::Train { args, resume } => train(*args, resume),
        Command::Bench {
            env,
            steps,
            repeats,
            only,
            json,
        } => bench(&env, steps, repeats, &only, json),
        Command::Eval {
            policy,
            env,
            episodes,
            seed,
            deterministic,
            python,
        } => eval(
            &policy,
            &env,
            episodes,
            seed,
            deterministic,
            &GymOptions::new(python.as_deref()),
        ),
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
    println!(
        "{:<22} {:>4} {:>14} {:>7}  any Gymnasium environment with Box actions, run by a Python worker \
         (--python, MIXSAC_PYTHON); e.g. gym:Hopper-v5, gym:dm_control/cartpole-swingup_sparse-v0",
        "gym:<ID>", "", "", ""
    );
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
        None => env.reset(&mut rand_pcg::Pcg64::seed_from_u64(seed), &mut obs)?,
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
pub fn time_env(env: &mut Env, steps: usize) -> Result<f64> {
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
    env.reset(&mut rng, &mut obs)?;
    let start = Instant::now();
    for i in 0..steps {
        let t = env.step(&actions[i % actions.len()], &mut obs)?;
        if t.terminated || t.truncated {
            env.reset(&mut rng, &mut obs)?;
        }
    }
    std::hint::black_box(&obs);
    Ok(start.elapsed().as_nanos() as f64 / steps as f64)
}

fn bench_envs(
    only: Option<&str>,
    steps: Option<usize>,
    gym: &GymOptions,
    json: bool,
) -> Result<()> {
    if steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    if let Some(name) = only.filter(|n| n.starts_with(envs::GYM_PREFIX)) {
        return bench_gym(name, steps.unwrap_or(20_000), gym, json);
    }
    let steps = steps.unwrap_or(2_000_000);
    let names: Vec<String> = match only {
        Some(name) => vec![name.to_string()],
        None => envs::NAMES
            .iter()
            .map(|n| n.replace("<seed>", "0"))
            .collect(),
    };
    for name in names {
        let mut env = envs::make(&name)?;
        let ns = time_env(&mut env, steps)?;
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

/// Bridge cost per step of a Gymnasium environment next to Python's own `env.step` time.
fn bench_gym(name: &str, steps: usize, gym: &GymOptions, json: bool) -> Result<()> {
    let mut env = envs::make_with(name, gym)?;
    time_env(&mut env, steps.min(1000))?; // warm-up: imports, caches
    let bridge = time_env(&mut env, steps)?;
    let worker = env
        .gym_worker()
        .context("a gym: environment has a worker")?;
    let steps32 = u32::try_from(steps).context("--steps is too large for gym:")?;
    let python = worker.python_step_ns(steps32, 1)?;
    let ratio = bridge / python;
    if json {
        println!(
            "{}",
            serde_json::json!({"env": name, "steps": steps,
                "bridge_ns_per_step": bridge.round(), "python_ns_per_step": python.round(),
                "ratio": (ratio * 100.0).round() / 100.0})
        );
    } else {
        println!(
            "{name}: {bridge:.0} ns/step through the bridge, {python:.0} ns/step in Python's own env.step ({ratio:.2}x)"
        );
    }
    Ok(())
}

fn stationary(
    out: &std::path::Path,
    starts: usize,
    seed: u64,
    alphas: &[f64],
    jobs: Option<usize>,
) -> Result<()> {
    use trainer::stationary;
    if starts == 0 {
        bail!("--starts must be at least 1");
    }
    if jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(a) = alphas.iter().find(|a| !(a.is_finite() && **a >= 0.0)) {
        bail!("--alphas must be numbers ≥ 0, got {a}");
    }
    let alphas = if alphas.is_empty() {
        stationary::ALPHAS.to_vec()
    } else {
        alphas.to_vec()
    };
    let start = Instant::now();
    stationary::run_study(&alphas, starts, seed, jobs, out, |line| eprintln!("{line}"))?;
    eprintln!(
        "wrote {0}/stationary.csv, {0}/stationary.png and {0}/stationary.svg in {1:.1} s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn sweep(spec_path: &std::path::Path, out: Option<std::path::PathBuf>, jobs: usize) -> Result<()> {
    use std::io::IsTerminal;
    use trainer::sweep;
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let spec = sweep::Spec::read(spec_path)?;
    let text = std::fs::read_to_string(spec_path)?;
    let out = out.unwrap_or_else(|| {
        let stem = spec_path.file_stem().unwrap_or_default();
        std::path::Path::new("runs").join(stem)
    });
    let total = spec.grid_size()?;
    eprintln!(
        "sweep {}: {total} runs{} on {jobs} thread(s) into {}",
        spec_path.display(),
        if spec.rerun_best.is_some() {
            " (then reruns of the best settings)"
        } else {
            ""
        },
        out.display()
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs  ETA {eta}  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let results = sweep::run_sweep(&spec, &text, &out, jobs, |done, total, line| match &bar {
        Some(bar) => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.println(line);
        }
        None => eprintln!("[{done}/{total}] {line}"),
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let failed = results.iter().filter(|(_, o)| o.status != "ok").count();
    eprintln!(
        "{} runs finished ({failed} failed); results in {}",
        results.len(),
        trainer::SweepDir::new(&out).results().display()
    );
    Ok(())
}

fn train(args: trainer::TrainArgs, resume: bool) -> Result<()> {
    use std::io::IsTerminal;
    let Some(out) = args.out.clone() else {
        bail!("--out DIR is required (where config.toml, metrics.csv and policy.mxp go)")
    };
    let config = if resume {
        let config = trainer::train::saved_config(&out)?;
        if args.env.is_some() || args.config.is_some() {
            bail!(
                "--resume continues with {}; give only --out (and --resume)",
                trainer::RunDir::new(&out).config().display()
            );
        }
        config
    } else {
        args.with_file()?.resolve()?
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(config.steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mode = if resume {
        trainer::train::Mode::Resume
    } else {
        trainer::train::Mode::Fresh
    };
    let summary = trainer::train::train(&config, &out, mode, |line: &str| match &bar {
        Some(bar) => {
            let step = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.split('/').next())
                .and_then(|s| s.parse().ok());
            if let Some(step) = step {
                bar.set_position(step);
            }
            bar.set_message(line.split("  ").skip(1).collect::<Vec<_>>().join("  "));
        }
        None => eprintln!("{line}"),
    })?;
    if let Some(bar) = bar {
        bar.finish();
    }
    println!(
        "trained {} steps ({} episodes, last mean return {:.3}); policy written to {}",
        summary.steps,
        summary.episodes,
        summary.last_return,
        summary.policy_file.display()
    );
    Ok(())
}

fn eval(
    path: &std::path::Path,
    name: &str,
    episodes: usize,
    seed: u64,
    deterministic: bool,
    gym: &GymOptions,
) -> Result<()> {
    use rand::SeedableRng;
    if episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let policy =
        policy_core::Policy::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
    let mut env = envs::make_with(name, gym)?;
    if policy.obs_dim() != env.obs_dim() || policy.action_dim() != env.action_dim() {
        bail!(
            "{} takes {} observations and gives {} actions; {name} has {} and {}",
            path.display(),
            policy.obs_dim(),
            policy.action_dim(),
            env.obs_dim(),
            env.action_dim()
        );
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut obs = vec![0.0f32; env.obs_dim()];
    let mut action = vec![0.0f32; env.action_dim()];
    let mut returns = Vec::with_capacity(episodes);
    for _ in 0..episodes {
        env.reset(&mut rng, &mut obs)?;
        let mut total = 0.0;
        loop {
            if deterministic {
                policy.mode(&obs, &mut action)?;
            } else {
                policy.sample(&obs, &mut rng, &mut action)?;
            }
            let a: Vec<f64> = action.iter().map(|&x| f64::from(x)).collect();
            let t = env.step(&a, &mut obs)?;
            total += t.reward;
            if t.terminated || t.truncated {
                break;
            }
        }
        returns.push(total);
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    println!(
        "{}",
        serde_json::json!({"env": name, "episodes": episodes, "mode": if deterministic {"deterministic"} else {"stochastic"},
            "mean_return": mean, "std_return": sd, "returns": returns})
    );
    Ok(())
}

fn bench(env: &str, steps: usize, repeats: usize, only: &[String], json: bool) -> Result<()> {
    if steps == 0 || repeats == 0 {
        bail!("--steps and --repeats must be at least 1");
    }
    let all = [
        ("squashed", "rep"),
        ("squashed", "like"),
        ("sgm", "like"),
        ("sgm", "halfrep"),
        ("sgm", "gumbel"),
        ("sgm", "mrp"),
    ];
    let name = |(policy, estimator): &(&str, &str)| format!("{estimator}-{policy}");
    if let Some(unknown) = only.iter().find(|o| !all.iter().any(|c| name(c) == **o)) {
        let known: Vec<String> = all.iter().map(name).collect();
        bail!(
            "unknown combination `{unknown}` for --only (expected one of {})",
            known.join(", ")
        );
    }
    let combos = all
        .into_iter()
        .filter(|c| only.is_empty() || only.contains(&name(c)));
    let scratch = std::env::temp_dir().join(format!("mixsac-bench-{}", std::process::id()));
    for (policy, estimator) in combos {
        let args = trainer::TrainArgs {
            env: Some(env.to_string()),
            policy: Some(
                <trainer::PolicyKind as clap::ValueEnum>::from_str(policy, true)
                    .map_err(anyhow::Error::msg)?,
            ),
            estimator: Some(estimator.to_string()),
            steps: Some(steps),
            log_every: Some(steps),
            ..Default::default()
        };
        let config = args.resolve()?;
        let mut rates: Vec<f64> = (0..repeats)
            .map(|_| {
                let start = Instant::now();
                trainer::train::train(&config, &scratch, trainer::train::Mode::NoFiles, |_| {})?;
                Ok(steps as f64 / start.elapsed().as_secs_f64())
            })
            .collect::<Result<_>>()?;
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        if json {
            println!(
                "{}",
                serde_json::json!({"policy": policy, "estimator": estimator, "env": env, "steps": steps,
                "steps_per_sec": median.round(), "runs": rates.iter().map(|r| r.round()).collect::<Vec<_>>()})
            );
        } else {
            println!("{policy:<9} {estimator:<8} {median:>7.0} steps/s  (runs: {rates:.0?})");
        }
    }
    Ok(())
}
