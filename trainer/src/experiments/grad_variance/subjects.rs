//! What the estimators are measured on: a policy held fixed, with its critic and one fixed
//! batch of states (a "subject"). Bandits are measured at their initialisation and after a
//! short training run; checkpoints of any run as they were saved.

use super::cases::Case;
use crate::config::{Alpha, PolicyKind, TrainArgs};
use crate::envs::EnvId;
use crate::run::frozen::FrozenRun;
use crate::run::train::{self, Mode};
use crate::sac::estimators::EstimatorSettings;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use std::path::Path;

/// A fixed policy with its critic and states.
pub struct Subject {
    /// The environment (and run) measured, as the table names it.
    pub setting: String,
    /// Which parameters: `init`, `N updates` or `step N` of a checkpoint.
    pub point: String,
    pub alpha: f64,
    pub run: FrozenRun,
    /// The batch every draw uses: [1, B, O].
    pub obs: Tensor,
    /// The distinct states of that batch that J averages over (a bandit's rows are all its
    /// one dummy state).
    pub exact_obs: Tensor,
    pub cases: Vec<Case>,
}

impl Subject {
    /// The run's estimator settings (baseline size, Gumbel temperature) at this α.
    pub fn estimator_settings(&self) -> EstimatorSettings {
        EstimatorSettings {
            alpha: vec![self.alpha],
            ..self.run.agent.estimator_settings().clone()
        }
    }

    /// Σ_k w_k σ_k of the pre-squash action, averaged over the states (and action
    /// dimensions): how wide the policy is, which decides whether score-function or pathwise
    /// estimators are noisier.
    pub fn policy_std(&self) -> candle_core::Result<f64> {
        let heads = self.run.agent.actor.heads(&self.obs)?;
        let std = heads
            .log_std
            .exp()?
            .broadcast_mul(&heads.log_w.exp()?.unsqueeze(3)?)?
            .sum(2)?;
        Ok(f64::from(std.mean_all()?.to_scalar::<f32>()?))
    }

    fn new(
        setting: String,
        point: String,
        alpha: f64,
        run: FrozenRun,
        obs: Tensor,
    ) -> Result<Self> {
        let exact_obs = match run.config.env.is_bandit() {
            true => obs.narrow(1, 0, 1)?,
            false => obs.clone(),
        };
        Ok(Subject {
            setting,
            point,
            alpha,
            cases: Case::for_components(run.config.components),
            run,
            obs,
            exact_obs,
        })
    }
}

/// The bandit `env` at entropy scale `alpha`, with policies initialised from `seed`, after
/// `updates` training updates (0: the initialisation): the squashed Gaussian for `rep` and the
/// 5-component SGM for the mixture estimators. Training is an ordinary run of the bandit's
/// defaults (DESIGN.md §5) in `scratch`, the SGM trained with `halfrep` (the default for
/// mixtures; one parameter point must serve every estimator compared).
pub fn bandit(
    env: &EnvId,
    alpha: f64,
    updates: usize,
    seed: u64,
    batch: usize,
    scratch: &Path,
) -> Result<Vec<Subject>> {
    if !env.is_bandit() {
        bail!("{env} is not a bandit");
    }
    let point = match updates {
        0 => "init".to_string(),
        n => format!("{n} updates"),
    };
    let mut subjects = Vec::new();
    for policy in [PolicyKind::Squashed, PolicyKind::Sgm] {
        let mut config = TrainArgs {
            env: Some(env.clone()),
            policy: Some(policy),
            alpha: Some(Alpha::Fixed(alpha)),
            seed: Some(seed),
            ..TrainArgs::default()
        }
        .resolve()?;
        let mut cases = Case::for_components(config.components);
        if policy == PolicyKind::Squashed {
            // The squashed Gaussian is the reparameterised reference; `like` is measured on
            // the mixture.
            cases = vec![Case::Rep];
        }
        let run = match updates {
            0 => FrozenRun::fresh(&config)?,
            n => {
                // Random actions fill the buffer for learning_starts steps, then one update
                // per step.
                config.steps = config.learning_starts + n;
                config.log_every = config.steps;
                let dir = scratch.join(format!("{env}-{policy}-alpha{alpha}-seed{seed}-{n}"));
                let _ = std::fs::remove_dir_all(&dir);
                train::train(&config, &dir, Mode::Fresh, |_| {})?;
                let run = FrozenRun::load(&dir)?;
                let _ = std::fs::remove_dir_all(&dir);
                run
            }
        };
        let obs = Tensor::zeros((1, batch, run.obs_dim), DType::F32, &Device::Cpu)?;
        let mut subject = Subject::new(env.to_string(), point.clone(), alpha, run, obs)?;
        subject.cases = cases;
        subjects.push(subject);
    }
    Ok(subjects)
}

/// The run in `dir` at its latest checkpoint, with its critic, its α (the tuned value for
/// `--alpha auto`) and `batch` states drawn uniformly from its replay buffer with `rng` (the
/// states its actor updates see).
pub fn checkpoint(dir: &Path, batch: usize, rng: &mut impl rand::Rng) -> Result<Subject> {
    let run = FrozenRun::load(dir)?;
    if run.buffer.is_empty() {
        bail!(
            "the checkpoint of {} has an empty replay buffer: no states to measure at",
            dir.display()
        );
    }
    let states = run.buffer.sample(batch, rng).obs;
    let obs = Tensor::from_vec(states, (1, batch, run.obs_dim), &Device::Cpu)?;
    let setting = format!("{} ({})", run.config.env, dir.display());
    let point = format!("step {}", run.step);
    let alpha = run.agent.alpha(0);
    Subject::new(setting, point, alpha, run, obs)
}
