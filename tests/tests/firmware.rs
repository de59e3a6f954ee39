//! The firmware, built for thumbv7em-none-eabihf and run under QEMU's STM32F405 board, agrees
//! with the host running the same policy file through policy-core on the same episodes and
//! seed, to the last bit; so does the firmware built for the cores without an FPU (float math
//! in software), thumbv7m-none-eabi (Cortex-M3, QEMU mps2-an385) and thumbv6m-none-eabi
//! (Cortex-M0, QEMU microbit), and for thumbv8m.main-none-eabihf (Cortex-M33, QEMU
//! mps2-an505). A corrupted policy makes it print the typed error and exit non-zero.
//!
//! The same holds for the int8 (format version 3) quantization of the policy, embedded with
//! the firmware's `int8` feature, on the M4F (where policy-core's DSP kernel computes the
//! integer dot products, `smlad`; also for odd layer shapes, ReLU and tanh), the M4 built
//! without its FPU (thumbv7em-none-eabi: the DSP kernel with float math in software, on the
//! same board), the M3 and the M0 (plain Rust): integer sums are exact and the rest is the
//! same `f32` arithmetic, so every core agrees with the host to the bit. The committed int8
//! file is checked to be the committed f32 file quantized again, byte for byte.
//!
//! On the M4F and the M33 policy-core's default math fuses each multiply-add of the network
//! (`vfma.f32`, rounded once; `policy_core::math::Fused`), so the host reproduces them bit for
//! bit with `Policy::<Fused<Libm>>`, and the cores without an FPU with the host's default
//! (unfused) math. Against the host's default math the fused results differ by a few ulps:
//! the tolerance for that is stated and checked below.
//!
//! Needs `qemu-system-arm` and those five targets; `scripts/test.sh` installs them when it
//! can. Without them these tests fail and say what to install.

use mixpolicy_firmware::{run_episode, Episode, NoMeter, Pendulum, EPISODES, EPISODE_STEPS, SEED};
use policy_core::math::{Fused, Libm, Math};
use policy_core::Policy;
use rand_core::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A target, the QEMU board that runs the firmware built for it (build.rs picks the board's
/// memory map from the target), the directory under `target/` it is built in, and whether
/// policy-core's default math fuses multiply-adds there (`vfma.f32`).
struct Mcu {
    target: &'static str,
    machine: &'static str,
    target_dir: &'static str,
    fused: bool,
}

/// Cortex-M4F on the STM32F405 (netduinoplus2).
const M4F: Mcu = Mcu {
    target: "thumbv7em-none-eabihf",
    machine: "netduinoplus2",
    target_dir: "firmware",
    fused: true,
};
// The other cores share one directory (one build of the host-side build dependencies).
/// Cortex-M3, no FPU.
const M3_NO_FPU: Mcu = Mcu {
    target: "thumbv7m-none-eabi",
    machine: "mps2-an385",
    target_dir: "firmware-mcu",
    fused: false,
};
/// Cortex-M4 built without its FPU (thumbv7em-none-eabi: the DSP extension's `smlad`,
/// float math in software), on the same STM32F405 board as [`M4F`] (its map, build.rs's
/// default): that board's core is a Cortex-M4, and code for it without FPU instructions runs
/// there as on an FPU-less M4.
const M4_NO_FPU: Mcu = Mcu {
    target: "thumbv7em-none-eabi",
    machine: "netduinoplus2",
    target_dir: "firmware-mcu",
    fused: false,
};
/// Cortex-M0, no FPU (nRF51, 16 KiB RAM); the RP2040's Cortex-M0+ runs the same code.
const M0_NO_FPU: Mcu = Mcu {
    target: "thumbv6m-none-eabi",
    machine: "microbit",
    target_dir: "firmware-mcu",
    fused: false,
};
/// Cortex-M33 with FPU, in its secure state.
const M33: Mcu = Mcu {
    target: "thumbv8m.main-none-eabihf",
    machine: "mps2-an505",
    target_dir: "firmware-mcu",
    fused: true,
};
/// How far an episode's return on a fused core may be from the host's default (unfused)
/// math's. Over the committed policy's 5 episodes the two agree on every component and their
/// returns (about −120, sums of 200 rewards) differ by at most 1.5e-5, two ulps of the return
/// (measured 2026-11-26); 1e-4, this test's tolerance for returns before fusing, is 13 ulps.
const UNFUSED_RETURN_TOLERANCE: f32 = 1e-4;
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

/// `mixsac quantize` of [`committed_policy`] (see firmware-example/policies/README.md).
fn committed_int8_policy() -> PathBuf {
    firmware_dir().join("policies/pendulum-sgm5-int8.mxp")
}

/// Builds the release firmware embedding `policy` into its own target directory (so tests
/// running side by side do not rebuild each other's) and returns the ELF's path.
fn build_firmware(mcu: &Mcu, policy: &Path, target_dir: &str) -> PathBuf {
    build_firmware_with(mcu, policy, target_dir, &[], &[])
}

/// As [`build_firmware`], with extra environment variables for build.rs and cargo features.
fn build_firmware_with(
    mcu: &Mcu,
    policy: &Path,
    target_dir: &str,
    env: &[(&str, &str)],
    features: &[&str],
) -> PathBuf {
    let target_dir = repo().join("target").join(target_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(firmware_dir())
        .args(["build", "--release", "--target", mcu.target])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("FIRMWARE_POLICY", policy)
        .env_remove("FIRMWARE_WEIGHTS_MISALIGNED")
        .envs(env.iter().copied())
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

/// The firmware's episodes run on the host through policy-core with math `M`.
fn host_episodes<M: Math>(bytes: &[u8]) -> Vec<Episode> {
    let policy = Policy::<M>::load(bytes).unwrap();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(SEED);
    (0..EPISODES)
        .map(|_| run_episode(&policy, &mut rng, &mut NoMeter).unwrap())
        .collect()
}

fn component_digits(episode: &Episode) -> String {
    episode
        .components
        .iter()
        .map(|&c| char::from(b'0' + c))
        .collect()
}

/// Builds the firmware for `mcu` with the committed policy, runs it under QEMU and checks
/// every episode against the host.
fn assert_matches_the_host(mcu: &Mcu) {
    let elf = build_firmware(mcu, &committed_policy(), mcu.target_dir);
    assert_runs_as_the_host(mcu, &elf, &committed_policy(), mcu.fused, true);
}

/// As [`assert_matches_the_host`] for the committed int8 policy, built with the firmware's
/// `int8` feature in `<target dir>-int8` (where `scripts/firmware_footprint.py --features
/// int8` builds it too). The int8 network has no multiply-adds in `f32` (its sums are
/// integers), so fused and unfused math give the same results and the host's default math
/// is every core's twin.
fn assert_int8_matches_the_host(mcu: &Mcu) {
    let dir = format!("{}-int8", mcu.target_dir);
    let policy = committed_int8_policy();
    let elf = build_firmware_with(mcu, &policy, &dir, &[], &["int8"]);
    assert_runs_as_the_host(mcu, &elf, &policy, false, true);
}

/// The DSP kernel's other paths, which the committed policy (64 inputs: an even number of
/// whole groups of four, no remainder; 64 and 5 outputs) leaves out: a random ReLU policy
/// quantized with hidden widths 37 and 22 runs odd numbers of groups (9 and 5), the last
/// 1 to 3 inputs of a layer one by one (3, 1, 2), and the last outputs of a layer one by one
/// (37 = 9 · 4 + 1, 22 = 5 · 4 + 2, each head 5 = 4 + 1). Untrained, so only agreement is
/// checked.
#[test]
fn int8_firmware_with_odd_layer_shapes_matches_the_host_episode_for_episode() {
    assert_odd_shapes_match_the_host(policy_core::format::Activation::Relu, "firmware-int8-odd");
}

/// As the odd-shape test with tanh hidden layers: on the M4F their outputs take the DSP
/// kernel's other store path (`tiles`, then `put4` / `store_group` of the tanh codes, where
/// ReLU layers fuse the activation into the kernel).
#[test]
fn int8_firmware_with_odd_layer_shapes_and_tanh_matches_the_host_episode_for_episode() {
    assert_odd_shapes_match_the_host(
        policy_core::format::Activation::Tanh,
        "firmware-int8-odd-tanh",
    );
}

/// The `ldrd` kernels' other strides, which the committed policy (rows of 64) leaves out: a
/// random ReLU policy of hidden widths 128 and 256 runs its 128-input layer through the
/// 128-stride ReLU kernel (a loop of 16-input passes, where 64 is unrolled) and its heads
/// (3 · 3 = 9 outputs of 256 inputs) through the 256-stride kernel, whose last tile
/// overlaps the one before (rows 5–8).
#[test]
fn int8_firmware_with_wide_layers_matches_the_host_episode_for_episode() {
    assert_shapes_match_the_host(
        policy_core::format::Activation::Relu,
        &[128, 256],
        3,
        "firmware-int8-wide",
    );
}

/// The `ldrd` kernels' strides the other tests leave out: hidden widths 128, 256 and 128 run
/// a 256-input ReLU layer (the kernel's largest row offsets), and heads of 128 inputs with
/// 4 · 3 = 12 outputs, a whole number of tiles (no overlapping last tile).
#[test]
fn int8_firmware_with_a_256_input_layer_matches_the_host_episode_for_episode() {
    assert_shapes_match_the_host(
        policy_core::format::Activation::Relu,
        &[128, 256, 128],
        4,
        "firmware-int8-deep",
    );
}

/// The committed int8 policy with its weights one byte off a 4-byte boundary: the DSP
/// kernels' alignment checks send every layer to the kernels that need no alignment (an
/// `ldrd` from a misaligned address would fault), with the same results.
#[test]
fn int8_firmware_with_misaligned_weights_matches_the_host_episode_for_episode() {
    let policy = committed_int8_policy();
    let elf = build_firmware_with(
        &M4F,
        &policy,
        "firmware-int8-misaligned",
        &[("FIRMWARE_WEIGHTS_MISALIGNED", "1")],
        &["int8"],
    );
    assert_runs_as_the_host(&M4F, &elf, &policy, false, true);
}

/// The committed int8 policy (ReLU) on the Cortex-M4 without an FPU: the DSP kernel with
/// software float math (`tiles` + `put4`, no `vfma`), which no other core runs.
#[test]
fn int8_firmware_on_a_cortex_m4_without_an_fpu_matches_the_host_episode_for_episode() {
    assert_int8_matches_the_host(&M4_NO_FPU);
}

/// Quantizes a random policy of hidden widths 37 and 22 with `activation`, embeds it in the
/// int8 M4F firmware (built in `target/<target_dir>`) and checks its episodes against the
/// host's.
fn assert_odd_shapes_match_the_host(activation: policy_core::format::Activation, target_dir: &str) {
    assert_shapes_match_the_host(activation, &[37, 22], 5, target_dir);
}

/// As [`assert_odd_shapes_match_the_host`] for hidden widths `hidden` and `components`
/// mixture components.
fn assert_shapes_match_the_host(
    activation: policy_core::format::Activation,
    hidden: &[usize],
    components: usize,
    target_dir: &str,
) {
    use policy_core::format::Header;
    use policy_core::quantize::quantize;
    let header = Header::new(
        3,
        hidden,
        1,
        components,
        activation,
        true,
        (-20.0, 2.0),
        &[-2.0],
        &[2.0],
    )
    .unwrap();
    let f32_file = policy_core::testing::random_policy(&header, 17, 1.0);
    // Calibration states like the plant's: cos θ, sin θ, θ̇ ∈ [−8, 8].
    let calibration: Vec<f32> = (0..400)
        .flat_map(|i| {
            let (theta, speed) = (i as f32 * 0.157, (i % 33) as f32 * 0.5 - 8.0);
            [theta.cos(), theta.sin(), speed]
        })
        .collect();
    let bytes = quantize(&f32_file, &calibration).unwrap();
    let dir = std::env::temp_dir().join(format!("mixpolicy-{target_dir}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("odd-int8.mxp");
    std::fs::write(&policy, &bytes).unwrap();
    let elf = build_firmware_with(&M4F, &policy, target_dir, &[], &["int8"]);
    assert_runs_as_the_host(&M4F, &elf, &policy, false, false);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn int8_firmware_on_the_m4f_with_the_dsp_kernel_matches_the_host_episode_for_episode() {
    assert_int8_matches_the_host(&M4F);
}

#[test]
fn int8_firmware_on_a_cortex_m3_without_an_fpu_matches_the_host_episode_for_episode() {
    assert_int8_matches_the_host(&M3_NO_FPU);
}

#[test]
fn int8_firmware_on_a_cortex_m0_without_an_fpu_matches_the_host_episode_for_episode() {
    assert_int8_matches_the_host(&M0_NO_FPU);
}

/// The committed int8 file is the committed f32 file quantized as
/// firmware-example/policies/README.md says (`mixsac quantize … --calibrate-env
/// shaped-pendulum --episodes 20`, default seed 0, step cap 1000 and per-output scales),
/// byte for byte: the same calibration and quantizer, run here in-process through the
/// function `mixsac quantize` calls (its check episodes only print accuracy).
#[test]
fn the_committed_int8_policy_is_the_committed_policy_quantized() {
    use policy_core::format::{parse, Encoding};
    use policy_core::quantize::Options;
    let f32_bytes = std::fs::read(committed_policy()).unwrap();
    let int8_bytes = std::fs::read(committed_int8_policy()).unwrap();
    let (h8, _) = parse(&int8_bytes).unwrap();
    assert_eq!(h8.encoding, Encoding::Int8);
    let mut env = trainer::envs::make("shaped-pendulum").unwrap();
    let settings = trainer::Int8Settings {
        episodes: 20,
        check_episodes: 0,
        seed: 0,
        max_steps: 1000,
        options: Options::default(),
    };
    let again = trainer::export_int8(&f32_bytes, &mut env, &settings).unwrap();
    assert!(
        again.bytes == int8_bytes,
        "re-quantizing {} gives other bytes than {} ({} vs {} bytes): quantize it again as \
         firmware-example/policies/README.md says",
        committed_policy().display(),
        committed_int8_policy().display(),
        again.bytes.len(),
        int8_bytes.len()
    );
}

/// Runs `elf` (the firmware for `mcu` with `policy`) under QEMU and checks every episode
/// against the host: bit for bit against the host with the math the firmware uses (`fused`:
/// `Fused<Libm>`, else the default `Libm`), and within the stated tolerance against the
/// host's default math; a `trained` policy must also swing the pendulum up.
fn assert_runs_as_the_host(mcu: &Mcu, elf: &Path, policy: &Path, fused: bool, trained: bool) {
    let bytes = std::fs::read(policy).unwrap();
    let run = run_qemu(mcu, elf);
    let target = mcu.target;
    assert!(run.success, "firmware ({target}) failed:\n{}", run.stdout);

    // The host's default math is unfused; a fused core's twin on the host is `Fused<Libm>`.
    let unfused = host_episodes::<Libm>(&bytes);
    let same_math = if fused {
        host_episodes::<Fused<Libm>>(&bytes)
    } else {
        unfused.clone()
    };
    let episodes = records(&run.stdout, "episode");
    assert_eq!(episodes.len(), EPISODES, "firmware output:\n{}", run.stdout);
    for (index, ((mcu, host), default)) in episodes.iter().zip(&same_math).zip(&unfused).enumerate()
    {
        assert_eq!(mcu["episode"], index.to_string());
        assert_eq!(mcu["components"].len(), EPISODE_STEPS);
        // Both sides run the same f32 operations in the same order (IEEE single precision;
        // the same fused or unfused multiply-adds; libm in software; without an FPU the basic
        // operations are software floats, IEEE-exact too), so everything agrees to the bit.
        assert_eq!(
            mcu["components"],
            component_digits(host),
            "{target}, episode {index}: component choices differ"
        );
        assert_eq!(
            hex(mcu["return_bits"]),
            host.total_reward.to_bits(),
            "{target}, episode {index}: return {} on the MCU, {} on the host",
            mcu["return"],
            host.total_reward
        );
        assert_eq!(
            hex(mcu["checksum"]),
            host.checksum,
            "{target}, episode {index}: action checksums differ"
        );
        // Against the default (unfused) host math: the same components, returns within the
        // stated tolerance (the actions differ in their last bits, so checksums differ).
        assert_eq!(
            mcu["components"],
            component_digits(default),
            "{target}, episode {index}: component choices differ from the unfused host's"
        );
        let mcu_return = f32::from_bits(hex(mcu["return_bits"]));
        assert!(
            (mcu_return - default.total_reward).abs() <= UNFUSED_RETURN_TOLERANCE,
            "{target}, episode {index}: return {mcu_return} on the MCU, {} on the unfused host",
            default.total_reward
        );
    }
    // The embedded policy is a trained one: it swings the pendulum up (an untrained policy
    // scores about -1200 per episode; this one averages about -120, see policies/README.md).
    let returns: Vec<f32> = same_math.iter().map(|e| e.total_reward).collect();
    let mean = returns.iter().sum::<f32>() / returns.len() as f32;
    assert!(!trained || mean > -400.0, "mean return {mean}: {returns:?}");
}

#[test]
fn firmware_with_misaligned_weights_matches_the_host_episode_for_episode() {
    // Weights one byte off a 4-byte boundary take policy-core's other kernel (integer loads,
    // moved into the FPU): same operations, same results.
    let elf = build_firmware_with(
        &M4F,
        &committed_policy(),
        "firmware-misaligned",
        &[("FIRMWARE_WEIGHTS_MISALIGNED", "1")],
        &[],
    );
    assert_runs_as_the_host(&M4F, &elf, &committed_policy(), M4F.fused, true);
}

/// The fused math against the default (unfused) one, action by action, on the states the
/// firmware visits: the same observation and random stream into both. A fused multiply-add
/// rounds `acc + x · w` once instead of twice (the product, then the sum), so each of the
/// network's 5 248 multiply-adds may differ by half an ulp of its product, and the heads by a
/// few ulps. Measured over these 1 000 actions (2026-11-26): 510 actions differ, by at most
/// 1.9e-6 (8 ulps of the bound 2.0); log π by at most 4.8e-6; no component differs. The
/// tolerances are those policy-core is held to against exact (f64) arithmetic in
/// `tests/policy_file.rs` (1e-5 for the action, 1e-4 relative for log π): fusing must not
/// move a result by more than the library's own accuracy allows.
#[test]
fn fused_and_unfused_math_agree_within_the_stated_tolerance() {
    const ACTION_TOLERANCE: f32 = 1e-5;
    const LOG_PROB_TOLERANCE: f32 = 1e-4;
    let bytes = std::fs::read(committed_policy()).unwrap();
    let fused = Policy::<Fused<Libm>>::load(&bytes).unwrap();
    let unfused = Policy::<Libm>::load(&bytes).unwrap();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(SEED);
    let mut differ = 0;
    for _ in 0..EPISODES {
        let mut plant = Pendulum::reset(&mut rng);
        for _ in 0..EPISODE_STEPS {
            let obs = plant.observe();
            let mut same_stream = rng.clone();
            let (mut a, mut b) = ([0.0f32], [0.0f32]);
            let s = fused.sample(&obs, &mut rng, &mut a).unwrap();
            let t = unfused.sample(&obs, &mut same_stream, &mut b).unwrap();
            assert_eq!(s.component, t.component, "{obs:?}");
            assert!(
                (a[0] - b[0]).abs() <= ACTION_TOLERANCE,
                "{obs:?}: {a:?} vs {b:?}"
            );
            let lp_tolerance = LOG_PROB_TOLERANCE * s.log_prob.abs().max(1.0);
            assert!(
                (s.log_prob - t.log_prob).abs() <= lp_tolerance,
                "{obs:?}: log π {} vs {}",
                s.log_prob,
                t.log_prob
            );
            differ += usize::from(a != b);
            plant.step(a[0]);
        }
    }
    // Fusing is on: the host's `Fused` really rounds differently.
    assert!(differ > 0, "no action differs: is Fused<Libm> fusing?");
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
