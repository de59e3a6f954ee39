//! Writes a random, valid policy file — for fuzzing seeds and trying the tools out.
//!
//! ```text
//! cargo run -p policy-core --features std --example random_policy -- OUT.mxp [obs hidden action components] [--tanh] [--unsquashed]
//! ```
//! Defaults: obs 3, hidden 64 (two layers), action 1, components 5, ReLU, squashed to [-1, 1].

use policy_core::format::{Activation, Header};
use policy_core::testing::random_policy;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(out) = positional.first() else {
        eprintln!(
            "usage: random_policy OUT.mxp [obs hidden action components] [--tanh] [--unsquashed]"
        );
        return ExitCode::from(2);
    };
    let dims: Result<Vec<usize>, _> = positional.iter().skip(1).map(|s| s.parse()).collect();
    let dims = match dims {
        Ok(d) if d.is_empty() => vec![3, 64, 1, 5],
        Ok(d) if d.len() == 4 => d,
        _ => {
            eprintln!("error: give all four dimensions (obs hidden action components) as integers, or none");
            return ExitCode::from(2);
        }
    };
    let activation = if flag("--tanh") {
        Activation::Tanh
    } else {
        Activation::Relu
    };
    let (low, high) = (vec![-1.0; dims[2]], vec![1.0; dims[2]]);
    let header = match Header::new(
        dims[0],
        &[dims[1], dims[1]],
        dims[2],
        dims[3],
        activation,
        !flag("--unsquashed"),
        (-20.0, 2.0),
        &low,
        &high,
    ) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let bytes = random_policy(&header, 1, 1.0);
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("error: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {out}: {} bytes", bytes.len());
    ExitCode::SUCCESS
}
