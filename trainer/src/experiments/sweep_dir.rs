//! The files of a sweep directory, each name defined here once.
//!
//! ```text
//! <sweep>/spec.toml       the spec it runs (a resumed sweep must be given the same spec)
//! <sweep>/results.csv     one row per finished run (experiments::results)
//! <sweep>/runs/<id>/      one run directory per run (run::run_dir::RunDir)
//! <sweep>/plots/          where `mixsac plot` puts the figures by default
//! ```

use crate::run::run_dir::RunDir;
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
}
