#!/usr/bin/env python3
"""The final-return tables of a classic-control sweep (issue 18, RESULTS.md §3b).

1. Sensitivity to alpha (the numbers behind `mixsac plot`'s alpha-<env> figures): per
   environment, method and alpha, the grid's step size with the best mean score (the
   sweep's own rule: area under the learning curve, or the final return if its spec says
   `select_by = "final"`), and the mean final return of that setting's runs with their range.
2. The best grid setting of each (environment, method), where it is rerun (chosen as the
   sweep chooses, ties included), and whether its step sizes lie at an edge of the grid.
3. The reruns of each (environment, method)'s best setting: mean final return and AUC with
   95 % percentile-bootstrap intervals (2000 resamples, fixed seed), and the difference of
   each mixture method's mean final return to rep-squashed's with its bootstrap interval
   (the two groups resampled independently: rerun seeds are shared, runs are not paired).

The final return of a run is the mean episode return over the last tenth of its metrics rows,
as in results.csv. Runs whose status is not "ok" are left out and counted.

usage: classic_tables.py SWEEP_DIR   (reads SWEEP_DIR/results.csv and SWEEP_DIR/spec.toml)
"""
import collections
import csv
import math
import os
import random
import sys
import tomllib

BASE = "rep-squashed-k1"
RESAMPLES = 2000


def mean(xs):
    return sum(xs) / len(xs)


def bootstrap(xs, rng, ys=None):
    """95 % percentile interval of mean(xs), or of mean(xs) - mean(ys)."""
    stats = []
    for _ in range(RESAMPLES):
        m = mean([rng.choice(xs) for _ in xs])
        if ys is not None:
            m -= mean([rng.choice(ys) for _ in ys])
        stats.append(m)
    stats.sort()
    return stats[round(0.025 * (RESAMPLES - 1))], stats[round(0.975 * (RESAMPLES - 1))]


def number(x):
    return f"{x:.1f}"


def as_float(text):
    """A numeric setting, or None for `auto`, `default` and the like."""
    try:
        return float(text)
    except ValueError:
        return None


def best_setting(settings, score):
    """The setting with the highest mean finite score, chosen as the Rust sweep chooses
    (`best_by_mean`: keys in sorted order, the last of equal means wins); with the number of
    settings tied at that mean. (None, 0) if no setting has a finite score."""
    best, best_mean, ties = None, None, 0
    for key in sorted(settings):
        scores = [r[score] for r in settings[key] if math.isfinite(r[score])]
        if not scores:
            continue
        m = mean(scores)
        if best is None or m > best_mean:
            best, best_mean, ties = key, m, 1
        elif m == best_mean:
            best, ties = key, ties + 1
    return best, ties


def main(sweep):
    results = os.path.join(sweep, "results.csv")
    if not os.path.exists(results):
        sys.exit(f"{results} does not exist yet: no run of this sweep has finished "
                 f"(or run `mixsac sweep --collect {sweep}`)")
    with open(os.path.join(sweep, "spec.toml"), "rb") as f:
        select_by = tomllib.load(f).get("select_by", "auc")
    score = "auc" if select_by == "auc" else "final_return"
    with open(results) as f:
        rows = list(csv.DictReader(f))
    failed = [r for r in rows if r["status"] != "ok"]
    rows = [r for r in rows if r["status"] == "ok"]
    for r in rows:
        r["final_return"] = float(r["final_return"])
        r["auc"] = float(r["auc"])
    envs = sorted({r["env"] for r in rows})
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m != BASE, m))
    print(f"{len(rows)} finished runs ({len(failed)} failed, left out); best step size by {score}\n")

    print("Sensitivity to alpha: mean final return of the best step size per alpha "
          "[lowest, highest run] (step size, runs)\n")
    grid = collections.defaultdict(list)
    for r in rows:
        if r["phase"] == "grid":
            grid[r["env"], r["method"], r["alpha"], r["actor_lr"], r["critic_lr"]].append(r)
    alphas = sorted({k[2] for k in grid}, key=lambda a: (as_float(a) is None, as_float(a) or 0, a))
    print("| env | method | " + " | ".join(f"α = {a}" for a in alphas) + " |")
    print("|---|---|" + "---|" * len(alphas))
    for env in envs:
        for method in methods:
            cells = []
            for a in alphas:
                settings = {k: v for k, v in grid.items() if k[:3] == (env, method, a)}
                if not settings:
                    cells.append("—")
                    continue
                best, _ = best_setting(settings, score)
                if best is None:
                    cells.append("no finite score")
                    continue
                finals = [r["final_return"] for r in settings[best]]
                lr = best[3] if best[3] == best[4] else f"{best[3]}/{best[4]}"
                cells.append(f"{number(mean(finals))} [{number(min(finals))}, "
                             f"{number(max(finals))}] ({lr}, {len(finals)})")
            if any(c != "—" for c in cells):
                print(f"| {env} | {method} | " + " | ".join(cells) + " |")

    # The setting each (environment, method) is rerun at, and whether a step size of it is at
    # the edge of the step sizes this method has finished runs at (the issue asks for a grid
    # whose best setting is inside it; alpha is the paper's fixed set and is not checked).
    print(f"\nBest grid setting per method (the reruns' setting), by {score}; 'edge' names "
          "the step size at an end of the values run so far\n")
    print("| env | method | α | actor step size | critic step size | edge | settings tied |")
    print("|---|---|---|---|---|---|---|")
    for env in envs:
        for method in methods:
            settings = {k[2:]: v for k, v in grid.items() if k[:2] == (env, method)}
            if not settings:
                continue
            best, ties = best_setting(settings, score)
            if best is None:
                print(f"| {env} | {method} | no finite score | | | | |")
                continue
            edges = []
            for name, i in (("actor", 1), ("critic", 2)):
                values = sorted({as_float(k[i]) for k in settings} - {None})
                value = as_float(best[i])
                if value is not None and len(values) > 1 and value in (values[0], values[-1]):
                    edges.append(name)
            print(f"| {env} | {method} | {best[0]} | {best[1]} | {best[2]} | "
                  f"{', '.join(edges) or 'no'} | {ties if ties > 1 else ''} |")

    reruns = collections.defaultdict(list)
    for r in rows:
        if r["phase"] == "best":
            reruns[r["env"], r["method"]].append(r)
    if not reruns:
        print("\nNo reruns finished yet.")
        return
    rng = random.Random(0)
    print("\nReruns of each method's best setting: mean [95 % bootstrap CI]\n")
    print("| env | method | setting (α, step size) | runs | final return | AUC "
          "| final − rep-squashed's |")
    print("|---|---|---|---|---|---|---|")
    for env in envs:
        base = [r["final_return"] for r in reruns.get((env, BASE), [])]
        for method in methods:
            runs = reruns.get((env, method))
            if not runs:
                continue
            finals = [r["final_return"] for r in runs]
            aucs = [r["auc"] for r in runs]
            lo, hi = bootstrap(finals, rng)
            alo, ahi = bootstrap(aucs, rng)
            diff = "—"
            if method != BASE and base:
                dlo, dhi = bootstrap(finals, rng, base)
                diff = f"{number(mean(finals) - mean(base))} [{number(dlo)}, {number(dhi)}]"
            setting = f"{runs[0]['alpha']}, {runs[0]['actor_lr']}"
            print(f"| {env} | {method} | {setting} | {len(runs)} | {number(mean(finals))} "
                  f"[{number(lo)}, {number(hi)}] | {number(mean(aucs))} [{number(alo)}, "
                  f"{number(ahi)}] | {diff} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1])
