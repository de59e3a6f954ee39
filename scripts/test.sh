#!/usr/bin/env bash
# Runs every test of mixpolicy. Installs what it can (Rust components, the Cortex-M target);
# otherwise stops with a message saying what to install. Nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

THUMB=thumbv7em-none-eabihf
step() { printf '\n== %s\n' "$1"; }
die() { printf 'error: %s\n' "$1" >&2; exit 1; }

step "toolchain"
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), then rerun"
cargo --version
if command -v rustup >/dev/null; then
    installed=$(rustup component list --installed)
    for c in clippy rustfmt; do
        grep -q "^$c" <<<"$installed" || rustup component add "$c" \
            || die "could not install the $c component: run 'rustup component add $c'"
    done
    rustup target list --installed | grep -qx "$THUMB" || rustup target add "$THUMB" \
        || die "could not install the $THUMB target: run 'rustup target add $THUMB'"
else
    # Without rustup, the components must already be there; check rather than assume.
    cargo clippy --version >/dev/null 2>&1 || die "cargo clippy missing: install clippy for your toolchain"
    cargo fmt --version >/dev/null 2>&1 || die "cargo fmt missing: install rustfmt for your toolchain"
    rustc --print target-libdir --target "$THUMB" >/dev/null 2>&1 \
        || die "the $THUMB standard library is missing: install it for your toolchain (rustup target add $THUMB)"
fi

step "format"
cargo fmt --all -- --check

step "clippy (host, all features; no_std target)"
cargo clippy --workspace --all-targets --profile ci -- -D warnings
cargo clippy -p policy-core --all-targets --profile ci --features std,fast-math -- -D warnings
cargo clippy -p policy-core --target "$THUMB" --release -- -D warnings

step "docs (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p policy-core --no-deps --features std,fast-math
RUSTDOCFLAGS="-D warnings" cargo doc -p policy-core --no-deps

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "tests (workspace, ci profile: optimised, with overflow checks)"
cargo test --workspace --profile ci 2>&1 | tee -a "$log"

step "fast-math accuracy (policy-core built with micromath)"
cargo test -p policy-core --profile ci --features std,fast-math --test fast_math 2>&1 | tee -a "$log"

step "policy-core for $THUMB (release, libm and fast-math)"
cargo build -p policy-core --release --target "$THUMB"
cargo build -p policy-core --release --target "$THUMB" --features fast-math

step "no panic path in policy-core on $THUMB (link-time proof, libm and fast-math)"
for features in "" "fast-math"; do
    CARGO_TARGET_DIR=target/link-check cargo build --release --target "$THUMB" \
        --manifest-path policy-core/link-check/Cargo.toml --features "$features" \
        || die "policy-core has a panic path on $THUMB (features: '${features:-default}'): see the link error above"
done

# Totals over every `cargo test` above (each step already stopped the script on failure).
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
[ "$passed" -gt 0 ] || die "no test ran"
printf '\nall test steps passed\nsummary: %s passed, %s failed\n' "$passed" "$failed"
