#!/usr/bin/env bash
# SAC training on Pendulum, RLtools against `mixsac train`, side by side on this machine
# (BENCHMARKS.md, "Against RLtools: SAC training"; issue 15).
#   scripts/bench_rltools.sh [REPS]          # as root on Debian 12, or with the packages below
# Same shape on both sides: 64×64 actor and critics, 10 000 environment steps of which the
# first 100 are uniformly random, one update per step after them (9 900 updates), one
# thread, batch 32 and batch 100. Each program is timed as a whole process, wall clock,
# REPS times (default 5; RLtools' generic backend GENERIC_REPS times, default 2, since it is
# ~10× slower), the programs alternated within each repetition so that the machine's load
# drifts over all of them alike. The table gives min and median wall time, updates/s
# (9 900 / median) and the median CPU time (user + system) with updates per CPU second.
# Environment: MIXSAC (a built binary; default: build target/release/mixsac), CPU (the core
# every run is pinned to, default 1; empty: no pinning), RLTOOLS_VERSION (default 2.2.1),
# RLT_CXXFLAGS (default RLtools' own benchmark flags, -Ofast -march=native).
#
# Nothing of RLtools is in this repository: its headers come from the `rltools` Python
# package installed into an ignored venv (target/rltools-venv), and the small driver below
# (its SAC loop at our settings, the loop of its src/rl/environments/pendulum/sac/cpu
# example without evaluation and logging) is written into target/rltools-bench at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}
GENERIC_REPS=${GENERIC_REPS:-2}
CPU=${CPU-1}
RLTOOLS_VERSION=${RLTOOLS_VERSION:-2.2.1}
RLT_CXXFLAGS=${RLT_CXXFLAGS:--Ofast -march=native}
VENV=${RLT_VENV:-target/rltools-venv}
WORK=${RLT_WORK:-target/rltools-bench}
STEPS=10000 WARMUP=100 HIDDEN=64
UPDATES=$((STEPS - WARMUP))
die() { printf 'error: %s\n' "$1" >&2; exit 1; }

# Debian packages: installed when root, else named.
need_deb() {  # need_deb PACKAGE
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" && return
    [ "$(id -u)" = 0 ] || die "Debian package $1 missing: run 'apt-get install -y $1' as root"
    apt-get install -y "$1" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$1" >/dev/null; } \
        || die "could not install $1: run 'apt-get install -y $1'"
}
command -v dpkg-query >/dev/null || die "this script expects Debian (dpkg); needs g++, python3-venv, libopenblas-dev, time"
for p in g++ python3-venv libopenblas-dev util-linux time; do need_deb "$p"; done
PIN=()
[ -n "$CPU" ] && PIN=(taskset -c "$CPU")

# RLtools' headers from PyPI.
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" show rltools 2>/dev/null | grep -qx "Version: $RLTOOLS_VERSION" \
    || "$VENV/bin/pip" install --quiet "rltools==$RLTOOLS_VERSION" || die "pip install rltools==$RLTOOLS_VERSION failed"
# Located without importing the package (its __init__ may compile things).
PKG=$("$VENV/bin/python" -c 'import importlib.util as u; print(u.find_spec("rltools").submodule_search_locations[0])')
INC=$PKG/external/rl_tools/include
[ -f "$INC/rl_tools/rl/algorithms/sac/loop/core/config.h" ] || die "no RLtools SAC headers under $INC (package layout changed?)"
COMMIT=$(sed -n 's/^#define RL_TOOLS_COMMIT_HASH \([0-9a-f]\{40\}\)$/\1/p' "$INC/rl_tools/version.h" | cut -c1-7)

# The driver: RLtools' SAC loop core (its Pendulum, its defaults) at our shape.
mkdir -p "$WORK"
cat >"$WORK/sac_pendulum.cpp" <<'CPP'
#include <rl_tools/operations/cpu_mux.h>
#include <rl_tools/nn/optimizers/adam/instance/operations_generic.h>
#include <rl_tools/nn/operations_cpu_mux.h>
#include <rl_tools/nn/layers/sample_and_squash/operations_generic.h>
#include <rl_tools/rl/environments/pendulum/operations_cpu.h>
#include <rl_tools/nn_models/mlp/operations_generic.h>
#include <rl_tools/nn_models/sequential/operations_generic.h>
#include <rl_tools/nn_models/random_uniform/operations_generic.h>
#include <rl_tools/nn/optimizers/adam/operations_generic.h>
#include <rl_tools/rl/algorithms/sac/loop/core/config.h>
#include <rl_tools/rl/algorithms/sac/loop/core/operations_generic.h>
#include <chrono>
#include <cstdio>
namespace rlt = rl_tools;
using DEVICE = rlt::devices::DEVICE_FACTORY<>;
using RNG = DEVICE::SPEC::RANDOM::ENGINE<>;
using TI = DEVICE::index_t;
using T = float;
using TYPE_POLICY = rlt::numeric_types::Policy<T>;
using ENV_SPEC = rlt::rl::environments::pendulum::Specification<T, TI, rlt::rl::environments::pendulum::DefaultParameters<T>>;
using ENVIRONMENT = rlt::rl::environments::Pendulum<ENV_SPEC>;
struct PARAMETERS: rlt::rl::algorithms::sac::loop::core::DefaultParameters<TYPE_POLICY, TI, ENVIRONMENT>{
    struct SAC_PARAMETERS: rlt::rl::algorithms::sac::DefaultParameters<TYPE_POLICY, TI, ENVIRONMENT::ACTION_DIM>{
        static constexpr TI ACTOR_BATCH_SIZE = BENCH_BATCH;
        static constexpr TI CRITIC_BATCH_SIZE = BENCH_BATCH;
    };
    static constexpr TI STEP_LIMIT = BENCH_STEPS;
    static constexpr TI REPLAY_BUFFER_CAP = STEP_LIMIT;
    static constexpr TI N_WARMUP_STEPS = BENCH_WARMUP;
    static constexpr TI N_WARMUP_STEPS_CRITIC = BENCH_WARMUP;
    static constexpr TI N_WARMUP_STEPS_ACTOR = BENCH_WARMUP;
    static constexpr TI ACTOR_HIDDEN_DIM = BENCH_HIDDEN;
    static constexpr TI CRITIC_HIDDEN_DIM = BENCH_HIDDEN;
};
using CONFIG = rlt::rl::algorithms::sac::loop::core::Config<TYPE_POLICY, TI, RNG, ENVIRONMENT, PARAMETERS>;
int main(){
    DEVICE device;
    CONFIG::State<CONFIG> ts;
    auto t0 = std::chrono::steady_clock::now();
    rlt::malloc(device, ts);
    rlt::init(device, ts, 0);
    while(!rlt::step(device, ts)){}
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // That it learned: mean return of the last 10 finished training episodes (slot
    // next_episode_i - 1 is the episode under way).
    auto& stats = rlt::get(ts.off_policy_runner.episode_stats, 0, 0);
    TI end = stats.next_episode_i - 1, n = end < 10 ? end : 10;
    T sum = 0;
    for(TI i = end - n; i < end; i++){ sum += rlt::get(stats.returns, i, 0); }
    std::printf("steps %d, in-process %.3f s, last mean return %.1f\n", (int)ts.step, seconds, n ? sum / n : 0);
    rlt::free(device, ts);
}
CPP
build() {  # build NAME BATCH [BACKEND FLAGS...]
    local name=$1 batch=$2; shift 2
    # shellcheck disable=SC2086  # RLT_CXXFLAGS is a list of flags
    g++ -std=c++17 $RLT_CXXFLAGS -DBENCH_BATCH="$batch" -DBENCH_STEPS=$STEPS -DBENCH_WARMUP=$WARMUP \
        -DBENCH_HIDDEN=$HIDDEN -DRL_TOOLS_DISABLE_HDF5 -DRL_TOOLS_DISABLE_TENSORBOARD -I"$INC" \
        "$WORK/sac_pendulum.cpp" "$@" -o "$WORK/$name" -lpthread || die "building RLtools' SAC ($name) failed"
}
echo "building RLtools $RLTOOLS_VERSION (commit $COMMIT) SAC Pendulum: g++ $RLT_CXXFLAGS"
for b in 32 100; do
    # As RLtools' CMake does for its BLAS targets: matrix products through cblas.
    build "openblas-$b" $b -DRL_TOOLS_BACKEND_ENABLE_OPENBLAS -DRL_TOOLS_NN_DISABLE_GENERIC_FORWARD_BACKWARD -lopenblas
    build "generic-$b" $b -DRL_TOOLS_BACKEND_DISABLE_BLAS
done

if [ -z "${MIXSAC:-}" ]; then
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), or set MIXSAC"
    cargo build --release -p trainer --bin mixsac
    MIXSAC=target/release/mixsac
fi
MIXSAC=$(realpath "$MIXSAC")

# One timed run (the whole process): appends "NAME WALL_S CPU_S" to $WORK/times (CPU: user +
# system, which other jobs on the machine disturb less than wall clock) and shows the
# program's own mean return over its last training episodes, to see that it learned (each
# library's own Pendulum reward: RLtools' is Gymnasium's, ≤ 0; mixsac's `pendulum` is not).
export OPENBLAS_NUM_THREADS=1  # Debian's default OpenBLAS is the pthread build
: >"$WORK/times"
timed() {  # timed NAME COMMAND...
    local name=$1 t0 t1 out wall cpu; shift
    t0=$(date +%s.%N)
    out=$(/usr/bin/time -f "%U %S" -o "$WORK/cpu" "$@" 2>"$WORK/stderr") || { cat "$WORK/stderr" >&2; die "$name failed"; }
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    cpu=$(awk '{printf "%.2f", $1 + $2}' "$WORK/cpu")
    echo "$name $wall $cpu" >>"$WORK/times"
    printf '  %-18s %7s s wall %6s s CPU   %s\n' "$name" "$wall" "$cpu" "$(grep -o 'last mean return [-0-9.]*' <<<"$out")"
}
train() {  # train BATCH: sets TRAIN to the mixsac command
    TRAIN=("$MIXSAC" train --env pendulum --policy squashed --estimator rep --steps $STEPS
        --learning-starts $WARMUP --batch-size "$1" --hidden $HIDDEN --threads 1 --out "$WORK/run")
}

echo "load before: $(uptime)"
for rep in $(seq "$REPS"); do
    echo "repetition $rep/$REPS"
    runs=(rlt-openblas mixsac)
    [ $((rep % 2)) = 0 ] && runs=(mixsac rlt-openblas)  # alternate who goes first
    [ "$rep" -le "$GENERIC_REPS" ] && runs+=(rlt-generic)
    for b in 32 100; do
        for r in "${runs[@]}"; do
            case $r in
            mixsac) train "$b" && rm -rf "$WORK/run" && timed "mixsac-$b" "${PIN[@]}" "${TRAIN[@]}" ;;
            rlt-*) timed "$r-$b" "${PIN[@]}" "$WORK/${r#rlt-}-$b" ;;
            esac
        done
    done
done
echo "load after:  $(uptime)"

echo
echo "$UPDATES updates ($STEPS steps, $WARMUP random), 64×64, one thread${CPU:+, pinned to CPU $CPU}; per process"
printf '| %-16s | %5s | %2s | %10s | %13s | %9s | %12s | %13s |\n' program batch n "wall min s" "wall median s" updates/s "CPU median s" "updates/CPU s"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------ ------- ---- ------------ --------------- ----------- -------------- ---------------
median() { sort -g | awk '{x[NR] = $1} END {if (NR) print NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2}'; }
for b in 32 100; do
    for r in rlt-openblas rlt-generic mixsac; do
        n=$(awk -v n="$r-$b" '$1 == n' "$WORK/times" | wc -l)
        [ "$n" = 0 ] && continue
        min=$(awk -v n="$r-$b" '$1 == n {print $2}' "$WORK/times" | sort -g | head -1)
        wall=$(awk -v n="$r-$b" '$1 == n {print $2}' "$WORK/times" | median)
        cpu=$(awk -v n="$r-$b" '$1 == n {print $3}' "$WORK/times" | median)
        label=mixsac; [ "$r" = mixsac ] || label="RLtools ${r#rlt-}"
        awk -v l="$label" -v b="$b" -v n="$n" -v min="$min" -v w="$wall" -v c="$cpu" -v u=$UPDATES 'BEGIN {
            printf "| %-16s | %5d | %2d | %10.3f | %13.3f | %9.0f | %12.2f | %13.0f |\n", l, b, n, min, w, u / w, c, u / c }'
    done
done
echo "(updates/s at the median wall time; RLtools $RLTOOLS_VERSION commit $COMMIT, g++ $RLT_CXXFLAGS, $(gcc -dumpfullversion); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs)"
