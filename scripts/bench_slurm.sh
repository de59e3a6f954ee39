#!/usr/bin/env bash
# The same sweep spec run by `mixsac sweep --jobs 2` and as a 2-task Slurm array (one core
# per task) on the one-node cluster of scripts/slurm-one-node.sh (root): wall time and CPU
# time side by side (BENCHMARKS.md, "Sweeps on Slurm").
#   scripts/bench_slurm.sh [SPEC] [MIXSAC]
# CPU time: the mixsac processes' user + system time (GNU time), the Slurm daemons'
# (slurmctld, slurmd, munged; /proc/PID/stat) and the whole machine's busy time
# (/proc/stat, which also counts slurmstepd and anything else running).
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-experiments/reduced/slurm-bench.toml}
MIXSAC=$(realpath "${2:-target/release/mixsac}")
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time missing (Debian: apt-get install time)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/mixsac-bench-slurm.XXXXXX)
chmod 0755 "$WORK"  # the munge user must reach the cluster's state inside it
export MIXSAC_SLURM_STATE=$WORK/cluster
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # user nice system irq softirq
hz=$(getconf CLK_TCK)
daemons() {
    local total=0 pid
    for f in "$MIXSAC_SLURM_STATE"/slurmctld.pid "$MIXSAC_SLURM_STATE"/slurmd.pid "$MIXSAC_SLURM_STATE"/munge/munged.pid; do
        pid=$(cat "$f")
        total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat")))
    done
    echo "$total"
}
sum_times() { cat "$@" | awk '{w = $1 > w ? $1 : w; c += $2 + $3} END {printf "%.1f %.1f\n", w, c}'; }

# Local: one process, two threads.
b0=$(busy); t0=$(date +%s.%N)
/usr/bin/time -f "%e %U %S" -o "$WORK/local.time" "$MIXSAC" sweep --spec "$SPEC" --out "$WORK/local" --jobs 2 2>/dev/null
t1=$(date +%s.%N); b1=$(busy)
read -r _ local_cpu < <(sum_times "$WORK/local.time")

# The array: each task's mixsac timed by a wrapper given as --mixsac.
eval "$(scripts/slurm-one-node.sh start)"
export SLURM_CONF
trap 'scripts/slurm-one-node.sh stop' EXIT
mkdir -p "$WORK/times"
cat >"$WORK/timed-mixsac" <<WRAP
#!/bin/bash
exec /usr/bin/time -f "%e %U %S" -o "$WORK/times/\$SLURM_JOB_ID-\$\$.time" "$MIXSAC" "\$@"
WRAP
chmod +x "$WORK/timed-mixsac"
d0=$(daemons); b2=$(busy); t2=$(date +%s.%N)
jobs=$("$MIXSAC" slurm --spec "$SPEC" --out "$WORK/array" --tasks 2 --mixsac "$WORK/timed-mixsac" --submit 2>/dev/null)
ids=$(awk '$1 == "grid" {print $2}' <<<"$jobs")
while [ -n "$(squeue --noheader --jobs="$ids" 2>/dev/null)" ]; do sleep 0.2; done
t3=$(date +%s.%N); b3=$(busy); d1=$(daemons)
read -r _ array_cpu < <(sum_times "$WORK"/times/*.time)

diff <(cut -d, -f1-12,14 "$WORK/local/results.csv") <(cut -d, -f1-12,14 "$WORK/array/results.csv") >/dev/null \
    && same=yes || same=NO
runs=$(($(wc -l <"$WORK/local/results.csv") - 1))
steps=$(awk -F, 'NR > 1 {s += $8} END {print s}' "$WORK/local/results.csv")
printf 'spec %s: %s runs, %s steps; results equal: %s\n' "$SPEC" "$runs" "$steps" "$same"
printf '%-28s %8s %14s %14s %14s\n' "" "wall s" "mixsac CPU s" "daemons CPU s" "machine busy s"
printf '%-28s %8.1f %14.1f %14s %14.1f\n' "mixsac sweep --jobs 2" "$(echo "$t1 - $t0" | bc)" "$local_cpu" "-" "$(echo "($b1 - $b0) / $hz" | bc -l)"
printf '%-28s %8.1f %14.1f %14.2f %14.1f\n' "2-task array" "$(echo "$t3 - $t2" | bc)" "$array_cpu" "$(echo "($d1 - $d0) / $hz" | bc -l)" "$(echo "($b3 - $b2) / $hz" | bc -l)"
printf 'per-core rate (local): %.0f steps per CPU second\n' "$(echo "$steps / $local_cpu" | bc -l)"
rm -rf "$WORK/local" "$WORK/array"
