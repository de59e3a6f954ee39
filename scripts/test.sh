#!/usr/bin/env bash
# Runs every test of mixpolicy. Installs what it can (Rust components, the Cortex-M target);
# otherwise stops with a message saying what to install. Nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

THUMB=thumbv7em-none-eabihf
# The other MCU classes policy-core must serve (DESIGN.md §9): Cortex-M0+ (no FPU), Cortex-M33
# and RISC-V (ESP32-C3 class), and the Cortex-M4 built without its FPU (thumbv7em-none-eabi:
# the int8 DSP kernel without the fused ReLU requantization). Built, linted and link-checked
# for panics; not run.
MCU_TARGETS=(thumbv6m-none-eabi thumbv8m.main-none-eabihf riscv32imac-unknown-none-elf thumbv7em-none-eabi)
# The firmware example also runs under QEMU (tests/tests/firmware.rs) on Cortex-M3 (no FPU,
# mps2-an385), Cortex-M0 (no FPU, microbit) and Cortex-M33 (mps2-an505).
FIRMWARE_TARGETS=(thumbv7m-none-eabi thumbv6m-none-eabi thumbv8m.main-none-eabihf)
mapfile -t ALL_TARGETS < <(printf '%s\n' "$THUMB" "${FIRMWARE_TARGETS[@]}" "${MCU_TARGETS[@]}" | sort -u)
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
    targets=$(rustup target list --installed)
    for t in "${ALL_TARGETS[@]}"; do
        grep -qx "$t" <<<"$targets" || rustup target add "$t" \
            || die "could not install the $t target: run 'rustup target add $t'"
    done
else
    # Without rustup, the components must already be there; check rather than assume.
    cargo clippy --version >/dev/null 2>&1 || die "cargo clippy missing: install clippy for your toolchain"
    cargo fmt --version >/dev/null 2>&1 || die "cargo fmt missing: install rustfmt for your toolchain"
    for t in "${ALL_TARGETS[@]}"; do
        # The target's libdir exists only when its standard library is installed.
        libdir=$(rustc --print target-libdir --target "$t" 2>/dev/null) && [ -d "$libdir" ] \
            || die "the $t standard library is missing: install it for your toolchain (rustup target add $t)"
    done
fi

step "Python venv for the Gymnasium conformance check and the gym: bridge tests (.venv)"
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "python3 not found: install Python 3 with venv (Debian: apt-get install python3 python3-venv)"
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv; then
        rm -rf .venv
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y python3-venv >/dev/null && "$PYTHON" -m venv .venv \
                || die "could not create a Python venv even after installing python3-venv"
        else
            die "'$PYTHON -m venv' failed: install the venv module (Debian: apt-get install python3-venv)"
        fi
    fi
fi
if ! .venv/bin/python -c "import gymnasium, numpy, mujoco" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "gymnasium[mujoco]==1.4.0" "numpy>=2" \
        || die "pip could not install gymnasium[mujoco] 1.4.0 and numpy into .venv (is PyPI reachable?)"
fi
.venv/bin/python -c "import gymnasium, numpy, mujoco; print('gymnasium', gymnasium.__version__, '/ numpy', numpy.__version__, '/ mujoco', mujoco.__version__)"
# The gym: tests find .venv themselves; this makes the same Python the default for mixsac.
export MIXSAC_PYTHON="$PWD/.venv/bin/python"

step "QEMU for the firmware check (qemu-system-arm)"
if ! command -v qemu-system-arm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y qemu-system-arm >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y qemu-system-arm >/dev/null; } \
            || die "could not install qemu-system-arm with apt-get"
    else
        die "qemu-system-arm not found: install it (Debian/Ubuntu: sudo apt-get install qemu-system-arm)"
    fi
fi
qemu-system-arm --version | head -1

step "Slurm and munge for the cluster test (trainer/tests/slurm.rs starts and stops a one-node cluster)"
scripts/slurm-one-node.sh install
[ "$(id -u)" = 0 ] \
    || die "the Slurm test starts slurmd and munged (scripts/slurm-one-node.sh), which needs root: run the tests as root"
slurmd -V   # (sbatch --version needs a slurm.conf, which only the test's cluster has)

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path firmware-example/Cargo.toml -- --check

step "clippy (host, all features; no_std target; policy-core with and without int8)"
# The workspace build has policy-core's `int8` (the trainer enables it); `-p policy-core`
# alone builds without it, as the firmware does.
cargo clippy --workspace --all-targets --profile ci -- -D warnings
cargo clippy -p policy-core --all-targets --profile ci --features std,fast-math -- -D warnings
cargo clippy -p policy-core --target "$THUMB" --release -- -D warnings
cargo clippy -p policy-core --target "$THUMB" --release --features int8 -- -D warnings
(cd firmware-example && CARGO_TARGET_DIR=../target/firmware cargo clippy --release -- -D warnings)

step "docs (broken links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -p policy-core --no-deps --features std,fast-math,int8
RUSTDOCFLAGS="-D warnings" cargo doc -p policy-core --no-deps

log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "tests (workspace, ci profile: optimised, with overflow checks; includes the firmware under QEMU)"
cargo test --workspace --profile ci 2>&1 | tee -a "$log"

step "policy-core without int8 (its default, the firmware's build: f32 only, version 3 refused)"
cargo test -p policy-core --profile ci --features std 2>&1 | tee -a "$log"

step "environments step-for-step against Gymnasium (the shipped mixsac binary)"
cargo build --profile ci -p trainer --bin mixsac
.venv/bin/python scripts/gym_conformance.py target/ci/mixsac

step "policy-core/FORMAT.md is complete: a reader written from it agrees with policy-core on every .mxp"
cargo build --profile ci -p policy-core --features int8 --example mxp_eval
.venv/bin/python scripts/check_format_reader.py target/ci/examples/mxp_eval

step "fast-math accuracy (policy-core built with micromath)"
cargo test -p policy-core --profile ci --features std,fast-math --test fast_math 2>&1 | tee -a "$log"

step "policy-core for $THUMB (release, libm and fast-math)"
cargo build -p policy-core --release --target "$THUMB"
cargo build -p policy-core --release --target "$THUMB" --features fast-math

step "no panic path in policy-core on $THUMB (link-time proof: libm, fast-math, int8)"
for features in "" "fast-math" "int8"; do
    CARGO_TARGET_DIR=target/link-check cargo build --release --target "$THUMB" \
        --manifest-path policy-core/link-check/Cargo.toml --features "$features" \
        || die "policy-core has a panic path on $THUMB (features: '${features:-default}'): see the link error above"
done

for t in "${MCU_TARGETS[@]}"; do
    step "policy-core for $t (release build, clippy, link-time no-panic proof; libm, fast-math, int8)"
    cargo build -p policy-core --release --target "$t"
    cargo build -p policy-core --release --target "$t" --features fast-math
    cargo clippy -p policy-core --target "$t" --release -- -D warnings
    cargo clippy -p policy-core --target "$t" --release --features int8 -- -D warnings
    for features in "" "fast-math" "int8"; do
        CARGO_TARGET_DIR=target/link-check cargo build --release --target "$t" \
            --manifest-path policy-core/link-check/Cargo.toml --features "$features" \
            || die "policy-core has a panic path on $t (features: '${features:-default}'): see the link error above"
    done
done

step "firmware example for ${FIRMWARE_TARGETS[*]} (clippy; the tests step ran them under QEMU)"
for t in "${FIRMWARE_TARGETS[@]}"; do
    (cd firmware-example && CARGO_TARGET_DIR=../target/firmware-mcu cargo clippy --release --target "$t" -- -D warnings)
done

step "CUDA (trainer/tests/cuda.rs: the population on the GPU against the CPU)"
if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    command -v nvcc >/dev/null \
        || die "an NVIDIA GPU is here but nvcc is not: install the CUDA toolkit (candle's kernels are compiled with nvcc; scripts/build_cuda.sh shows how without root), then rerun"
    cargo test -p trainer --profile ci --features cuda --test cuda -- --nocapture 2>&1 | tee -a "$log"
    cuda_note="CUDA: trainer/tests/cuda.rs ran on $(nvidia-smi -L | head -1)"
else
    cuda_note="CUDA: no NVIDIA GPU here (nvidia-smi found none), so trainer/tests/cuda.rs did not run"
fi
echo "$cuda_note"

# Totals over every `cargo test` above (each step already stopped the script on failure).
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
[ "$passed" -gt 0 ] || die "no test ran"
printf '\nall test steps passed\nsummary: %s passed, %s failed\n%s\n' "$passed" "$failed" "$cuda_note"
