"""Misbehaving Gymnasium environments for mixsac's bridge tests (`gym:mixsac_test_envs:<ID>`)."""
import os

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Faulty(gym.Env):
    """Observes (steps so far, last action); at the `at`-th step since it was made (across
    episodes) it returns NaN, raises, hangs, or exits the process. With `odd_seed_only`, only
    if the current episode's reset seed is odd (so that some members of a population fail
    and others do not)."""

    def __init__(self, fault="nan", at=5, odd_seed_only=False):
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.fault, self.at, self.total = fault, at, 0
        self.odd_seed_only, self.seed = odd_seed_only, None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seed = seed
        return np.zeros(2), {}

    def step(self, action):
        self.total += 1
        obs = np.array([self.total, float(action[0])], dtype=np.float64)
        spared = self.odd_seed_only and (self.seed or 0) % 2 == 0
        if self.total == self.at and not spared:
            if self.fault == "raise":
                raise RuntimeError(f"fault at step {self.total}")
            if self.fault == "nan":
                obs[1] = np.nan
            elif self.fault == "hang":
                import time

                time.sleep(3600)
            elif self.fault == "exit":
                os._exit(3)
        return obs, 0.0, False, False, {}


for fault in ("nan", "raise", "hang", "exit"):
    gym.register(f"Faulty-{fault}-v0", entry_point=Faulty, kwargs={"fault": fault},
                 max_episode_steps=100)
# NaN only after the first checkpoint of a run with --log-every 100.
gym.register("Faulty-late-nan-v0", entry_point=Faulty, kwargs={"fault": "nan", "at": 150},
             max_episode_steps=50)
# NaN or an exception at step 150, only where that episode's reset seed is odd.
for fault in ("nan", "raise"):
    gym.register(f"Faulty-odd-{fault}-v0", entry_point=Faulty, max_episode_steps=50,
                 kwargs={"fault": fault, "at": 150, "odd_seed_only": True})
