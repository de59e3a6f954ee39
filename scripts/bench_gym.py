#!/usr/bin/env python3
"""Gymnasium's own step time for the classic-control environments mixsac re-implements, to
set beside `mixsac bench-envs`. Unwrapped environments (no checkers or time limits), random
actions in the action box, resets at episode ends; one JSON object per line.

Acrobot-v1 takes discrete actions in Gymnasium; it is timed as shipped (discrete) and in the
continuous-torque form mixsac implements (Gymnasium's own rk4 and _dsdt, as in
gym_conformance.py).

usage: bench_gym.py [steps]
"""
import json
import sys
import time

import gymnasium as gym
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gym_conformance import acrobot_step  # noqa: E402


def time_env(env_id, steps, rng):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        actions = rng.integers(0, space.n, size=1024)
    else:
        actions = rng.uniform(space.low, space.high, size=(1024,) + space.shape)
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % 1024])
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - start) / steps * 1e9


def time_continuous_acrobot(steps, rng):
    env = gym.make("Acrobot-v1").unwrapped
    env.reset(seed=0)
    actions = rng.uniform(-1.0, 1.0, size=1024)
    s = np.zeros(4)
    start = time.perf_counter()
    for i in range(steps):
        s = acrobot_step(env, s, actions[i % 1024])
    return (time.perf_counter() - start) / steps * 1e9


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = np.random.default_rng(0)
    for env_id in ["Pendulum-v1", "MountainCarContinuous-v0", "Acrobot-v1"]:
        ns = time_env(env_id, steps, rng)
        print(json.dumps({"env": env_id, "ns_per_step": round(ns, 1), "steps": steps}))
    ns = time_continuous_acrobot(steps, rng)
    print(json.dumps({"env": "Acrobot-v1 (continuous torque)", "ns_per_step": round(ns, 1), "steps": steps}))


if __name__ == "__main__":
    main()
