//! The algorithm: Soft Actor-Critic (DESIGN.md §5) with a mixture-policy actor and any
//! estimator of §4. For bandits the critic is the true reward r(a) and only the actor (and
//! α) learn.
//!
//! Owns the actor ([`actor`]), the double critic ([`critic`]), the estimators
//! ([`estimators`]), Adam ([`optim`]) and the replay buffer ([`replay`]). May import `nn`
//! (the dense layers), `config` (the hyperparameters) and policy-core (the file format);
//! never environments, runs or experiments: the caller hands the agent its critic source
//! ([`CriticSource`]).

pub mod actor;
pub mod critic;
pub mod estimators;
pub mod optim;
pub mod replay;

use crate::config::{Alpha, Config, Estimator};
use crate::nn::to_f32_vec;
use crate::sac::actor::MixturePolicy;
use crate::sac::critic::DoubleQ;
use crate::sac::estimators::{actor_loss, ActorLoss, Critic, EstimatorSettings};
use crate::sac::optim::Adam;
use crate::sac::replay::Batch;
use anyhow::Result;
use candle_core::{Device, Tensor, Var};
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

/// A known reward: squashed actions [B, A] → rewards [B].
pub type RewardFn = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// What plays Q(s, a) for the actor: chosen by the caller, who knows the environment.
pub enum CriticSource {
    /// Double Q with Polyak-averaged targets, learned from the replay buffer (DESIGN.md §5).
    LearnedDoubleQ,
    /// The environment's true reward r(a), for bandits (one-step episodes, so Q = r): no
    /// critic is learned, [`UpdateStats::critic_loss`] is None.
    TrueReward(RewardFn),
}

/// The critic as the agent holds it: its networks and optimiser, or the known reward.
enum Judge {
    Learned { critic: DoubleQ, optimizer: Adam },
    TrueReward(RewardFn),
}

/// What the actor's loss sees as Q(s, a): min(Q1, Q2) with the critic's weights frozen (the
/// gradient reaches the action only), or the true reward.
impl Critic for Judge {
    fn q(&self, obs: &Tensor, action: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Judge::Learned { critic, .. } => critic.min_q_frozen(obs, action),
            Judge::TrueReward(reward) => reward(action),
        }
    }
}

pub struct Agent {
    pub actor: MixturePolicy,
    actor_optimizer: Adam,
    judge: Judge,
    log_alpha: Var,
    alpha_optimizer: Option<Adam>,
    target_entropy: f64,
    settings: EstimatorSettings,
    estimator: Estimator,
    /// Discount γ.
    gamma: f64,
    /// Polyak factor τ of the target critics.
    tau: f64,
    device: Device,
}

impl Agent {
    /// A fresh agent for observations of `obs_dim` and actions in [`action_low`,
    /// `action_high`], its Q(s, a) from `critic`. The actor is initialised from `rng` first,
    /// then a learned critic.
    pub fn new(
        config: &Config,
        obs_dim: usize,
        action_low: &[f64],
        action_high: &[f64],
        critic: CriticSource,
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
        .map_err(|e| anyhow::anyhow!("this policy cannot be exported: {e}"))?
        .into_owned();
        check_host_capacity(&spec)?;
        let actor = MixturePolicy::new(spec, rng, device)?;
        let actor_optimizer = Adam::new(actor.named_vars(), config.actor_lr)?;
        let judge = match critic {
            CriticSource::TrueReward(reward) => Judge::TrueReward(reward),
            CriticSource::LearnedDoubleQ => {
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
        // α is learned as log α: it stays positive and Adam's steps are relative.
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
            // The usual heuristic H̄ = −dim(A) (DESIGN.md §5, as in SB3 and CleanRL).
            target_entropy: -(action_low.len() as f64),
            settings: EstimatorSettings {
                alpha: initial,
                baseline_samples: config.baseline_samples,
                gumbel_tau: config.gumbel_tau,
            },
            estimator: config.estimator,
            gamma: config.gamma,
            tau: config.tau,
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
        let u = self.actor.rsample(&heads, rng)?.u;
        Ok(to_f32_vec(&self.actor.squash(&u)?)?)
    }

    /// One SAC update from a minibatch (DESIGN.md §5): critic, actor, α, targets, in that
    /// order, each step using the parameters the previous one left. The random draws come
    /// from `rng` in the same order (critic target, then the estimator), so runs reproduce.
    pub fn update(&mut self, batch: &Batch, rng: &mut impl Rng) -> Result<UpdateStats> {
        let (n, o) = (batch.rewards.len(), self.actor.spec().obs_dim);
        let obs = Tensor::from_slice(&batch.obs, (n, o), &self.device)?;
        // Reported: the α this update's losses used (alpha_step changes it for the next one).
        let alpha = self.settings.alpha as f32;
        let critic_loss = self.critic_step(batch, &obs, rng)?;
        let (actor_loss, log_prob) = self.actor_step(&obs, rng)?;
        self.alpha_step(&log_prob)?;
        self.polyak()?;
        Ok(UpdateStats {
            critic_loss,
            actor_loss,
            alpha,
            log_prob_mean: log_prob.mean_all()?.to_scalar::<f32>()?,
        })
    }

    /// Critic: one Adam step on both Q-networks towards the soft TD target
    ///   y = r + γ (1 − terminated) (min Q̄(s′, a′) − α log π(a′|s′)),  a′ ~ π(·|s′)
    /// (DESIGN.md §5). Returns the loss, or None when the critic is the true reward.
    fn critic_step(
        &mut self,
        batch: &Batch,
        obs: &Tensor,
        rng: &mut impl Rng,
    ) -> Result<Option<f32>> {
        let Judge::Learned { critic, optimizer } = &mut self.judge else {
            return Ok(None);
        };
        let (n, o, a) = (obs.dim(0)?, obs.dim(1)?, self.actor.spec().action_dim);
        let (alpha, gamma) = (self.settings.alpha, self.gamma);
        let actions = Tensor::from_slice(&batch.actions, (n, a), &self.device)?;
        let r = Tensor::from_slice(&batch.rewards, n, &self.device)?;
        let next_obs = Tensor::from_slice(&batch.next_obs, (n, o), &self.device)?;
        // Only termination stops bootstrapping; a time-limit cut-off is not stored as one
        // (DESIGN.md §5).
        let not_done = (Tensor::from_slice(&batch.terminated, n, &self.device)?.neg()? + 1.0)?;

        // a′ is drawn fresh from the current policy: the soft value of s′ is an expectation
        // under π, not under the policy that filled the buffer.
        let next_heads = self.actor.heads(&next_obs)?;
        let next_u = self.actor.rsample(&next_heads, rng)?.u;
        let next_log_prob = self.actor.log_prob_u(&next_heads, &next_u)?;
        // The targets' min over two networks counters Q's overestimation (TD3, SAC).
        let next_q = critic.min_target_q(&next_obs, &self.actor.squash(&next_u)?)?;
        // The target is a constant of the regression: detached, so no gradient reaches the
        // actor through a′ or the targets.
        let y = (r + gamma * ((next_q - alpha * next_log_prob)? * not_done)?)?.detach();

        // Σ over Q1, Q2 of the mean squared error = 2 × the mean over both.
        let q = critic.q_both(obs, &actions)?; // [2, B]
        let td_error = q.broadcast_sub(&y.unsqueeze(0)?)?;
        let loss = (td_error.sqr()?.mean_all()? * 2.0)?;
        let value = loss.to_scalar::<f32>()?;
        optimizer.step(&loss.backward()?)?;
        Ok(Some(value))
    }

    /// Actor: one Adam step on the configured estimator's loss (DESIGN.md §4), an estimate
    /// of −∇ E_π[Q(s, a) − α log π(a|s)] against Q held fixed (the critic just stepped).
    /// Returns the loss and log π of the drawn actions [B], detached, for α and the metrics.
    fn actor_step(&mut self, obs: &Tensor, rng: &mut impl Rng) -> Result<(f32, Tensor)> {
        let ActorLoss { loss, log_prob } = actor_loss(
            self.estimator,
            &self.actor,
            obs,
            &self.judge,
            &self.settings,
            rng,
        )?;
        let value = loss.to_scalar::<f32>()?;
        self.actor_optimizer.step(&loss.backward()?)?;
        Ok((value, log_prob))
    }

    /// Automatic α (DESIGN.md §5): one Adam step on −log α · sg(log π + H̄), H̄ the target
    /// entropy. Its gradient raises α while the policy's entropy −log π is below H̄ and lowers
    /// it above. Does nothing for a fixed α.
    fn alpha_step(&mut self, log_prob: &Tensor) -> Result<()> {
        let Some(optimizer) = &mut self.alpha_optimizer else {
            return Ok(());
        };
        let entropy_gap = (log_prob.mean_all()? + self.target_entropy)?.detach();
        let loss = (self.log_alpha.as_tensor().sum_all()? * entropy_gap)?.neg()?;
        optimizer.step(&loss.backward()?)?;
        let log_alpha = self.log_alpha.as_tensor();
        self.settings.alpha = f64::from(log_alpha.exp()?.sum_all()?.to_scalar::<f32>()?);
        Ok(())
    }

    /// Targets: θ̄ ← (1 − τ) θ̄ + τ θ (DESIGN.md §5), slow-moving so that y does not chase Q.
    fn polyak(&self) -> Result<()> {
        if let Judge::Learned { critic, .. } = &self.judge {
            critic.polyak_update(self.tau)?;
        }
        Ok(())
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

/// Refuses, before any training, a policy that `mixsac eval` could not run: evaluation goes
/// through policy-core's [`policy_core::HostPolicy`], whose capacities are fixed.
fn check_host_capacity(spec: &Header) -> Result<()> {
    use policy_core::capacity::{HOST_ACTIONS, HOST_COMPONENTS, HOST_WIDTH};
    let widest = spec.hidden.iter().copied().max().unwrap_or(0);
    for (what, value, capacity) in [
        ("action dimension", spec.action_dim, HOST_ACTIONS),
        ("number of components", spec.components, HOST_COMPONENTS),
        ("hidden width", widest, HOST_WIDTH),
    ] {
        if value > capacity {
            anyhow::bail!(
                "this policy cannot be evaluated: its {what} {value} exceeds policy-core's host capacity {capacity}"
            );
        }
    }
    Ok(())
}
