//! policy-core's own log-probs and modes for a policy file and a list of queries: the
//! reference numbers `scripts/check_format_reader.py` compares the FORMAT.md reader with.
//!
//! ```text
//! cargo run -p policy-core --example mxp_eval -- POLICY.mxp < queries.txt
//! ```
//!
//! Each input line is one query: the observation's values, a `|`, the action's values
//! (whitespace-separated decimal numbers, parsed as `f32`). Each output line answers one
//! query: `log_prob component mode_1 … mode_A`, with `log_prob = Policy::log_prob(obs,
//! action)` and `component`, `mode_*` from `Policy::mode(obs)`, every number printed in the
//! shortest form that parses back to the same `f32` (`-inf` where the density underflows).
//! A line that fails stops the program with exit code 1 and names the line.

use policy_core::Policy;
use std::io::{BufRead, Write};
use std::process::ExitCode;

fn floats(text: &str) -> Result<Vec<f32>, String> {
    text.split_whitespace()
        .map(|v| v.parse().map_err(|e| format!("{v:?}: {e}")))
        .collect()
}

fn answer(policy: &Policy, line: &str) -> Result<String, String> {
    let (obs, action) = line
        .split_once('|')
        .ok_or("expected `obs values | action values`")?;
    let (obs, action) = (floats(obs)?, floats(action)?);
    let log_prob = policy
        .log_prob(&obs, &action)
        .map_err(|e| format!("log_prob: {e}"))?;
    let mut mode = vec![0.0f32; policy.action_dim()];
    let component = policy
        .mode(&obs, &mut mode)
        .map_err(|e| format!("mode: {e}"))?;
    let mut out = format!("{log_prob:?} {component}");
    for m in mode {
        out.push_str(&format!(" {m:?}"));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: mxp_eval POLICY.mxp < queries (lines of `obs values | action values`)");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let policy = match Policy::from_bytes(&bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {path} does not load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match answer(&policy, &line) {
            Ok(text) => {
                if writeln!(out, "{text}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("error: line {}: {e}", n + 1);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
