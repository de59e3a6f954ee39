#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests and for trying `mixsac slurm`
# before a real cluster (DESIGN.md §11). It is private: its own slurm.conf, munge key and
# socket, ports (6917, 6918) and state under $MIXSAC_SLURM_STATE (default
# /tmp/mixsac-slurm); nothing in /etc/slurm or the system's munge is touched. The daemons run
# as root (slurmctld, slurmd) and as the munge user (munged), so it needs root.
#
#   scripts/slurm-one-node.sh install  install slurm-wlm and munge (apt-get, as root), or
#                                      stop naming what to install
#   scripts/slurm-one-node.sh start    (re)start the daemons; returns once the node is idle;
#                                      prints the SLURM_CONF=... that clients need
#   scripts/slurm-one-node.sh stop     stop the daemons started here, by their pids
#
# Clients (sbatch, squeue, scancel, mixsac slurm --submit) find the cluster through
# SLURM_CONF=$MIXSAC_SLURM_STATE/slurm.conf. There is no accounting database (no sacct).
set -euo pipefail

STATE=${MIXSAC_SLURM_STATE:-/tmp/mixsac-slurm}
case "$STATE" in
    /*/*) ;;
    *) printf 'error: MIXSAC_SLURM_STATE must be an absolute path below a folder, got %s\n' "$STATE" >&2; exit 1 ;;
esac
PACKAGES="slurm-wlm munge"
die() { printf 'error: %s\n' "$1" >&2; exit 1; }

install() {
    local missing=()
    for tool in sbatch squeue scancel sinfo slurmctld slurmd munged mungekey; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        # shellcheck disable=SC2086 # two package names
        apt-get install -y $PACKAGES >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get install -y $PACKAGES >/dev/null; } \
            || die "could not install $PACKAGES with apt-get"
    else
        die "${missing[*]} not found: install Slurm and munge (Debian/Ubuntu: sudo apt-get install $PACKAGES)"
    fi
}

# Stops the daemon named $2 whose pid is in $1 (if that process is still running and is
# that daemon: a stale or planted pid file never makes root kill another process) and waits
# for it to end.
stop_pid_file() {
    local file=$1 name=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file"
}

stop() {
    # Jobs still running would outlive slurmd; cancel them first (best effort).
    if [ -f "$STATE/slurmctld.pid" ] && [ -f "$STATE/slurm.conf" ]; then
        SLURM_CONF="$STATE/slurm.conf" timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    fi
    stop_pid_file "$STATE/slurmd.pid" slurmd
    stop_pid_file "$STATE/slurmctld.pid" slurmctld
    stop_pid_file "$STATE/munge/munged.pid" munged
    # A munged whose pid file is gone (one seen after a test run) would outlive the cluster:
    # stop whatever still serves this state folder's socket.
    pkill -KILL -f -- "^munged --socket=$STATE/munge/munge.socket" 2>/dev/null || true
}

start() {
    [ "$(id -u)" = 0 ] || die "starting a one-node Slurm needs root (slurmd and munged run as root and as the munge user); run this as root"
    install
    stop
    local host cpus mem
    host=$(hostname)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
    # The state folder is removed and made anew as root: refuse one that someone else owns or
    # that is a symbolic link (in a shared /tmp it could point anywhere).
    if [ -L "$STATE" ] || { [ -e "$STATE" ] && [ "$(stat -c %u "$STATE")" != 0 ]; }; then
        die "$STATE is a symbolic link or not owned by root: remove it, or set MIXSAC_SLURM_STATE"
    fi
    rm -rf "$STATE"
    mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/munge"
    chmod 0755 "$STATE"
    mungekey --create --keyfile="$STATE/munge/munge.key" --force >/dev/null
    chown -R munge:munge "$STATE/munge"
    chmod 0755 "$STATE/munge"
    chmod 0600 "$STATE/munge/munge.key"
    runuser -u munge -- test -w "$STATE/munge" \
        || die "the munge user cannot reach $STATE/munge: every folder above it must be searchable by others (chmod o+x)"
    runuser -u munge -- munged --socket="$STATE/munge/munge.socket" \
        --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed" \
        || die "munged did not start: see $STATE/munge/munged.log"
    cat >"$STATE/slurm.conf" <<EOF
# Written by scripts/slurm-one-node.sh: a private one-node cluster for tests.
ClusterName=mixsac-one-node
SlurmctldHost=$host
SlurmctldPort=6917
SlurmdPort=6918
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$STATE/slurm.conf"
    slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: see $STATE/slurmctld.log"
    slurmd -f "$SLURM_CONF" || die "slurmd did not start: see $STATE/slurmd.log"
    for _ in $(seq 300); do
        if [ "$(sinfo --noheader --nodes="$host" --format=%t 2>/dev/null)" = idle ]; then
            echo "SLURM_CONF=$SLURM_CONF"
            return
        fi
        sleep 0.1
    done
    stop
    die "the node did not become idle within 30 s: see $STATE/slurmctld.log and $STATE/slurmd.log"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 install|start|stop" ;;
esac
