//! The training loop: SAC on one environment, with metrics.csv, checkpoints that `--resume`
//! continues exactly, and the policy exported with policy-core's writer.

use super::checkpoint::{load_checkpoint, save_checkpoint, Integrity, LoopState, Window};
use super::metrics::{keep_until, MetricsRow, MetricsWriter};
use super::run_dir::{CheckpointDir, RunDir};
use crate::config::Config;
use crate::envs::Env;
use crate::sac::replay::ReplayBuffer;
use crate::sac::{Agent, CriticSource};
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

/// Trains from scratch into `dir` (which must not hold a run), or continues the run there.
/// Resuming a run that had already finished writes its `policy.mxp` again and trains no
/// further.
pub fn train(
    config: &Config,
    dir: &Path,
    mode: Mode,
    mut report: impl FnMut(TrainEvent),
) -> Result<Summary> {
    let mut session = Session::start(config, dir, mode, &mut report)?;
    let finished_before = session.state.step >= config.steps;
    let mut last_return = f64::NAN;
    while session.state.step < config.steps {
        session.step()?;
        let step = session.state.step;
        if step % config.log_every == 0 || step == config.steps {
            last_return = session.log(&mut report)?;
        }
    }
    if finished_before {
        // Resumed a run that had already finished: its policy file is written again.
        std::fs::write(session.run.policy(), session.agent.actor.export(0)?)?;
    }
    Ok(Summary {
        steps: session.state.step,
        episodes: session.state.episode,
        last_return,
        policy_file: session.run.policy(),
    })
}

/// A run in progress: what the loop works on.
struct Session<'a> {
    config: &'a Config,
    run: RunDir,
    env: Env,
    agent: Agent,
    buffer: ReplayBuffer,
    /// Everything besides tensors that a checkpoint saves (step, episode bookkeeping, the
    /// metrics window); its `rng` is refreshed from `rng` at every checkpoint.
    state: LoopState,
    /// The one random stream of the run: actions, minibatches, resets.
    rng: Pcg64,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    /// None when benchmarking ([`Mode::NoFiles`]).
    metrics: Option<MetricsWriter>,
    /// When the last metrics row was written, for steps/s.
    row_clock: RowClock,
}

/// The wall-clock time and step of the last metrics row.
struct RowClock {
    at: Instant,
    step: usize,
}

impl<'a> Session<'a> {
    /// Builds the environment and the agent, then starts the run or restores it from its
    /// checkpoint.
    fn start(
        config: &'a Config,
        dir: &Path,
        mode: Mode,
        report: &mut impl FnMut(TrainEvent),
    ) -> Result<Session<'a>> {
        let run = RunDir::new(dir);
        let device = device(config)?;
        let mut env = config.env.make(&config.gym_options())?;
        let spec = env.spec().clone();
        let mut rng = Pcg64::seed_from_u64(config.seed);
        let mut agent = Agent::new(
            std::slice::from_ref(config),
            env.obs_dim(),
            &spec.action_low,
            &spec.action_high,
            critic_source(config),
            std::slice::from_mut(&mut rng),
            &device,
        )?;
        let mut buffer = ReplayBuffer::new(config.buffer_size, env.obs_dim(), env.action_dim());
        let mut obs = vec![0.0f32; env.obs_dim()];
        let state = match mode {
            Mode::Resume => {
                let (mut p, integrity) = load_checkpoint(&run, &mut agent, &mut buffer, &device)?;
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
                if env.can_restore() {
                    env.resume_at(&p.env_state, p.env_steps, &mut obs)?;
                    obs.clone_from(&p.obs);
                } else {
                    // Gymnasium keeps its state in Python: continue with a fresh episode,
                    // seeded from the checkpoint's generator (the interrupted episode's
                    // return is not counted).
                    report(TrainEvent::EpisodeRestarted);
                    env.reset(&mut p.rng, &mut obs)?;
                    p.episode_return = 0.0;
                    p.episode_length = 0;
                }
                p
            }
            Mode::Fresh | Mode::NoFiles => {
                if mode == Mode::Fresh {
                    create_run_dir(&run, config)?;
                }
                env.reset(&mut rng, &mut obs)?;
                LoopState::new(rng, env.state(), obs.clone())
            }
        };
        let metrics = match mode {
            Mode::NoFiles => None,
            Mode::Fresh | Mode::Resume => Some(MetricsWriter::append(&run.metrics())?),
        };
        Ok(Session {
            config,
            rng: state.rng.clone(),
            row_clock: RowClock {
                at: Instant::now(),
                step: state.step,
            },
            next_obs: vec![0.0f32; env.obs_dim()],
            run,
            env,
            agent,
            buffer,
            state,
            obs,
            metrics,
        })
    }

    /// One environment step (uniformly random actions for the first `learning_starts`),
    /// stored in the replay buffer, then one SAC update once there is a minibatch.
    fn step(&mut self) -> Result<()> {
        self.state.step += 1;
        let step = self.state.step;
        let stopped = |run: &RunDir| intact(run, step, self.config.log_every);
        let action: Vec<f32> = if step <= self.config.learning_starts {
            let spec = self.env.spec();
            spec.action_low
                .iter()
                .zip(&spec.action_high)
                .map(|(&l, &h)| self.rng.random_range(l..h) as f32)
                .collect()
        } else {
            self.agent
                .act(&self.obs, std::slice::from_mut(&mut self.rng))?
        };
        if action.iter().any(|a| !a.is_finite()) {
            bail!(
                "the policy produced a non-finite action at step {step} (training diverged); stopped. {}",
                stopped(&self.run)
            );
        }
        let action64: Vec<f64> = action.iter().map(|&a| f64::from(a)).collect();
        let t = self
            .env
            .step(&action64, &mut self.next_obs)
            .with_context(|| {
                format!(
                    "the environment failed at step {step}; stopped. {}",
                    stopped(&self.run)
                )
            })?;
        if !t.reward.is_finite() {
            bail!(
                "the environment returned a non-finite reward ({}) at step {step}",
                t.reward
            );
        }
        self.buffer.push(
            &self.obs,
            &action,
            t.reward as f32,
            &self.next_obs,
            t.terminated,
        );
        self.state.episode_return += t.reward;
        self.state.episode_length += 1;
        self.obs.clone_from(&self.next_obs);
        if t.terminated || t.truncated {
            self.state.end_episode();
            self.env
                .reset(&mut self.rng, &mut self.obs)
                .with_context(|| {
                    format!(
                        "the environment failed to reset at step {step}; stopped. {}",
                        stopped(&self.run)
                    )
                })?;
        }
        if step > self.config.learning_starts && self.buffer.len() >= self.config.batch_size {
            let batch = self.buffer.sample(self.config.batch_size, &mut self.rng);
            let stats = self.agent.update(
                std::slice::from_ref(&batch),
                std::slice::from_mut(&mut self.rng),
            )?[0];
            let critic_ok = stats.critic_loss.is_none_or(f32::is_finite);
            if !(critic_ok && stats.actor_loss.is_finite() && stats.alpha.is_finite()) {
                bail!(
                    "non-finite loss at step {step} (critic {}, actor {}, alpha {}); stopped. {}",
                    stats.critic_loss.map_or("-".into(), |c| c.to_string()),
                    stats.actor_loss,
                    stats.alpha,
                    stopped(&self.run)
                );
            }
            self.state.window.add(&stats);
        }
        Ok(())
    }

    /// Writes a metrics row, the checkpoint and the policy file (unless benchmarking) and
    /// reports progress; returns the mean return of the episodes since the last row.
    fn log(&mut self, report: &mut impl FnMut(TrainEvent)) -> Result<f64> {
        let RowClock { at, step } = &self.row_clock;
        let sps = (self.state.step - step) as f64 / at.elapsed().as_secs_f64().max(1e-9);
        let p = &mut self.state;
        let row = metrics_row(p, self.agent.alpha(0), sps);
        let recent_return = mean(&p.window.returns);
        report(TrainEvent::Logged {
            step: p.step,
            steps: self.config.steps,
            episodes: p.episode,
            recent_return,
            steps_per_sec: sps,
        });
        p.rng = self.rng.clone();
        p.env_state = self.env.state();
        p.env_steps = self.env.episode_steps();
        p.obs.clone_from(&self.obs);
        p.last_row = Some(row.to_line()?);
        p.window = Window::default();
        if let Some(metrics) = &mut self.metrics {
            save_checkpoint(&self.run, &self.agent, &self.buffer, &self.state)?;
            metrics.write(&row)?;
            std::fs::write(self.run.policy(), self.agent.actor.export(0)?)?;
        }
        self.row_clock = RowClock {
            at: Instant::now(),
            step: self.state.step,
        };
        Ok(recent_return)
    }
}

/// The recovery advice after a divergence at `step`.
fn intact(run: &RunDir, step: usize, log_every: usize) -> String {
    let saved = (step - 1) / log_every * log_every;
    if saved == 0 {
        return format!("No checkpoint had been written yet (the first comes at step {log_every})");
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
