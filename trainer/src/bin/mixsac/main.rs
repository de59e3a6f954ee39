//! `mixsac`: train mixture policies with SAC, evaluate and inspect the exported `.mxp`
//! files, and run the experiments. One module per subcommand: each parses its flags, calls
//! the library and prints.

mod bench;
mod envs;
mod eval;
mod grad_variance;
mod inspect;
mod plot;
mod progress;
mod quantize;
mod slurm;
mod stationary;
mod sweep;
mod train;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

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
    /// Train a policy with SAC and export it to DIR/policy.mxp.
    Train(train::Args),
    /// Evaluate an exported policy file through policy-core (the deployed artifact).
    Eval(eval::Args),
    /// Print the header of an .mxp policy file (checks its CRC and dimensions).
    Inspect(inspect::Args),
    /// Quantize an exported policy to int8 (format version 3), calibrated on states the
    /// policy visits in an environment; prints its accuracy against the f32 file.
    Quantize(quantize::Args),
    /// List every environment with its observation size, action bounds and cut-off.
    Envs,
    /// Step an environment from a given state with actions read from stdin (one action per
    /// line, entries separated by spaces or commas); write one JSON object per step.
    EnvReplay(envs::ReplayArgs),
    /// Measure training throughput (steps/s, one update per step) of the estimator and
    /// policy combinations of the paper at classic-control settings.
    Bench(bench::Args),
    /// Measure nanoseconds per environment step (random actions, resets included).
    BenchEnvs(bench::EnvArgs),
    /// The stationary-point study of the bimodal bandit (paper §3.3): maximise the exact
    /// objective E[r] + α H for a Gaussian and a 2-component mixture from random starts;
    /// writes OUT/stationary.csv and the figure OUT/stationary.{png,svg}.
    Stationary(stationary::Args),
    /// The actor gradient estimators' variance and bias at fixed policy parameters: N draws
    /// of each estimator's gradient on bandits (at initialisation and after training
    /// updates) and on frozen checkpoints, against the exact gradient by quadrature (1-D
    /// actions). Writes OUT/grad-variance.csv and OUT/grad-variance.{png,svg}.
    GradVariance(grad_variance::Args),
    /// Run a grid of training runs from a spec file (experiments/*.toml) on N threads;
    /// resumable. Writes OUT/results.csv and OUT/runs/<id>/. `--shard I/N` runs one part.
    Sweep(sweep::Args),
    /// Write a sweep's Slurm jobs (a job array over shards of the grid, the reruns of the
    /// best settings, the figures) into OUT/slurm/; `--submit` submits them.
    Slurm(slurm::Args),
    /// Figures of a sweep: learning curves with 95 % bootstrap bands, final return vs α,
    /// every run's curve; PNG and SVG.
    Plot(plot::Args),
}

fn main() -> ExitCode {
    // candle's CPU kernels use rayon; for these small networks threads cost more than they
    // give (measured: 4000 pendulum steps 7.0 s with 2 threads, 2.6 s with 1). Set
    // RAYON_NUM_THREADS to override.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    // `train --help` shows the defaults of the environment named on the same command line.
    let command = Cli::command().mut_subcommand("train", |c| {
        trainer::config::document_defaults(c, train::family_in_args(std::env::args()))
    });
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Envs => envs::list(),
        Command::EnvReplay(args) => envs::replay(args),
        Command::Bench(args) => bench::run(args),
        Command::BenchEnvs(args) => bench::run_envs(args),
        Command::Stationary(args) => stationary::run(args),
        Command::GradVariance(args) => grad_variance::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Slurm(args) => slurm::run(args),
        Command::Plot(args) => plot::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
