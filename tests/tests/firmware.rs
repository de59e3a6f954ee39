//! The firmware, built for thumbv7em-none-eabihf and run under QEMU's STM32F405 board, agrees
//! with the host running the same policy file through policy-core on the same episodes and
//! seed; so does the firmware built for the cores without an FPU (float math in software),
//! thumbv7m-none-eabi (Cortex-M3, QEMU mps2-an385) and thumbv6m-none-eabi (Cortex-M0, QEMU
//! microbit), and for thumbv8m.main-none-eabihf (Cortex-M33, QEMU mps2-an505). A corrupted
//! policy makes it print the typed error and exit non-zero.
//!
//! Needs `qemu-system-arm` and those four targets; `scripts/test.sh` installs them when it
//! can. Without them these tests fail and say what to install.

use mixpolicy_firmware::{run_episode, NoMeter, EPISODES, EPISODE_STEPS, SEED};
use policy_core::Policy;
use rand_core::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A target, the QEMU board that runs the firmware built for it (build.rs picks the board's
/// memory map from the target) and the directory under `target/` it is built in.
struct Mcu {
    target: &'static str,
    machine: &'static str,
    target_dir: &'static str,
}

/// Cortex-M4F on the STM32F405 (netduinoplus2).
const M4F: Mcu = Mcu {
    target: "thumbv7em-none-eabihf",
    machine: "netduinoplus2",
    target_dir: "firmware",
};
// The other cores share one directory (one build of the host-side build dependencies).
/// Cortex-M3, no FPU.
const M3_NO_FPU: Mcu = Mcu {
    target: "thumbv7m-none-eabi",
    machine: "mps2-an385",
    target_dir: "firmware-mcu",
};
/// Cortex-M0, no FPU (nRF51, 16 KiB RAM); the RP2040's Cortex-M0+ runs the same code.
const M0_NO_FPU: Mcu = Mcu {
    target: "thumbv6m-none-eabi",
    machine: "microbit",
    target_dir: "firmware-mcu",
};
/// Cortex-M33 with FPU, in its secure state.
const M33: Mcu = Mcu {
    target: "thumbv8m.main-none-eabihf",
    machine: "mps2-an505",
    target_dir: "firmware-mcu",
};
/// The firmware takes well under a second; anything near this is a hang.
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn firmware_dir() -> PathBuf {
    repo().join("firmware-example")
}

fn committed_policy() -> PathBuf {
    firmware_dir().join("policies/pendulum-sgm5.mxp")
}

/// Builds the release firmware embedding `policy` into its own target directory (so tests
/// running side by side do not rebuild each other's) and returns the ELF's path.
fn build_firmware(mcu: &Mcu, policy: &Path, target_dir: &str) -> PathBuf {
    let target_dir = repo().join("target").join(target_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(firmware_dir())
        .args(["build", "--release", "--target", mcu.target])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("FIRMWARE_POLICY", policy)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building the firmware failed (is the target installed? `rustup target add {}`):\n{}",
        mcu.target,
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir
        .join(mcu.target)
        .join("release/mixpolicy-firmware")
}

struct Run {
    success: bool,
    stdout: String,
}

/// Boots `elf` on `mcu`'s QEMU board and waits for it to exit, killing it after
/// `QEMU_TIMEOUT`.
fn run_qemu(mcu: &Mcu, elf: &Path) -> Run {
    let mut child = Command::new("qemu-system-arm")
        .args(["-machine", mcu.machine, "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start qemu-system-arm ({e}): apt-get install qemu-system-arm")
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break status;
        }
        if started.elapsed() > QEMU_TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            panic!("the firmware did not exit within {QEMU_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("collect qemu's output");
    Run {
        success: status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// `key=value` fields of the line that starts with `prefix=`.
fn records<'a>(stdout: &'a str, prefix: &str) -> Vec<HashMap<&'a str, &'a str>> {
    stdout
        .lines()
        .filter(|line| line.starts_with(&format!("{prefix}=")))
        .map(|line| {
            line.split(' ')
                .filter_map(|kv| kv.split_once('='))
                .collect()
        })
        .collect()
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex field")
}

#[test]
fn firmware_under_qemu_matches_the_host_episode_for_episode() {
    assert_matches_the_host(&M4F);
}

#[test]
fn firmware_on_a_cortex_m3_without_an_fpu_matches_the_host_episode_for_episode() {
    assert_matches_the_host(&M3_NO_FPU);
}

#[test]
fn firmware_on_a_cortex_m0_without_an_fpu_matches_the_host_episode_for_episode() {
    assert_matches_the_host(&M0_NO_FPU);
}

#[test]
fn firmware_on_a_cortex_m33_matches_the_host_episode_for_episode() {
    assert_matches_the_host(&M33);
}

/// Builds the firmware for `mcu` with the committed policy, runs it under QEMU and checks
/// every episode against the host.
fn assert_matches_the_host(mcu: &Mcu) {
    let policy_path = committed_policy();
    let bytes = std::fs::read(&policy_path).unwrap();
    let run = run_qemu(mcu, &build_firmware(mcu, &policy_path, mcu.target_dir));
    let target = mcu.target;
    assert!(run.success, "firmware ({target}) failed:\n{}", run.stdout);

    let policy = Policy::from_bytes(&bytes).unwrap();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(SEED);
    let episodes = records(&run.stdout, "episode");
    assert_eq!(episodes.len(), EPISODES, "firmware output:\n{}", run.stdout);
    let mut returns = Vec::new();
    for (index, mcu) in episodes.iter().enumerate() {
        let host = run_episode(&policy, &mut rng, &mut NoMeter).unwrap();
        let host_components: String = host
            .components
            .iter()
            .map(|&c| char::from(b'0' + c))
            .collect();
        assert_eq!(mcu["episode"], index.to_string());
        assert_eq!(mcu["components"].len(), EPISODE_STEPS);
        assert_eq!(
            mcu["components"], host_components,
            "{target}, episode {index}: component choices differ"
        );
        let mcu_return = f32::from_bits(hex(mcu["return_bits"]));
        assert!(
            (mcu_return - host.total_reward).abs() <= 1e-4,
            "{target}, episode {index}: return {mcu_return} on the MCU, {} on the host",
            host.total_reward
        );
        // Both sides run the same f32 operations in the same order (IEEE single precision,
        // no fused multiply-add, libm in software; without an FPU the basic operations are
        // software floats, IEEE-exact too), so the actions agree to the last bit.
        assert_eq!(
            hex(mcu["checksum"]),
            host.checksum,
            "{target}, episode {index}: action checksums differ"
        );
        returns.push(host.total_reward);
    }
    // The embedded policy is a trained one: it swings the pendulum up (an untrained policy
    // scores about -1200 per episode; this one averages about -120, see policies/README.md).
    let mean = returns.iter().sum::<f32>() / returns.len() as f32;
    assert!(mean > -400.0, "mean return {mean}: {returns:?}");
}

#[test]
fn a_corrupted_embedded_policy_prints_the_typed_error_and_exits_non_zero() {
    let mut bytes = std::fs::read(committed_policy()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10; // one bit in the weights: only the CRC can tell
    let expected = Policy::from_bytes(&bytes).unwrap_err().to_string();
    assert!(expected.contains("CRC"), "{expected}");

    let dir = std::env::temp_dir().join(format!("mixpolicy-firmware-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corrupt = dir.join("corrupt.mxp");
    std::fs::write(&corrupt, &bytes).unwrap();
    let run = run_qemu(&M4F, &build_firmware(&M4F, &corrupt, "firmware-corrupt"));
    std::fs::remove_dir_all(&dir).ok();

    assert!(
        !run.success,
        "a corrupted policy must fail:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "error: cannot load the embedded policy: {expected}"
        )),
        "expected the typed error, got:\n{}",
        run.stdout
    );
    assert!(!run.stdout.contains("episode="), "{}", run.stdout);
}
