"""mixsac's Gymnasium worker: runs one environment, or one per member of a population, for
the trainer over binary pipes.

Started by mixsac (`python -c <this file> ENV_ID [COUNT [KWARGS]]`); the trainer owns the
process. COUNT (default 1) environments are made, each by its own `gym.make(ENV_ID,
**KWARGS)` (KWARGS: a JSON object, default {}), as COUNT separate workers would make them.
Protocol, all little-endian:

  requests (stdin), each 1 + max(8 action_dim, 12, COUNT (5 + 8 action_dim)) bytes
  (the last term only when COUNT > 1), zero-padded:
                      b"R" u64 seed            reset(seed=seed) of environment 0
                      b"S" f64 x action_dim    step(action) of environment 0
                      b"B" u32 n u64 seed      time n env.step calls on sampled actions
                      b"M" u32 i u64 seed      reset(seed=seed) of environment i
                      b"A" COUNT x (u8 active, u32 seed, f64 x action_dim)
                                               step every active environment; one whose
                                               episode ends is reset(seed=seed) at once
                      b"Q"                     quit
  replies (stdout):   u32 length, then length bytes: b"\\x00" payload on success,
                      b"\\x01" u8 kind, utf-8 message on failure (kind 1: missing package,
                      2: unknown ID, 3: a keyword argument refused, its message starting
                      with the keyword and a newline; 0: anything else)

  hello (first reply): u32 version, u32 obs_dim, u32 action_dim, f64 low[a], f64 high[a],
                       i64 max_episode_steps (-1: none), u8 observation flattened
  reset reply:         f64 obs[obs_dim]  (R and M)
  step reply:          f64 obs[obs_dim], f64 reward, u8 terminated, u8 truncated
  all-step reply:      per environment, u8 status and then
                         0 (not active): nothing
                         1 (stepped):    a step reply
                         2 (stepped, episode ended, reset): a step reply, the reset's obs
                         3 (step raised): u32 n, n bytes of message
                         4 (stepped, episode ended, reset raised): a step reply, u32 n, message
  bench reply:         f64 nanoseconds per env.step

The environment's own prints go to stderr: stdout is reserved for replies. After each
reply the worker polls for the next request for a moment before it blocks: on virtual
machines, waking a halted CPU through a pipe can cost more than the step itself.
"""
import json
import os
import re
import select
import struct
import sys
import time
import traceback

VERSION = 1
MISSING_PACKAGE = 1
UNKNOWN_ID = 2
REJECTED_KEYWORD = 3
OTHER = 0
# Environments that only exist once their package is imported: ID prefix -> module.
PACKAGES = {"myo": "myosuite", "Meta-World/": "metaworld"}

# Replies go to a private copy of stdout; anything printed lands on stderr.
REPLIES = os.dup(1)
os.dup2(2, 1)
REQUESTS = sys.stdin.fileno()
os.set_blocking(REQUESTS, False)
SPIN_NS = 200_000


def send(payload):
    frame = struct.pack("<I", len(payload)) + payload
    written = os.write(REPLIES, frame)
    while written < len(frame):  # a pipe takes a short frame whole; a long one may not
        written += os.write(REPLIES, frame[written:])


def fail(kind, message):
    send(b"\x01" + bytes([kind]) + message.encode("utf-8", "replace"))


def read_request(n):
    """The next n-byte request; polls for SPIN_NS, then blocks. Exits when the trainer is gone."""
    data = b""
    deadline = time.perf_counter_ns() + SPIN_NS
    while len(data) < n:
        try:
            chunk = os.read(REQUESTS, n - len(data))
        except BlockingIOError:
            if time.perf_counter_ns() > deadline:
                select.select([REQUESTS], [], [])
            else:
                os.sched_yield()  # lets the trainer run if it shares this CPU
            continue
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def main():
    env_id = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    python = sys.executable or "python3"
    try:
        import numpy as np
        import gymnasium as gym
        from gymnasium import spaces
    except ImportError as e:
        missing = getattr(e, "name", None) or "gymnasium"
        fail(MISSING_PACKAGE, f"{missing} is not installed in {python} — "
             f"pip install 'gymnasium[mujoco]'")
        return
    if env_id.startswith("dm_control/"):
        try:
            import shimmy  # noqa: F401  registers the dm_control/ IDs

            gym.register_envs(shimmy)
        except ImportError as e:
            if getattr(e, "name", None) in (None, "shimmy"):
                message = "DeepMind Control tasks need shimmy"
            else:
                message = f"shimmy needs {e.name}"
            fail(MISSING_PACKAGE, f"{message}, which is not installed in {python} — "
                 f"pip install 'shimmy[dm-control]' (ImportError: {e})")
            return
    kwargs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    envs = []
    for _ in range(count):
        try:
            env = gym.make(env_id, **kwargs)
        except Exception as e:
            fail(*why_not_made(gym, env_id, kwargs, python, e))
            return
        envs.append(env)
    env = envs[0]

    action_space = env.action_space
    if not isinstance(action_space, spaces.Box):
        fail(OTHER, f"{env_id} has a {type(action_space).__name__} action space; "
             "mixsac trains continuous (Box) actions only")
        return
    low = np.asarray(action_space.low, dtype=np.float64).ravel()
    high = np.asarray(action_space.high, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        fail(OTHER, f"{env_id}'s action space has infinite bounds {action_space}; "
             "squashed policies need finite ones")
        return
    flattened = 0
    if not isinstance(env.observation_space, spaces.Box):
        if isinstance(env.observation_space, (spaces.Dict, spaces.Tuple)) and all(
            isinstance(s, spaces.Box) for s in _leaves(env.observation_space, spaces)
        ):
            envs = [gym.wrappers.FlattenObservation(e) for e in envs]
            env = envs[0]
            flattened = 1
        else:
            fail(OTHER, f"{env_id} has a {type(env.observation_space).__name__} observation "
                 "space; mixsac needs Box observations (or a Dict/Tuple of Boxes)")
            return
    obs_dim = int(np.prod(env.observation_space.shape))
    action_dim = low.size
    limit = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else -1
    send(b"\x00" + struct.pack(f"<III{action_dim}d{action_dim}dqB", VERSION, obs_dim,
                               action_dim, *low, *high, limit, flattened))

    action_shape, action_dtype = action_space.shape, action_space.dtype
    member_size = 5 + 8 * action_dim
    request_size = 1 + max(8 * action_dim, 12, count * member_size if count > 1 else 0)

    def observation(obs):
        return np.ascontiguousarray(obs, dtype="<f8").reshape(-1).tobytes()

    def step(env, request, offset):
        action = np.frombuffer(request, dtype="<f8", count=action_dim, offset=offset)
        obs, reward, terminated, truncated, _ = env.step(
            action.astype(action_dtype).reshape(action_shape))
        reply = observation(obs) + struct.pack("<dBB", float(reward), bool(terminated),
                                               bool(truncated))
        return reply, terminated or truncated

    def raised(e):
        return f"{env_id} raised {type(e).__name__}: {e}\n{traceback.format_exc()}"

    def message(text):
        data = text.encode("utf-8", "replace")
        return struct.pack("<I", len(data)) + data

    def step_all(request):
        """Every active environment's step (and reset where its episode ended), in order."""
        parts = [b"\x00"]
        for i, env in enumerate(envs):
            at = 1 + i * member_size
            active, seed = struct.unpack_from("<BI", request, at)
            if not active:
                parts.append(b"\x00")
                continue
            try:
                reply, ended = step(env, request, at + 5)
            except Exception as e:
                parts += [b"\x03", message(raised(e))]
                continue
            if not ended:
                parts += [b"\x01", reply]
                continue
            try:
                first, _ = env.reset(seed=seed)
                parts += [b"\x02", reply, observation(first)]
            except Exception as e:
                parts += [b"\x04", reply, message(raised(e))]
        send(b"".join(parts))

    while True:
        request = read_request(request_size)
        op = request[:1]
        try:
            if op == b"S":
                send(b"\x00" + step(env, request, 1)[0])
            elif op == b"A":
                step_all(request)
            elif op == b"R":
                (seed,) = struct.unpack_from("<Q", request, 1)
                obs, _ = env.reset(seed=seed)
                send(b"\x00" + observation(obs))
            elif op == b"M":
                i, seed = struct.unpack_from("<IQ", request, 1)
                obs, _ = envs[i].reset(seed=seed)
                send(b"\x00" + observation(obs))
            elif op == b"B":
                n, seed = struct.unpack_from("<IQ", request, 1)
                send(b"\x00" + struct.pack("<d", own_step_time(env, n, seed)))
            elif op == b"Q":
                for e in envs:
                    e.close()
                return
            else:
                fail(OTHER, f"bridge protocol error: unknown request {op!r}")
                return
        except Exception as e:
            fail(OTHER, raised(e))


def why_not_made(gym, env_id, kwargs, python, e):
    """(kind, message) for an exception of gym.make, naming the fix where there is one."""
    said = f"{type(e).__name__}: {e}"
    if isinstance(e, gym.error.DependencyNotInstalled):
        return MISSING_PACKAGE, f"{env_id} needs a package that is not installed in {python}: {e}"
    if isinstance(e, ModuleNotFoundError) and ":" in env_id:
        # Gymnasium re-raises it without `name`: the message names the module (the one of
        # the ID, or one that module imports).
        named = re.search(r"No module named '([^']+)'", str(e))
        module = named.group(1) if named else env_id.split(":")[0]
        return MISSING_PACKAGE, (f"gym:{env_id} imports the module `{module}`, which is not "
                                 f"installed in {python} ({said})")
    if isinstance(e, (gym.error.NameNotFound, gym.error.NamespaceNotFound)):
        hint = ""
        if ":" not in env_id:
            module = next((m for p, m in PACKAGES.items() if env_id.startswith(p)), "<module>")
            hint = (f"; an environment that comes with a package is registered when its module "
                    f"is imported: name the module too, as gym:{module}:{env_id}")
        return UNKNOWN_ID, f"{env_id} is not registered in {python} ({said}){hint}"
    keyword = re.search(r"unexpected keyword argument '([^']+)'", str(e))
    if isinstance(e, TypeError) and keyword and keyword.group(1) in kwargs:
        return REJECTED_KEYWORD, (f"{keyword.group(1)}\n{env_id} does not take the keyword "
                                  f"argument `{keyword.group(1)}` of --env-kwargs ({said})")
    return OTHER, f"gymnasium cannot make {env_id}: {said}"


def _leaves(space, spaces):
    if isinstance(space, spaces.Dict):
        for s in space.spaces.values():
            yield from _leaves(s, spaces)
    elif isinstance(space, spaces.Tuple):
        for s in space.spaces:
            yield from _leaves(s, spaces)
    else:
        yield space


def own_step_time(env, n, seed):
    """Python's own cost of env.step (ns), actions pre-drawn, resets not timed."""
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(min(n, 1024))]
    env.reset(seed=seed)
    total = 0
    for i in range(n):
        start = time.perf_counter_ns()
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        total += time.perf_counter_ns() - start
        if terminated or truncated:
            env.reset()
    return total / n


if __name__ == "__main__":
    main()
