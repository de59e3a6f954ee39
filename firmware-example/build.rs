//! Chooses the memory map and embeds the policy file.
//!
//! Memory map: the STM32F405's (QEMU `netduinoplus2`) by default; QEMU's MPS2 boards' with the
//! `mps2-an386` feature (Cortex-M4F). Other targets get their QEMU board's map:
//! `thumbv7m-none-eabi` (Cortex-M3, no FPU) `mps2-an385`, `thumbv6m-none-eabi` (Cortex-M0, no
//! FPU) `microbit`, `thumbv8m.main-none-eabihf` (Cortex-M33) `mps2-an505`.
//!
//! `FIRMWARE_POLICY=/path/to/policy.mxp` swaps in another policy (relative paths are taken
//! from this directory); the default is the committed `policies/pendulum-sgm5.mxp`, or with
//! the `int8` feature its int8 quantization `policies/pendulum-sgm5-int8.mxp` (format
//! version 3, which only the `int8` feature reads).
//! `FIRMWARE_WEIGHTS_MISALIGNED=1` places the weights one byte past a 4-byte boundary instead
//! of on one, to test and measure policy-core's path for unaligned weights.

use std::env;
use std::fs;
use std::path::PathBuf;

const DEFAULT_POLICY: &str = "policies/pendulum-sgm5.mxp";
const DEFAULT_INT8_POLICY: &str = "policies/pendulum-sgm5-int8.mxp";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));

    // The linker script only matters for the MCU; host builds of the library skip it.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        // The other cores each run on one QEMU board (.cargo/config.toml): thumbv7m (Cortex-M3,
        // no FPU) on mps2-an385, which shares mps2-an386's map; thumbv6m (Cortex-M0, no FPU) on
        // microbit (nRF51); thumbv8m.main (Cortex-M33) on mps2-an505. The M4F takes the MPS2
        // map with the `mps2-an386` feature.
        let layout = match env::var("TARGET").as_deref() {
            Ok("thumbv7m-none-eabi") => "memory/mps2.x",
            Ok("thumbv6m-none-eabi") => "memory/nrf51.x",
            Ok("thumbv8m.main-none-eabihf") => "memory/mps2-an505.x",
            _ if env::var_os("CARGO_FEATURE_MPS2_AN386").is_some() => "memory/mps2.x",
            _ => "memory/stm32f405.x",
        };
        // cortex-m-rt's link.x includes `memory.x` from the search path. No memory.x may sit
        // in the package root: it would silently win over this one.
        fs::copy(root.join(layout), out.join("memory.x")).expect("copy the memory map");
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
        println!("cargo:rerun-if-changed={layout}");
    }

    println!("cargo:rerun-if-env-changed=FIRMWARE_POLICY");
    let int8_feature = env::var_os("CARGO_FEATURE_INT8").is_some();
    let default = if int8_feature {
        DEFAULT_INT8_POLICY
    } else {
        DEFAULT_POLICY
    };
    let policy = env::var_os("FIRMWARE_POLICY")
        .map(|p| root.join(p))
        .unwrap_or_else(|| root.join(default));
    let bytes = match fs::read(&policy) {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot read the policy file {}: {e}", policy.display()),
    };
    println!("cargo:rerun-if-changed={}", policy.display());

    // policy-core reads weights in place, fastest when they are 4-byte aligned (one FPU load
    // per weight). main.rs places the file at a 4-aligned address after `pad` bytes chosen so
    // that the weights land aligned. A file that does not parse is embedded as it is: the
    // firmware reports the error at run time, which is what a corrupted file must do.
    //
    // The policy type's capacities (policy-core's `ACTIONS`, `COMPONENTS`, `WIDTH`) are the
    // file's own sizes, so the scratch buffers on the stack are exactly as large as this
    // policy needs. A file that does not parse gets capacities of 1: loading it fails with
    // the file's own error before any capacity is compared.
    println!("cargo:rerun-if-env-changed=FIRMWARE_WEIGHTS_MISALIGNED");
    let misalign = usize::from(env::var_os("FIRMWARE_WEIGHTS_MISALIGNED").is_some());
    let (pad, capacities) = match policy_core::format::parse(&bytes) {
        Ok((header, weights)) => {
            let int8 = header.encoding == policy_core::format::Encoding::Int8;
            if int8 && !int8_feature {
                println!(
                    "cargo:warning=the policy file {} is format version 3 (int8): build with \
                     `--features int8`, or the firmware refuses it at run time",
                    policy.display()
                );
            }
            let offset = weights.as_ptr() as usize - bytes.as_ptr() as usize;
            let width = header.hidden.iter().copied().max().unwrap_or(1);
            let capacities = (header.action_dim, header.components, width);
            ((4 - offset % 4 + misalign) % 4, capacities)
        }
        Err(e) => {
            println!(
                "cargo:warning=the policy file {} does not load: {e}",
                policy.display()
            );
            (0, (1, 1, 1))
        }
    };
    let mut padded = vec![0u8; pad];
    padded.extend_from_slice(&bytes);
    fs::write(out.join("policy.bin"), &padded).expect("write the padded policy");
    let (actions, components, width) = capacities;
    fs::write(
        out.join("policy.rs"),
        format!(
            "const POLICY_PAD: usize = {pad};\nconst POLICY_PADDED_LEN: usize = {};\n\
             const POLICY_ACTIONS: usize = {actions};\nconst POLICY_COMPONENTS: usize = {components};\n\
             const POLICY_WIDTH: usize = {width};\n",
            padded.len()
        ),
    )
    .expect("write policy.rs");
}
