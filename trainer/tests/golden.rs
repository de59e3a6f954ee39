//! Golden runs: a fixed short config of every estimator (and the bandit's true-reward
//! critic, and automatic α) must keep producing the exact bytes of `policy.mxp` and the
//! non-time columns of `metrics.csv` pinned in `tests/golden/`. Refactors of the trainer are
//! checked against them: no behaviour change means these files do not change.
//!
//! The pinned files were made on x86-64 (AVX-512) by this test with `MIXSAC_BLESS_GOLDEN=1`;
//! other CPUs may differ in the last bit of a matrix product (gemm picks its kernel at run
//! time). Re-bless only for an intended change of the numbers, and say so in the commit.

use std::path::{Path, PathBuf};
mod common;
use common::{metrics_without_timing, mixsac_command, temp_dir};

/// (name, extra `mixsac train` flags). Short enough for the test suite (≈ 1 s each), long
/// enough that every loss has run a few hundred updates.
const CASES: &[(&str, &[&str])] = &[
    ("rep-squashed", &["--env", "pendulum", "--estimator", "rep"]),
    (
        "like-squashed",
        &["--env", "pendulum", "--estimator", "like"],
    ),
    (
        "like-sgm",
        &[
            "--env",
            "pendulum",
            "--policy",
            "sgm",
            "--estimator",
            "like",
        ],
    ),
    (
        "halfrep-sgm",
        &[
            "--env",
            "pendulum",
            "--policy",
            "sgm",
            "--estimator",
            "halfrep",
        ],
    ),
    (
        "gumbel-sgm",
        &[
            "--env",
            "pendulum",
            "--policy",
            "sgm",
            "--estimator",
            "gumbel",
        ],
    ),
    (
        "mrp-sgm",
        &["--env", "pendulum", "--policy", "sgm", "--estimator", "mrp"],
    ),
    (
        "rep-gaussian-auto-alpha",
        &[
            "--env",
            "shaped-mountaincar",
            "--policy",
            "gaussian",
            "--alpha",
            "auto",
        ],
    ),
    (
        "halfrep-sgm-bandit",
        &[
            "--env",
            "bimodal-bandit",
            "--policy",
            "sgm",
            "--estimator",
            "halfrep",
        ],
    ),
];

const COMMON: &[&str] = &[
    "--steps",
    "500",
    "--learning-starts",
    "200",
    "--log-every",
    "100",
    "--seed",
    "7",
];

fn golden_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn every_estimator_reproduces_its_golden_run() {
    let bless = std::env::var_os("MIXSAC_BLESS_GOLDEN").is_some();
    let scratch = temp_dir("golden");
    let mut mismatches = Vec::new();
    for (name, flags) in CASES {
        let out_dir = scratch.join(name);
        let out = mixsac_command()
            .arg("train")
            .args(*flags)
            .args(COMMON)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let policy = std::fs::read(out_dir.join("policy.mxp")).unwrap();
        let metrics =
            metrics_without_timing(&std::fs::read_to_string(out_dir.join("metrics.csv")).unwrap());
        let golden = golden_dir(name);
        if bless {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(golden.join("policy.mxp"), &policy).unwrap();
            std::fs::write(golden.join("metrics.csv"), &metrics).unwrap();
            continue;
        }
        let want_policy = std::fs::read(golden.join("policy.mxp"))
            .unwrap_or_else(|e| panic!("{name}: no golden policy.mxp ({e})"));
        let want_metrics = std::fs::read_to_string(golden.join("metrics.csv"))
            .unwrap_or_else(|e| panic!("{name}: no golden metrics.csv ({e})"));
        if metrics != want_metrics {
            mismatches.push(format!(
                "{name}: metrics.csv differs\n--- golden\n{want_metrics}--- now\n{metrics}"
            ));
        }
        if policy != want_policy {
            let first = policy
                .iter()
                .zip(&want_policy)
                .position(|(a, b)| a != b)
                .unwrap_or(policy.len().min(want_policy.len()));
            mismatches.push(format!(
                "{name}: policy.mxp differs from byte {first} ({} bytes now, {} golden)",
                policy.len(),
                want_policy.len()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
