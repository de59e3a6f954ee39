//! Picks the runtime's memory map for the target: cortex-m-rt on every Cortex-M (thumb)
//! target, riscv-rt on RISC-V. Both runtimes' `link.x` include `memory.x` from the linker's
//! search path; it is written to OUT_DIR, and no memory.x may sit in this package's root
//! (one there would silently win, DESIGN.md §9).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let layout = match arch.as_str() {
        "arm" => "memory/cortex-m.x",
        "riscv32" => "memory/riscv32.x",
        other => panic!(
            "the link check builds for Cortex-M (thumb*) and riscv32 targets, not for `{other}`"
        ),
    };
    fs::copy(root.join(layout), out.join("memory.x")).expect("copy the memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed={layout}");
    println!("cargo:rerun-if-changed=build.rs");
}
