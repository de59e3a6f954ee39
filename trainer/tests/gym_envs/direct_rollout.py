"""Steps a Gymnasium environment directly (no bridge), for comparison with mixsac's bridge.

stdin: JSON {"id": ..., "episodes": [{"seed": S, "actions": [[...], ...]}, ...]}
stdout: JSON list per episode of rows [obs bits..., reward bits, terminated, truncated]; the
first row is the reset observation. Floats are their IEEE-754 bit patterns (exact).
"""
import json
import struct
import sys

import gymnasium as gym
import numpy as np


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


request = json.load(sys.stdin)
env = gym.make(request["id"])
out = []
for episode in request["episodes"]:
    obs, _ = env.reset(seed=episode["seed"])
    rows = [[bits(x) for x in np.ravel(obs)]]
    for action in episode["actions"]:
        a = np.asarray(action, dtype=np.float64).astype(env.action_space.dtype)
        obs, reward, terminated, truncated, _ = env.step(a.reshape(env.action_space.shape))
        rows.append([bits(x) for x in np.ravel(obs)] + [bits(reward), int(terminated), int(truncated)])
        if terminated or truncated:
            break
    out.append(rows)
json.dump(out, sys.stdout)
