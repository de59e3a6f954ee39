fn main() {
    // cortex-m-rt's linker script; memory.x sits in this package's root.
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed=memory.x");
}
