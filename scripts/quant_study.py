#!/usr/bin/env python3
"""Which int8 scheme for `.mxp` version 3? Measures candidate schemes on a trained policy.

    .venv/bin/python scripts/quant_study.py POLICY.mxp [--episodes 20] [--calib 10]

Written before the Rust quantizer (policy-core/src/quantize.rs), to choose it; the numbers
it printed are in policy-core/FORMAT.md §8. It reads the policy with scripts/mxp_reader.py,
runs the f32 policy (sampling, fixed seeds) in Gymnasium's Pendulum-v1 (the dynamics of
mixsac's `pendulum` and `shaped-pendulum`), calibrates activation ranges on the states of
the first `--calib` episodes and measures on the states of the other `--episodes`:

- max |Δ mode action| / (high − low), over the evaluation states;
- agreement of the mode's component;
- KL(π_f32 ‖ π_q), estimated per state with 256 pre-squash draws from π_f32
  (the squash is a bijection, so the KL of the actions is that of the pre-squash values);
  mean and max over the states.

Schemes (weights always symmetric int8, zero-point 0, round to nearest, clamp ±127):
- `w8-layer`, `w8-channel`: int8 weights with one scale per layer / per output, f32
  activations (weight-only quantization; the error of the weights alone);
- `w8a8-layer`, `w8a8-channel`: the same weights and int8 activations: observation
  feature i quantized with its own scale (folded into layer 0's weights), hidden ReLU outputs
  as unsigned 8-bit codes 0..255 (tanh ones as -127..127) with one scale per layer; integer
  dot products, rescaled once per output. Ranges: the largest calibrated magnitude.
- `w8a16-layer`, `w8a16-channel`: as w8a8 with 16-bit codes (-32767..32767) and ranges twice
  the largest calibrated magnitude: the scheme policy-core's version 3 implements.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mxp_reader  # noqa: E402

F32 = np.float32


def quantize_weights(w, per_channel):
    """Symmetric int8 codes and scales of an (inputs x outputs) matrix."""
    top = np.abs(w).max(axis=0) if per_channel else np.full(w.shape[1], np.abs(w).max())
    scale = np.where(top > 0, top / 127.0, 1.0)
    return np.clip(np.round(w / scale), -127, 127), scale


class Quantized:
    """A policy whose network runs in one of the schemes above (float64 bookkeeping: the
    study measures the scheme, not f32 rounding)."""

    def __init__(self, policy, per_channel, act_bits, calib_states, headroom=1.0):
        self.p, self.per_channel, self.act_bits = policy, per_channel, act_bits
        layers = [(w.astype(np.float64), b.astype(np.float64)) for w, b in policy.layers]
        n_hidden = len(policy.hidden)
        relu = policy.activation == "relu"
        self.act = (lambda z: np.maximum(z, 0.0)) if relu else np.tanh
        if act_bits == 8:
            self.hmax, self.lo, self.omax = (255 if relu else 127), (0 if relu else -127), 127
        else:
            self.hmax, self.lo, self.omax = 32767, -32767, 32767
        # Calibration: per-feature observation range, per-layer hidden range.
        obs = np.asarray(calib_states, dtype=np.float64)
        self.obs_scale = np.maximum(headroom * np.abs(obs).max(axis=0), 1e-12) / self.omax
        self.layers, self.act_scale = [], []
        x = obs
        for j, (w, b) in enumerate(layers):
            if j == 0 and act_bits:
                w = w * self.obs_scale[:, None]  # fold the feature scales into the weights
            q, s = quantize_weights(w, per_channel)
            self.layers.append((q, s, b))
            if j < n_hidden:
                w_true = layers[j][0]
                x = self.act(x @ w_true + b)
                top = x.max() if relu else np.abs(x).max()
                self.act_scale.append(max(headroom * top, 1e-12) / self.hmax)

    def heads(self, obs):
        p = self.p
        n_hidden = len(p.hidden)
        x = np.asarray(obs, dtype=np.float64)
        if self.act_bits:
            x = np.clip(np.round(x / self.obs_scale), -self.omax, self.omax)
            in_scale = 1.0
        outs = []
        for j, (q, s, b) in enumerate(self.layers):
            if self.act_bits:
                bq = np.round(b / (in_scale * s))
                z = (x @ q + bq) * (in_scale * s)
            else:
                z = x @ (q * s) + b
            if j < n_hidden:
                h = self.act(z)
                if self.act_bits:
                    x = np.clip(np.round(h / self.act_scale[j]), self.lo, self.hmax)
                    in_scale = self.act_scale[j]
                else:
                    x = h
            else:
                outs.append(z)
        return finish(p, *outs)


def finish(p, mu, ls, z):
    k, a = p.components, p.action_dim
    ls = np.clip(ls, p.log_std_min, p.log_std_max)
    log_w = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
    return mu.reshape(k, a), ls.reshape(k, a), log_w


def f64_heads(p, obs):
    x = np.asarray(obs, dtype=np.float64)
    *hidden, mean, log_std, logits = [(w.astype(np.float64), b.astype(np.float64)) for w, b in p.layers]
    for w, b in hidden:
        x = x @ w + b
        x = np.maximum(x, 0.0) if p.activation == "relu" else np.tanh(x)
    return finish(p, x @ mean[0] + mean[1], x @ log_std[0] + log_std[1], x @ logits[0] + logits[1])


def log_mix(heads, u):
    """log density of the pre-squash mixture at each row of u (n x A)."""
    mu, ls, log_w = heads
    d = (u[:, None, :] - mu[None]) / np.exp(ls)[None]
    log_n = -(0.5 * d ** 2 + ls[None] + 0.5 * np.log(2 * np.pi)).sum(axis=2)
    t = log_w[None] + log_n
    m = t.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(t - m).sum(axis=1, keepdims=True)))[:, 0]


def mode_of(p, heads):
    mu, _, log_w = heads
    k = int(np.argmax(log_w))
    a = p.scale * np.tanh(mu[k]) + p.bias if p.squash else mu[k]
    return k, np.clip(a, p.low, p.high)


def visited_states(p, episodes, seed):
    import gymnasium as gym

    env = gym.make("Pendulum-v1").unwrapped
    rng = np.random.default_rng(seed)
    states = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        for _ in range(200):
            states.append(obs.astype(F32))
            mu, ls, log_w = f64_heads(p, obs)
            k = rng.choice(len(log_w), p=np.exp(log_w) / np.exp(log_w).sum())
            u = mu[k] + np.exp(ls[k]) * rng.standard_normal(p.action_dim)
            a = p.scale * np.tanh(u) + p.bias if p.squash else np.clip(u, p.low, p.high)
            obs, *_ = env.step(a.astype(F32))
    return np.array(states)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policy")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--calib", type=int, default=10)
    ap.add_argument("--draws", type=int, default=256)
    args = ap.parse_args()
    p = mxp_reader.load(Path(args.policy).read_bytes())
    calib = visited_states(p, args.calib, seed=1000)
    states = visited_states(p, args.episodes, seed=2000)
    width = (p.high - p.low).astype(np.float64)
    ref = [f64_heads(p, s) for s in states]
    rng = np.random.default_rng(7)
    draws = []
    for mu, ls, log_w in ref:
        w = np.exp(log_w)
        ks = rng.choice(len(w), size=args.draws, p=w / w.sum())
        draws.append(mu[ks] + np.exp(ls[ks]) * rng.standard_normal((args.draws, p.action_dim)))
    n_w = sum(w.size for w, _ in p.layers)
    print(f"{args.policy}: hidden {p.hidden}, K {p.components}, {n_w} weights; "
          f"{len(calib)} calibration states, {len(states)} evaluation states, {args.draws} draws each")
    print(f"{'scheme':14} {'max|dmode|/range':>17} {'mean|dmode|/range':>18} {'agree':>7} "
          f"{'mean KL':>9} {'p99 KL':>9} {'max KL':>9}")
    for name, per_channel, bits in [("w8-layer", False, 0), ("w8-channel", True, 0),
                                    ("w8a8-layer", False, 8), ("w8a8-channel", True, 8),
                                    ("w8a16-layer", False, 16), ("w8a16-channel", True, 16)]:
        q = Quantized(p, per_channel, bits, calib, headroom=2.0 if bits == 16 else 1.0)
        dmode, agree, kls = [], 0, []
        for s, h, u in zip(states, ref, draws):
            hq = q.heads(s)
            k0, a0 = mode_of(p, h)
            k1, a1 = mode_of(p, hq)
            agree += k0 == k1
            dmode.append(np.max(np.abs(a1 - a0) / width))
            kls.append(np.mean(log_mix(h, u) - log_mix(hq, u)))
        dmode, kls = np.array(dmode), np.array(kls)
        print(f"{name:14} {dmode.max():17.2e} {dmode.mean():18.2e} {agree / len(states):7.4f} "
              f"{kls.mean():9.2e} {np.quantile(kls, 0.99):9.2e} {kls.max():9.2e}")


if __name__ == "__main__":
    main()
