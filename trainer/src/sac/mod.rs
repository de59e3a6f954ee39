//! The algorithm: Soft Actor-Critic (DESIGN.md §5) with a mixture-policy actor and any
//! estimator of §4. For bandits the critic is the true reward r(a) and only the actor (and
//! α) learn.
//!
//! Owns the actor ([`actor`]), the double critic ([`critic`]), the estimators
//! ([`estimators`]), Adam ([`optim`]) and the replay buffer ([`replay`]). May import `nn`
//! (the dense layers) and policy-core (the file format); never environments, runs or
//! experiments: the caller hands the agent its critic source.

pub mod actor;
pub mod critic;
pub mod estimators;
pub mod optim;
pub mod replay;

use crate::config::{Alpha, Config};
use crate::envs::Bandit;
use crate::nn::to_f32_vec;
use crate::sac::actor::{sample_components, standard_normal, MixturePolicy};
use crate::sac::critic::DoubleQ;
use crate::sac::estimators::{actor_loss, Critic, EstimatorSettings};
use crate::sac::optim::Adam;
use crate::sac::replay::Batch;
use anyhow::Result;
use candle_core::{Device, Tensor, Var, D};
use policy_core::format::{Activation, Header};
use rand::Rng;

/// Losses and statistics of one update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpdateStats {
    /// None for bandits, whose critic is the true reward.
    pub critic_loss: Option<f32>,
    pub actor_loss: f32,
    pub alpha: f32,
    pub log_prob_mean: f32,
}

/// What plays the critic: learned double Q, or a bandit's true reward.
enum Judge {
    Learned { critic: DoubleQ, optimizer: Adam },
    TrueReward(Bandit),
}

pub struct Agent {
    pub actor: MixturePolicy,
    actor_optimizer: Adam,
    judge: Judge,
    log_alpha: Var,
    alpha_optimizer: Option<Adam>,
    target_entropy: f64,
    settings: EstimatorSettings,
    config: Config,
    device: Device,
}

impl Agent {
    pub fn new(
        config: &Config,
        obs_dim: usize,
        action_low: &[f64],
        action_high: &[f64],
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<Agent> {
        let low: Vec<f32> = action_low.iter().map(|&x| x as f32).collect();
        let high: Vec<f32> = action_high.iter().map(|&x| x as f32).collect();
        // Refuses shapes the deployed format cannot hold, before any training.
        let spec = Header::new(
            obs_dim,
            &[config.hidden, config.hidden],
            low.len(),
            config.components,
            Activation::Relu,
            config.policy.squashed(),
            (config.log_std_min, config.log_std_max),
            &low,
            &high,
        )
        .map_err(|e| anyhow::anyhow!("this policy cannot be exported: {e}"))?;
        let actor = MixturePolicy::new(spec, rng, device)?;
        let actor_optimizer = Adam::new(actor.named_vars(), config.actor_lr)?;
        let judge = match config.env.bandit() {
            Some(bandit) => Judge::TrueReward(bandit),
            None => {
                let hidden = [config.hidden, config.hidden];
                let critic = DoubleQ::new(obs_dim, action_low.len(), &hidden, rng, device)?;
                let optimizer = Adam::new(critic.online_vars(), config.critic_lr)?;
                Judge::Learned { critic, optimizer }
            }
        };
        let alpha = config.alpha;
        let initial = match alpha {
            Alpha::Fixed(a) => a,
            Alpha::Auto => 1.0,
        };
        let log_alpha = Var::from_tensor(&Tensor::new(&[initial.ln() as f32], device)?)?;
        let alpha_optimizer = match alpha {
            Alpha::Auto => Some(Adam::new(
                vec![("log_alpha".into(), log_alpha.clone())],
                config.alpha_lr,
            )?),
            Alpha::Fixed(_) => None,
        };
        Ok(Agent {
            actor,
            actor_optimizer,
            judge,
            log_alpha,
            alpha_optimizer,
            target_entropy: -(action_low.len() as f64),
            settings: EstimatorSettings {
                alpha: initial,
                baseline_samples: config.baseline_samples,
                gumbel_tau: config.gumbel_tau,
            },
            config: config.clone(),
            device: device.clone(),
        })
    }

    /// The current entropy scale α.
    pub fn alpha(&self) -> f64 {
        self.settings.alpha
    }

    /// An action drawn from π(·|obs), as f32 (unsquashed policies are clipped by the env).
    pub fn act(&self, obs: &[f32], rng: &mut impl Rng) -> Result<Vec<f32>> {
        let obs = Tensor::from_slice(obs, (1, obs.len()), &self.device)?;
        let heads = self.actor.heads(&obs)?;
        let onehot = sample_components(&heads.log_w, rng)?;
        let eps = standard_normal(&[1, self.actor.spec().action_dim], rng, &self.device)?;
        let u = self.actor.sample_from_components(&heads, &onehot, &eps)?;
        Ok(to_f32_vec(&self.actor.squash(&u)?)?)
    }

    /// One SAC update from a minibatch: critic (unless a bandit), actor, α, targets.
    pub fn update(&mut self, batch: &Batch, rng: &mut impl Rng) -> Result<UpdateStats> {
        let n = batch.rewards.len();
        let (o, a) = (self.actor.spec().obs_dim, self.actor.spec().action_dim);
        let obs = Tensor::from_slice(&batch.obs, (n, o), &self.device)?;
        let mut stats = UpdateStats {
            alpha: self.settings.alpha as f32,
            ..UpdateStats::default()
        };

        if let Judge::Learned { critic, optimizer } = &mut self.judge {
            let actions = Tensor::from_slice(&batch.actions, (n, a), &self.device)?;
            let rewards = Tensor::from_slice(&batch.rewards, n, &self.device)?;
            let next_obs = Tensor::from_slice(&batch.next_obs, (n, o), &self.device)?;
            let not_done = (Tensor::from_slice(&batch.terminated, n, &self.device)?.neg()? + 1.0)?;
            // y = r + γ (1 − terminated) (min Q̄(s′, a′) − α log π(a′|s′)), a′ ~ π(·|s′)
            let heads = self.actor.heads(&next_obs)?;
            let onehot = sample_components(&heads.log_w, rng)?;
            let eps = standard_normal(&[n, a], rng, &self.device)?;
            let next_u = self.actor.sample_from_components(&heads, &onehot, &eps)?;
            let next_log_prob = self.actor.log_prob_u(&heads, &next_u)?;
            let next_q = critic.min_target_q(&next_obs, &self.actor.squash(&next_u)?)?;
            let soft_value = (next_q - (next_log_prob * self.settings.alpha)?)?;
            let target = (rewards + ((soft_value * not_done)? * self.config.gamma)?)?.detach();
            // Σ over Q1, Q2 of the mean squared error = 2 × the mean over both.
            let q = critic.q_both(&obs, &actions)?;
            let loss = (q.broadcast_sub(&target.unsqueeze(0)?)?.sqr()?.mean_all()? * 2.0)?;
            stats.critic_loss = Some(loss.to_scalar::<f32>()?);
            optimizer.step(&loss.backward()?)?;
        }

        let out = match &self.judge {
            Judge::Learned { critic, .. } => {
                let q = |o: &Tensor, a: &Tensor| critic.min_q_frozen(o, a);
                actor_loss(
                    self.config.estimator,
                    &self.actor,
                    &obs,
                    &q as &dyn Critic,
                    &self.settings,
                    rng,
                )?
            }
            Judge::TrueReward(bandit) => {
                let r = |_: &Tensor, a: &Tensor| bandit.reward_tensor(a)?.squeeze(D::Minus1);
                actor_loss(
                    self.config.estimator,
                    &self.actor,
                    &obs,
                    &r as &dyn Critic,
                    &self.settings,
                    rng,
                )?
            }
        };
        stats.actor_loss = out.loss.to_scalar::<f32>()?;
        stats.log_prob_mean = out.log_prob.mean_all()?.to_scalar::<f32>()?;
        self.actor_optimizer.step(&out.loss.backward()?)?;

        if let Some(optimizer) = &mut self.alpha_optimizer {
            // −log α · sg(log π + target entropy)
            let pressure = (out.log_prob.mean_all()? + self.target_entropy)?.detach();
            let loss = (self.log_alpha.as_tensor().sum_all()? * pressure)?.neg()?;
            optimizer.step(&loss.backward()?)?;
            self.settings.alpha = f64::from(
                self.log_alpha
                    .as_tensor()
                    .exp()?
                    .sum_all()?
                    .to_scalar::<f32>()?,
            );
        }
        if let Judge::Learned { critic, .. } = &self.judge {
            critic.polyak_update(self.config.tau)?;
        }
        Ok(stats)
    }

    /// Every parameter and optimiser moment, named, for a checkpoint.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out: Vec<(String, Tensor)> = self
            .actor
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        out.extend(self.actor_optimizer.state("optim.actor")?);
        out.push(("log_alpha".into(), self.log_alpha.as_tensor().clone()));
        if let Some(opt) = &self.alpha_optimizer {
            out.extend(opt.state("optim.alpha")?);
        }
        if let Judge::Learned { critic, optimizer } = &self.judge {
            out.extend(
                critic
                    .named_vars()
                    .into_iter()
                    .map(|(n, v)| (n, v.as_tensor().clone())),
            );
            out.extend(optimizer.state("optim.critic")?);
        }
        Ok(out)
    }

    /// Restores what [`Agent::state`] saved.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        use anyhow::Context;
        let mut vars = self.actor.named_vars();
        vars.push(("log_alpha".into(), self.log_alpha.clone()));
        if let Judge::Learned { critic, optimizer } = &mut self.judge {
            vars.extend(critic.named_vars());
            optimizer.load_state("optim.critic", tensors)?;
        }
        for (name, var) in vars {
            let t = tensors
                .get(&name)
                .with_context(|| format!("checkpoint lacks {name}"))?;
            var.set(&t.to_device(&self.device)?)?;
        }
        self.actor_optimizer.load_state("optim.actor", tensors)?;
        if let Some(opt) = &mut self.alpha_optimizer {
            opt.load_state("optim.alpha", tensors)?;
            // A tuned α lives in log_alpha; a fixed α stays the configured f64.
            let log_alpha = self.log_alpha.as_tensor().sum_all()?.to_scalar::<f32>()?;
            self.settings.alpha = f64::from(log_alpha).exp();
        }
        Ok(())
    }
}
