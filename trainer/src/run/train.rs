//! The training loop: SAC on one environment, with metrics.csv, checkpoints that `--resume`
//! continues exactly, and the policy exported with policy-core's writer.

use super::checkpoint::{load_checkpoint, save_checkpoint, Progress, Window};
use super::metrics::{keep_until, MetricsRow, MetricsWriter};
use super::run_dir::RunDir;
use crate::config::Config;
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
                "step {step}/{steps}  episodes {episodes}  recent return {recent_return:.3}  {steps_per_sec:.0} steps/s"
            ),
        }
    }
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
pub fn train(
    config: &Config,
    dir: &Path,
    mode: Mode,
    mut report: impl FnMut(TrainEvent),
) -> Result<Summary> {
    let resume = mode == Mode::Resume;
    let write = mode != Mode::NoFiles;
    let run = RunDir::new(dir);
    let device = device(config)?;
    let mut env = config.env.make(&config.gym_options())?;
    let (low, high) = (
        env.spec().action_low.clone(),
        env.spec().action_high.clone(),
    );
    let mut rng = Pcg64::seed_from_u64(config.seed);
    let critic = critic_source(config);
    let mut agent = Agent::new(
        config,
        env.obs_dim(),
        &low,
        &high,
        critic,
        &mut rng,
        &device,
    )?;
    let mut buffer = ReplayBuffer::new(config.buffer_size, env.obs_dim(), low.len());
    let mut obs = vec![0.0f32; env.obs_dim()];

    let mut progress = if resume {
        let mut p = load_checkpoint(&run, &mut agent, &mut buffer, &device)?;
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
            // Gymnasium keeps its state in Python: continue with a fresh episode, seeded from
            // the checkpoint's generator (the interrupted episode's return is not counted).
            report(TrainEvent::EpisodeRestarted);
            env.reset(&mut p.rng, &mut obs)?;
            p.episode_return = 0.0;
            p.episode_length = 0;
        }
        p
    } else {
        if write {
            if run.checkpoint().exists() || run.metrics().exists() {
                bail!(
                    "{} already holds a run; use --resume to continue it, or another --out",
                    run.root.display()
                );
            }
            std::fs::create_dir_all(&run.root)
                .with_context(|| format!("cannot create {}", run.root.display()))?;
            config.save(&run.config())?;
            MetricsWriter::create(&run.metrics())?;
        }
        env.reset(&mut rng, &mut obs)?;
        Progress {
            step: 0,
            rng: rng.clone(),
            env_state: env.state(),
            env_steps: 0,
            obs: obs.clone(),
            episode: 0,
            episode_return: 0.0,
            episode_length: 0,
            window: Window::default(),
            last_row: None,
        }
    };
    let mut rng = progress.rng.clone();
    let mut metrics = match write {
        true => Some(MetricsWriter::append(&run.metrics())?),
        false => None,
    };
    let mut next_obs = vec![0.0f32; env.obs_dim()];
    let mut clock = Instant::now();
    let mut clock_step = progress.step;

    while progress.step < config.steps {
        progress.step += 1;
        let action: Vec<f32> = if progress.step <= config.learning_starts {
            low.iter()
                .zip(&high)
                .map(|(&l, &h)| rng.random_range(l..h) as f32)
                .collect()
        } else {
            agent.act(&obs, &mut rng)?
        };
        if action.iter().any(|a| !a.is_finite()) {
            bail!(
                "the policy produced a non-finite action at step {} (training diverged); stopped. {}",
                progress.step,
                intact(&run, progress.step, config.log_every)
            );
        }
        let action64: Vec<f64> = action.iter().map(|&a| f64::from(a)).collect();
        let t = env.step(&action64, &mut next_obs).with_context(|| {
            format!(
                "the environment failed at step {}; stopped. {}",
                progress.step,
                intact(&run, progress.step, config.log_every)
            )
        })?;
        if !t.reward.is_finite() {
            bail!(
                "the environment returned a non-finite reward ({}) at step {}",
                t.reward,
                progress.step
            );
        }
        buffer.push(&obs, &action, t.reward as f32, &next_obs, t.terminated);
        progress.episode_return += t.reward;
        progress.episode_length += 1;
        obs.clone_from(&next_obs);
        if t.terminated || t.truncated {
            progress.window.returns.push(progress.episode_return);
            progress.window.lengths.push(progress.episode_length);
            progress.episode += 1;
            progress.episode_return = 0.0;
            progress.episode_length = 0;
            env.reset(&mut rng, &mut obs).with_context(|| {
                format!(
                    "the environment failed to reset at step {}; stopped. {}",
                    progress.step,
                    intact(&run, progress.step, config.log_every)
                )
            })?;
        }
        if progress.step > config.learning_starts && buffer.len() >= config.batch_size {
            let batch = buffer.sample(config.batch_size, &mut rng);
            let stats = agent.update(&batch, &mut rng)?;
            let critic_ok = stats.critic_loss.is_none_or(f32::is_finite);
            if !(critic_ok && stats.actor_loss.is_finite() && stats.alpha.is_finite()) {
                bail!(
                    "non-finite loss at step {} (critic {}, actor {}, alpha {}); stopped. {}",
                    progress.step,
                    stats.critic_loss.map_or("-".into(), |c| c.to_string()),
                    stats.actor_loss,
                    stats.alpha,
                    intact(&run, progress.step, config.log_every)
                );
            }
            progress.window.add(&stats);
        }
        if progress.step % config.log_every == 0 || progress.step == config.steps {
            let seconds = clock.elapsed().as_secs_f64();
            let sps = (progress.step - clock_step) as f64 / seconds.max(1e-9);
            let row = metrics_row(&progress, agent.alpha(), sps);
            report(TrainEvent::Logged {
                step: progress.step,
                steps: config.steps,
                episodes: progress.episode,
                recent_return: mean(&progress.window.returns),
                steps_per_sec: sps,
            });
            progress.rng = rng.clone();
            progress.env_state = env.state();
            progress.env_steps = env.episode_steps();
            progress.obs.clone_from(&obs);
            progress.last_row = Some(row.to_line()?);
            let last_return = mean(&progress.window.returns);
            progress.window = Window::default();
            if let Some(metrics) = &mut metrics {
                save_checkpoint(&run, &agent, &buffer, &progress)?;
                metrics.write(&row)?;
                std::fs::write(run.policy(), agent.actor.export()?)?;
            }
            clock = Instant::now();
            clock_step = progress.step;
            if progress.step == config.steps {
                return Ok(Summary {
                    steps: progress.step,
                    episodes: progress.episode,
                    last_return,
                    policy_file: run.policy(),
                });
            }
        }
    }
    // Resumed a run that had already finished.
    std::fs::write(run.policy(), agent.actor.export()?)?;
    Ok(Summary {
        steps: progress.step,
        episodes: progress.episode,
        last_return: f64::NAN,
        policy_file: run.policy(),
    })
}

/// The recovery advice after a divergence.
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

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn metrics_row(p: &Progress, alpha: f64, steps_per_sec: f64) -> MetricsRow {
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
