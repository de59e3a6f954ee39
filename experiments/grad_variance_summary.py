#!/usr/bin/env python3
"""The numbers of RESULTS.md §4 (estimator variance), from `mixsac grad-variance`'s table.

Prints, in Markdown, the protocol's numbers, the table of total variances, the bias
paragraph and the verdicts on the paper's claim, every number computed here from the CSV
(none copied by hand). Rows are grouped into settings (setting, point, α) in table order; the
checkpoint rows are the settings whose estimator set has no `rep`.

Sign convention: each draw is the gradient of an estimator's loss, which estimates −∇J, so
`bias` is ‖ḡ + ∇J‖ and `cosine` is cos(ḡ, −∇J) (a mean that points where it should has
cosine 1).

The sign test of bias: for an unbiased estimator ḡ + ∇J is close to N(0, Σ/N), so
r² = (bias / bias_se)² is a weighted sum of χ²₁ variables normalised to mean 1, and by
Székely and Bakirov (2003) P(r² > x) ≤ P(χ²₁ > x) for every x ≥ 1.5365, whatever the weights.
At the smallest such x each row exceeds it with probability ≤ p₀ = P(χ²₁ > 1.5365) ≈ 0.215;
the settings' draws are independent (each has its own stream), so the count of rows above x is
stochastically below Binomial(rows, p₀), whose upper tail gives a valid p-value. tr Σ is
estimated from the same draws, which the test ignores.

usage: grad_variance_summary.py results/grad-variance/grad-variance.csv
           [--earlier EARLIER.csv] [--test-log LOG]

--earlier: the table of an earlier run of the same command with other draws, to say how far
the checkpoint's total variances move from draws alone. --test-log: the output of
`cargo test -p trainer --test grad_variance -- --nocapture`, for the batch-512 ratios of
gumbel_is_biased_detectably.
"""
import csv
import math
import re
import statistics as st
import sys
import textwrap


def md(text, width=95):
    """Reflows Markdown paragraphs and list items (nested by two spaces) to `width`."""
    items, out = [], []
    for line in text.strip("\n").split("\n"):
        stripped = line.lstrip()
        if not items or re.match(r"- |\d+\. ", stripped) or not stripped:
            items.append([len(line) - len(stripped), stripped])
        else:
            items[-1][1] += " " + stripped
    for indent, body in items:
        bullet = re.match(r"(- |\d+\. )", body)
        hang = indent + (len(bullet.group(1)) if bullet else 0)
        out.append(textwrap.fill(body, width, initial_indent=" " * indent,
                                 subsequent_indent=" " * hang, break_on_hyphens=False,
                                 break_long_words=False))
    return "\n".join(out)


args = sys.argv[1:]
options = {}
while len(args) > 1 and args[-2].startswith("--"):
    options[args[-2]] = args[-1]
    args = args[:-2]
rows = list(csv.DictReader(open(args[0])))
for r in rows:
    for key in ["alpha", "policy_std", "grad_norm", "total_variance", "bias", "bias_se",
                "cosine", "quadrature_error"]:
        r[key] = float(r[key])
    r["ratio"] = r["bias"] / r["bias_se"]

settings = []  # (setting, point, alpha) in table order
by = {}  # (setting key, estimator) -> row
for r in rows:
    key = (r["setting"], r["point"], r["alpha"])
    if key not in settings:
        settings.append(key)
    by[(key, r["estimator"])] = r
bandits = [s for s in settings if (s, "rep") in by]
checkpoints = [s for s in settings if (s, "rep") not in by]
number = {s: i + 1 for i, s in enumerate(settings)}
MIXTURE = ["like", "like-nobaseline", "halfrep", "gumbel", "mrp"]
UNBIASED = ["rep", "like", "like-nobaseline", "halfrep", "mrp"]


def var(s, e):
    return by[(s, e)]["total_variance"]


def g3(x):
    """3 significant figures; × 10ⁿ from 10⁴ up."""
    if x >= 1e4:
        exponent = math.floor(math.log10(x))
        sup = str(exponent).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))
        return f"{x / 10 ** exponent:.3g} × 10{sup}"
    return f"{x:.3g}"


def g2(x):
    return f"{x:.2g}"


def sci(x):
    exponent = math.floor(math.log10(x))
    sup = str(exponent).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))
    return f"{x / 10 ** exponent:.2g} × 10{sup}"


def name(s):
    return f"{s[0].split(' (')[0]} (checkpoint)" if s in checkpoints else s[0]


def rows_list(ss):
    return ", ".join(str(number[s]) for s in ss)


draws = {int(r["draws"]) for r in rows}
batch = {int(r["batch"]) for r in rows}
assert len(draws) == 1 and len(batch) == 1
(draws,), (batch,) = draws, batch

# --- Protocol numbers.
print("## protocol numbers\n")
print(f"- draws {draws}, batch {batch}, settings {len(settings)} "
      f"({len(bandits)} bandit points, {len(checkpoints)} checkpoint)")
worst = max(r["quadrature_error"] / r["grad_norm"] for r in rows)
print(f"- quadrature error at most {sci(worst)} of ‖∇J‖ in every row")
init_std = {round(by[(s, "mrp")]["policy_std"], 3) for s in bandits if s[1] == "init"}
late = [by[(s, "mrp")]["policy_std"] for s in bandits if s[1] == "1000 updates"]
print(f"- SGM σ at the initialisation: {sorted(init_std)}; after 1000 updates "
      f"{min(late):.3f}–{max(late):.2f}")
print(f"- smallest ‖∇J‖ of any row: {min(r['grad_norm'] for r in rows):.3f}")
for s in checkpoints:
    print(f"- checkpoint {s[0]} at {s[1]}, α = {s[2]:g}")

# --- The table.
print("\n## table\n")
print("| # | setting | point | α | σ (SGM) | ‖∇J‖ (SGM) | rep | like | like, b = 0 | halfrep "
      "| gumbel | mrp | mrp / like |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for s in settings:
    sgm = by[(s, "mrp")]
    rep = g3(var(s, "rep")) if (s, "rep") in by else "–"
    ratio = var(s, "mrp") / var(s, "like")
    ratio_text = f"**{g2(ratio)}**" if ratio < 1 else g2(ratio)
    cells = [str(number[s]), name(s), s[1], f"{s[2]:g}", f"{sgm['policy_std']:.3f}",
             f"{sgm['grad_norm']:.3f}", rep] + [g3(var(s, e)) for e in MIXTURE] + [ratio_text]
    print("| " + " | ".join(cells) + " |")

# --- Bias (paste-ready; the batch-512 numbers come from tests/grad_variance.rs).
X = 1.5365
p0 = math.erfc(math.sqrt(X / 2))  # P(χ²₁ > X)


def binomial_tail(n, k, p):
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def rows_of(e):
    return [by[(s, e)] for s in settings if (s, e) in by]


def pooled(e):
    return st.mean(r["ratio"] ** 2 for r in rows_of(e))


def sign_test(e):
    rs = rows_of(e)
    above = sum(r["ratio"] ** 2 > X for r in rs)
    return above, len(rs), binomial_tail(len(rs), above, p0)


def median_cosine(e):
    return st.median(r["cosine"] for r in rows_of(e))


batch512 = {"gumbel": "GUMBEL_512", "halfrep": "HALFREP_512"}
if "--test-log" in options:
    for line in open(options["--test-log"]):
        m = re.match(r"(gumbel|halfrep): .*\(ratio ([\d.]+)\)", line)
        if m:
            batch512[m.group(1)] = f"{float(m.group(2)):.2g}"
n = len(settings)
se = math.sqrt(2 / n)
gumbel_pooled = pooled("gumbel")
unbiased_pooled = [pooled(e) for e in UNBIASED]
above, count, p = sign_test("gumbel")
unbiased_tests = [sign_test(e) for e in UNBIASED]
worst = max(r["ratio"] for r in rows)
# Chebyshev bounds the pooled mean's tail with no assumption on its distribution.
pooled_z = (gumbel_pooled - 1) / se
pooled_bound = min(1.0, 1 / pooled_z**2) if pooled_z > 0 else 1.0
pooled_label = "significant at 5 %" if pooled_bound < 0.05 else "suggestive"
sign_label = "significant at 5 %" if p < 0.05 else "not significant"
print("\n## bias\n")
print(md(f"""**Bias.** Each draw is the gradient of an estimator's *loss*, and a loss's gradient
estimates −∇J (the loss is minimised, J maximised). So the CSV compares the mean draw ḡ with
−∇J: its `bias` is ‖ḡ + ∇J‖ and its `cosine` is cos(ḡ, −∇J). The noise level of a mean of
{draws} draws is √(total variance / {draws}). At that level, the mean of every estimator,
`gumbel` included, is within {worst:.1f} noise levels of −∇J in every row (columns `bias` and
`bias_se`). Row by row the table only hints at `gumbel`'s bias; pooled over the rows and in a
larger batch:
- **Pooled over the {n} settings** ({pooled_label}): its mean of (‖ḡ + ∇J‖ / noise)² is
  {gumbel_pooled:.2f}, against {min(unbiased_pooled):.2f}–{max(unbiased_pooled):.2f} for the
  unbiased estimators. Under unbiasedness each term has mean 1 and a variance between 2/d
  and 2 (d the number of parameters; where in between depends on the covariance's
  eigenvalues), so a mean over {n} settings has a standard error of up to √(2/{n}) ≈ {se:.2f}:
  {gumbel_pooled:.2f} is {pooled_z:.1f} of those above 1: by Chebyshev's inequality a mean
  that far above 1 has probability at most {pooled_bound:.2g} under unbiasedness.
- **A sign test** ({sign_label}): under unbiasedness each row's (‖ḡ + ∇J‖ / noise)²
  exceeds {X} with probability at most P(χ²₁ > {X}) = {p0:.3f}, whatever the covariance
  (Székely and Bakirov 2003, the bound `tests/grad_variance.rs` uses), and the settings'
  draws are independent, so the number of such rows is at most Binomial({n}, {p0:.3f}).
  `gumbel` has {above} of {count} (p = {p:.2f}); the unbiased estimators have
  {min(a for a, _, _ in unbiased_tests)}–{max(a for a, _, _ in unbiased_tests)}
  (p ≥ {min(q for _, _, q in unbiased_tests):.2f}).
- **Cosine with −∇J** (suggestive, untested): its median is {median_cosine("gumbel"):.4f};
  `halfrep`, which has about the same variance, has {median_cosine("halfrep"):.4f}.
- **A larger batch** (the evidence): in `tests/grad_variance.rs` (bimodal bandit, α = 0.2,
  1000 draws of batch 512) `gumbel` is {batch512["gumbel"]} noise levels from −∇J, rejected as
  unbiased at level 10⁻⁴, while `halfrep` on the same subject, against the same ∇J, is
  {batch512["halfrep"]} noise levels from it and passes. The same criterion passes `rep`, `like`
  (with and without baseline), `halfrep` and `mrp` on two bandits."""))


# --- Verdicts (paste-ready).
def described(ss):
    """Settings named the way the prose names them."""
    parts = []
    late = [s for s in bandits if s[1] == "1000 updates"]
    chosen_late = [s for s in ss if s in late]
    rest = [s for s in ss if s not in late and s in bandits]
    if any(s in checkpoints for s in ss):
        parts.append("the pendulum")
    if chosen_late and len(chosen_late) == len(late):
        parts.append("every 1000-update point")
    elif len(chosen_late) == len(late) - 1:
        (missing,) = [s for s in late if s not in chosen_late]
        parts.append(f"every 1000-update point but {missing[0]}'s")
    elif chosen_late:
        rest = chosen_late + rest
    by_env = {}
    for s in rest:
        by_env.setdefault((s[0], s[1]), []).append(s[2])
    for (env, point), alphas in by_env.items():
        alphas = " and ".join(f"{a:g}" for a in alphas)
        parts.append(f"the {env.replace('-', ' ')} at α = {alphas} after {point}")
    return ", ".join(parts[:-1]) + (", and " if len(parts) > 2 else " and ") + parts[-1] \
        if len(parts) > 1 else parts[0]


mrp_wins = [s for s in bandits if var(s, "mrp") < var(s, "like")]
like_wins = [s for s in bandits if s not in mrp_wins]
factors = [var(s, "mrp") / var(s, "like") for s in like_wins]
every_init = all(s in like_wins for s in bandits if s[1] == "init")
every_random = all(s in like_wins for s in bandits if s[0].startswith("random"))
(pendulum,) = checkpoints
pendulum_wins = var(pendulum, "mrp") < var(pendulum, "like")
noisy = [s for s in settings if var(s, "like-nobaseline") > var(s, "mrp")]
lowest = [s for s in settings if var(s, "mrp") < min(var(s, "halfrep"), var(s, "gumbel"))]
not_lowest = [s for s in settings if s not in lowest]
assert pendulum_wins and mrp_wins and like_wins
verdicts = f"""- *MRP has lower gradient variance than the likelihood ratio* — **true on the pendulum
  checkpoint and at {len(mrp_wins)} of the {len(bandits)} bandit points; false at the other
  {len(like_wins)}.**
  - **Pendulum** (learned critic): `mrp`'s variance is 1/{var(pendulum, 'like') / var(pendulum, 'mrp'):.0f}
    of `like`'s (with its 30-action baseline) and
    {sci(var(pendulum, 'mrp') / var(pendulum, 'like-nobaseline'))} of `like`'s without a baseline.
  - **Bandits where `like` is quieter**: in {len(like_wins)} of {len(bandits)} bandit points
    `like` with its baseline has the lower variance, by {g2(min(factors))}× to
    {g2(max(factors))}×.{" This includes every initialisation" if every_init else ""}{" and every random bandit" if every_init and every_random else ""}.
  - **Bandits where `mrp` is quieter**: `mrp` wins only on {described(mrp_wins)} (rows
    {" and ".join(str(number[s]) for s in mrp_wins)}: {" and ".join(f"{g2(var(s, 'mrp') / var(s, 'like'))}×" for s in mrp_wins)}
    `like`'s). There the components have narrowed to σ =
    {" and ".join(f"{by[(s, 'mrp')]['policy_std']:.2f}" for s in mrp_wins)}.
  - **Without a baseline**, `like` is noisier than `mrp` at {len(noisy)} of {n} points:
    {described(noisy)}.
  - **Against the other reparameterised mixture estimators**, `mrp` has the lowest variance
    at {len(lowest)} of {n} points, {min(min(var(s, 'halfrep'), var(s, 'gumbel')) / var(s, 'mrp') for s in lowest):.3g}–{max(max(var(s, 'halfrep'), var(s, 'gumbel')) / var(s, 'mrp') for s in lowest):.2g}× below `halfrep` and `gumbel`."""
earlier = None
if "--earlier" in options:
    # Only rows at the same parameters (the same ∇J, to the quadrature's accuracy) differ by
    # their draws alone; a retrained checkpoint is another point.
    def same_point(r):
        now = by.get(((r["setting"], r["point"], float(r["alpha"])), r["estimator"]))
        return now is not None and abs(float(r["grad_norm"]) / now["grad_norm"] - 1) < 1e-3

    earlier = {(r["setting"], r["point"], r["estimator"]): float(r["total_variance"])
               for r in csv.DictReader(open(options["--earlier"])) if same_point(r)}
for s in not_lowest:
    verdicts += f"""
    The exception is {described([s])} (row {number[s]}), where its variance is
    {var(s, 'mrp') / var(s, 'halfrep'):.3g}× `halfrep`'s and {var(s, 'mrp') / var(s, 'gumbel'):.3g}× `gumbel`'s."""
    if earlier and all((s[0], s[1], e) in earlier for e in ["mrp", "halfrep", "gumbel"]):
        moved = {e: abs(var(s, e) / earlier[(s[0], s[1], e)] - 1) for e in ["mrp", "halfrep", "gumbel"]}
        verdicts += f""" Differences that small are within what the draws alone move a
    total variance there: the same command before α entered the streams' names (other draws)
    gave `mrp` a total variance {moved['mrp']:.0%} different from this one (`halfrep`
    {moved['halfrep']:.0%}, `gumbel` {moved['gumbel']:.0%})."""
print("\n## verdicts\n")
print(md(verdicts))
narrow_rows = [s for s in bandits if by[(s, "mrp")]["policy_std"] < 0.35 and s[1] != "init"]
print(f"\n(for the reason paragraph: mrp wins at rows {[number[s] for s in mrp_wins]}; bandit "
      f"points with σ < 0.35: " + ", ".join(f"row {number[s]} σ {by[(s, 'mrp')]['policy_std']:.3f} α {s[2]:g}"
                                            for s in narrow_rows) + ")")
