#!/usr/bin/env bash
# Builds `mixsac` with `--features cuda` on a machine that has no CUDA toolkit (and no GPU),
# from NVIDIA's pip wheels: nvcc 13.0 compiles candle's kernels, and the CUDA libraries are
# linked by name only. The binary needs, where it runs, the NVIDIA driver (libcuda.so.1) and
# CUDA 13's cuBLAS, cuRAND and runtime (a CUDA 13 toolkit, or the same wheels on
# LD_LIBRARY_PATH). This is how the binaries measured in BENCHMARKS.md ("Populations on a
# GPU") were built. With a CUDA toolkit (≥ 12) installed, a plain
#   CUDA_COMPUTE_CAP=90 cargo build --release -p trainer --features cuda
# does the same.
#
# Usage: scripts/build_cuda.sh [COMPUTE_CAP]   (default 90: H100/H200; 80: A100)
# Output: target/cuda/release/mixsac
set -euo pipefail
cd "$(dirname "$0")/.."
CAP=${1:-90}
TOOLS=target/cuda-toolkit
PY=${PYTHON:-python3}
die() { printf 'error: %s\n' "$1" >&2; exit 1; }
command -v "$PY" >/dev/null || die "python3 not found: install Python 3 with venv"
command -v g++ >/dev/null || die "g++ not found: nvcc needs a host C++ compiler (Debian: apt-get install g++)"

if [ ! -x "$TOOLS/venv/bin/pip" ]; then
    "$PY" -m venv "$TOOLS/venv" || die "could not create a venv (Debian: apt-get install python3-venv)"
fi
# nvvm must match nvcc's release: a newer one writes PTX that ptxas 13.0 refuses.
"$TOOLS/venv/bin/pip" install --quiet "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-cublas==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-curand" \
    || die "pip could not install NVIDIA's CUDA 13.0 wheels (is PyPI reachable?)"
CUDA=$(echo "$TOOLS"/venv/lib/python3*/site-packages/nvidia/cu13)
[ -x "$CUDA/bin/nvcc" ] || die "nvcc not found under $CUDA"

# The linker wants unversioned names; the wheels ship versioned ones.
LINK="$PWD/$TOOLS/link"
mkdir -p "$LINK"
for lib in cublas cublasLt cudart nvrtc; do ln -sf "$PWD/$CUDA/lib/lib$lib.so.13" "$LINK/lib$lib.so"; done
ln -sf "$PWD/$CUDA/lib/libcurand.so.10" "$LINK/libcurand.so"

export CUDA_PATH="$PWD/$CUDA" CUDA_HOME="$PWD/$CUDA" CUDA_COMPUTE_CAP="$CAP"
export PATH="$PWD/$CUDA/bin:$PATH" LIBRARY_PATH="$LINK" CARGO_TARGET_DIR=target/cuda
# First the library (no link step), so that cudarc's compiled bindings exist ...
cargo build --release -p trainer --features cuda --lib
# ... then a stand-in for the driver library, which only the driver installs: every driver
# function cudarc calls, as an empty function under the driver's soname. At run time the
# real libcuda.so.1 is loaded instead.
if [ ! -e "$LINK/libcuda.so" ]; then
    rlib=$(ls -t target/cuda/release/deps/libcudarc-*.rlib | head -1)
    nm "$rlib" 2>/dev/null | awk '$1 == "U" && $2 ~ /^cu[A-Z]/ {print "void " $2 "(void) {}"}' \
        | sort -u > "$LINK/cuda_stub.c"
    [ -s "$LINK/cuda_stub.c" ] || die "found no driver symbols in $rlib"
    gcc -shared -fPIC -o "$LINK/libcuda.so" -Wl,-soname,libcuda.so.1 "$LINK/cuda_stub.c"
fi
cargo build --release -p trainer --features cuda --bin mixsac
echo "built target/cuda/release/mixsac (compute capability $CAP)"
