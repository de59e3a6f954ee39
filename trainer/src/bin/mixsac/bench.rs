//! `mixsac bench` (training steps/s per estimator) and `mixsac bench-envs` (environment
//! ns per step). Benchmarks, not tests: the numbers go to BENCHMARKS.md.

use anyhow::{bail, Context, Result};
use std::time::Instant;
use trainer::envs::{EnvBatch, EnvId, EnvKwargs, GymOptions, MemberStep};
use trainer::{Estimator, Mode, PolicyKind, TrainArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Environment.
    #[arg(long, default_value = "pendulum")]
    env: EnvId,
    /// Keyword arguments for gym.make of a gym:<ID> environment (a JSON object).
    #[arg(long)]
    env_kwargs: Option<EnvKwargs>,
    /// Steps per combination (including the uniformly random first steps, learning_starts).
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Repetitions per combination; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Only these combinations, named estimator-policy (e.g. `halfrep-sgm`); repeatable.
    #[arg(long)]
    only: Vec<String>,
    /// Members of a population trained as one batched network (seeds 0..S); the rate is
    /// member-steps per second (environment steps summed over members, one update each).
    #[arg(long, default_value_t = 1)]
    population: usize,
    /// Hidden width (default: the environment family's; 256 for MuJoCo size).
    #[arg(long)]
    hidden: Option<usize>,
    /// Minibatch size (default: the environment family's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Uniformly random first steps, without updates (default: the environment family's).
    #[arg(long)]
    learning_starts: Option<usize>,
    /// CPU threads (as `train --threads`; default: train's, 2 at MuJoCo size, else 1).
    #[arg(long)]
    threads: Option<usize>,
    /// Where the tensors live (as `train --device`; cuda needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = trainer::config::Device::Cpu)]
    device: trainer::config::Device,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// The estimator and policy combinations of the paper.
const COMBINATIONS: [(PolicyKind, Estimator); 6] = [
    (PolicyKind::Squashed, Estimator::Rep),
    (PolicyKind::Squashed, Estimator::Like),
    (PolicyKind::Sgm, Estimator::Like),
    (PolicyKind::Sgm, Estimator::HalfRep),
    (PolicyKind::Sgm, Estimator::Gumbel),
    (PolicyKind::Sgm, Estimator::Mrp),
];

pub fn run(args: Args) -> Result<()> {
    if args.steps == 0 || args.repeats == 0 || args.population == 0 {
        bail!("--steps, --repeats and --population must be at least 1");
    }
    let name = |(policy, estimator): &(PolicyKind, Estimator)| format!("{estimator}-{policy}");
    if let Some(unknown) = args
        .only
        .iter()
        .find(|o| !COMBINATIONS.iter().any(|c| name(c) == **o))
    {
        let known: Vec<String> = COMBINATIONS.iter().map(name).collect();
        bail!(
            "unknown combination `{unknown}` for --only (expected one of {})",
            known.join(", ")
        );
    }
    let combinations = COMBINATIONS
        .into_iter()
        .filter(|c| args.only.is_empty() || args.only.contains(&name(c)));
    let scratch = std::env::temp_dir().join(format!("mixsac-bench-{}", std::process::id()));
    for (policy, estimator) in combinations {
        let config = TrainArgs {
            env: Some(args.env.clone()),
            env_kwargs: args.env_kwargs.clone(),
            policy: Some(policy),
            estimator: Some(estimator),
            steps: Some(args.steps),
            log_every: Some(args.steps),
            hidden: args.hidden,
            batch_size: args.batch_size,
            threads: args.threads,
            learning_starts: args.learning_starts,
            device: Some(args.device),
            ..Default::default()
        }
        .resolve()?;
        trainer::train::use_threads(config.threads)?;
        let s = args.population;
        let configs: Vec<_> = (0..s as u64)
            .map(|seed| trainer::Config {
                seed,
                ..config.clone()
            })
            .collect();
        let dirs: Vec<&std::path::Path> = vec![scratch.as_path(); s];
        let mut rates: Vec<f64> = (0..args.repeats)
            .map(|_| {
                let start = Instant::now();
                trainer::train::train_population(&configs, &dirs, Mode::NoFiles, |_| {})?;
                Ok((s * args.steps) as f64 / start.elapsed().as_secs_f64())
            })
            .collect::<Result<_>>()?;
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        if args.json {
            println!(
                "{}",
                serde_json::json!({"policy": policy.to_string(), "estimator": estimator.to_string(),
                "env": args.env.to_string(), "steps": args.steps, "population": s,
                "hidden": config.hidden, "batch_size": config.batch_size, "threads": config.threads, "learning_starts": config.learning_starts,
                "device": args.device.to_string(),
                "steps_per_sec": median.round(),
                "runs": rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
                "peak_rss_mib": peak_rss_mib()})
            );
        } else {
            let unit = if s == 1 { "steps/s" } else { "member-steps/s" };
            println!(
                "{policy:<9} {estimator:<8} S={s:<3} {median:>7.0} {unit}  (runs: {rates:.0?}) on {}",
                args.device
            );
        }
    }
    Ok(())
}

/// The process's peak resident memory so far (Linux: VmHWM), in MiB; None elsewhere.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0).round())
}

#[derive(clap::Args)]
pub struct EnvArgs {
    /// Only this environment (default: all, with random-bandit:0). For gym:<ID>, the
    /// bridge's cost per step is reported next to Python's own env.step time.
    #[arg(long)]
    env: Option<EnvId>,
    /// Steps per environment [default: 2000000; 20000 for gym:<ID>].
    #[arg(long)]
    steps: Option<usize>,
    /// Python with gymnasium, for gym:<ID> [default: $MIXSAC_PYTHON, else python3].
    #[arg(long)]
    python: Option<String>,
    /// Keyword arguments for gym.make of a gym:<ID> environment (a JSON object).
    #[arg(long)]
    env_kwargs: Option<EnvKwargs>,
    /// For gym:<ID>: time a population of this many members stepping together, one worker
    /// per member (one round trip each) against one worker for all (one round trip).
    #[arg(long, default_value_t = 1)]
    population: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run_envs(args: EnvArgs) -> Result<()> {
    if args.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    let gym = GymOptions {
        kwargs: args.env_kwargs.clone().unwrap_or_default(),
        ..GymOptions::new(args.python.as_deref())
    };
    if let Some(id @ EnvId::Gym(_)) = &args.env {
        let steps = args.steps.unwrap_or(20_000);
        if args.population > 1 {
            return bench_gym_population(id, steps, args.population, &gym, args.json);
        }
        return bench_gym(id, steps, &gym, args.json);
    }
    if args.population != 1 || args.env_kwargs.is_some() {
        bail!("--population and --env-kwargs apply to gym:<ID> environments (give --env gym:<ID>)");
    }
    let steps = args.steps.unwrap_or(2_000_000);
    let ids: Vec<EnvId> = match args.env {
        Some(id) => vec![id],
        None => EnvId::builtin().collect(),
    };
    for id in ids {
        let ns = id.make(&gym)?.ns_per_random_step(steps)?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({"env": id.to_string(), "ns_per_step": (ns * 10.0).round() / 10.0, "steps": steps})
            );
        } else {
            println!("{:<22} {ns:>9.1} ns/step", id.to_string());
        }
    }
    Ok(())
}

/// Bridge cost per step of a Gymnasium environment next to Python's own `env.step` time.
fn bench_gym(id: &EnvId, steps: usize, gym: &GymOptions, json: bool) -> Result<()> {
    let mut env = id.make(gym)?;
    env.ns_per_random_step(steps.min(1000))?; // warm-up: imports, caches
    let bridge = env.ns_per_random_step(steps)?;
    let worker = env
        .gym_worker()
        .context("a gym: environment has a worker")?;
    let steps32 = u32::try_from(steps).context("--steps is too large for gym:")?;
    let python = worker.python_step_ns(steps32, 1)?;
    let ratio = bridge / python;
    if json {
        println!(
            "{}",
            serde_json::json!({"env": id.to_string(), "steps": steps,
                "bridge_ns_per_step": bridge.round(), "python_ns_per_step": python.round(),
                "ratio": (ratio * 100.0).round() / 100.0})
        );
    } else {
        println!(
            "{id}: {bridge:.0} ns/step through the bridge, {python:.0} ns/step in Python's own env.step ({ratio:.2}x)"
        );
    }
    Ok(())
}

/// A population step of `members` Gymnasium environments: one worker each (how populations
/// stepped before they shared a worker) against one worker holding them all.
fn bench_gym_population(
    id: &EnvId,
    steps: usize,
    members: usize,
    gym: &GymOptions,
    json: bool,
) -> Result<()> {
    let mut separate = EnvBatch::each(id, members, gym)?;
    let mut shared = EnvBatch::make(id, members, gym)?;
    // Interleaved, warm-up first (imports, caches), so drifts of the machine hit both.
    let (mut each_ns, mut shared_ns) = (Vec::new(), Vec::new());
    for round in 0..4 {
        let n = if round == 0 { steps.min(500) } else { steps };
        let a = ns_per_population_step(&mut separate, n)?;
        let b = ns_per_population_step(&mut shared, n)?;
        if round > 0 {
            each_ns.push(a);
            shared_ns.push(b);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (each, one) = (median(&mut each_ns), median(&mut shared_ns));
    let rate = |ns: f64| members as f64 * 1e9 / ns;
    if json {
        println!(
            "{}",
            serde_json::json!({"env": id.to_string(), "population": members, "steps": steps,
                "separate_workers_ns_per_step": each.round(), "shared_worker_ns_per_step": one.round(),
                "separate_member_steps_per_sec": rate(each).round(),
                "shared_member_steps_per_sec": rate(one).round(),
                "speedup": (each / one * 100.0).round() / 100.0,
                "separate_runs": each_ns.iter().map(|x| x.round()).collect::<Vec<_>>(),
                "shared_runs": shared_ns.iter().map(|x| x.round()).collect::<Vec<_>>()})
        );
    } else {
        println!(
            "{id} x{members}: {each:.0} ns per population step with a worker per member, {one:.0} ns with one shared worker ({:.2}x; {:.0} vs {:.0} member-steps/s)",
            each / one,
            rate(each),
            rate(one)
        );
    }
    Ok(())
}

/// Nanoseconds per step of every member, uniformly random actions (a cycle of 1024 drawn
/// beforehand), new episodes started as training starts them.
fn ns_per_population_step(batch: &mut EnvBatch, steps: usize) -> Result<f64> {
    use rand::{Rng, SeedableRng};
    let s = batch.count();
    let mut rngs: Vec<rand_pcg::Pcg64> =
        (0..s as u64).map(rand_pcg::Pcg64::seed_from_u64).collect();
    let mut obs = vec![0.0f32; batch.obs_dim()];
    for (i, rng) in rngs.iter_mut().enumerate() {
        batch.reset(i, rng, &mut obs)?;
    }
    let spec = batch.spec().clone();
    let mut draw = rand_pcg::Pcg64::seed_from_u64(1);
    let actions: Vec<Vec<f64>> = (0..1024 * s)
        .map(|_| {
            let bounds = spec.action_low.iter().zip(&spec.action_high);
            bounds.map(|(&l, &h)| draw.random_range(l..h)).collect()
        })
        .collect();
    let start = Instant::now();
    for step in 0..steps {
        let at = (step % 1024) * s;
        let given: Vec<Option<&[f64]>> = actions[at..at + s]
            .iter()
            .map(|a| Some(a.as_slice()))
            .collect();
        for outcome in batch.step_all(&given, &mut rngs) {
            match outcome {
                MemberStep::Failed(e) => return Err(e.into()),
                MemberStep::Stepped {
                    reset: Some(Err(e)),
                    ..
                } => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(start.elapsed().as_nanos() as f64 / steps as f64)
}
