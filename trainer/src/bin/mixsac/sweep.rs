//! `mixsac sweep`: a grid of training runs from a spec file, resumable.

use anyhow::{bail, Result};
use std::path::PathBuf;
use trainer::sweep;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep spec (TOML).
    #[arg(long)]
    spec: PathBuf,
    /// Output directory [default: runs/<spec file name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs trained at once, one thread each.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

pub fn run(
    Args {
        spec: spec_path,
        out,
        jobs,
    }: Args,
) -> Result<()> {
    if jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let spec = sweep::Spec::read(&spec_path)?;
    let text = std::fs::read_to_string(&spec_path)?;
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
    let bar = crate::progress::bar(total as u64, "{bar:30} {pos}/{len} runs  ETA {eta}  {msg}");
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
