//! `mixsac`: train mixture-policy SAC, export `.mxp` policies, inspect them.
//!
//! Today only `inspect` exists; training, evaluation and the environments arrive with
//! their issues, and their commands say so instead of pretending.

use policy_core::format::{self, Header};
use std::process::ExitCode;

const USAGE: &str = "\
usage: mixsac <command> [args]

commands:
  inspect FILE     print the header of an .mxp policy file (checks its CRC and dimensions)
  help             this message

not yet available (they print an error): train, eval, envs, bench";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("inspect") => match args.get(1) {
            Some(path) if args.len() == 2 => inspect(path),
            _ => usage_error("inspect takes exactly one FILE"),
        },
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(cmd @ ("train" | "eval" | "envs" | "bench" | "bench-envs" | "env-replay")) => {
            eprintln!("error: `mixsac {cmd}` is not implemented yet in this version");
            ExitCode::from(2)
        }
        Some(other) => usage_error(&format!("unknown command `{other}`")),
        None => usage_error("no command given"),
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

fn inspect(path: &str) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match format::parse(&bytes) {
        Ok((header, weights)) => {
            print!(
                "{}",
                describe(path, bytes.len(), &header, weights.len() / 4)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn describe(path: &str, file_len: usize, h: &Header, weights: usize) -> String {
    let kind = match (h.components, h.squash) {
        (1, true) => "squashed Gaussian",
        (1, false) => "Gaussian",
        (_, true) => "squashed Gaussian mixture",
        (_, false) => "Gaussian mixture",
    };
    let hidden: Vec<String> = h.hidden.iter().map(usize::to_string).collect();
    format!(
        "file:          {path} ({file_len} bytes, format version {})\n\
         policy:        {kind}, {} component(s)\n\
         network:       obs {} -> hidden {} ({:?}) -> action {}\n\
         log-std clamp: [{}, {}]\n\
         action low:    {:?}\n\
         action high:   {:?}\n\
         parameters:    {weights}\n",
        format::FORMAT_VERSION,
        h.components,
        h.obs_dim,
        hidden.join("x"),
        h.activation,
        h.action_dim,
        h.log_std_min,
        h.log_std_max,
        h.action_low.as_slice(),
        h.action_high.as_slice(),
    )
}
