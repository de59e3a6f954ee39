//! `mixsac stationary`: the bimodal-bandit stationary-point study.

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Instant;
use trainer::stationary;

#[derive(clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
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
}

pub fn run(
    Args {
        out,
        starts,
        seed,
        alphas,
        jobs,
    }: Args,
) -> Result<()> {
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
    stationary::run_study(&alphas, starts, seed, jobs, &out, |line| {
        eprintln!("{line}")
    })?;
    eprintln!(
        "wrote {0}/stationary.csv, {0}/stationary.png and {0}/stationary.svg in {1:.1} s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
