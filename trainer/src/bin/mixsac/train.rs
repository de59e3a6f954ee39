//! `mixsac train`: resolve the configuration, train (or resume), report progress.

use anyhow::{anyhow, bail, Result};
use trainer::envs::{EnvId, Family};
use trainer::{Mode, TrainArgs, TrainEvent};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    settings: Box<TrainArgs>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
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

pub fn run(Args { settings, resume }: Args) -> Result<()> {
    let Some(out) = settings.out.clone() else {
        bail!("--out DIR is required (where config.toml, metrics.csv and policy.mxp go)")
    };
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
    let bar = crate::progress::bar(
        config.steps as u64,
        "{bar:30} {pos}/{len} steps  {msg}  ETA {eta}",
    );
    let mode = if resume { Mode::Resume } else { Mode::Fresh };
    let summary = trainer::train::train(&config, &out, mode, |event| match (&bar, &event) {
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
            bar.set_message(trainer::train::logged_summary(
                *episodes,
                *recent_return,
                *steps_per_sec,
            ));
        }
        (Some(bar), _) => bar.println(event.to_string()),
        (None, _) => eprintln!("{event}"),
    })
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
    Ok(())
}
