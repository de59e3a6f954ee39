//! The files of a sweep directory, each name defined here once.
//!
//! ```text
//! <sweep>/spec.toml       the spec it runs (a resumed sweep must be given the same spec)
//! <sweep>/results.csv     one row per finished run (experiments::results)
//! <sweep>/runs/<id>/      one run directory per run (run::run_dir::RunDir)
//! <sweep>/plots/          where `mixsac plot` puts the figures by default
//! <sweep>/slurm/          the job scripts of `mixsac slurm` and the tasks' logs
//! <sweep>/.lock           taken by whoever checks spec.toml or writes results.csv
//! <sweep>/locks/<id>.lock held by the process training run <id> (outside the run's own
//!                         directory, which a fresh start removes)
//! ```

use crate::experiments::shared_files::{write_atomically, FileLock};
use crate::run::run_dir::RunDir;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Files of a sweep directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepDir {
    pub root: PathBuf,
}

impl SweepDir {
    pub fn new(root: impl Into<PathBuf>) -> SweepDir {
        SweepDir { root: root.into() }
    }
    pub fn spec(&self) -> PathBuf {
        self.root.join("spec.toml")
    }
    pub fn results(&self) -> PathBuf {
        self.root.join("results.csv")
    }
    /// The folder of the run directories.
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }
    /// The directory of the run named `id`.
    pub fn run(&self, id: &str) -> RunDir {
        RunDir::new(self.runs().join(id))
    }
    /// The default folder of the figures.
    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }
    /// The lock held by the process that trains the run named `id`, so that two processes
    /// (a resubmitted task and one still running) never train the same run.
    pub fn run_lock(&self, id: &str) -> PathBuf {
        self.root.join("locks").join(format!("{id}.lock"))
    }
    /// The job scripts of `mixsac slurm` and the logs of its tasks.
    pub fn slurm(&self) -> PathBuf {
        self.root.join("slurm")
    }

    /// Waits for the directory's lock and holds it until the guard is dropped.
    pub fn lock(&self) -> Result<FileLock> {
        FileLock::acquire(&self.root.join(".lock"))
    }

    /// Makes the directory (if need be) the home of the sweep whose spec is `spec_text`:
    /// writes spec.toml, or checks that the one there is the same. Safe when several
    /// processes (shards) do it at once.
    pub fn claim(&self, spec_text: &str) -> Result<()> {
        std::fs::create_dir_all(self.runs())
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let _lock = self.lock()?;
        let saved = self.spec();
        match std::fs::read_to_string(&saved) {
            Ok(old) if old != spec_text => bail!(
                "{} holds a sweep of another spec ({}); use another --out, or the same spec to continue it",
                self.root.display(),
                saved.display()
            ),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomically(&saved, spec_text.as_bytes())
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", saved.display())),
        }
    }
}
