#!/usr/bin/env python3
"""Checks that policy-core/FORMAT.md is complete: the reader written from it alone
(scripts/mxp_reader.py) must agree with policy-core on every `.mxp` tracked in the repository.

For each file (`git ls-files '*.mxp'`; versions 1 and 3, so `mxp_eval` must be built with
policy-core's `int8` feature), plus a variant of each multi-component file whose logits are
made exactly equal (to exercise the mode's tie rule), fixed-seed observations and actions go
through both readers: policy-core's via its `mxp_eval` example, this repository's via
mxp_reader.py (which computes version 3's integer network itself, from FORMAT.md §8). Actions are uniform in the box, exactly on and a hair inside each bound,
beyond the bounds and at the mode, so the clamp of y = (a - bias)/scale is exercised.

Agreement: every log pi(a|s) and every mode action within 1e-5 * max(1, |policy-core's value|)
(absolute below magnitude 1, relative above: policy-core computes in f32, whose rounding
grows with the magnitude, and log-probs far from every component reach the hundreds), and
the mode's component index equal. Exits 1 naming the first disagreements.

usage: check_format_reader.py PATH/TO/mxp_eval
"""
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxp_reader  # noqa: E402

TOL = 1e-5
OBSERVATIONS = 8
UNIFORM_ACTIONS = 4
SEED = 20261125


def tracked_files():
    out = subprocess.run(["git", "ls-files", "*.mxp"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def tie_variant(data, policy):
    """The same file with the logits head's weights zeroed and its biases all equal: every
    component's log w is exactly equal, so the mode must pick component 0 (FORMAT.md §7)."""
    k, h = policy.components, policy.hidden[-1]
    end = len(data) - 4  # the logits block is the last of the weights, just before the CRC
    if policy.int8 is None:  # version 1: its weights, then its biases, all f32 (§4)
        start = end - 4 * (h + 1) * k
        body = data[:start] + bytes(4 * h * k) + np.full(k, 0.5, dtype="<f4").tobytes()
    else:  # version 3 (§8.2): its int8 weights end field 12; its i32 biases end the words
        outputs = sum(policy.hidden) + 2 * k * policy.action_dim + k
        words_end = policy.weights_offset + 4 * (policy.obs_dim + len(policy.hidden)) + 8 * outputs
        body = bytearray(data[:end])
        body[words_end - 4 * k:words_end] = bytes(4 * k)  # biases 0: every logit is 0 · m = 0
        body[end - h * k:end] = bytes(h * k)
        body = bytes(body)
    return body + zlib.crc32(body).to_bytes(4, "little")


def queries(policy, rng):
    """(obs, action) pairs, float32, as policy-core will see them."""
    low, high = policy.low.astype(np.float64), policy.high.astype(np.float64)
    width = high - low
    for _ in range(OBSERVATIONS):
        obs = (rng.standard_normal(policy.obs_dim) * 2.0).astype(np.float32)
        actions = [rng.uniform(low, high) for _ in range(UNIFORM_ACTIONS)]
        actions += [low, high, low - 0.1 * width, high + 0.1 * width]
        actions += [high - f * width for f in (1e-7, 1e-6, 1e-5, 1e-4)]
        actions += [low + f * width for f in (1e-6, 1e-4)]
        actions.append(policy.mode(obs.astype(np.float64))[1])
        # Mixed: one dimension at a bound, the others uniform.
        mixed = rng.uniform(low, high)
        d = rng.integers(policy.action_dim)
        mixed[d] = high[d] if rng.random() < 0.5 else low[d]
        actions.append(mixed)
        for action in actions:
            yield obs, np.asarray(action, dtype=np.float32)


def text(values):
    return " ".join(repr(float(v)) for v in values)


def compare(name, path, data, evaluator):
    """Returns (number of queries, worst scaled deviation, list of failure messages)."""
    try:
        policy = mxp_reader.load(data)
    except mxp_reader.FormatError as e:
        return 0, 0.0, [f"{name}: the reader refuses it: {e}"]
    rng = np.random.default_rng(SEED)
    qs = list(queries(policy, rng))
    stdin = "".join(f"{text(o)} | {text(a)}\n" for o, a in qs)
    run = subprocess.run([evaluator, path], input=stdin, capture_output=True, text=True)
    if run.returncode != 0:
        return len(qs), 0.0, [f"{name}: mxp_eval failed: {run.stderr.strip()}"]
    lines = run.stdout.splitlines()
    if len(lines) != len(qs):
        return len(qs), 0.0, [f"{name}: mxp_eval answered {len(lines)} of {len(qs)} queries"]
    worst, failures = 0.0, []
    for (obs, action), line in zip(qs, lines):
        fields = line.split()
        ref_lp, ref_k, ref_mode = float(fields[0]), int(fields[1]), [float(v) for v in fields[2:]]
        obs64 = obs.astype(np.float64)
        lp = policy.log_prob(obs64, action)
        k, mode = policy.mode(obs64)
        where = f"{name}: obs {text(obs)}, action {text(action)}"
        if k != ref_k:
            failures.append(f"{where}: mode component {k}, policy-core {ref_k}")
        pairs = [("log pi", lp, ref_lp)] + [(f"mode[{d}]", m, r)
                                             for d, (m, r) in enumerate(zip(mode, ref_mode))]
        for what, mine, ref in pairs:
            if mine == ref:  # also both -inf
                continue
            dev = abs(mine - ref) / max(1.0, abs(ref))
            worst = max(worst, dev) if np.isfinite(dev) else np.inf
            if not dev <= TOL:
                failures.append(f"{where}: {what} = {mine!r}, policy-core {ref!r} "
                                f"(deviation {dev:.3g} x max(1, |ref|) > {TOL})")
    return len(qs), worst, failures


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    evaluator = os.path.abspath(sys.argv[1])
    files = tracked_files()
    if not files:
        sys.exit("error: git ls-files found no .mxp file")
    failures, total, worst = [], 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            cases.append((path, path, data))
            try:
                policy = mxp_reader.load(data)
            except mxp_reader.FormatError:
                continue  # compare() reports it
            if policy.components > 1:
                tied = tie_variant(data, policy)
                tied_path = os.path.join(tmp, f"tied-{len(cases)}.mxp")
                with open(tied_path, "wb") as f:
                    f.write(tied)
                cases.append((f"{path} (logits tied)", tied_path, tied))
        for name, path, data in cases:
            n, dev, fails = compare(name, path, data, evaluator)
            print(f"{name}: {n} queries, max deviation {dev:.2g} x max(1, |ref|)"
                  + (f", {len(fails)} FAILED" if fails else ""))
            total, worst, failures = total + n, max(worst, dev), failures + fails
    print(f"{len(files)} tracked files + {len(cases) - len(files)} tied variants, {total} queries "
          f"(log pi and mode each), max deviation {worst:.2g} x max(1, |ref|), tolerance {TOL}")
    if failures:
        print(f"\nFORMAT.md reader disagrees with policy-core ({len(failures)} failures):",
              file=sys.stderr)
        for msg in failures[:20]:
            print("  " + msg, file=sys.stderr)
        sys.exit(1)
    print("FORMAT.md reader agrees with policy-core")


if __name__ == "__main__":
    main()
