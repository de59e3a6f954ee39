//! metrics.csv: a run's learning curve and losses, one [`MetricsRow`] per log interval,
//! written and read through the csv crate (the header is the struct's field names).
//!
//! The training loop appends each row as it is logged ([`MetricsWriter`]); a crash may cut
//! the file or leave rows past the last checkpoint, which a resumed run cuts back
//! ([`keep_until`]).

use super::table;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// One row of metrics.csv: the run at a log interval, and means over the interval since the
/// previous row. Floats are printed with `{}` (`steps_per_sec` with one decimal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Environment steps so far.
    pub step: usize,
    /// Episodes finished so far.
    pub episode: usize,
    /// Mean return of the episodes finished in the interval (NaN if none).
    #[serde(serialize_with = "table::display")]
    pub episode_return: f64,
    /// Mean length of those episodes (NaN if none).
    #[serde(serialize_with = "table::display")]
    pub episode_length: f64,
    /// Mean critic loss of the interval's updates (NaN without updates or a learnt critic).
    #[serde(serialize_with = "table::display")]
    pub critic_loss: f64,
    /// Mean actor loss of the interval's updates (NaN without updates).
    #[serde(serialize_with = "table::display")]
    pub actor_loss: f64,
    /// α at the end of the interval.
    #[serde(serialize_with = "table::display")]
    pub alpha: f64,
    /// Mean log-probability of the actor's samples in the interval's updates.
    #[serde(serialize_with = "table::display")]
    pub log_prob_mean: f64,
    /// Environment steps per second of wall time over the interval.
    #[serde(serialize_with = "table::one_decimal")]
    pub steps_per_sec: f64,
}

impl MetricsRow {
    /// The row as a line of metrics.csv, without the line end.
    pub fn to_line(&self) -> Result<String> {
        let mut bytes = to_csv(false, std::slice::from_ref(self))?;
        bytes.pop(); // the '\n'
        Ok(String::from_utf8(bytes)?)
    }

    /// A row from a line of metrics.csv.
    pub fn from_line(line: &str) -> Result<MetricsRow> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        match reader.deserialize().next() {
            Some(row) => Ok(row.with_context(|| format!("invalid metrics row `{line}`"))?),
            None => bail!("empty metrics row"),
        }
    }
}

/// The rows of a metrics.csv in file order. Rows that do not parse (one a crash cut short)
/// are left out.
pub fn read(path: &Path) -> Result<Vec<MetricsRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(reader
        .records()
        .filter_map(|record| record.ok()?.deserialize(None).ok())
        .collect())
}

/// Appends rows to a run's metrics.csv, each written through at once.
pub struct MetricsWriter {
    csv: csv::Writer<File>,
}

impl MetricsWriter {
    /// Writes a new metrics.csv that holds only the header.
    pub fn create(path: &Path) -> Result<()> {
        std::fs::write(path, to_csv(true, &[])?)?;
        Ok(())
    }

    /// Opens an existing metrics.csv to append rows to.
    pub fn append(path: &Path) -> Result<MetricsWriter> {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(MetricsWriter { csv: writer(file) })
    }

    /// Appends a row and flushes it to the file.
    pub fn write(&mut self, row: &MetricsRow) -> Result<()> {
        self.csv.serialize(row)?;
        self.csv.flush()?;
        Ok(())
    }
}

/// Cuts metrics.csv back to the rows up to `step` (a checkpoint's), ending with `last_row`
/// (the checkpoint's copy of the row of `step`, as a line) if the file lacks it: a crash may
/// have cut the file, or come after rows past the checkpoint.
pub fn keep_until(path: &Path, step: usize, last_row: Option<&str>) -> Result<()> {
    let mut rows: Vec<MetricsRow> = read(path)
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.step <= step)
        .collect();
    if let Some(line) = last_row {
        if rows.last().map(|row| row.step) != Some(step) {
            rows.push(MetricsRow::from_line(line).context("the checkpoint's last metrics row")?);
        }
    }
    std::fs::write(path, to_csv(true, &rows)?)?;
    Ok(())
}

fn writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out)
}

/// The bytes of `rows` (after the header if `header`), each line ended by '\n'.
fn to_csv(header: bool, rows: &[MetricsRow]) -> Result<Vec<u8>> {
    let mut csv = writer(Vec::new());
    if header {
        csv.write_record(table::header::<MetricsRow>())?;
    }
    for row in rows {
        csv.serialize(row)?;
    }
    csv.into_inner().map_err(|e| anyhow!("{}", e.error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_floats_with_display_and_read_back() {
        assert_eq!(
            table::header::<MetricsRow>().join(","),
            "step,episode,episode_return,episode_length,critic_loss,actor_loss,alpha,\
             log_prob_mean,steps_per_sec"
        );
        let row = MetricsRow {
            step: 500,
            episode: 2,
            episode_return: f64::NAN,
            episode_length: 8.0,
            critic_loss: 0.003979179627203848,
            actor_loss: -1.5,
            alpha: 0.01,
            log_prob_mean: f64::NAN,
            steps_per_sec: 1234.56,
        };
        let line = row.to_line().unwrap();
        assert_eq!(
            line,
            "500,2,NaN,8,0.003979179627203848,-1.5,0.01,NaN,1234.6"
        );
        let back = MetricsRow::from_line(&line).unwrap();
        assert_eq!(back.to_line().unwrap(), line);
    }
}
