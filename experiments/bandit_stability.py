#!/usr/bin/env python3
"""Training stability of two methods on a finished random-bandit sweep, paired run by run.

Per run, from the logged curve r_1..r_n of `episode_return` (metrics.csv; each value is the mean
reward of the one-step episodes in a 100-step logging window; rewards lie in [0, 1], best 1):
  drawdown   max_t (max_{s<=t} r_s - r_t)   how far the reward ever falls back below its best so far
  late fall  max_s r_s - r_n                 how far the final window ends below the run's best
  collapse   drawdown > 0.1 (and > 0.2)      indicator, reported as a rate
  final      mean of the last ceil(n/10) windows (the sweep's `final_return`)
The pair (default mrp-sgm-k5 vs like-sgm-k5) is compared on runs matched by (bandit, alpha,
actor step size); differences are A - B, so a negative drawdown/collapse difference means A is
more stable. Step-size robustness: for each (bandit, alpha, method), the spread max - min of
`final` over the actor step sizes (only where all step sizes are present), paired by
(bandit, alpha). Other methods are shown without intervals, for context.

Intervals: 95 % percentile bootstrap over bandits (the independent units), B = 10 000 resamples,
random.Random(seed 0); a resampled bandit brings all of its step sizes along, and the statistic
is the pooled mean over the run pairs of the resampled bandits. The same resamples are used for
every row. Only the standard library is used (numpy is not assumed).

usage: python3 experiments/bandit_stability.py [RUNS_DIR] [--methods A,B] [--resamples B] [--seed S]
       (default RUNS_DIR ~/sweeps/paper-random-bandits/runs), e.g.
       nice -n 5 python3 experiments/bandit_stability.py > /tmp/bandit_stability.md
"""
import argparse
import collections
import csv
import json
import math
import os
import random
import re
import sys

NAME = re.compile(r"^grid__random-bandit_(\d+)__(.+?)__alpha-([^_]+)__lr-a([^-_]+)-c[^_]+__seed-(\d+)$")
THRESHOLDS = (0.1, 0.2)
MEASURES = ("drawdown", "late_fall", "collapse_0.1", "collapse_0.2")


def curve_measures(returns):
    best, drawdown = -math.inf, 0.0
    for r in returns:
        best = max(best, r)
        drawdown = max(drawdown, best - r)
    tail = math.ceil(len(returns) / 10)
    out = {"drawdown": drawdown, "late_fall": max(returns) - returns[-1],
           "final": sum(returns[-tail:]) / tail}
    for t in THRESHOLDS:
        out[f"collapse_{t}"] = float(drawdown > t)
    return out


def load(runs_dir):
    """runs[(method, alpha, lr)][bandit] = measures; skipped = Counter of reasons."""
    curves, skipped = {}, collections.Counter()
    for name in sorted(os.listdir(runs_dir)):
        m = NAME.match(name)
        if not m:
            skipped["directory name not recognised"] += 1
            continue
        bandit, method, alpha, lr, _seed = m.groups()
        path = os.path.join(runs_dir, name)
        try:
            with open(os.path.join(path, "summary.json")) as f:
                status = json.load(f).get("status")
        except (OSError, ValueError):
            status = "missing summary.json"
        if status != "ok":
            skipped[f"status {status!r}"] += 1
            continue
        try:
            with open(os.path.join(path, "metrics.csv")) as f:
                returns = [float(row["episode_return"]) for row in csv.DictReader(f)]
        except (OSError, KeyError, ValueError):
            skipped["metrics.csv missing or unreadable"] += 1
            continue
        if not returns or not all(math.isfinite(r) for r in returns):
            skipped["empty curve or NaN/inf episode_return"] += 1
            continue
        curves[(method, alpha, lr, int(bandit))] = returns
    lengths = collections.Counter(len(c) for c in curves.values())
    usual = lengths.most_common(1)[0][0] if lengths else 0
    runs = collections.defaultdict(dict)
    for (method, alpha, lr, bandit), returns in curves.items():
        if len(returns) != usual:
            skipped[f"curve length {len(returns)} != usual {usual}"] += 1
            continue
        runs[(method, alpha, lr)][bandit] = curve_measures(returns)
    return runs, skipped, usual


def bootstrap_indices(n, resamples, seed):
    rng = random.Random(seed)
    return [rng.choices(range(n), k=n) for _ in range(resamples)]


def pooled_diff(per_bandit, bandits, indices):
    """per_bandit[b] = list of paired differences; pooled mean and 95 % bootstrap interval."""
    sums = [sum(per_bandit.get(b, ())) for b in bandits]
    counts = [len(per_bandit.get(b, ())) for b in bandits]
    if sum(counts) == 0:
        return math.nan, math.nan, math.nan
    means = []
    for idx in indices:
        c = sum(counts[i] for i in idx)
        if c:
            means.append(sum(sums[i] for i in idx) / c)
    means.sort()
    lo, hi = means[int(0.025 * len(means))], means[int(0.975 * len(means)) - 1]
    return sum(sums) / sum(counts), lo, hi


def paired(runs, a, b, alpha, lrs, measure):
    """Per-bandit paired differences A - B over the given step sizes, and the two means."""
    diffs, va, vb = collections.defaultdict(list), [], []
    for lr in lrs:
        ra, rb = runs.get((a, alpha, lr), {}), runs.get((b, alpha, lr), {})
        for bandit in ra.keys() & rb.keys():
            x, y = ra[bandit][measure], rb[bandit][measure]
            diffs[bandit].append(x - y)
            va.append(x)
            vb.append(y)
    return diffs, va, vb


def lr_spread(runs, method, alpha, lrs):
    """{bandit: max - min of final over step sizes}, only bandits with every step size."""
    per = [runs.get((method, alpha, lr), {}) for lr in lrs]
    common = set.intersection(*(set(p) for p in per)) if per else set()
    return {b: max(p[b]["final"] for p in per) - min(p[b]["final"] for p in per) for b in common}


def mean(v):
    return sum(v) / len(v) if v else math.nan


def fmt_ci(est, lo, hi):
    flag = " *" if lo > 0 or hi < 0 else ""
    return f"{est:+.3f} [{lo:+.3f}, {hi:+.3f}]{flag}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs_dir", nargs="?", default="~/sweeps/paper-random-bandits/runs")
    parser.add_argument("--methods", default="mrp-sgm-k5,like-sgm-k5", help="pair A,B (A - B)")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs_dir = os.path.expanduser(args.runs_dir)
    if not os.path.isdir(runs_dir):
        sys.exit(f"error: runs directory {runs_dir!r} does not exist (pass the sweep's runs/ folder)")
    a, b = args.methods.split(",")
    runs, skipped, n_windows = load(runs_dir)
    methods = sorted({k[0] for k in runs})
    for m in (a, b):
        if m not in methods:
            sys.exit(f"error: method {m!r} has no usable runs; found {', '.join(methods) or 'none'}")
    alphas = sorted({k[1] for k in runs}, key=float)
    lrs = sorted({k[2] for k in runs}, key=float)
    bandits = sorted({bd for v in runs.values() for bd in v})
    indices = bootstrap_indices(len(bandits), args.resamples, args.seed)
    used = sum(len(v) for v in runs.values())

    print(f"# Training stability: {a} vs {b}\n")
    print(f"Runs used: {used} ({n_windows} logged windows each) from `{runs_dir}`; "
          f"{len(bandits)} bandits, α ∈ {{{', '.join(alphas)}}}, actor step ∈ {{{', '.join(lrs)}}}.")
    print(f"Skipped: {sum(skipped.values())}" + "".join(f"; {n} × {why}" for why, n in skipped.items()) + ".")
    print(f"Δ = {a} − {b}, paired by (bandit, α, step); 95 % percentile bootstrap over bandits, "
          f"B = {args.resamples}, seed {args.seed}; * = interval excludes 0.\n")

    print("## All step sizes pooled: drawdown and late fall\n")
    print(f"| α | pairs | drawdown {a} | drawdown {b} | Δ drawdown [95 % CI] "
          f"| late fall {a} | late fall {b} | Δ late fall [95 % CI] |")
    print("|---|---|---|---|---|---|---|---|")
    for alpha in alphas:
        cells = []
        for measure in ("drawdown", "late_fall"):
            diffs, va, vb = paired(runs, a, b, alpha, lrs, measure)
            cells += [f"{mean(va):.3f}", f"{mean(vb):.3f}", fmt_ci(*pooled_diff(diffs, bandits, indices))]
        print(f"| {alpha} | {len(va)} | " + " | ".join(cells) + " |")

    print("\n## All step sizes pooled: collapse rates (drawdown > threshold)\n")
    head = " | ".join(f"> {t} {a} | > {t} {b} | Δ > {t} [95 % CI]" for t in THRESHOLDS)
    print(f"| α | pairs | {head} |")
    print("|---|---|" + "---|" * 3 * len(THRESHOLDS))
    for alpha in alphas:
        cells = []
        for t in THRESHOLDS:
            diffs, va, vb = paired(runs, a, b, alpha, lrs, f"collapse_{t}")
            cells += [f"{mean(va):.3f}", f"{mean(vb):.3f}", fmt_ci(*pooled_diff(diffs, bandits, indices))]
        print(f"| {alpha} | {len(va)} | " + " | ".join(cells) + " |")

    print("\n## Per step size\n")
    print(f"| α | actor step | pairs | drawdown {a} | drawdown {b} | Δ drawdown [95 % CI] "
          f"| > 0.1 {a} | > 0.1 {b} | Δ > 0.1 [95 % CI] | Δ > 0.2 [95 % CI] |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for alpha in alphas:
        for lr in lrs:
            diffs, va, vb = paired(runs, a, b, alpha, [lr], "drawdown")
            dd = fmt_ci(*pooled_diff(diffs, bandits, indices))
            d1, ca, cb = paired(runs, a, b, alpha, [lr], "collapse_0.1")
            d2, _, _ = paired(runs, a, b, alpha, [lr], "collapse_0.2")
            print(f"| {alpha} | {lr} | {len(va)} | {mean(va):.3f} | {mean(vb):.3f} | {dd} | {mean(ca):.3f} "
                  f"| {mean(cb):.3f} | {fmt_ci(*pooled_diff(d1, bandits, indices))} "
                  f"| {fmt_ci(*pooled_diff(d2, bandits, indices))} |")

    print("\n## Step-size robustness: spread (max − min) of final reward over the step sizes\n")
    print(f"| α | bandits | spread {a} | spread {b} | Δ spread [95 % CI] |")
    print("|---|---|---|---|---|")
    for alpha in alphas:
        sa, sb = lr_spread(runs, a, alpha, lrs), lr_spread(runs, b, alpha, lrs)
        common = sorted(sa.keys() & sb.keys())
        diffs = {bd: [sa[bd] - sb[bd]] for bd in common}
        print(f"| {alpha} | {len(common)} | {mean([sa[x] for x in common]):.3f} "
              f"| {mean([sb[x] for x in common]):.3f} | {fmt_ci(*pooled_diff(diffs, bandits, indices))} |")

    print("\n## Context: every method, all step sizes pooled (no intervals)\n")
    print("| α | method | runs | mean final | drawdown | late fall | > 0.1 | > 0.2 | step spread |")
    print("|---|---|---|---|---|---|---|---|---|")
    for alpha in alphas:
        for m in methods:
            vals = [v for lr in lrs for v in runs.get((m, alpha, lr), {}).values()]
            spread = lr_spread(runs, m, alpha, lrs)
            avg = {k: mean([v[k] for v in vals]) for k in ("final",) + MEASURES}
            print(f"| {alpha} | {m} | {len(vals)} | {avg['final']:.3f} | {avg['drawdown']:.3f} "
                  f"| {avg['late_fall']:.3f} | {avg['collapse_0.1']:.3f} | {avg['collapse_0.2']:.3f} "
                  f"| {mean(list(spread.values())):.3f} |")


if __name__ == "__main__":
    main()
