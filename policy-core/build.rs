//! Sets `cfg(policy_core_vfma)` where the target's baseline FPU has the single-precision
//! fused multiply-add `vfma.f32`: there the dense layers run on it (`src/mlp.rs`) and
//! `math::DefaultMath` is `math::Fused`. Sets `cfg(policy_core_dsp)` where the target's
//! baseline has the DSP extension (`sxtb16`, `smlad`): there the int8 dot products run on it
//! (`src/qdot/dsp.rs`). A build script because stable Rust exposes no `target_feature` for
//! either on these targets (`vfp4d16sp`, `fp-armv8d16sp`, `dsp` are LLVM's names only).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(policy_core_vfma)");
    println!("cargo::rustc-check-cfg=cfg(policy_core_dsp)");
    let target = std::env::var("TARGET").unwrap_or_default();
    // thumbv7em-*-eabihf: Cortex-M4F (FPv4-SP) and M7F (FPv5); thumbv8m.main-*-eabihf:
    // Cortex-M33, M35P, M55, M85 (FPv5). Both FPUs have `vfma.f32`, and the targets enable it
    // (`+vfp4d16sp`, `+fp-armv8d16sp`). A Cortex-R or -A `eabihf` target may have VFPv3,
    // which has no fused multiply-add, so only these two families qualify.
    let family = target.starts_with("thumbv7em-") || target.starts_with("thumbv8m.main-");
    if family && target.ends_with("-eabihf") {
        println!("cargo::rustc-cfg=policy_core_vfma");
    }
    // thumbv7em: ARMv7E-M (Cortex-M4, M7), whose DSP extension is part of the architecture,
    // with or without an FPU. The Cortex-M33's (thumbv8m.main) is optional, and the target
    // does not enable it, so it takes the portable path.
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=policy_core_dsp");
    }
}
