#!/usr/bin/env python3
"""A `.mxp` policy reader written from policy-core/FORMAT.md alone (NumPy + standard library).

    mxp_reader.py POLICY.mxp                                  # header and weight layout
    mxp_reader.py POLICY.mxp --obs 0.5 -1 2 --action 0.3      # log pi(a|s) and the mode

Section numbers (§) refer to FORMAT.md. Versions 1 (f32) and 3 (int8, §8); version 2,
the retired int8 layout, is refused. The network and
y = (a - bias)/scale run in float32 as FORMAT.md §7 (version 1) and §8.4 (version 3)
describe policy-core doing them, version 3's integer sums in exact integers; everything
after the heads in float64.
"""

import argparse
import sys
import zlib
from dataclasses import dataclass

import numpy as np

MAGIC = b"MXPF"
VERSIONS = (1, 3)
# Version 3 (§8): activation codes and weight codes are symmetric; scales at most this.
CODE_MAX = 32767
WEIGHT_MAX = 127
MIN_FILE_LEN = 65
# Capacities of policy-core (§5): obs, hidden width, hidden layers, action, components.
CAPACITY = {"obs_dim": 512, "hidden": 256, "hidden_layers": 4, "action_dim": 8, "components": 8}
HALF_LN_2PI = 0.5 * np.log(2.0 * np.pi)
F32 = np.float32
ATANH_LIMIT = F32(1.0) - F32(1e-6)  # an f32 sum: 1 - 17 * 2**-24 (§7 step 6)
SCALE_MAX = F32(1e29)  # §8.3


class FormatError(ValueError):
    pass


class _Bytes:
    """Sequential decoding of the postcard encodings of §2."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def raw(self, n, field):
        if self.pos + n > len(self.data):
            raise FormatError(f"{field}: file ends inside it")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self, bits, field):
        """Unsigned LEB128; at most ceil(bits/7) bytes, the last one holding the top bits."""
        max_bytes = -(-bits // 7)
        value = 0
        for i in range(max_bytes):
            byte = self.raw(1, field)[0]
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i == max_bytes - 1 and byte > (1 << (bits - 7 * i)) - 1:
                    raise FormatError(f"{field}: varint too large for {bits} bits")
                return value
        raise FormatError(f"{field}: varint longer than {max_bytes} bytes")

    def u8(self, field):
        return self.raw(1, field)[0]

    def u16(self, field):
        return self.varint(16, field)

    def f32(self, field):
        return np.frombuffer(self.raw(4, field), dtype="<f4")[0]

    def boolean(self, field):
        byte = self.u8(field)
        if byte > 1:
            raise FormatError(f"{field}: bool byte {byte:#04x}")
        return bool(byte)


def dense(w, b, x):
    """b + x W in float32 as policy-core sums it (§7 step 1): from the bias, input by input,
    rounding each product and each sum; bit-identical pre-activations."""
    acc = b.copy()
    for x_i, row in zip(x, w):
        acc += x_i * row
    return acc


def activate(x, activation):
    """The hidden nonlinearity on float32 values."""
    if activation == "relu":
        return np.maximum(x, F32(0))
    return np.tanh(x.astype(np.float64)).astype(F32)  # rounded once, as libm's tanhf (nearly always)


def code(x, inv):
    """§8.4: round(clip(x * inv, -32767, 32767)), x * inv one float32 multiplication,
    rounding half away from zero; an int64 array."""
    with np.errstate(over="ignore"):
        y = (np.asarray(x, dtype=F32) * F32(inv)).astype(F32)
    y = np.clip(y.astype(np.float64), -CODE_MAX, CODE_MAX)
    return (np.sign(y) * np.floor(np.abs(y) + 0.5)).astype(np.int64)


@dataclass
class Int8Network:
    """Version 3's field 12 (§8.2) and its evaluation (§8.4)."""
    obs_scales: np.ndarray  # float32, one per observation feature
    act_scales: np.ndarray  # float32, one per hidden layer
    blocks: list  # [(q (outputs x inputs) int64, bias int64, scale float32)] in §4 order

    def heads(self, obs, activation):
        """§8.4 steps 1-2: the raw mean, log-std and logit outputs, float32."""
        inv = F32(1) / self.obs_scales  # one float32 division each
        x = np.array([code(v, i) for v, i in zip(obs, inv)], dtype=np.int64)
        *hidden, mean, log_std, logits = self.blocks
        for (q, bias, scale), s_l in zip(hidden, self.act_scales):
            z = self.rescale(q, bias, scale, x)
            x = code(activate(z, activation), F32(1) / s_l)
        return [self.rescale(q, bias, scale, x) for q, bias, scale in (mean, log_std, logits)]

    @staticmethod
    def rescale(q, bias, scale, x):
        """acc = B + sum_i x_i q[o][i] exactly, then float32(acc) * m_o (two roundings)."""
        acc = bias + q @ x
        if np.any(np.abs(acc) > 2**31 - 1):
            raise FormatError("an accumulator left the 32-bit range")  # §8.3 proves it cannot
        return (acc.astype(F32) * scale).astype(F32)


def parse_int8(raw, obs_dim, hidden, shapes):
    """§8.2-§8.3: split version 3's field 12 and check it."""
    n_out = sum(o for _, o in shapes)
    expected = 4 * obs_dim + 4 * len(hidden) + 8 * n_out + sum(i * o for i, o in shapes)
    if len(raw) != expected:
        raise FormatError(f"{len(raw)} parameter bytes, the header needs {expected}")
    at = 0

    def take(n, dtype):
        nonlocal at
        size = np.dtype(dtype).itemsize
        out = np.frombuffer(raw[at:at + n * size], dtype=dtype)
        at += n * size
        return out

    obs_scales = take(obs_dim, "<f4").astype(F32)
    act_scales = take(len(hidden), "<f4").astype(F32)
    words = [(take(o, "<f4").astype(F32), take(o, "<i4").astype(np.int64)) for _, o in shapes]
    codes = [take(i * o, "i1").astype(np.int64).reshape(o, i) for i, o in shapes]  # output-major
    scales = np.concatenate([obs_scales, act_scales] + [s for s, _ in words])
    bad = np.flatnonzero(~((scales >= np.finfo(F32).tiny) & (scales <= SCALE_MAX)))
    if bad.size:
        raise FormatError(f"scale {bad[0]} is not a positive normal float32 <= 1e29")
    flat = np.concatenate([c.ravel() for c in codes])
    if np.any(flat == -128):
        raise FormatError(f"weight code {np.flatnonzero(flat == -128)[0]} is -128")
    for b, ((_, bias), q) in enumerate(zip(words, codes)):
        room = np.abs(bias) + CODE_MAX * np.abs(q).sum(axis=1)
        if np.any(room > 2**31 - 1):
            raise FormatError(f"block {b}: an accumulator can overflow")
    blocks = [(q, bias, scale) for (scale, bias), q in zip(words, codes)]
    return Int8Network(obs_scales, act_scales, blocks)


@dataclass
class Policy:
    obs_dim: int
    hidden: list
    action_dim: int
    components: int
    activation: str  # "relu" or "tanh"
    squash: bool
    log_std_min: float
    log_std_max: float
    low: np.ndarray  # float32, per action dimension
    high: np.ndarray
    weights_offset: int  # where the weight bytes start in the file
    layers: list  # [(W (inputs x outputs), b)] in float32: hidden..., mean, log_std, logits
    int8: object = None  # version 3: an Int8Network (then `layers` is empty)

    @property
    def scale(self):  # f32, halving first (§5)
        return self.high / F32(2) - self.low / F32(2)

    @property
    def bias(self):
        return self.high / F32(2) + self.low / F32(2)

    def heads(self, obs):
        """§7 steps 1-4: means and log-stds (K, A) and log mixing weights (K)."""
        x = np.asarray(obs, dtype=F32)
        if x.shape != (self.obs_dim,) or not np.all(np.isfinite(x)):
            raise ValueError(f"observation must be {self.obs_dim} finite numbers")
        if self.int8 is not None:
            mu, ls, z = self.int8.heads(x, self.activation)
        else:
            *hidden, mean, log_std, logits = self.layers
            for w, b in hidden:
                x = dense(w, b, x)
                x = activate(x, self.activation)
            mu, ls, z = dense(*mean, x), dense(*log_std, x), dense(*logits, x)
        k, a = self.components, self.action_dim
        mu = mu.reshape(k, a).astype(np.float64)  # output k*A + d
        ls = ls.reshape(k, a).astype(np.float64)
        z = z.astype(np.float64)
        ls = np.clip(ls, self.log_std_min, self.log_std_max)
        m = z.max()
        log_w = z - (m + np.log(np.exp(z - m).sum()))
        return mu, ls, log_w

    def mode(self, obs):
        """§7 step 5: (component, action); ties go to the lowest index."""
        mu, _, log_w = self.heads(obs)
        # argmax returns the first of equal maxima. Logits that differ but round to equal f32
        # log w (a tie for policy-core, §7 step 5) are not ties in float64 here.
        k = int(np.argmax(log_w))
        u = mu[k]
        raw = self.scale * np.tanh(u) + self.bias if self.squash else u
        return k, np.clip(raw, self.low, self.high)

    def log_prob(self, obs, action):
        """§7 steps 6-7: log pi(a|s) of a given action."""
        a = np.asarray(action, dtype=F32)
        if a.shape != (self.action_dim,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be {self.action_dim} finite numbers")
        mu, ls, log_w = self.heads(obs)
        if self.squash:
            with np.errstate(over="ignore"):
                y = (a - self.bias) / self.scale  # float32 arithmetic, as required
            y = np.clip(y, -ATANH_LIMIT, ATANH_LIMIT)
            u = np.arctanh(y.astype(np.float64)).astype(F32).astype(np.float64)  # an f32
        else:
            u = a.astype(np.float64)
        log_n = -(0.5 * ((u - mu) / np.exp(ls)) ** 2 + ls + HALF_LN_2PI).sum(axis=1)
        terms = log_w + log_n
        top = terms.max()
        log_p = top if top == -np.inf else top + np.log(np.exp(terms - top).sum())
        if not self.squash:
            return float(log_p)
        softplus = np.logaddexp(0.0, -2.0 * u)
        log_det = np.log(self.scale.astype(np.float64)) + 2.0 * (np.log(2.0) - u - softplus)
        return float(log_p - log_det.sum())


def load(data):
    """Checks and parses the bytes of a .mxp file (§1-§5)."""
    if len(data) < MIN_FILE_LEN:
        raise FormatError(f"{len(data)} bytes, the smallest policy file has {MIN_FILE_LEN}")
    body, stored = data[:-4], int.from_bytes(data[-4:], "little")
    if zlib.crc32(body) != stored:  # CRC-32/ISO-HDLC, §3
        raise FormatError(f"CRC mismatch: stored {stored:#010x}, computed {zlib.crc32(body):#010x}")
    r = _Bytes(body)
    if r.raw(4, "magic") != MAGIC:
        raise FormatError("not an .mxp file (magic)")
    version = r.u16("version")
    if version == 2:
        raise FormatError("format version 2, the retired input-major int8 layout (FORMAT.md §8): "
                          "quantize the f32 policy again")
    if version not in VERSIONS:
        raise FormatError(f"format version {version}, this reader reads {VERSIONS}")
    obs_dim = r.u16("obs_dim")
    n_layers = r.u8("hidden_layers")
    if n_layers > CAPACITY["hidden_layers"]:
        raise FormatError(f"{n_layers} hidden layers")
    hidden = [r.u16("hidden") for _ in range(n_layers)]
    action_dim = r.u16("action_dim")
    if action_dim > CAPACITY["action_dim"]:
        raise FormatError(f"action_dim {action_dim}")
    components = r.u16("components")
    tag = r.varint(32, "activation")
    if tag > 1:
        raise FormatError(f"activation tag {tag}")
    activation = ("relu", "tanh")[tag]
    squash = r.boolean("squash")
    log_std_min, log_std_max = r.f32("log_std_min"), r.f32("log_std_max")
    low = np.array([r.f32("action_low") for _ in range(action_dim)], dtype=F32)
    high = np.array([r.f32("action_high") for _ in range(action_dim)], dtype=F32)
    n_bytes = r.varint(64, "weights length")
    weights_offset = r.pos
    raw = r.raw(n_bytes, "weights")
    if r.pos != len(body):
        raise FormatError(f"{len(body) - r.pos} bytes between the weights and the CRC")

    dims = {"obs_dim": obs_dim, "hidden_layers": n_layers, "action_dim": action_dim,
            "components": components}
    for name, value in list(dims.items()) + [("hidden", w) for w in hidden]:
        if not 1 <= value <= CAPACITY[name]:
            raise FormatError(f"{name} = {value} outside 1..{CAPACITY[name]}")
    with np.errstate(all="ignore"):
        scale, bias = high / F32(2) - low / F32(2), high / F32(2) + low / F32(2)
    tiny = np.finfo(F32).tiny
    if not (np.all(low < high) and np.all(scale >= tiny) and np.all(np.isfinite(scale))
            and np.all(np.isfinite(bias))):
        raise FormatError("action bounds")
    if not -40.0 <= log_std_min <= log_std_max <= 40.0:
        raise FormatError("log-std clamp")

    # §4: blocks (inputs + 1) x outputs, matrix input-major then biases.
    k_a = components * action_dim
    shapes = list(zip([obs_dim] + hidden[:-1], hidden))
    shapes += [(hidden[-1], k_a), (hidden[-1], k_a), (hidden[-1], components)]
    if version == 3:
        network = parse_int8(raw, obs_dim, hidden, shapes)
        return Policy(obs_dim, hidden, action_dim, components, activation, squash,
                      float(log_std_min), float(log_std_max), low, high, weights_offset, [],
                      network)
    count = sum((i + 1) * o for i, o in shapes)
    if n_bytes != 4 * count:
        raise FormatError(f"{n_bytes} weight bytes, the header needs {4 * count}")
    values = np.frombuffer(raw, dtype="<f4")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise FormatError(f"weight {bad[0]} is not finite")
    values = values.astype(F32)  # native byte order
    layers, at = [], 0
    for i, o in shapes:
        w = values[at:at + i * o].reshape(i, o)
        layers.append((w, values[at + i * o:at + (i + 1) * o]))
        at += (i + 1) * o
    return Policy(obs_dim, hidden, action_dim, components, activation, squash,
                  float(log_std_min), float(log_std_max), low, high, weights_offset, layers)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy")
    p.add_argument("--obs", type=float, nargs="+")
    p.add_argument("--action", type=float, nargs="+")
    args = p.parse_args()
    with open(args.policy, "rb") as f:
        try:
            policy = load(f.read())
        except FormatError as e:
            sys.exit(f"error: {args.policy}: {e}")
    print(f"{'int8 (version 3)' if policy.int8 is not None else 'f32 (version 1)'}, "
          f"obs {policy.obs_dim}, hidden {policy.hidden} {policy.activation}, "
          f"action {policy.action_dim} in [{policy.low.tolist()}, {policy.high.tolist()}], "
          f"{policy.components} components, squash {policy.squash}, "
          f"log-std [{policy.log_std_min}, {policy.log_std_max}], "
          f"weights at byte {policy.weights_offset}")
    if args.obs is not None:
        k, action = policy.mode(args.obs)
        print(f"mode: component {k}, action {action.tolist()}")
        if args.action is not None:
            print(f"log pi(action | obs) = {policy.log_prob(args.obs, args.action)!r}")


if __name__ == "__main__":
    main()
