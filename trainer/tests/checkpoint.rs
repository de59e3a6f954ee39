//! Checkpoints that detect their own damage, through the shipped `mixsac` binary: a damaged
//! byte in any file of `checkpoint/` (the manifest included) or a missing file makes
//! `--resume` refuse, naming the file, with the run directory left exactly as it was; an
//! intact checkpoint, and one from before manifests existed (with a warning), still resume
//! to exactly the weights of an uninterrupted run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::{mixsac, mixsac_ok, temp_dir};

const ARGS: &[&str] = &[
    "--env",
    "bimodal-bandit",
    "--learning-starts",
    "50",
    "--log-every",
    "100",
    "--seed",
    "4",
];

/// A run of `steps` steps into `dir`.
fn train(dir: &Path, steps: usize) {
    let steps = steps.to_string();
    let mut args = vec!["train", "--out", dir.to_str().unwrap(), "--steps", &steps];
    args.extend_from_slice(ARGS);
    mixsac_ok(&args);
}

/// A run stopped at step 200 of 400: trained to 200, then its config asks for 400 (what a
/// run killed after its step-200 checkpoint looks like to `--resume`).
fn stopped_halfway(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    train(&dir, 200);
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\nsteps = 200\n"), "{text}");
    std::fs::write(&config, text.replace("\nsteps = 200\n", "\nsteps = 400\n")).unwrap();
    dir
}

/// The policy of an uninterrupted 400-step run (trained in a directory named after `name`).
fn uninterrupted_policy(name: &str) -> Vec<u8> {
    let dir = temp_dir(&format!("{name}-whole"));
    train(&dir, 400);
    let policy = std::fs::read(dir.join("policy.mxp")).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    policy
}

/// Every file under `dir` (by path relative to it) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn resume(dir: &Path) -> std::process::Output {
    mixsac(&["train", "--resume", "--out", dir.to_str().unwrap()])
}

/// `--resume` fails with a message that contains each of `needles`, and changes no file.
fn refused(dir: &Path, needles: &[String]) {
    let before = snapshot(dir);
    let out = resume(dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "resumed: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle.as_str()),
            "no `{needle}` in: {stderr}"
        );
    }
    assert!(
        snapshot(dir) == before,
        "the refused resume changed the run directory"
    );
}

#[test]
fn a_damaged_byte_in_any_checkpoint_file_is_refused_by_name_and_changes_nothing() {
    let dir = stopped_halfway("damaged");
    let checkpoint = dir.join("checkpoint");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&checkpoint)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(
        names,
        [
            "manifest.txt",
            "model.safetensors",
            "progress.json",
            "replay.postcard"
        ],
        "the checkpoint's files changed: extend this test"
    );
    let config = dir.join("config.toml");
    for file in &files {
        let good = std::fs::read(file).unwrap();
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 0xFF;
        std::fs::write(file, &bad).unwrap();
        refused(
            &dir,
            &[
                format!("{} is damaged", file.display()),
                "Nothing was changed".into(),
                format!("mixsac train --config {} --out NEW_DIR", config.display()),
            ],
        );
        std::fs::write(file, &good).unwrap();
    }
    // Intact again: it resumes, to the weights of a run that was never stopped.
    let out = resume(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.join("policy.mxp")).unwrap(),
        uninterrupted_policy("damaged")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_checkpoint_file_is_refused_by_name() {
    let dir = stopped_halfway("missing");
    let replay = dir.join("checkpoint/replay.postcard");
    std::fs::remove_file(&replay).unwrap();
    refused(&dir, &[format!("{} is missing", replay.display())]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_checkpoint_without_manifest_resumes_with_a_warning_and_gets_one() {
    // What a mixsac from before manifests wrote: the same three files, no manifest.
    let dir = stopped_halfway("legacy");
    let manifest = dir.join("checkpoint/manifest.txt");
    std::fs::remove_file(&manifest).unwrap();
    let out = resume(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {} is missing (a checkpoint written by a mixsac from before",
            manifest.display()
        )) && stderr.contains("resuming from it unchecked"),
        "{stderr}"
    );
    assert!(manifest.exists(), "the next checkpoint has no manifest");
    assert_eq!(
        std::fs::read(dir.join("policy.mxp")).unwrap(),
        uninterrupted_policy("legacy")
    );
    std::fs::remove_dir_all(dir).unwrap();
}
