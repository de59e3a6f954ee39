//! `mixsac sweep`: a grid of training runs from a spec file, resumable; one shard of it
//! (`--shard I/N`, for job arrays), or results.csv derived from a sweep directory
//! (`--collect`).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use trainer::sweep::{self, Phase, SweepOptions};
use trainer::{Shard, SweepDir};

#[derive(clap::Args)]
pub struct Args {
    /// The sweep spec (TOML).
    #[arg(long, required_unless_present = "collect")]
    spec: Option<PathBuf>,
    /// Output directory [default: runs/<spec file name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs (or populations of runs) trained at once, one thread each [default: the
    /// number of CPU cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Most runs trained together as one population (runs that differ only in seed, alpha
    /// and learning rates are packed). Each member computes exactly its solo run, so
    /// results do not depend on it; 1 trains every run alone. The default 4 is the size
    /// that was fastest for every estimator measured (BENCHMARKS.md, "Populations").
    #[arg(long, default_value_t = 4)]
    population: usize,
    /// Train only part I of N of each phase's runs (balanced by training steps), into the
    /// same OUT as the other parts, which may run at the same time on other machines.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Which runs: the grid, the reruns of its best settings (once every grid run has
    /// finished), or both [default: all; grid with --shard].
    #[arg(long, value_enum)]
    phase: Option<Phase>,
    /// Write DIR/results.csv from the summaries of the runs finished in DIR (no training):
    /// after the shards of a sweep, or to see how far it got.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["spec", "out", "shard", "phase"])]
    collect: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if args.population == 0 {
        bail!("--population must be at least 1");
    }
    if let Some(dir) = &args.collect {
        return collect(dir);
    }
    let Some(spec_path) = args.spec else {
        bail!("give --spec (or --collect DIR)");
    };
    let spec = sweep::Spec::read(&spec_path)?;
    let text = std::fs::read_to_string(&spec_path)?;
    let out = args.out.unwrap_or_else(|| {
        let stem = spec_path.file_stem().unwrap_or_default();
        Path::new("runs").join(stem)
    });
    let shard = args.shard.unwrap_or_else(Shard::whole);
    let phase = args.phase.unwrap_or(if args.shard.is_some() {
        Phase::Grid
    } else {
        Phase::All
    });
    let total = spec.grid_size()?;
    let part = match args.shard {
        Some(shard) => format!("part {shard} of "),
        None => String::new(),
    };
    let reruns = match (phase, spec.rerun_best.is_some()) {
        (Phase::Grid, _) | (_, false) => "",
        (Phase::All, true) => " (then reruns of the best settings)",
        (Phase::Best, true) => " (the reruns of its best settings)",
    };
    eprintln!(
        "sweep {}: {part}{total} runs{reruns} on {} thread(s), populations of up to {} into {}",
        spec_path.display(),
        jobs,
        args.population,
        out.display()
    );
    let bar = crate::progress::bar(total as u64, "{bar:30} {pos}/{len} runs  ETA {eta}  {msg}");
    let options = SweepOptions {
        jobs,
        population: args.population,
        shard,
        phase,
    };
    let report = sweep::run_sweep(
        &spec,
        &text,
        &out,
        options,
        |done, total, line| match &bar {
            Some(bar) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.println(line);
            }
            None => eprintln!("[{done}/{total}] {line}"),
        },
    )?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let failed = report.mine.iter().filter(|(_, o)| o.status != "ok").count();
    eprintln!(
        "{} runs finished ({failed} failed); results in {}",
        report.mine.len(),
        SweepDir::new(&out).results().display()
    );
    if args.shard.is_some() {
        print_state(&report.collected);
    }
    Ok(())
}

fn collect(dir: &Path) -> Result<()> {
    let sweep_dir = SweepDir::new(dir);
    let spec = sweep::Spec::read(&sweep_dir.spec())?;
    let collected = trainer::collect::collect(&spec, &sweep_dir)?;
    print_state(&collected);
    eprintln!("results in {}", sweep_dir.results().display());
    Ok(())
}

/// The whole sweep's state, as results.csv now holds it.
fn print_state(c: &trainer::collect::Collected) {
    let reruns = match c.reruns {
        Some(n) => format!("; reruns of the best settings: {n}"),
        None if c.reruns_waiting => "; the reruns wait for the grid".into(),
        None => String::new(),
    };
    eprintln!(
        "sweep: {} runs finished ({} failed); grid: {} of {}{reruns}",
        c.finished, c.failed, c.grid_finished, c.grid_runs
    );
    if !c.missing.is_empty() {
        eprintln!(
            "not finished (first {}): {}",
            c.missing.len(),
            c.missing.join(", ")
        );
    }
}
