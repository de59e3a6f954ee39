//! results.csv: one [`ResultRow`] per finished run of a sweep, derived from the runs'
//! summaries (`experiments::collect`) and read by the figures.
//!
//! Fields are written as they are, never quoted (no field holds a comma or a line end: a
//! failed run's status has them replaced by spaces), and read back the same way.

use crate::envs::EnvId;
use crate::experiments::sweep::{rate_text, Outcome, Run};
use crate::run::table;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of results.csv: a run's coordinates and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// "grid", or "best" for the reruns of the best settings.
    pub phase: String,
    pub env: EnvId,
    /// `<estimator>-<policy>-k<K>`.
    pub method: String,
    /// A number, or "auto".
    pub alpha: String,
    /// A number, or "default" (the family's).
    pub actor_lr: String,
    pub critic_lr: String,
    pub seed: u64,
    pub steps: usize,
    /// "ok", or the error that stopped the run.
    pub status: String,
    #[serde(serialize_with = "table::display")]
    pub final_return: f64,
    #[serde(serialize_with = "table::display")]
    pub auc: f64,
    pub episodes: usize,
    /// Wall time of the run (of its last invocation, if resumed).
    #[serde(serialize_with = "table::one_decimal")]
    pub seconds: f64,
    /// The run's directory name under `runs/`.
    pub run: String,
}

impl ResultRow {
    pub fn new(run: &Run, outcome: &Outcome) -> ResultRow {
        ResultRow {
            phase: run.phase.to_string(),
            env: run.env.clone(),
            method: run.method.clone(),
            alpha: run.alpha.to_string(),
            actor_lr: rate_text(run.rates.actor),
            critic_lr: rate_text(run.rates.critic),
            seed: run.seed,
            steps: run.config.steps,
            status: outcome.status.clone(),
            final_return: outcome.final_return,
            auc: outcome.auc,
            episodes: outcome.episodes,
            seconds: outcome.seconds,
            run: run.id.clone(),
        }
    }
}

/// Writes results.csv (the header, then `rows`).
pub fn write(path: &Path, rows: &[ResultRow]) -> Result<()> {
    std::fs::write(path, to_csv(rows)?).with_context(|| format!("cannot write {}", path.display()))
}

/// The text of results.csv: the header, then `rows`.
pub fn to_csv(rows: &[ResultRow]) -> Result<Vec<u8>> {
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .quote_style(csv::QuoteStyle::Never)
        .from_writer(Vec::new());
    csv.write_record(table::header::<ResultRow>())?;
    for row in rows {
        csv.serialize(row)?;
    }
    csv.into_inner().map_err(|e| anyhow!("{}", e.error()))
}

/// Reads results.csv; a malformed row is an error that names the file and the line.
pub fn read(path: &Path) -> Result<Vec<ResultRow>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (is this a sweep directory?)",
            path.display()
        )
    })?;
    let columns = table::header::<ResultRow>().len();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .quoting(false)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read {}", path.display()))?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != columns {
            bail!(
                "{} line {line}: expected {columns} fields, got {}",
                path.display(),
                record.len()
            );
        }
        rows.push(
            record
                .deserialize(None)
                .with_context(|| format!("{} line {line}", path.display()))?,
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_and_a_row_keep_their_layout() {
        assert_eq!(
            table::header::<ResultRow>().join(","),
            "phase,env,method,alpha,actor_lr,critic_lr,seed,steps,status,final_return,auc,\
             episodes,seconds,run"
        );
        let dir = std::env::temp_dir().join(format!("mixsac-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.csv");
        let row = ResultRow {
            phase: "grid".into(),
            env: EnvId::RandomBandit(3),
            method: "rep-squashed-k1".into(),
            alpha: "auto".into(),
            actor_lr: "0.001".into(),
            critic_lr: "default".into(),
            seed: 7,
            steps: 300,
            status: "failed: a \"quoted\" word".into(),
            final_return: f64::NAN,
            auc: 8.0,
            episodes: 3,
            seconds: 12.345,
            run: "grid__x".into(),
        };
        write(&path, std::slice::from_ref(&row)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "grid,random-bandit:3,rep-squashed-k1,auto,0.001,default,7,300,\
             failed: a \"quoted\" word,NaN,8,3,12.3,grid__x"
        );
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].status, row.status);
        assert!(back[0].final_return.is_nan());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
