//! results.csv derived from the sweep directory itself: every run of the spec that has a
//! `summary.json`, in grid order, then the reruns of the best settings once the whole grid
//! has finished. Any number of processes (shards on several machines) may collect at
//! once: each reads the summaries and writes the table while holding the directory's lock,
//! and every run's summary is written before its process takes the lock, so the last
//! collector writes a table with every run finished so far; no update is lost.

use crate::experiments::results::{self, ResultRow};
use crate::experiments::shared_files::write_atomically;
use crate::experiments::sweep::{finished, Outcome, Run, Spec};
use crate::experiments::sweep_dir::SweepDir;
use anyhow::Result;

/// The state of a sweep, as written to results.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Rows written (finished runs, failed ones included).
    pub finished: usize,
    /// Finished runs whose status is not "ok".
    pub failed: usize,
    pub grid_runs: usize,
    pub grid_finished: usize,
    /// How many reruns the best settings make; `None` without reruns or while the grid
    /// is unfinished.
    pub reruns: Option<usize>,
    /// The spec has reruns that wait for the grid to finish.
    pub reruns_waiting: bool,
    /// Up to ten runs without a summary, by id.
    pub missing: Vec<String>,
}

/// Derives results.csv of the sweep of `spec` in `dir` from the runs' summaries.
pub fn collect(spec: &Spec, dir: &SweepDir) -> Result<Collected> {
    let grid = spec.grid()?;
    let _lock = dir.lock()?;
    let mut table = finished(&grid, dir);
    let grid_finished = table.len();
    let mut missing = missing_ids(&grid, &table);
    let mut reruns = None;
    if grid_finished == grid.len() && spec.rerun_best.is_some() {
        let best = spec.reruns(&table)?;
        let done = finished(&best, dir);
        missing.extend(missing_ids(&best, &done));
        reruns = Some(best.len());
        table.extend(done);
    }
    write_results(dir, &table)?;
    missing.truncate(10);
    Ok(Collected {
        finished: table.len(),
        failed: table.iter().filter(|(_, o)| o.status != "ok").count(),
        grid_runs: grid.len(),
        grid_finished,
        reruns,
        reruns_waiting: spec.rerun_best.is_some() && grid_finished < grid.len(),
        missing,
    })
}

fn missing_ids(runs: &[Run], done: &[(Run, Outcome)]) -> Vec<String> {
    let done: std::collections::HashSet<&str> = done.iter().map(|(r, _)| r.id.as_str()).collect();
    runs.iter()
        .filter(|r| !done.contains(r.id.as_str()))
        .map(|r| r.id.clone())
        .collect()
}

/// Writes results.csv whole (readers never see a part of it). The caller holds the
/// directory's lock.
pub(crate) fn write_results(dir: &SweepDir, results: &[(Run, Outcome)]) -> Result<()> {
    let rows: Vec<ResultRow> = results.iter().map(|(r, o)| ResultRow::new(r, o)).collect();
    write_atomically(&dir.results(), &results::to_csv(&rows)?)
}
