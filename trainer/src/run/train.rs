//! The training loop: SAC on one environment, with metrics.csv, checkpoints that `--resume`
//! continues exactly, and the policy exported with policy-core's writer.

use super::checkpoint::{
    load_checkpoint, reconcile_population, swap_in_pending_checkpoint, write_pending_checkpoint,
    Integrity, LoopState, Window,
};
use super::metrics::{keep_until, MetricsRow, MetricsWriter};
use super::run_dir::{CheckpointDir, RunDir};
use crate::config::{Alpha, Config};
use crate::envs::{EnvBatch, MemberStep, Transition};
use crate::sac::replay::{DeviceReplay, ReplayBuffer};
use crate::sac::{Agent, CriticSource, Minibatch};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub steps: usize,
    pub episodes: usize,
    /// Mean return of the episodes finished in the last metrics window (NaN if none).
    pub last_return: f64,
    pub policy_file: PathBuf,
}

fn device(config: &Config) -> Result<Device> {
    match config.device {
        crate::config::Device::Cpu => Ok(Device::Cpu),
        crate::config::Device::Cuda if cfg!(feature = "cuda") => Device::new_cuda(0).map_err(|e| {
            // The driver's reason, without the backtrace candle attaches.
            let reason = match e {
                candle_core::Error::WithBacktrace { inner, .. } => inner.to_string(),
                other => other.to_string(),
            };
            anyhow::anyhow!("--device cuda: cannot open CUDA device 0: {reason}")
        }),
        crate::config::Device::Cuda => bail!(
            "--device cuda needs a build with `--features cuda` (and nvcc); this build is CPU-only"
        ),
    }
}

/// What [`train`] tells its caller while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// Continuing the run in `dir` from its checkpoint at `step`.
    Resumed {
        dir: PathBuf,
        step: usize,
        steps: usize,
    },
    /// The checkpoint in `dir` has no manifest (it was written by a mixsac from before
    /// checkpoints were checksummed), so its files could not be checked for damage; the run
    /// continues from it, and its next checkpoint has a manifest.
    UnverifiedCheckpoint { dir: PathBuf },
    /// The environment (Gymnasium) cannot restore its mid-episode state: a new episode
    /// starts, and the interrupted one's return is not counted.
    EpisodeRestarted,
    /// A population member stopped (`reason`); its last checkpoint in `dir` is intact and
    /// the other members go on.
    MemberFailed { dir: PathBuf, reason: String },
    /// A metrics row was written (every `log_every` steps and at the end).
    Logged {
        step: usize,
        steps: usize,
        episodes: usize,
        /// Mean return of the episodes finished since the last row (NaN if none).
        recent_return: f64,
        steps_per_sec: f64,
    },
}

impl std::fmt::Display for TrainEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainEvent::Resumed { dir, step, steps } => {
                write!(f, "resuming {} at step {step} of {steps}", dir.display())
            }
            TrainEvent::UnverifiedCheckpoint { dir } => write!(
                f,
                "warning: {} is missing (a checkpoint written by a mixsac from before \
                 checkpoints were checksummed), so the checkpoint's files cannot be checked \
                 for damage; resuming from it unchecked",
                CheckpointDir::new(dir).manifest().display()
            ),
            TrainEvent::MemberFailed { dir, reason } => {
                write!(f, "member {} stopped: {reason}", dir.display())
            }
            TrainEvent::EpisodeRestarted => f.write_str(
                "the environment cannot restore its mid-episode state; continuing with a new episode",
            ),
            TrainEvent::Logged {
                step,
                steps,
                episodes,
                recent_return,
                steps_per_sec,
            } => write!(
                f,
                "step {step}/{steps}  {}",
                logged_summary(*episodes, *recent_return, *steps_per_sec)
            ),
        }
    }
}

/// How a [`TrainEvent::Logged`] reads after its step count (a progress bar shows the step).
pub fn logged_summary(episodes: usize, recent_return: f64, steps_per_sec: f64) -> String {
    format!("episodes {episodes}  recent return {recent_return:.3}  {steps_per_sec:.0} steps/s")
}

/// How [`train`] treats its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new run: the directory must not hold one.
    Fresh,
    /// Continue the run in the directory from its last checkpoint.
    Resume,
    /// Benchmark: train without writing checkpoints, metrics or the policy.
    NoFiles,
}

/// What plays the critic for `config.env`: a bandit's known reward, else a learned double Q.
/// The one place that decides it, from the environment's family.
fn critic_source(config: &Config) -> CriticSource {
    match config.env.bandit() {
        Some(bandit) => CriticSource::TrueReward(Box::new(move |a: &Tensor| {
            bandit.reward_tensor(a)?.squeeze(D::Minus1)
        })),
        None => CriticSource::LearnedDoubleQ,
    }
}

/// The agent a population of `configs` starts with in `envs`, and each member's generator
/// after its initialisation draws (where its run goes on drawing).
pub(crate) fn new_agent(
    configs: &[Config],
    envs: &EnvBatch,
    device: &Device,
) -> Result<(Agent, Vec<Pcg64>)> {
    let spec = envs.spec();
    let mut rngs: Vec<Pcg64> = configs
        .iter()
        .map(|c| Pcg64::seed_from_u64(c.seed))
        .collect();
    let shared = configs
        .first()
        .context("a population needs at least one member")?;
    let agent = Agent::new(
        configs,
        envs.obs_dim(),
        &spec.action_low,
        &spec.action_high,
        critic_source(shared),
        &mut rngs,
        device,
    )?;
    Ok((agent, rngs))
}

/// Trains from scratch into `dir` (which must not hold a run), or continues the run there.
/// Resuming a run that had already finished writes its `policy.mxp` again and trains no
/// further.
pub fn train(
    config: &Config,
    dir: &Path,
    mode: Mode,
    report: impl FnMut(TrainEvent),
) -> Result<Summary> {
    let mut summaries = train_population(std::slice::from_ref(config), &[dir], mode, report)?;
    match summaries.pop() {
        Some(Ok(summary)) => Ok(summary),
        Some(Err(failure)) => bail!("{failure}"),
        None => bail!("no run"),
    }
}

/// Trains a population: one member per config, each into its own run directory (an
/// ordinary one: `eval`, `inspect`, `plot` and a solo `--resume` treat it like any run),
/// all updated together by one batched agent. The members must agree on everything but
/// seed, α and learning rates ([`check_population`]). A member that diverges or whose
/// environment fails stops there with its last checkpoint intact, and the others go on;
/// its entry is the reason. A solo run (one member) returns its failure as the error.
pub fn train_population(
    configs: &[Config],
    dirs: &[&Path],
    mode: Mode,
    mut report: impl FnMut(TrainEvent),
) -> Result<Vec<std::result::Result<Summary, String>>> {
    check_population(configs)?;
    crate::nn::dense_op::set_threads(configs[0].threads);
    anyhow::ensure!(
        configs.len() == dirs.len(),
        "{} configs for {} run directories",
        configs.len(),
        dirs.len()
    );
    let mut session = Session::start(configs, dirs, mode, &mut report)?;
    let shared = &configs[0];
    let finished_before = session.step >= shared.steps;
    let mut last_returns = vec![f64::NAN; configs.len()];
    while session.step < shared.steps && session.active() > 0 {
        session.step(&mut report)?;
        let step = session.step;
        if step % shared.log_every == 0 || step == shared.steps {
            last_returns = session.log(&mut report)?;
        }
    }
    if finished_before {
        // Resumed a run that had already finished: its policy file is written again.
        for (i, member) in session.members.iter().enumerate() {
            std::fs::write(member.run.policy(), session.agent.actor.export(i)?)?;
        }
    }
    Ok(session
        .members
        .iter()
        .zip(last_returns)
        .map(|(member, last_return)| match &member.failure {
            Some(reason) => Err(reason.clone()),
            None => Ok(Summary {
                steps: member.state.step,
                episodes: member.state.episode,
                last_return,
                policy_file: member.run.policy(),
            }),
        })
        .collect())
}

/// Gives the process `threads` CPU threads (rayon's global pool, which candle's path and its
/// kernels share; the hand-written update splits its products on its own team of threads,
/// `nn/team.rs`) before the first run starts; `mixsac` calls it for `--threads`.
/// The pool's size is fixed once built: a later, different request is an error.
pub fn use_threads(threads: usize) -> Result<()> {
    if threads <= 1 {
        return Ok(());
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(e) => bail!(
            "--threads {threads}: the thread pool already has {} threads ({e})",
            rayon::current_num_threads()
        ),
    }
}

/// What members of one population must share: the config with the settings members may
/// differ in (seed, fixed α values, actor and critic learning rates) set aside. Runs whose
/// keys are equal can train as one population.
pub fn population_key(config: &Config) -> Config {
    let mut shared = config.clone();
    shared.seed = 0;
    shared.actor_lr = 0.0;
    shared.critic_lr = 0.0;
    if let Alpha::Fixed(_) = shared.alpha {
        shared.alpha = Alpha::Fixed(0.0);
    }
    shared
}

/// Refuses a population whose members differ in anything but seed, α (fixed values; all
/// fixed or all automatic) and the actor and critic learning rates: the rest shapes the
/// tensors or the loop they share.
pub fn check_population(configs: &[Config]) -> Result<()> {
    let Some(first) = configs.first() else {
        bail!("a population needs at least one member");
    };
    for config in configs {
        config.validate()?;
    }
    let key = population_key(first);
    for (i, config) in configs.iter().enumerate().skip(1) {
        let mine = population_key(config);
        if mine != key {
            let lines = |c: &Config| -> Vec<String> {
                toml::to_string(c)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect()
            };
            let (mine, theirs) = (lines(&mine), lines(&key));
            let differs = mine
                .iter()
                .find(|l| !theirs.contains(l))
                .map_or("?".to_string(), |l| {
                    l.split('=').next().unwrap_or(l).trim().to_string()
                });
            bail!(
                "population member {i} differs from member 0 in `{differs}`: members may differ only in seed, alpha (fixed values) and the actor and critic learning rates"
            );
        }
    }
    Ok(())
}

/// A population in progress: the shared agent and step, and each member's run.
struct Session<'a> {
    configs: &'a [Config],
    agent: Agent,
    /// Every member's environment, stepped together.
    envs: EnvBatch,
    members: Vec<Member>,
    /// Each member's one random stream: actions, minibatches, resets, update draws. Kept
    /// apart from the members so the agent can borrow them all at once.
    rngs: Vec<Pcg64>,
    /// Steps taken by every member.
    step: usize,
    /// When the last metrics rows were written, for steps/s.
    row_clock: RowClock,
    /// The replay buffers' copy on a GPU, where minibatches are gathered; None on the CPU.
    device_replay: Option<DeviceReplay>,
}

/// One run of the population: what a solo run's loop works on besides the agent.
struct Member {
    run: RunDir,
    buffer: ReplayBuffer,
    /// Everything besides tensors that a checkpoint saves (step, episode bookkeeping, the
    /// metrics window); its `rng` is refreshed from the member's generator at every
    /// checkpoint.
    state: LoopState,
    /// The observation the member acts on next.
    obs: Vec<f32>,
    /// None when benchmarking ([`Mode::NoFiles`]).
    metrics: Option<MetricsWriter>,
    /// Why the member stopped (it diverged, or its environment failed).
    failure: Option<String>,
}

/// The wall-clock time and step of the last metrics row.
struct RowClock {
    at: Instant,
    step: usize,
}

impl<'a> Session<'a> {
    /// Builds the environments and the agent, then starts the runs or restores them from
    /// their checkpoints.
    fn start(
        configs: &'a [Config],
        dirs: &[&Path],
        mode: Mode,
        report: &mut impl FnMut(TrainEvent),
    ) -> Result<Session<'a>> {
        let shared = &configs[0];
        let device = device(shared)?;
        // Members share the environment and its options (check_population).
        let mut envs = EnvBatch::make(&shared.env, configs.len(), &shared.gym_options())?;
        let (obs_dim, action_dim) = (envs.obs_dim(), envs.action_dim());
        let (mut agent, mut rngs) = new_agent(configs, &envs, &device)?;
        if mode == Mode::Resume && configs.len() > 1 {
            let runs: Vec<RunDir> = dirs.iter().map(RunDir::new).collect();
            reconcile_population(&runs)?;
        }
        let mut members = Vec::with_capacity(configs.len());
        for (i, (config, dir)) in configs.iter().zip(dirs).enumerate() {
            let run = RunDir::new(dir);
            let mut buffer = ReplayBuffer::new(config.buffer_size, obs_dim, action_dim);
            let mut obs = vec![0.0f32; obs_dim];
            let state = match mode {
                Mode::Resume => {
                    let (mut p, integrity) =
                        load_checkpoint(&run, &mut agent, i, &mut buffer, &device)?;
                    if integrity == Integrity::Unverified {
                        report(TrainEvent::UnverifiedCheckpoint {
                            dir: run.checkpoint(),
                        });
                    }
                    keep_until(&run.metrics(), p.step, p.last_row.as_deref())?;
                    report(TrainEvent::Resumed {
                        dir: run.root.clone(),
                        step: p.step,
                        steps: config.steps,
                    });
                    if envs.can_restore() {
                        envs.resume_at(i, &p.env_state, p.env_steps, &mut obs)?;
                        obs.clone_from(&p.obs);
                    } else {
                        // Gymnasium keeps its state in Python: continue with a fresh episode,
                        // seeded from the checkpoint's generator (the interrupted episode's
                        // return is not counted).
                        report(TrainEvent::EpisodeRestarted);
                        envs.reset(i, &mut p.rng, &mut obs)?;
                        p.episode_return = 0.0;
                        p.episode_length = 0;
                    }
                    rngs[i] = p.rng.clone();
                    p
                }
                Mode::Fresh | Mode::NoFiles => {
                    if mode == Mode::Fresh {
                        create_run_dir(&run, config)?;
                    }
                    envs.reset(i, &mut rngs[i], &mut obs)?;
                    LoopState::new(rngs[i].clone(), envs.state(i), obs.clone())
                }
            };
            let metrics = match mode {
                Mode::NoFiles => None,
                Mode::Fresh | Mode::Resume => Some(MetricsWriter::append(&run.metrics())?),
            };
            members.push(Member {
                run,
                buffer,
                state,
                obs,
                metrics,
                failure: None,
            });
        }
        let step = members[0].state.step;
        if members.iter().any(|m| m.state.step != step) {
            bail!(
                "the population's checkpoints are at different steps; resume each run on its own"
            );
        }
        let device_replay = match device.is_cpu() {
            true => None,
            false => {
                let buffers: Vec<&ReplayBuffer> = members.iter().map(|m| &m.buffer).collect();
                Some(DeviceReplay::new(&buffers, &device)?)
            }
        };
        Ok(Session {
            configs,
            agent,
            envs,
            members,
            rngs,
            step,
            row_clock: RowClock {
                at: Instant::now(),
                step,
            },
            device_replay,
        })
    }

    /// Members still training.
    fn active(&self) -> usize {
        self.members.iter().filter(|m| m.failure.is_none()).count()
    }

    /// Stops member `i` with `error`: in a solo run that is the run's error; in a
    /// population the member is frozen and reported, and the others go on.
    fn fail(
        &mut self,
        i: usize,
        error: anyhow::Error,
        report: &mut impl FnMut(TrainEvent),
    ) -> Result<()> {
        if self.members.len() == 1 {
            return Err(error);
        }
        let reason = format!("{error:#}");
        report(TrainEvent::MemberFailed {
            dir: self.members[i].run.root.clone(),
            reason: reason.clone(),
        });
        self.members[i].failure = Some(reason);
        self.agent.freeze(i);
        Ok(())
    }

    /// One environment step of every member (uniformly random actions for the first
    /// `learning_starts`), stored in its replay buffer, then one SAC update of every member
    /// once there is a minibatch.
    fn step(&mut self, report: &mut impl FnMut(TrainEvent)) -> Result<()> {
        let shared = &self.configs[0];
        self.step += 1;
        let step = self.step;
        let a = self.envs.action_dim();
        let actions: Vec<f32> = if step <= shared.learning_starts {
            let spec = self.envs.spec();
            let mut actions = Vec::with_capacity(a * self.members.len());
            for rng in &mut self.rngs {
                let bounds = spec.action_low.iter().zip(&spec.action_high);
                actions.extend(bounds.map(|(&l, &h)| rng.random_range(l..h) as f32));
            }
            actions
        } else {
            let obs: Vec<f32> = self
                .members
                .iter()
                .flat_map(|m| m.obs.iter().copied())
                .collect();
            self.agent.act(&obs, &mut self.rngs)?
        };
        let checkpoint_every = shared.checkpoint_interval();
        // Every training member with a finite action steps, all at once.
        let actions64: Vec<f64> = actions.iter().map(|&x| f64::from(x)).collect();
        let mut stepping: Vec<Option<&[f64]>> = vec![None; self.members.len()];
        for i in 0..self.members.len() {
            if self.members[i].failure.is_some() {
                continue;
            }
            self.members[i].state.step = step;
            let action = &actions[i * a..(i + 1) * a];
            if action.iter().any(|x| !x.is_finite()) {
                let error = anyhow::anyhow!(
                    "the policy produced a non-finite action at step {step} (training diverged); stopped. {}",
                    intact(&self.members[i].run, step, checkpoint_every)
                );
                self.fail(i, error, report)?;
            } else {
                stepping[i] = Some(&actions64[i * a..(i + 1) * a]);
            }
        }
        let outcomes = self.envs.step_all(&stepping, &mut self.rngs);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let action = &actions[i * a..(i + 1) * a];
            let member = &mut self.members[i];
            let booked = match outcome {
                MemberStep::Idle => continue,
                MemberStep::Failed(e) => Err(anyhow::Error::new(e).context(format!(
                    "the environment failed at step {step}; stopped. {}",
                    intact(&member.run, step, checkpoint_every)
                ))),
                MemberStep::Stepped { transition, reset } => {
                    let next_obs = self.envs.next_obs(i);
                    let restarted = reset.map(|r| r.map(|()| self.envs.first_obs(i)));
                    member.book(
                        step,
                        checkpoint_every,
                        action,
                        transition,
                        next_obs,
                        restarted,
                    )
                }
            };
            if let Err(error) = booked {
                self.fail(i, error, report)?;
            }
        }
        // Members train in step; a stopped member's update is computed and discarded, on a
        // minibatch from a training member's buffer (its own may be too small).
        let training = self.members.iter().position(|m| m.failure.is_none());
        let buffers: Vec<&ReplayBuffer> = self.members.iter().map(|m| &m.buffer).collect();
        if let (Some(replay), Some(t)) = (&self.device_replay, training) {
            if let Some(slot) = buffers[t].last_slot() {
                replay.store(&buffers, slot)?;
            }
        }
        let ready = training.is_some_and(|t| buffers[t].len() >= shared.batch_size);
        if step > shared.learning_starts && ready {
            let sources: Vec<usize> = (0..buffers.len())
                .map(|i| match self.members[i].failure {
                    None => i,
                    Some(_) => training.unwrap_or(i),
                })
                .collect();
            let minibatch = match &self.device_replay {
                Some(replay) => {
                    let slots: Vec<Vec<usize>> = sources
                        .iter()
                        .zip(&mut self.rngs)
                        .map(|(&m, rng)| buffers[m].sample_slots(shared.batch_size, rng))
                        .collect();
                    replay.gather(&slots, &sources)?
                }
                None => {
                    let batches: Vec<_> = sources
                        .iter()
                        .zip(&mut self.rngs)
                        .map(|(&m, rng)| buffers[m].sample(shared.batch_size, rng))
                        .collect();
                    let (o, a) = (self.envs.obs_dim(), self.envs.action_dim());
                    Minibatch::from_batches(&batches, o, a, &Device::Cpu)?
                }
            };
            drop(buffers);
            let stats = self.agent.update(&minibatch, &mut self.rngs)?;
            for (i, stats) in stats.iter().enumerate() {
                if self.members[i].failure.is_some() {
                    continue;
                }
                if !stats.is_finite() {
                    let error = anyhow::anyhow!(
                        "non-finite loss at step {step} (critic {}, actor {}, alpha {}); stopped. {}",
                        stats.critic_loss.map_or("-".into(), |c| c.to_string()),
                        stats.actor_loss,
                        stats.alpha,
                        intact(&self.members[i].run, step, shared.checkpoint_interval())
                    );
                    self.fail(i, error, report)?;
                } else {
                    self.members[i].state.window.add(stats);
                }
            }
        }
        Ok(())
    }

    /// Writes each training member's metrics row, checkpoint and policy file (unless
    /// benchmarking) and reports progress; returns each member's mean return of the
    /// episodes since the last row.
    fn log(&mut self, report: &mut impl FnMut(TrainEvent)) -> Result<Vec<f64>> {
        let RowClock { at, step } = &self.row_clock;
        let sps = (self.step - step) as f64 / at.elapsed().as_secs_f64().max(1e-9);
        let mut returns = Vec::with_capacity(self.members.len());
        let mut rows = Vec::with_capacity(self.members.len());
        for (i, member) in self.members.iter_mut().enumerate() {
            let p = &mut member.state;
            returns.push(mean(&p.window.returns));
            let row = metrics_row(p, self.agent.alpha(i), sps);
            p.rng = self.rngs[i].clone();
            p.env_state = self.envs.state(i);
            p.env_steps = self.envs.episode_steps(i);
            p.obs.clone_from(&member.obs);
            p.last_row = Some(row.to_line()?);
            p.window = Window::default();
            rows.push(row);
        }
        let shared = &self.configs[0];
        let checkpoint_every = shared.checkpoint_interval();
        let checkpoint = self.step.is_multiple_of(checkpoint_every) || self.step == shared.steps;
        if self.members[0].metrics.is_some() && !checkpoint {
            // A row between checkpoints: a crash before the next one costs the rows since
            // the last, which the resumed run writes again (`keep_until`).
            for (member, row) in self.members.iter_mut().zip(&rows) {
                if let (None, Some(metrics)) = (&member.failure, &mut member.metrics) {
                    metrics.write(row)?;
                }
            }
        } else if self.members[0].metrics.is_some() {
            // First every member's policy (a member whose weights are no longer finite
            // stops here, its last checkpoint intact) and pending checkpoint, then the
            // swaps: an interruption leaves every member able to reach one common step.
            let mut policies: Vec<Option<Vec<u8>>> = Vec::with_capacity(self.members.len());
            for i in 0..self.members.len() {
                policies.push(None);
                if self.members[i].failure.is_some() {
                    continue;
                }
                match self.agent.actor.export(i) {
                    Ok(bytes) => policies[i] = Some(bytes),
                    Err(e) => {
                        let run = &self.members[i].run;
                        let advice = intact(run, self.step, checkpoint_every);
                        let error = e.context(format!(
                            "the policy diverged by step {} (training diverged); stopped. {advice}",
                            self.step
                        ));
                        self.fail(i, error, report)?;
                        continue;
                    }
                }
                let m = &self.members[i];
                write_pending_checkpoint(&m.run, &self.agent, i, &m.buffer, &m.state)?;
            }
            for ((member, policy), row) in self.members.iter_mut().zip(policies).zip(&rows) {
                let (Some(policy), Some(metrics)) = (policy, &mut member.metrics) else {
                    continue;
                };
                swap_in_pending_checkpoint(&member.run)?;
                metrics.write(row)?;
                std::fs::write(member.run.policy(), policy)?;
            }
        }
        let training = self
            .members
            .iter()
            .zip(&returns)
            .filter(|(m, _)| m.failure.is_none());
        let recent: Vec<f64> = training.map(|(_, &r)| r).filter(|r| !r.is_nan()).collect();
        report(TrainEvent::Logged {
            step: self.step,
            steps: self.configs[0].steps,
            episodes: self.members.iter().map(|m| m.state.episode).sum(),
            recent_return: mean(&recent),
            steps_per_sec: sps * self.active().max(1) as f64,
        });
        self.row_clock = RowClock {
            at: Instant::now(),
            step: self.step,
        };
        Ok(returns)
    }
}

impl Member {
    /// Books one environment step taken with `action`: the transition into the replay
    /// buffer and the episode's accounts; where the episode ended, `restarted` is the next
    /// episode's first observation (or why its reset failed).
    fn book(
        &mut self,
        step: usize,
        checkpoint_every: usize,
        action: &[f32],
        t: Transition,
        next_obs: &[f32],
        restarted: Option<Result<&[f32], crate::envs::EnvError>>,
    ) -> Result<()> {
        if !t.reward.is_finite() {
            bail!(
                "the environment returned a non-finite reward ({}) at step {step}",
                t.reward
            );
        }
        self.buffer
            .push(&self.obs, action, t.reward as f32, next_obs, t.terminated);
        self.state.episode_return += t.reward;
        self.state.episode_length += 1;
        match restarted {
            None => self.obs.copy_from_slice(next_obs),
            Some(first) => {
                self.state.end_episode();
                let first = first.with_context(|| {
                    format!(
                        "the environment failed to reset at step {step}; stopped. {}",
                        intact(&self.run, step, checkpoint_every)
                    )
                })?;
                self.obs.copy_from_slice(first);
            }
        }
        Ok(())
    }
}

/// The recovery advice after a divergence at `step`.
fn intact(run: &RunDir, step: usize, checkpoint_every: usize) -> String {
    let saved = (step - 1) / checkpoint_every * checkpoint_every;
    if saved == 0 {
        return format!(
            "No checkpoint had been written yet (the first comes at step {checkpoint_every})"
        );
    }
    format!(
        "The last checkpoint ({}, step {saved}) and its policy.mxp are intact: continue with \
         --resume (after a divergence, lower the learning rates in {} first), or start again",
        run.checkpoint().display(),
        run.config().display()
    )
}

/// A new run directory with its config.toml and an empty metrics.csv; refuses one that
/// already holds a run.
fn create_run_dir(run: &RunDir, config: &Config) -> Result<()> {
    if run.checkpoint().exists() || run.metrics().exists() {
        bail!(
            "{} already holds a run; use --resume to continue it, or another --out",
            run.root.display()
        );
    }
    std::fs::create_dir_all(&run.root)
        .with_context(|| format!("cannot create {}", run.root.display()))?;
    config.save(&run.config())?;
    MetricsWriter::create(&run.metrics())
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn metrics_row(p: &LoopState, alpha: f64, steps_per_sec: f64) -> MetricsRow {
    let w = &p.window;
    let per_update = |x: f64| {
        if w.updates == 0 {
            f64::NAN
        } else {
            x / w.updates as f64
        }
    };
    let lengths: Vec<f64> = w.lengths.iter().map(|&l| l as f64).collect();
    MetricsRow {
        step: p.step,
        episode: p.episode,
        episode_return: mean(&w.returns),
        episode_length: mean(&lengths),
        critic_loss: per_update(w.critic_loss),
        actor_loss: per_update(w.actor_loss),
        alpha,
        log_prob_mean: per_update(w.log_prob),
        steps_per_sec,
    }
}

/// The directory's saved config (for `--resume`).
pub fn saved_config(dir: &Path) -> Result<Config> {
    Config::load(&RunDir::new(dir).config())
}
