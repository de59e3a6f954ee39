//! Helpers shared by the integration tests. Each test file is its own crate and includes
//! this module (`mod common;`), using the part it needs.
#![allow(dead_code)]

pub mod fast;
pub mod gym;
pub mod members;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shipped `mixsac` binary, ready for arguments.
pub fn mixsac_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mixsac"))
}

/// Runs `mixsac args` to the end; the caller checks the outcome.
pub fn mixsac(args: &[&str]) -> Output {
    mixsac_command().args(args).output().unwrap()
}

/// Runs `mixsac args` and insists that it succeeds (stderr in the failure message).
pub fn mixsac_ok(args: &[&str]) -> Output {
    let out = mixsac(args);
    assert!(
        out.status.success(),
        "mixsac {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh path under the system's temporary directory, unique to this test process and
/// `name`, with nothing there yet (a leftover from an earlier run is removed).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mixsac-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A file of `trainer/tests/data/`.
pub fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// metrics.csv's lines without the last column (steps_per_sec, wall-clock), which no two
/// runs share.
pub fn metrics_without_timing(text: &str) -> String {
    text.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `command` with `stdin` as its standard input; stdout and stderr are captured.
pub fn with_stdin(mut command: Command, stdin: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// results.csv's rows of the sweep in `dir` without the wall-clock column (`seconds`, set
/// to 0), as text (so that a NaN return compares equal to itself).
pub fn results_without_timing(dir: &Path) -> Vec<String> {
    trainer::results::read(&trainer::SweepDir::new(dir).results())
        .unwrap()
        .into_iter()
        .map(|row| {
            format!(
                "{:?}",
                trainer::ResultRow {
                    seconds: 0.0,
                    ..row
                }
            )
        })
        .collect()
}

/// Kills `child` with SIGKILL as soon as `ready()` holds (polled every 5 ms), and waits for
/// it. Fails if the child ends first, or if `ready()` does not hold within `limit`.
pub fn kill_when(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    mut ready: impl FnMut() -> bool,
) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(started.elapsed() < limit, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Lines in the file at `path` (0 while it does not exist).
pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}
