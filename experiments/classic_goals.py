#!/usr/bin/env python3
"""How often each method reaches the goal on unshaped Acrobot and MountainCar (issue 18).

On these two tasks the reward is -1 per step and an episode ends early only at the goal, so
an episode of 1000 steps (return -1000) never found it. For every run of a classic-control
sweep this counts:
  solved  - its final return (the mean over the episodes of the last tenth of training) is
            above -1000: at least one of those episodes reached the goal;
  reached - after the random warm-up (steps > learning_starts, whose uniformly random
            actions are the same for every method), some metrics.csv row has a mean
            episode length below the limit: some episode of the learning policy reached
            the goal. (A goal reached on the 1000th step itself counts for neither.)
Shares come with Wilson 95 % score intervals. Per (environment, method, alpha) over the grid
runs (every step size and seed); per (environment, method) over all its grid runs pooled (the
same settings for every method); how many runs per method a test would need to tell
rep-squashed's pooled share from one 0.1, 0.2 or 0.3 higher; then per (environment, method)
over the reruns of its best setting. Differences to rep-squashed come with the difference to rep-squashed and Newcombe's hybrid score interval for a
difference of two proportions (built from the two Wilson intervals; unlike a bootstrap it
does not collapse to a point when both groups are all 0 or all 1).

usage: classic_goals.py SWEEP_DIR   (reads SWEEP_DIR/results.csv and SWEEP_DIR/runs/*/metrics.csv)
"""
import collections
import csv
import math
import os
import sys
import tomllib

TASKS = ("acrobot", "mountaincar")
LIMIT = 1000
BASE = "rep-squashed-k1"


def wilson(k, n, z=1.96):
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def newcombe(k1, n1, k2, n2):
    """95 % interval for p1 - p2 (Newcombe 1998, method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def reached_goal(run_dir):
    """True when a metrics row after the warm-up has a mean episode length below the limit;
    None without metrics."""
    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.exists(path):
        return None
    config = os.path.join(run_dir, "config.toml")
    warm_up = 1000  # the classic-control default (DESIGN.md §5)
    if os.path.exists(config):
        with open(config, "rb") as f:
            warm_up = int(tomllib.load(f).get("learning_starts", warm_up))
    with open(path) as f:
        for row in csv.DictReader(f):
            length = row.get("episode_length", "")
            if int(row["step"]) > warm_up and length not in ("", "NaN") and 0 < float(length) < LIMIT:
                return True
    return False


def runs_needed(p1, p2, z_alpha=1.96, z_power=0.8416):
    """Runs per method for a two-sided 5 % test of p1 = p2 to have 80 % power when the true
    shares are p1 and p2 (normal approximation; Fleiss, Statistical Methods for Rates and
    Proportions, eq. 4.14, without continuity correction). None when p1 = p2."""
    if p1 == p2:
        return None
    pbar = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * pbar * (1 - pbar)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (p1 - p2) ** 2)


def compare(flags, base):
    """Difference of the share of flags to base's share [Newcombe 95 % CI]."""
    flags = [f for f in flags if f is not None]
    base = [f for f in base if f is not None]
    if not flags or not base:
        return "—"
    k, n, kb, nb = sum(flags), len(flags), sum(base), len(base)
    lo, hi = newcombe(k, n, kb, nb)
    return f"{k / n - kb / nb:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def share(flags):
    flags = [f for f in flags if f is not None]
    k, n = sum(flags), len(flags)
    if n == 0:
        return "—"
    lo, hi = wilson(k, n)
    return f"{k}/{n} [{lo:.2f}, {hi:.2f}]"


def main(sweep):
    rows = [r for r in csv.DictReader(open(os.path.join(sweep, "results.csv")))
            if r["status"] == "ok" and r["env"] in TASKS]
    for r in rows:
        r["solved"] = float(r["final_return"]) > -LIMIT
        r["reached"] = reached_goal(os.path.join(sweep, "runs", r["run"]))

    print("Grid runs (every step size and seed), per α: solved at the end / found the goal at least once")
    print()
    print("| env | method | α | solved [95 % CI] | reached [95 % CI] |")
    print("|---|---|---|---|---|")
    grid = collections.defaultdict(list)
    for r in rows:
        if r["phase"] == "grid":
            grid[(r["env"], r["method"], r["alpha"])].append(r)
    for (env, method, alpha), runs in sorted(grid.items()):
        print(f"| {env} | {method} | {alpha} | {share([r['solved'] for r in runs])} "
              f"| {share([r['reached'] for r in runs])} |")

    # Pooled over α and step sizes: the most runs per method the grid has. The settings are
    # the same for every method, so the shares compare methods over one common grid.
    pooled = collections.defaultdict(list)
    for r in rows:
        if r["phase"] == "grid":
            pooled[(r["env"], r["method"])].append(r)
    print()
    print("Grid runs pooled over α and step sizes: share [95 % CI] and difference to "
          "rep-squashed [95 % CI]")
    print()
    print("| env | method | solved | − rep-squashed | reached | − rep-squashed |")
    print("|---|---|---|---|---|---|")
    for (env, method), runs in sorted(pooled.items()):
        base = pooled.get((env, BASE), [])
        cells = []
        for key in ("solved", "reached"):
            flags = [r[key] for r in runs]
            cells.append(share(flags))
            cells.append("—" if method == BASE else compare(flags, [r[key] for r in base]))
        print(f"| {env} | {method} | " + " | ".join(cells) + " |")
    # What scale would tell: runs per method for a 5 % test to have 80 % power against
    # rep-squashed's pooled share p0, if a mixture's true share were p0 + 0.1, 0.2, 0.3.
    print()
    print("Runs per method a 5 % two-sided test needs for 80 % power, if a mixture's true share "
          "is rep-squashed's pooled share p0 plus 0.1 / 0.2 / 0.3")
    print()
    print("| env | measure | p0 | +0.1 | +0.2 | +0.3 |")
    print("|---|---|---|---|---|---|")
    for env in TASKS:
        base = pooled.get((env, BASE), [])
        for key in ("solved", "reached"):
            flags = [r[key] for r in base if r[key] is not None]
            if not flags:
                continue
            p0 = sum(flags) / len(flags)
            needed = [runs_needed(p0, min(1.0, p0 + d)) for d in (0.1, 0.2, 0.3)]
            print(f"| {env} | {key} | {p0:.2f} | " + " | ".join(map(str, needed)) + " |")

    reruns = collections.defaultdict(list)
    for r in rows:
        if r["phase"] == "best":
            reruns[(r["env"], r["method"])].append(r)
    if not reruns:
        return
    print()
    print("Reruns of each method's best setting: solved at the end, and the difference to rep-squashed")
    print()
    print("| env | method | setting (α, actor, critic) | solved [95 % CI] | − rep-squashed [95 % CI] | mean final return |")
    print("|---|---|---|---|---|---|")
    for (env, method), runs in sorted(reruns.items()):
        solved = [r["solved"] for r in runs]
        base = [r["solved"] for r in reruns.get((env, BASE), [])]
        if method == BASE or not base:
            gap = "—"
        else:
            lo, hi = newcombe(sum(solved), len(solved), sum(base), len(base))
            gap = f"{sum(solved) / len(solved) - sum(base) / len(base):+.2f} [{lo:+.2f}, {hi:+.2f}]"
        r0 = runs[0]
        setting = f"{r0['alpha']}, {r0['actor_lr']}, {r0['critic_lr']}"
        mean = sum(float(r["final_return"]) for r in runs) / len(runs)
        print(f"| {env} | {method} | {setting} | {share([r['solved'] for r in runs])} | {gap} | {mean:.1f} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
