//! `mixsac plot`: the figures of a sweep.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep directory (holding results.csv).
    #[arg(long)]
    sweep: PathBuf,
    /// Where the figures go [default: SWEEP/plots].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(Args { sweep, out }: Args) -> Result<()> {
    let out = out.unwrap_or_else(|| trainer::SweepDir::new(&sweep).plots());
    let figures = trainer::report::plot_sweep(&sweep, &out)?;
    for f in figures.written {
        eprintln!("wrote {}", f.display());
    }
    for note in figures.skipped {
        eprintln!("{note}");
    }
    Ok(())
}
