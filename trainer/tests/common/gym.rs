//! Helpers of the tests that need a Python with gymnasium (`gym.rs`, `gym_population.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The Python with gymnasium and mujoco.
pub fn python() -> String {
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().into_owned();
    }
    match std::env::var("MIXSAC_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "the gym: tests need a Python with gymnasium==1.4.0 and mujoco: run scripts/test.sh \
             (it creates .venv), or set MIXSAC_PYTHON"
        ),
    }
}

/// A fresh, existing, empty directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = super::temp_dir(&format!("gym-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An executable "python" that runs `body` (a shell script; `$PY` is the real Python).
/// A child process writes it: had this multi-threaded test process held it open for
/// writing, a concurrent fork could keep that descriptor and make exec fail (ETXTBSY).
pub fn wrapper(name: &str, body: &str) -> String {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let path = temp_dir(&format!("{name}-{n}")).join("python");
    let mut sh = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!("#!/bin/sh\nPY='{}'\n{body}\n", python());
    sh.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(
        sh.wait().unwrap().success(),
        "could not write {}",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// A Python that also finds the misbehaving test environments (`mixsac_test_envs:<ID>`).
pub fn python_with_test_envs() -> String {
    let envs = repo().join("trainer/tests/gym_envs");
    wrapper(
        "test-envs",
        &format!("PYTHONPATH='{}' exec \"$PY\" \"$@\"", envs.display()),
    )
}
