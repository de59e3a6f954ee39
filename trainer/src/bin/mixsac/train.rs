//! `mixsac train`: resolve the configuration, train (or resume), report progress.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use trainer::envs::{EnvId, Family};
use trainer::{Alpha, Config, MemberGrid, Mode, PopulationDir, TrainArgs, TrainEvent};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    settings: Box<TrainArgs>,
    /// Continue the run (or population) in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Train a population: one member per seed (comma-separated), all updated together as
    /// one batched network. Combines with the lists below (every combination is a member);
    /// each member writes an ordinary run directory under --out.
    #[arg(long, value_delimiter = ',', value_name = "SEED,...")]
    seeds: Vec<u64>,
    /// Population members' entropy scales (numbers, or `auto` alone).
    #[arg(long, value_delimiter = ',', value_name = "ALPHA,...")]
    alphas: Vec<Alpha>,
    /// Population members' actor learning rates.
    #[arg(long, value_delimiter = ',', value_name = "LR,...")]
    actor_lrs: Vec<f64>,
    /// Population members' critic learning rates.
    #[arg(long, value_delimiter = ',', value_name = "LR,...")]
    critic_lrs: Vec<f64>,
    /// Also write the trained policy quantized to int8 (format version 3), policy-int8.mxp
    /// beside policy.mxp: calibrated on the states it visits in 20 episodes of the training
    /// environment, as `mixsac quantize` does, with its accuracy on 10 others printed.
    #[arg(long)]
    export_int8: bool,
}

/// The family of the environment that `--env NAME` or `--env=NAME` names on a command line,
/// if any (for `--help`).
pub fn family_in_args(args: impl Iterator<Item = String>) -> Option<Family> {
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let name = match arg.strip_prefix("--env=") {
            Some(name) => name.to_string(),
            None if arg == "--env" => args.peek()?.clone(),
            None => continue,
        };
        return name.parse::<EnvId>().ok().map(|id| id.family());
    }
    None
}

pub fn run(args: Args) -> Result<()> {
    let Some(out) = args.settings.out.clone() else {
        bail!("--out DIR is required (where config.toml, metrics.csv and policy.mxp go)")
    };
    let grid = MemberGrid {
        seeds: args.seeds,
        alphas: args.alphas,
        actor_lrs: args.actor_lrs,
        critic_lrs: args.critic_lrs,
    };
    let population = grid.is_population() || (args.resume && PopulationDir::holds_population(&out));
    if population {
        return run_population(&args.settings, args.resume, &grid, &out, args.export_int8);
    }
    let (settings, resume) = (args.settings, args.resume);
    let config = if resume {
        if settings.env.is_some() || settings.config.is_some() {
            bail!(
                "--resume continues with {}; give only --out (and --resume)",
                trainer::RunDir::new(&out).config().display()
            );
        }
        trainer::saved_config(&out)?
    } else {
        settings.with_file()?.resolve()?
    };
    trainer::train::use_threads(config.threads)?;
    let bar = crate::progress::bar(
        config.steps as u64,
        "{bar:30} {pos}/{len} steps  {msg}  ETA {eta}",
    );
    let mode = if resume { Mode::Resume } else { Mode::Fresh };
    let summary = trainer::train::train(&config, &out, mode, show_progress(&bar, String::new()))
        .map_err(|e| match e.downcast_ref::<trainer::CheckpointError>() {
            Some(trainer::CheckpointError::Damaged { run, .. }) => anyhow!(
                "{e}: mixsac train --config {} --out NEW_DIR",
                trainer::RunDir::new(run).config().display()
            ),
            _ => e,
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
    if args.export_int8 {
        export_int8(&config, &out)?;
    }
    Ok(())
}

/// `--export-int8`: the run's policy.mxp quantized, calibrated in its own environment
/// (with its env_kwargs), written to policy-int8.mxp beside it.
fn export_int8(config: &Config, run: &Path) -> Result<()> {
    let dir = trainer::RunDir::new(run);
    let (policy, out) = (dir.policy(), dir.policy_int8());
    let bytes =
        std::fs::read(&policy).with_context(|| format!("cannot read {}", policy.display()))?;
    let mut env = config.env.make(&config.gym_options())?;
    let settings = trainer::Int8Settings {
        seed: config.seed,
        ..trainer::Int8Settings::default()
    };
    let export = trainer::export_int8(&bytes, &mut env, &settings)
        .with_context(|| format!("quantizing {}", policy.display()))?;
    std::fs::write(&out, &export.bytes)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "int8 policy written to {} ({} bytes; calibrated on {} states of {} episodes)",
        out.display(),
        export.bytes.len(),
        export.calibration_states,
        settings.episodes
    );
    println!("{}", export.accuracy_lines(settings.check_episodes));
    Ok(())
}

/// `train` with several members: one batched population, each member's run under `out`.
fn run_population(
    settings: &TrainArgs,
    resume: bool,
    grid: &MemberGrid,
    out: &Path,
    int8: bool,
) -> Result<()> {
    let dir = PopulationDir::new(out);
    let (configs, dirs): (Vec<Config>, Vec<PathBuf>) = if resume {
        if settings.env.is_some() || settings.config.is_some() || grid.is_population() {
            bail!(
                "--resume continues the population listed in {}; give only --out (and --resume)",
                dir.list().display()
            );
        }
        let dirs = dir.members()?;
        let configs = dirs
            .iter()
            .map(|d| trainer::saved_config(d))
            .collect::<Result<Vec<_>>>()?;
        (configs, dirs)
    } else {
        if settings.seed.is_some() && !grid.seeds.is_empty() {
            bail!("give either --seed or --seeds, not both");
        }
        let base = settings.clone().with_file()?.resolve()?;
        let members = grid.members(&base)?;
        let (names, configs): (Vec<String>, Vec<Config>) = members.into_iter().unzip();
        trainer::train::check_population(&configs)?;
        dir.write(&names)?;
        let dirs = names.iter().map(|n| dir.member(n)).collect();
        (configs, dirs)
    };
    trainer::train::use_threads(configs[0].threads)?;
    let steps = configs[0].steps;
    let bar = crate::progress::bar(steps as u64, "{bar:30} {pos}/{len} steps  {msg}  ETA {eta}");
    let mode = if resume { Mode::Resume } else { Mode::Fresh };
    let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let label = format!("{} members  ", configs.len());
    let outcomes =
        trainer::train::train_population(&configs, &dir_refs, mode, show_progress(&bar, label))?;
    if let Some(bar) = bar {
        bar.finish();
    }
    let (mut failed, mut exports_failed) = (0, 0);
    for ((dir, outcome), config) in dirs.iter().zip(&outcomes).zip(&configs) {
        match outcome {
            Ok(summary) => {
                println!(
                    "{}: trained {} steps ({} episodes, last mean return {:.3}); policy written to {}",
                    dir.display(),
                    summary.steps,
                    summary.episodes,
                    summary.last_return,
                    summary.policy_file.display()
                );
                // One member's failed export does not hide the others' results.
                if int8 {
                    if let Err(e) = export_int8(config, dir) {
                        exports_failed += 1;
                        println!("{}: int8 export failed: {e:#}", dir.display());
                    }
                }
            }
            Err(reason) => {
                failed += 1;
                println!("{}: stopped: {reason}", dir.display());
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} population members stopped early (see above)",
            outcomes.len()
        );
    }
    if exports_failed > 0 {
        bail!(
            "{exports_failed} of {} members' int8 exports failed (see above); their f32 policies are written",
            outcomes.len()
        );
    }
    Ok(())
}

/// What `train` shows while it runs: the step and the last metrics on the progress bar
/// (after `label`), other events above it; plain lines when stderr is no terminal.
fn show_progress(
    bar: &Option<indicatif::ProgressBar>,
    label: String,
) -> impl FnMut(TrainEvent) + '_ {
    move |event| match (bar, &event) {
        (
            Some(bar),
            TrainEvent::Logged {
                step,
                episodes,
                recent_return,
                steps_per_sec,
                ..
            },
        ) => {
            bar.set_position(*step as u64);
            let summary = trainer::train::logged_summary(*episodes, *recent_return, *steps_per_sec);
            bar.set_message(format!("{label}{summary}"));
        }
        (Some(bar), _) => bar.println(event.to_string()),
        (None, _) => eprintln!("{event}"),
    }
}
