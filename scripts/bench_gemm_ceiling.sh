#!/usr/bin/env bash
# The arithmetic ceiling of one core for the update's matrix shapes (BENCHMARKS.md,
# "Populations": why the population targets are above this machine's reach; issue 15).
#   scripts/bench_gemm_ceiling.sh          # Debian 12: as root it installs gcc and libopenblas-dev
# OpenBLAS' single-precision matrix product, one thread, pinned to CPU $CPU (default 1; set
# CPU= for no pinning), at the classic-control update's shape (32 × 64 · 64 × 64: batch 32,
# 64 wide), the halfrep baseline's (960 × 64 · 64 × 64: 30 actions per state), MuJoCo size
# (256³) and a large one (1024³), twice, each after one untimed call. Row-major operands,
# neither transposed: the update's backward products (transposed operands, depth 32) are
# not measured. GFLOP/s counts a multiply-add as 2. Nothing here trains anything.
set -euo pipefail
cd "$(dirname "$0")/.."
CPU=${CPU-1}
WORK=target/gemm-ceiling
die() { printf 'error: %s\n' "$1" >&2; exit 1; }
need_deb() {  # need_deb PACKAGE: installed when root, else named
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" && return
    [ "$(id -u)" = 0 ] || die "Debian package $1 missing: run 'apt-get install -y $1' as root"
    apt-get install -y "$1" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$1" >/dev/null; } \
        || die "could not install $1: run 'apt-get install -y $1'"
}
command -v dpkg-query >/dev/null || die "this script expects Debian (dpkg); needs gcc, libopenblas-dev, util-linux"
for p in gcc libopenblas-dev util-linux; do need_deb "$p"; done
mkdir -p "$WORK"
cat > "$WORK/ceiling.c" <<'C'
#include <cblas.h>
char *openblas_get_config(void);
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
/* C[m×n] = A[m×k] · B[k×n], repeated until about 0.5 s have passed. */
static void rate(int m, int k, int n) {
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n),
          *c = malloc(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++) a[i] = 1e-3f * (i % 7);
    for (int i = 0; i < k * n; i++) b[i] = 1e-3f * (i % 5);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    long reps = 0;
    double start = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        reps++;
    } while ((t = now() - start) < 0.5);
    printf("%5d × %4d · %4d × %4d: %6.1f GFLOP/s\n", m, k, k, n, 2.0 * m * n * k * reps / t / 1e9);
    free(a); free(b); free(c);
}
int main(void) {
    printf("%s\n", openblas_get_config());
    for (int round = 0; round < 2; round++) {
        rate(32, 64, 64); rate(960, 64, 64); rate(256, 256, 256); rate(1024, 1024, 1024);
    }
    return 0;
}
C
gcc -O2 "$WORK/ceiling.c" -o "$WORK/ceiling" -lopenblas || die "building the OpenBLAS probe failed"
PIN=()
[ -n "$CPU" ] && PIN=(taskset -c "$CPU")
echo "OpenBLAS sgemm, one thread${CPU:+, pinned to CPU $CPU}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
OPENBLAS_NUM_THREADS=1 "${PIN[@]}" "$WORK/ceiling"
