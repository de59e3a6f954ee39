#!/usr/bin/env python3
"""Paired comparison of each method with rep-squashed on a random-bandit sweep.

For every alpha, each method uses its best actor step size at that alpha (highest mean final
reward over the bandits, as `mixsac plot` chooses it); the gap to rep-squashed is computed
bandit by bandit and given with a 95 % percentile-bootstrap interval over bandits (4000
resamples, seed 0). "found max" counts bandits whose final reward is at least 0.99.

usage: bandit_gaps.py SWEEP_DIR/results.csv [BASE_METHOD]   (default rep-squashed-k1)
"""
import collections
import csv
import random
import statistics as st
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
BASE = sys.argv[2] if len(sys.argv) > 2 else "rep-squashed-k1"
finals = collections.defaultdict(dict)
for r in rows:
    if r["status"] == "ok" and r["phase"] == "grid":
        finals[(r["method"], r["alpha"], r["actor_lr"])][r["env"]] = float(r["final_return"])
methods = sorted({m for m, _, _ in finals})
alphas = sorted({a for _, a, _ in finals}, key=float)
rates = sorted({l for _, _, l in finals})
envs = sorted({e for v in finals.values() for e in v})


def best_rate(method, alpha):
    return max(rates, key=lambda l: st.mean(finals[(method, alpha, l)].values()))


rng = random.Random(0)


def interval(d):
    means = sorted(st.mean(rng.choice(d) for _ in d) for _ in range(4000))
    return means[100], means[3899]


print(f"| α | method | best actor step | mean final reward | gap to {BASE} [95 % CI] | found max |")
print("|---|---|---|---|---|---|")
for a in alphas:
    base = finals[(BASE, a, best_rate(BASE, a))]
    for m in methods:
        v = finals[(m, a, best_rate(m, a))]
        d = [v[e] - base[e] for e in envs]
        lo, hi = interval(d) if m != BASE else (0.0, 0.0)
        gap = "—" if m == BASE else f"{st.mean(d):+.3f} [{lo:+.3f}, {hi:+.3f}]"
        found = sum(x >= 0.99 for x in v.values())
        print(f"| {a} | {m} | {best_rate(m, a)} | {st.mean(v.values()):.3f} | {gap} | {found}/{len(v)} |")
