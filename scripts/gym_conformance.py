#!/usr/bin/env python3
"""Checks mixsac's classic-control environments step by step against Gymnasium.

For Pendulum-v1, MountainCarContinuous-v0 and Acrobot-v1 (continuous torque integrated with
Gymnasium's own rk4 and _dsdt), both sides start from the same state and take the same 1000
actions: once uniformly random (reaching past the action bounds, to check clipping) and once
from a goal-seeking rule with noise (to reach terminal states). The shipped binary replays
the actions (`mixsac env-replay`); observations, states, rewards and termination flags must
agree to 1e-6. Rewards of the variants Gymnasium does not have are checked against their
definitions (DESIGN.md section 6), evaluated on Gymnasium's states.

usage: gym_conformance.py PATH/TO/mixsac
"""
import json
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.acrobot import bound, rk4, wrap

TOL = 1e-6
STEPS = 1000
CUTOFF = {"pendulum": 200, "acrobot": 1000, "mountaincar": 1000}


def angle_normalize(x):
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def acrobot_step(env, s, torque):
    """Gymnasium's Acrobot-v1 step with a continuous torque instead of a discrete one."""
    torque = min(max(torque, -1.0), 1.0)
    ns = rk4(env._dsdt, np.append(s, torque), [0, env.dt])
    ns[0] = wrap(ns[0], -np.pi, np.pi)
    ns[1] = wrap(ns[1], -np.pi, np.pi)
    ns[2] = bound(ns[2], -env.MAX_VEL_1, env.MAX_VEL_1)
    ns[3] = bound(ns[3], -env.MAX_VEL_2, env.MAX_VEL_2)
    return ns


def gym_trajectory(family, start, actions, rule, rng):
    """Steps Gymnasium; returns (actions, rows). Each row: obs, state, rewards per variant,
    terminated. With `rule`, actions are chosen from the state as it goes."""
    rows, taken = [], []
    if family == "pendulum":
        env = gym.make("Pendulum-v1").unwrapped
        env.reset(seed=0)
        env.state = np.array(start, dtype=np.float64)
    elif family == "mountaincar":
        env = gym.make("MountainCarContinuous-v0").unwrapped
        env.reset(seed=0)
        env.state = np.array(start, dtype=np.float64)  # a start state is float64, as after reset
    else:
        env = gym.make("Acrobot-v1").unwrapped
        env.reset(seed=0)
        s = np.array(start, dtype=np.float64)
    for i in range(STEPS):
        if rule:
            state = env.state if family != "acrobot" else s
            a = rule(state) + rng.normal(0.0, 0.3)
        else:
            a = actions[i]
        taken.append(a)
        if family == "pendulum":
            th = float(env.state[0])
            obs, r, term, _, _ = env.step(np.array([a], dtype=np.float64))
            rewards = {
                "shaped-pendulum": float(r),
                "pendulum": 1.0 if abs(angle_normalize(th)) < 0.25 else 0.0,
            }
            state = [float(x) for x in env.state]
        elif family == "mountaincar":
            obs, _, term, _, _ = env.step(np.array([a], dtype=np.float64))
            state = [float(x) for x in env.state]
            rewards = {"mountaincar": -1.0, "shaped-mountaincar": state[0] - 0.6}
        else:
            s = acrobot_step(env, s, a)
            state = [float(x) for x in s]
            obs = env.__class__._get_ob(type("S", (), {"state": s})())
            height = -math.cos(s[0]) - math.cos(s[1] + s[0])
            term = bool(height > 1.0)
            rewards = {"acrobot": 0.0 if term else -1.0, "shaped-acrobot": height - 1.0}
        rows.append({"obs": np.asarray(obs, dtype=np.float32), "state": state,
                     "rewards": rewards, "terminated": bool(term)})
    return taken, rows


def replay(mixsac, name, start, actions):
    """Runs the shipped binary; returns its step records (without the start record)."""
    stdin = "".join(repr(float(a)) + "\n" for a in actions)
    state = ",".join(repr(float(x)) for x in start)
    out = subprocess.run([mixsac, "env-replay", "--env", name, "--state", state],
                         input=stdin, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"FAIL {name}: mixsac env-replay exited {out.returncode}: {out.stderr.strip()}")
    records = [json.loads(line) for line in out.stdout.splitlines()]
    return records[1:]


def compare(mixsac, family, start, actions, rule, rng, label):
    actions, rows = gym_trajectory(family, start, actions, rule, rng)
    worst = {"obs": 0.0, "state": 0.0, "reward": 0.0}
    terminals = sum(r["terminated"] for r in rows)
    for name in rows[0]["rewards"]:
        ours = replay(mixsac, name, start, actions)
        if len(ours) != len(rows):
            sys.exit(f"FAIL {name} ({label}): {len(ours)} steps replayed, expected {len(rows)}")
        for i, (mine, ref) in enumerate(zip(ours, rows)):
            step = i + 1
            obs_gap = float(np.max(np.abs(np.asarray(mine["obs"], dtype=np.float32) - ref["obs"])))
            state_gap = max(abs(a - b) for a, b in zip(mine["state"], ref["state"]))
            reward_gap = abs(mine["reward"] - ref["rewards"][name])
            worst["obs"] = max(worst["obs"], obs_gap)
            worst["state"] = max(worst["state"], state_gap)
            worst["reward"] = max(worst["reward"], reward_gap)
            truncated = (not ref["terminated"]) and step >= CUTOFF[family]
            problems = []
            if obs_gap > TOL:
                problems.append(f"obs differ by {obs_gap:.3g}: {mine['obs']} vs {ref['obs'].tolist()}")
            if state_gap > TOL:
                problems.append(f"state differs by {state_gap:.3g}: {mine['state']} vs {ref['state']}")
            if reward_gap > TOL:
                problems.append(f"reward {mine['reward']} vs {ref['rewards'][name]}")
            if mine["terminated"] != ref["terminated"]:
                problems.append(f"terminated {mine['terminated']} vs {ref['terminated']}")
            if mine["truncated"] != truncated:
                problems.append(f"truncated {mine['truncated']} vs {truncated}")
            if problems:
                sys.exit(f"FAIL {name} ({label}) at step {step}: " + "; ".join(problems))
    print(f"ok   {family:<12} {label:<13} {STEPS} steps: max |obs| gap {worst['obs']:.1e}, "
          f"|state| gap {worst['state']:.1e}, |reward| gap {worst['reward']:.1e}, "
          f"{terminals} terminal steps")
    return terminals


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    mixsac = sys.argv[1]
    rng = np.random.default_rng(20261121)
    rules = {
        "pendulum": lambda s: 2.0 * float(np.sign(s[1]) or 1.0),
        "mountaincar": lambda s: float(np.sign(s[1]) or 1.0),
        "acrobot": lambda s: float(np.sign(s[3]) or 1.0),
    }
    starts = {
        "pendulum": [rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1)],
        "mountaincar": [rng.uniform(-0.6, -0.4), 0.0],
        "acrobot": list(rng.uniform(-0.1, 0.1, size=4)),
    }
    bounds = {"pendulum": 2.5, "mountaincar": 1.5, "acrobot": 1.5}
    for family in ["pendulum", "mountaincar", "acrobot"]:
        random_actions = rng.uniform(-bounds[family], bounds[family], size=STEPS)
        compare(mixsac, family, starts[family], random_actions, None, rng, "random")
        terminals = compare(mixsac, family, starts[family], None, rules[family], rng, "goal-seeking")
        if family != "pendulum" and terminals == 0:
            sys.exit(f"FAIL {family}: the goal-seeking run never terminated, so termination went unchecked")
    print("gymnasium conformance: all environments agree")


if __name__ == "__main__":
    main()
