//! `gym:<ID>`: any Gymnasium environment, run by a Python worker process that this module
//! starts and owns. The worker is `gym_bridge.py` (embedded in the binary); requests and
//! replies are binary frames over its stdin and stdout (the protocol is at the top of that
//! file). A worker holds one environment, or one per member of a population
//! ([`GymWorker::start_many`]), which [`GymWorker::step_members`] steps in one round trip. Every wait for a reply has a timeout (`poll`); the worker is killed and reaped when
//! it hangs, fails or is dropped, so no process outlives its owner.
//!
//! Replies are first polled for briefly, then waited for: on virtual machines waking a
//! halted CPU through a pipe costs up to ~90 µs, several times a Pendulum step.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BRIDGE: &str = include_str!("gym_bridge.py");
const PROTOCOL_VERSION: u32 = 1;
/// stderr lines of the worker kept for error messages.
const STDERR_LINES: usize = 12;
/// How long a reply is polled for before the wait blocks.
const SPIN: Duration = Duration::from_micros(500);

/// How to run Gymnasium environments.
#[derive(Debug, Clone, PartialEq)]
pub struct GymOptions {
    /// The Python interpreter (with gymnasium installed).
    pub python: String,
    /// Longest wait for one reply; making the environment may take twice as long.
    pub timeout: Duration,
    /// Keyword arguments of `gym.make`.
    pub kwargs: super::EnvKwargs,
}

impl GymOptions {
    /// `--python` if given, else `MIXSAC_PYTHON`, else `python3`; 60 s per reply.
    pub fn new(python: Option<&str>) -> GymOptions {
        let python = python
            .map(str::to_string)
            .or_else(|| {
                std::env::var("MIXSAC_PYTHON")
                    .ok()
                    .filter(|p| !p.is_empty())
            })
            .unwrap_or_else(|| "python3".to_string());
        GymOptions {
            python,
            timeout: Duration::from_secs(60),
            kwargs: super::EnvKwargs::default(),
        }
    }
}

impl Default for GymOptions {
    fn default() -> Self {
        GymOptions::new(None)
    }
}

/// Why the Gymnasium worker failed. Each message names the cause and, where there is one,
/// the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GymError {
    /// The interpreter could not be started at all.
    #[error("cannot start `{python}` for gym:{id} ({reason}); point --python or MIXSAC_PYTHON at a Python 3 with gymnasium installed")]
    Spawn {
        python: String,
        id: String,
        reason: String,
    },
    /// A Python package is missing (gymnasium, mujoco, shimmy, ...).
    #[error("{message}")]
    MissingPackage { message: String },
    /// No environment of this ID is registered (the message says how to import the
    /// package that registers it).
    #[error("gym:{id}: {message}")]
    UnknownId { id: String, message: String },
    /// The environment does not take a keyword argument of `--env-kwargs`.
    #[error("gym:{id}: {message}")]
    RejectedKeyword {
        id: String,
        keyword: String,
        message: String,
    },
    /// The environment refused or raised (non-Box space, an exception in step, ...).
    #[error("gym:{id}: {message}")]
    Environment { id: String, message: String },
    /// The worker exited without being asked to.
    #[error("the Gymnasium worker for gym:{id} exited unexpectedly ({status}){stderr}")]
    Died {
        id: String,
        status: String,
        stderr: String,
    },
    /// The worker did not answer in time; it has been killed.
    #[error("the Gymnasium worker for gym:{id} did not answer {during} within {seconds} s (hung?); it was stopped{stderr}")]
    Timeout {
        id: String,
        during: &'static str,
        seconds: u64,
        stderr: String,
    },
    /// The environment returned NaN or infinity.
    #[error("gym:{id} returned a non-finite {what} ({value}) on {during}")]
    NonFinite {
        id: String,
        what: &'static str,
        value: f64,
        during: &'static str,
    },
    /// A reply of the wrong shape (a bridge from another mixsac version?).
    #[error("the Gymnasium worker for gym:{id} broke the protocol: {message}")]
    Protocol { id: String, message: String },
}

/// What the worker reported about its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct GymSpec {
    pub obs_dim: usize,
    pub action_low: Vec<f64>,
    pub action_high: Vec<f64>,
    /// The TimeLimit of the registration, if any.
    pub max_episode_steps: Option<usize>,
    /// The observation was a Dict or Tuple of Boxes, flattened by the worker.
    pub flattened: bool,
}

/// One step's result, in the environment's own float64.
#[derive(Debug, Clone, PartialEq)]
pub struct GymStep {
    pub obs: Vec<f64>,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

/// One environment's request in [`GymWorker::step_members`]: its action (inside the
/// bounds) and the seed its next episode is reset with if this step ends the current one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemberRequest<'a> {
    pub action: &'a [f64],
    pub reset_seed: u32,
}

/// One environment's part of the reply of [`GymWorker::step_members`].
#[derive(Debug, Clone, PartialEq)]
pub enum MemberReply {
    /// It was not asked to step.
    Idle,
    /// It stepped; if the episode ended, `reset` holds the next episode's first observation
    /// (or why the reset failed).
    Stepped {
        step: GymStep,
        reset: Option<Result<Vec<f64>, GymError>>,
    },
    /// Its step raised, or returned a non-finite value.
    Failed(GymError),
}

/// A running Gymnasium worker with one environment, or several of the same ID.
pub struct GymWorker {
    id: String,
    /// Environments the worker holds.
    count: usize,
    child: Child,
    requests: ChildStdin,
    replies: ChildStdout,
    stderr: Arc<Mutex<VecDeque<String>>>,
    timeout: Duration,
    spec: GymSpec,
    /// Set once the worker is known to be gone or unusable.
    broken: bool,
}

impl GymWorker {
    /// Starts the worker for `id` (e.g. `Hopper-v5`) and reads the environment's spaces.
    pub fn start(id: &str, options: &GymOptions) -> Result<GymWorker, GymError> {
        GymWorker::start_many(id, 1, options)
    }

    /// Starts one worker holding `count` environments of `id`, each made by its own
    /// `gym.make` (as `count` workers of [`GymWorker::start`] would make them), so that a
    /// population steps in one round trip instead of `count`.
    pub fn start_many(id: &str, count: usize, options: &GymOptions) -> Result<GymWorker, GymError> {
        let count = count.max(1);
        let mut child = Command::new(&options.python)
            .args(["-u", "-c", BRIDGE, id, &count.to_string()])
            .arg(options.kwargs.to_json())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| GymError::Spawn {
                python: options.python.clone(),
                id: id.to_string(),
                reason: e.to_string(),
            })?;
        let (requests, replies, stderr_pipe) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => unreachable!("all three pipes were requested"),
            };
        set_nonblocking(&replies);
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || keep_stderr_tail(stderr_pipe, tail));
        let mut worker = GymWorker {
            id: id.to_string(),
            count,
            child,
            requests,
            replies,
            stderr,
            timeout: options.timeout,
            spec: GymSpec {
                obs_dim: 0,
                action_low: vec![],
                action_high: vec![],
                max_episode_steps: None,
                flattened: false,
            },
            broken: false,
        };
        // Importing MuJoCo and compiling a model can take a while on a cold start: one
        // timeout for the imports and one for each environment's `gym.make`, made in turn.
        let makes = u32::try_from(count).unwrap_or(u32::MAX).saturating_add(1);
        let hello = worker.reply("start-up", options.timeout.saturating_mul(makes))?;
        worker.spec = worker.parse_hello(&hello)?;
        Ok(worker)
    }

    pub fn spec(&self) -> &GymSpec {
        &self.spec
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `env.reset(seed=seed)`: the first observation.
    pub fn reset(&mut self, seed: u64) -> Result<Vec<f64>, GymError> {
        self.send(b'R', &[&seed.to_le_bytes()])?;
        let reply = self.reply("reset", self.timeout)?;
        let obs = self.floats(&reply, self.spec.obs_dim)?;
        self.check_finite("observation", &obs, "reset")?;
        Ok(obs)
    }

    /// `env.step(action)` with an action already inside the bounds.
    pub fn step(&mut self, action: &[f64]) -> Result<GymStep, GymError> {
        let bytes: Vec<[u8; 8]> = action.iter().map(|a| a.to_le_bytes()).collect();
        let parts: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
        self.send(b'S', &parts)?;
        let reply = self.reply("step", self.timeout)?;
        let n = self.spec.obs_dim;
        if reply.len() != 8 * n + 10 {
            return Err(self.protocol(format!(
                "step reply of {} bytes, expected {}",
                reply.len(),
                8 * n + 10
            )));
        }
        let values = self.floats(&reply[..8 * n + 8], n + 1)?;
        let (obs, reward) = (values[..n].to_vec(), values[n]);
        self.check_finite("observation", &obs, "step")?;
        self.check_finite("reward", &[reward], "step")?;
        Ok(GymStep {
            obs,
            reward,
            terminated: reply[8 * n + 8] != 0,
            truncated: reply[8 * n + 9] != 0,
        })
    }

    /// Environments the worker holds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// `reset(seed=seed)` of environment `member`: its first observation.
    pub fn reset_member(&mut self, member: usize, seed: u64) -> Result<Vec<f64>, GymError> {
        let index = u32::try_from(member).unwrap_or(u32::MAX);
        self.send(b'M', &[&index.to_le_bytes(), &seed.to_le_bytes()])?;
        let reply = self.reply("reset", self.timeout)?;
        let obs = self.floats(&reply, self.spec.obs_dim)?;
        self.check_finite("observation", &obs, "reset")?;
        Ok(obs)
    }

    /// Steps every environment that has a request (`requests[i]` for environment `i`) in one
    /// round trip; one whose episode ends is reset at once with its request's seed. An
    /// environment's own failure is its entry; the `Err` is the worker's (it died, hung or
    /// broke the protocol), which every environment shares.
    pub fn step_members(
        &mut self,
        requests: &[Option<MemberRequest>],
    ) -> Result<Vec<MemberReply>, GymError> {
        let a = self.spec.action_low.len();
        if requests.len() != self.count {
            return Err(self.protocol(format!(
                "{} requests for {} environments",
                requests.len(),
                self.count
            )));
        }
        let mut fields = Vec::with_capacity(requests.len() * (5 + 8 * a));
        for request in requests {
            match request {
                Some(r) if r.action.len() == a => {
                    fields.push(1u8);
                    fields.extend_from_slice(&r.reset_seed.to_le_bytes());
                    r.action
                        .iter()
                        .for_each(|x| fields.extend_from_slice(&x.to_le_bytes()));
                }
                Some(r) => {
                    let message = format!("an action of {} entries, not {a}", r.action.len());
                    return Err(self.protocol(message));
                }
                None => fields.resize(fields.len() + 5 + 8 * a, 0),
            }
        }
        self.send(b'A', &[&fields])?;
        // The worker steps its environments in turn: each gets the timeout of one.
        let steps = u32::try_from(self.count).unwrap_or(u32::MAX);
        let reply = self.reply("step", self.timeout.saturating_mul(steps))?;
        let mut reader = Reader {
            bytes: &reply,
            at: 0,
        };
        let mut replies = Vec::with_capacity(self.count);
        for _ in 0..self.count {
            match self.member_reply(&mut reader) {
                Some(member) => replies.push(member),
                None => return Err(self.protocol("a truncated all-step reply".into())),
            }
        }
        if reader.at != reply.len() {
            return Err(self.protocol("an all-step reply with bytes left over".into()));
        }
        Ok(replies)
    }

    /// One environment's entry of an all-step reply (`None`: malformed).
    fn member_reply(&self, reader: &mut Reader) -> Option<MemberReply> {
        let n = self.spec.obs_dim;
        let status = reader.take(1)?[0];
        if status == 0 {
            return Some(MemberReply::Idle);
        }
        if status == 3 {
            return Some(MemberReply::Failed(self.environment(reader.message()?)));
        }
        let obs = reader.floats(n)?;
        let reward = reader.floats(1)?[0];
        let flags = reader.take(2)?;
        let step = GymStep {
            obs,
            reward,
            terminated: flags[0] != 0,
            truncated: flags[1] != 0,
        };
        let reset = match status {
            1 => None,
            2 => Some(reader.floats(n).map(|obs| {
                self.check_finite("observation", &obs, "reset")
                    .map(|()| obs)
            })?),
            4 => Some(Err(self.environment(reader.message()?))),
            _ => return None,
        };
        let finite = self
            .check_finite("observation", &step.obs, "step")
            .and_then(|()| self.check_finite("reward", &[step.reward], "step"));
        Some(match finite {
            Ok(()) => MemberReply::Stepped { step, reset },
            Err(e) => MemberReply::Failed(e),
        })
    }

    fn environment(&self, message: String) -> GymError {
        GymError::Environment {
            id: self.id.clone(),
            message: message.trim_end().to_string(),
        }
    }

    /// Python's own time for `env.step` (ns, mean over `steps` sampled actions), measured
    /// inside the worker.
    pub fn python_step_ns(&mut self, steps: u32, seed: u64) -> Result<f64, GymError> {
        self.send(b'B', &[&steps.to_le_bytes(), &seed.to_le_bytes()])?;
        let reply = self.reply("benchmark", self.timeout * 10)?;
        Ok(self.floats(&reply, 1)?[0])
    }

    /// Sends one request: `op` and its fields, zero-padded to the fixed request size.
    fn send(&mut self, op: u8, fields: &[&[u8]]) -> Result<(), GymError> {
        if self.broken {
            return Err(self.died("it failed earlier".into()));
        }
        let a = self.spec.action_low.len();
        let members = if self.count > 1 {
            self.count * (5 + 8 * a)
        } else {
            0
        };
        let size = 1 + (8 * a).max(12).max(members);
        let mut request = Vec::with_capacity(size);
        request.push(op);
        for field in fields {
            request.extend_from_slice(field);
        }
        request.resize(size, 0);
        if self
            .requests
            .write_all(&request)
            .and_then(|()| self.requests.flush())
            .is_err()
        {
            return Err(self.died_now());
        }
        Ok(())
    }

    /// The next successful reply's payload; failures, deaths and timeouts as errors.
    fn reply(&mut self, during: &'static str, timeout: Duration) -> Result<Vec<u8>, GymError> {
        let deadline = Instant::now() + timeout;
        let mut length = [0u8; 4];
        let frame = self.read_by(&mut length, deadline).and_then(|()| {
            let mut frame = vec![0u8; u32::from_le_bytes(length) as usize];
            self.read_by(&mut frame, deadline).map(|()| frame)
        });
        match frame {
            Ok(frame) => match frame.split_first() {
                Some((0, payload)) => Ok(payload.to_vec()),
                Some((1, rest)) => {
                    let (kind, message) = rest.split_first().unwrap_or((&0, &[]));
                    let message = String::from_utf8_lossy(message).trim_end().to_string();
                    if during == "start-up" {
                        self.broken = true;
                    }
                    let id = self.id.clone();
                    Err(match kind {
                        1 => GymError::MissingPackage { message },
                        2 => GymError::UnknownId { id, message },
                        3 => {
                            let (keyword, message) =
                                message.split_once('\n').unwrap_or(("?", &message));
                            GymError::RejectedKeyword {
                                id,
                                keyword: keyword.to_string(),
                                message: message.to_string(),
                            }
                        }
                        _ => GymError::Environment { id, message },
                    })
                }
                _ => Err(self.protocol("a reply without a status byte".into())),
            },
            Err(Wait::Closed) => Err(self.died_now()),
            Err(Wait::TimedOut) => {
                self.stop();
                Err(GymError::Timeout {
                    id: self.id.clone(),
                    during,
                    seconds: timeout.as_secs(),
                    stderr: self.stderr_tail(),
                })
            }
        }
    }

    /// Fills `buf` from the worker's stdout: polls for [`SPIN`], then waits in `poll(2)`
    /// until `deadline`.
    fn read_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Wait> {
        let mut filled = 0;
        let spin_until = Instant::now() + SPIN;
        while filled < buf.len() {
            match self.replies.read(&mut buf[filled..]) {
                Ok(0) => return Err(Wait::Closed),
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Wait::TimedOut);
                    }
                    if now < spin_until {
                        // Yielding, not spinning: on a single CPU the worker must get to run.
                        std::thread::yield_now();
                    } else {
                        wait_readable(&self.replies, deadline - now);
                    }
                }
                Err(_) => return Err(Wait::Closed),
            }
        }
        Ok(())
    }

    /// The worker is gone: reap it and say how it ended.
    fn died_now(&mut self) -> GymError {
        self.broken = true;
        // Its pipes are closed, so it has exited or is about to.
        let status = match wait_briefly(&mut self.child) {
            Some(status) => status.to_string(),
            None => {
                self.stop();
                "closed its pipes".to_string()
            }
        };
        // Give the stderr thread a moment to collect the last lines (a traceback).
        std::thread::sleep(Duration::from_millis(50));
        self.died(status)
    }

    fn died(&self, status: String) -> GymError {
        GymError::Died {
            id: self.id.clone(),
            status,
            stderr: self.stderr_tail(),
        }
    }

    fn protocol(&mut self, message: String) -> GymError {
        self.stop();
        GymError::Protocol {
            id: self.id.clone(),
            message,
        }
    }

    fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = lines.into_iter().collect();
            format!("; its last stderr lines:\n  {}", lines.join("\n  "))
        }
    }

    fn check_finite(
        &self,
        what: &'static str,
        values: &[f64],
        during: &'static str,
    ) -> Result<(), GymError> {
        match values.iter().find(|v| !v.is_finite()) {
            Some(&value) => Err(GymError::NonFinite {
                id: self.id.clone(),
                what,
                value,
                during,
            }),
            None => Ok(()),
        }
    }

    fn floats(&mut self, bytes: &[u8], n: usize) -> Result<Vec<f64>, GymError> {
        if bytes.len() != 8 * n {
            return Err(self.protocol(format!(
                "{} bytes where {n} floats were expected",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect())
    }

    fn parse_hello(&mut self, hello: &[u8]) -> Result<GymSpec, GymError> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                hello.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        let (Some(version), Some(obs_dim), Some(action_dim)) = (word(0), word(1), word(2)) else {
            return Err(self.protocol("a hello of fewer than 12 bytes".into()));
        };
        if version != PROTOCOL_VERSION {
            return Err(self.protocol(format!(
                "protocol version {version}, this mixsac speaks {PROTOCOL_VERSION}"
            )));
        }
        let a = action_dim as usize;
        if hello.len() != 12 + 16 * a + 9 {
            return Err(self.protocol(format!("a hello of {} bytes", hello.len())));
        }
        let bounds = self.floats(&hello[12..12 + 16 * a], 2 * a)?;
        let tail = &hello[12 + 16 * a..];
        let limit = i64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
        Ok(GymSpec {
            obs_dim: obs_dim as usize,
            action_low: bounds[..a].to_vec(),
            action_high: bounds[a..].to_vec(),
            max_episode_steps: usize::try_from(limit).ok(),
            flattened: tail[8] != 0,
        })
    }

    /// Kills and reaps the worker.
    fn stop(&mut self) {
        self.broken = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GymWorker {
    /// Asks the worker to quit, then makes sure it has: no zombie, no orphan.
    fn drop(&mut self) {
        if !self.broken && self.requests.write_all(b"Q").is_ok() {
            let _ = self.requests.flush();
            if wait_briefly(&mut self.child).is_some() {
                return;
            }
        }
        self.stop();
    }
}

/// Reads an all-step reply front to back; `None` where it ends early.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let part = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(part)
    }

    fn floats(&mut self, n: usize) -> Option<Vec<f64>> {
        let part = self.take(8 * n)?;
        Some(
            part.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
        )
    }

    /// A u32-length-prefixed UTF-8 message.
    fn message(&mut self) -> Option<String> {
        let length = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        Some(String::from_utf8_lossy(self.take(length)?).into_owned())
    }
}

/// The exit status if the child ends within a second.
fn wait_briefly(child: &mut Child) -> Option<std::process::ExitStatus> {
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Why a reply did not arrive.
enum Wait {
    /// The pipe closed (the worker exited) or broke.
    Closed,
    TimedOut,
}

fn set_nonblocking(pipe: &ChildStdout) {
    let fd = pipe.as_raw_fd();
    // SAFETY: fcntl on a file descriptor we own; failure leaves the pipe blocking, which
    // only costs the timeout, so the result is not needed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Blocks until `pipe` is readable, closed, or `timeout` has passed.
fn wait_readable(pipe: &ChildStdout, timeout: Duration) {
    let mut poll = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut poll, 1, ms);
    }
}

/// Keeps the last lines of the worker's stderr for error messages.
fn keep_stderr_tail(stderr: impl Read, tail: Arc<Mutex<VecDeque<String>>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { return };
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}
