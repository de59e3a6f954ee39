#!/usr/bin/env bash
# The paper's newer benchmark families through gym:, each in its own venv (their pins clash:
# see README, "Benchmark families"): installs the venv if missing, then trains a short run,
# exports it, inspects the file and evaluates it through policy-core.
#
#   scripts/paper_envs.sh [metaworld|myosuite|all]     (default: all)
#
# Not part of scripts/test.sh: the installs take minutes (measured 3.7 min for MetaWorld and
# 8.6 min for MyoSuite on the project's 2-core machine). Uses target/ci/mixsac, else
# target/release/mixsac (build one first), or $MIXSAC_BIN. Runs go under runs/paper-envs/.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'error: %s\n' "$1" >&2; exit 1; }
MIXSAC=${MIXSAC_BIN:-}
if [ -z "$MIXSAC" ]; then
    for candidate in target/ci/mixsac target/release/mixsac; do
        if [ -x "$candidate" ]; then MIXSAC=$candidate; break; fi
    done
fi
[ -n "$MIXSAC" ] || die "no mixsac binary: cargo build --release -p trainer (or set MIXSAC_BIN)"
PYTHON=${PYTHON:-python3}
OUT=runs/paper-envs

# venv, pip requirements, env ID, gym.make keyword arguments
family() {
    case "$1" in
        # metaworld 3.1.1 imports `packaging` without declaring it.
        metaworld) echo ".venv-metaworld|metaworld==3.1.1 packaging|gym:metaworld:Meta-World/MT1|{\"env_name\": \"reach-v3\"}" ;;
        # MyoSuite pins gymnasium 1.2.3 and mujoco 4.0.0 itself.
        myosuite) echo ".venv-myosuite|myosuite==3.0.0|gym:myosuite:myoElbowPose1D6MRandom-v0|{}" ;;
        *) die "unknown family '$1' (metaworld, myosuite or all)" ;;
    esac
}

run_family() {
    IFS='|' read -r venv requirements env kwargs < <(family "$1")
    printf '\n== %s (%s)\n' "$1" "$env"
    if ! "$venv/bin/python" -c "import gymnasium" 2>/dev/null; then
        "$PYTHON" -m venv "$venv" || die "could not create $venv"
        start=$(date +%s)
        # shellcheck disable=SC2086  # the requirements are separate words
        "$venv/bin/python" -m pip install --quiet $requirements || die "pip install $requirements failed"
        echo "installed $requirements in $(( $(date +%s) - start )) s"
    fi
    "$venv/bin/python" -m pip list 2>/dev/null | grep -i -E '^(gymnasium|mujoco|metaworld|myosuite|numpy) ' || true
    local dir="$OUT/$1"
    rm -rf "$dir"
    "$MIXSAC" train --env "$env" --env-kwargs "$kwargs" --python "$venv/bin/python" \
        --steps 1000 --learning-starts 500 --hidden 32 --batch-size 32 --log-every 500 \
        --seed 1 --out "$dir"
    "$MIXSAC" inspect "$dir/policy.mxp"
    # eval takes the env_kwargs from the run's config.toml beside the policy.
    "$MIXSAC" eval --policy "$dir/policy.mxp" --env "$env" --python "$venv/bin/python" \
        --episodes 2 --seed 2 --json
}

case "${1:-all}" in
    all) run_family metaworld; run_family myosuite ;;
    *) run_family "$1" ;;
esac
