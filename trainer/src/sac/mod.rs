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
pub(crate) mod fast_mix;
pub(crate) mod fast_rep;
pub(crate) mod fast_sgm;
pub mod optim;
pub mod replay;
pub mod squashed_draw;

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

/// Losses and statistics of one member's update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpdateStats {
    /// None for bandits, whose critic is the true reward.
    pub critic_loss: Option<f32>,
    pub actor_loss: f32,
    pub alpha: f32,
    pub log_prob_mean: f32,
}

impl UpdateStats {
    /// Whether every number is finite (a member whose update is not has diverged).
    pub fn is_finite(&self) -> bool {
        self.critic_loss.is_none_or(f32::is_finite)
            && self.actor_loss.is_finite()
            && self.alpha.is_finite()
    }
}

/// A known reward: squashed actions [S, B, A] → rewards [S, B].
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

/// SAC for a population of S runs (S = 1 for a solo run): every network, optimiser moment
/// and α carries a leading member axis, and one update steps every member with the same
/// batched tensor operations. Members share the environment's shapes, the policy class, the
/// estimator, the network shape and the batch size; each has its own seed, α and learning
/// rates, and its losses depend on its own parameters only, so member i computes what its
/// solo run computes: bit for bit on the CPU, as `tests/population.rs` checks (another
/// device's kernels may sum in another order).
pub struct Agent {
    pub actor: MixturePolicy,
    actor_optimizer: Adam,
    judge: Judge,
    /// log α per member, [S].
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
    /// Members still training; a diverged member is frozen where it stopped.
    active: Vec<bool>,
    /// The hand-written update's workspace, where it applies (CPU, f32, a learned double Q,
    /// host Adam moments, and [`fast_rep`]'s squashed K = 1 with `rep`, [`fast_sgm`]'s
    /// squashed mixture with `halfrep` or [`fast_mix`]'s with `mrp`); None elsewhere.
    fast: Option<fast_rep::FastRep>,
    /// Whether [`Agent::update`] takes the hand-written path where it applies
    /// ([`Agent::set_fast_path`]).
    fast_enabled: bool,
}

impl Agent {
    /// A fresh population, one member per config (and generator), for observations of
    /// `obs_dim` and actions in [`action_low`, `action_high`], its Q(s, a) from `critic`.
    /// Member i's actor is initialised from `rngs[i]` first, then its learned critic, as a
    /// solo run does. Shared settings are taken from the first config: the caller checks
    /// that the members agree on them.
    pub fn new<R: Rng>(
        configs: &[Config],
        obs_dim: usize,
        action_low: &[f64],
        action_high: &[f64],
        critic: CriticSource,
        rngs: &mut [R],
        device: &Device,
    ) -> Result<Agent> {
        let Some(config) = configs.first() else {
            anyhow::bail!("a population needs at least one member");
        };
        anyhow::ensure!(
            configs.len() == rngs.len(),
            "{} configs for {} random generators",
            configs.len(),
            rngs.len()
        );
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
        let actor = MixturePolicy::new(spec, rngs, device)?;
        let lrs = |lr: fn(&Config) -> f64| configs.iter().map(lr).collect::<Vec<f64>>();
        let actor_optimizer = Adam::new(actor.named_vars(), lrs(|c| c.actor_lr))?;
        let judge = match critic {
            CriticSource::TrueReward(reward) => Judge::TrueReward(reward),
            CriticSource::LearnedDoubleQ => {
                let hidden = [config.hidden, config.hidden];
                let critic = DoubleQ::new(obs_dim, action_low.len(), &hidden, rngs, device)?;
                let optimizer = Adam::new(critic.online_vars(), lrs(|c| c.critic_lr))?;
                Judge::Learned { critic, optimizer }
            }
        };
        let initial: Vec<f64> = configs
            .iter()
            .map(|c| match c.alpha {
                Alpha::Fixed(a) => a,
                Alpha::Auto => 1.0,
            })
            .collect();
        // α is learned as log α: it stays positive and Adam's steps are relative.
        let log_alphas: Vec<f32> = initial.iter().map(|a| a.ln() as f32).collect();
        let log_alpha = Var::from_tensor(&Tensor::new(log_alphas, device)?)?;
        let alpha_optimizer = match config.alpha {
            Alpha::Auto => Some(Adam::new(
                vec![("log_alpha".into(), log_alpha.clone())],
                lrs(|c| c.alpha_lr),
            )?),
            Alpha::Fixed(_) => None,
        };
        let hand_written = match config.estimator {
            Estimator::Rep => config.components == 1,
            Estimator::HalfRep | Estimator::Mrp => true,
            _ => false,
        };
        let fast = match &judge {
            Judge::Learned { critic, optimizer }
                if device.is_cpu()
                    && hand_written
                    && config.policy.squashed()
                    && optimizer.on_host()
                    && actor_optimizer.on_host() =>
            {
                let baseline = match config.estimator {
                    Estimator::HalfRep => config.baseline_samples,
                    _ => 0,
                };
                // `mrp` scores one action from every component.
                let per_state = match config.estimator {
                    Estimator::Mrp => config.components,
                    _ => 1,
                };
                Some(fast_rep::FastRep::new(&actor, critic, baseline, per_state)?)
            }
            _ => None,
        };
        Ok(Agent {
            fast,
            fast_enabled: true,
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
            active: vec![true; configs.len()],
        })
    }

    /// Chooses between the hand-written update (the default where it applies: CPU, f32,
    /// learned double Q, and squashed K = 1 with `rep` ([`fast_rep`]) or a squashed mixture
    /// with `halfrep` ([`fast_sgm`]) or `mrp` ([`fast_mix`])) and candle's autograd path, which every other
    /// configuration takes. For the tests that hold the two paths together.
    pub fn set_fast_path(&mut self, enabled: bool) {
        self.fast_enabled = enabled;
    }

    /// Whether the next [`Agent::update`] takes the hand-written path: it applies and it is
    /// enabled (with `--threads N` it splits its large products across the threads).
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some() && self.fast_enabled
    }

    /// Members S.
    pub fn members(&self) -> usize {
        self.active.len()
    }

    /// Member `member`'s current entropy scale α.
    pub fn alpha(&self, member: usize) -> f64 {
        self.settings.alpha[member]
    }

    /// What the actor's loss sees as Q(s, a): min(Q1, Q2) with the critics' weights frozen,
    /// or the true reward (for studies of the estimators at fixed parameters).
    pub fn critic(&self) -> &dyn Critic {
        &self.judge
    }

    /// The estimator settings the actor's updates use (every member's α, the baseline size,
    /// the Gumbel temperature).
    pub fn estimator_settings(&self) -> &EstimatorSettings {
        &self.settings
    }

    /// Stops training member `member` (it diverged): Adam no longer changes its parameters,
    /// moments or α (its target critics keep averaging towards its frozen critics, which
    /// nothing reads: its run writes no further checkpoint); the other members are
    /// unaffected.
    pub fn freeze(&mut self, member: usize) {
        if let Some(active) = self.active.get_mut(member) {
            *active = false;
        }
    }

    /// One action per member drawn from π(·|obs): `obs` holds S observations one after
    /// another; returns S actions, as f32 (unsquashed policies are clipped by the env).
    pub fn act<R: Rng>(&self, obs: &[f32], rngs: &mut [R]) -> Result<Vec<f32>> {
        let s = self.members();
        let obs = Tensor::from_slice(obs, (s, 1, obs.len() / s), &self.device)?;
        let heads = self.actor.heads(&obs)?;
        let action = if self.actor.fuses_draws(&heads) {
            self.actor.draw_action(&heads, rngs)?.0
        } else {
            // Acting needs no log π.
            self.actor.squash(&self.actor.rsample(&heads, rngs)?.u)?
        };
        Ok(to_f32_vec(&action)?)
    }

    /// One SAC update of every member from its minibatch (DESIGN.md §5): critic, actor, α,
    /// targets, in that order, each step using the parameters the previous one left. Member
    /// i's random draws come from `rngs[i]` in the same order (critic target, then the
    /// estimator), so runs reproduce and a member draws what its solo run draws.
    pub fn update<R: Rng>(
        &mut self,
        minibatch: &Minibatch,
        rngs: &mut [R],
    ) -> Result<Vec<UpdateStats>> {
        // Reported: the α this update's losses used (alpha_step changes it for the next one).
        let alphas = self.settings.alpha.clone();
        let (critic_losses, (actor_losses, log_prob)) = match (&mut self.fast, &mut self.judge) {
            (Some(fast), Judge::Learned { critic, optimizer }) if self.fast_enabled => {
                let alphas_and_gamma = (alphas.as_slice(), self.gamma);
                let active = &self.active;
                let losses = fast.critic_step(
                    &self.actor,
                    critic,
                    optimizer,
                    minibatch,
                    alphas_and_gamma,
                    rngs,
                    active,
                )?;
                let actor_step = match self.estimator {
                    Estimator::HalfRep => fast_rep::FastRep::halfrep_actor_step,
                    Estimator::Mrp => fast_rep::FastRep::mrp_actor_step,
                    _ => fast_rep::FastRep::actor_step,
                };
                let actor = actor_step(
                    fast,
                    &self.actor,
                    critic,
                    &mut self.actor_optimizer,
                    &minibatch.obs,
                    &alphas,
                    rngs,
                    active,
                )?;
                (Some(losses), actor)
            }
            _ => (
                self.critic_step(minibatch, rngs)?,
                self.actor_step(&minibatch.obs, rngs)?,
            ),
        };
        self.alpha_step(&log_prob)?;
        self.polyak()?;
        let log_prob_means = log_prob.mean(1)?.to_vec1::<f32>()?;
        Ok((0..self.members())
            .map(|i| UpdateStats {
                critic_loss: critic_losses.as_ref().map(|c| c[i]),
                actor_loss: actor_losses[i],
                alpha: alphas[i] as f32,
                log_prob_mean: log_prob_means[i],
            })
            .collect())
    }

    /// Critic: one Adam step on both Q-networks towards the soft TD target
    ///   y = r + γ (1 − terminated) (min Q̄(s′, a′) − α log π(a′|s′)),  a′ ~ π(·|s′)
    /// (DESIGN.md §5). Returns each member's loss, or None when the critic is the true reward.
    fn critic_step<R: Rng>(
        &mut self,
        batch: &Minibatch,
        rngs: &mut [R],
    ) -> Result<Option<Vec<f32>>> {
        let Judge::Learned { critic, optimizer } = &mut self.judge else {
            return Ok(None);
        };
        let gamma = self.gamma;
        // Only termination stops bootstrapping; a time-limit cut-off is not stored as one
        // (DESIGN.md §5).
        let not_done = (batch.terminated.neg()? + 1.0)?;

        // a′ is drawn fresh from the current policy: the soft value of s′ is an expectation
        // under π, not under the policy that filled the buffer.
        let next_heads = self.actor.heads(&batch.next_obs)?;
        let (next_action, next_log_prob) = self.actor.draw_action(&next_heads, rngs)?;
        // The targets' min over two networks counters Q's overestimation (TD3, SAC).
        let next_q = critic.min_target_q(&batch.next_obs, &next_action)?;
        // The target is a constant of the regression: detached, so no gradient reaches the
        // actor through a′ or the targets.
        let soft_value = (next_q - self.settings.times_alpha(&next_log_prob)?)?;
        let y = (&batch.rewards + gamma * (soft_value * not_done)?)?.detach();

        // Σ over Q1, Q2 of the mean squared error = 2 × the mean over both.
        let q = critic.q_both(&batch.obs, &batch.actions)?; // [S, 2, B]
        let td_error = q.broadcast_sub(&y.unsqueeze(1)?)?;
        let loss = (td_error.sqr()?.mean((1, 2))? * 2.0)?; // [S]
        let values = loss.to_vec1::<f32>()?;
        optimizer.step(&loss.sum_all()?.backward()?, &self.active)?;
        Ok(Some(values))
    }

    /// Actor: one Adam step on the configured estimator's loss (DESIGN.md §4), an estimate
    /// of −∇ E_π[Q(s, a) − α log π(a|s)] against Q held fixed (the critic just stepped).
    /// Returns each member's loss and log π of the drawn actions [S, B], detached, for α and
    /// the metrics.
    fn actor_step<R: Rng>(&mut self, obs: &Tensor, rngs: &mut [R]) -> Result<(Vec<f32>, Tensor)> {
        let ActorLoss { loss, log_prob } = actor_loss(
            self.estimator,
            &self.actor,
            obs,
            &self.judge,
            &self.settings,
            rngs,
        )?;
        let values = loss.to_vec1::<f32>()?;
        self.actor_optimizer
            .step(&loss.sum_all()?.backward()?, &self.active)?;
        Ok((values, log_prob))
    }

    /// Automatic α (DESIGN.md §5): one Adam step on −log α · sg(log π + H̄), H̄ the target
    /// entropy, per member. Its gradient raises α while the policy's entropy −log π is below
    /// H̄ and lowers it above. Does nothing for a fixed α.
    fn alpha_step(&mut self, log_prob: &Tensor) -> Result<()> {
        let Some(optimizer) = &mut self.alpha_optimizer else {
            return Ok(());
        };
        let entropy_gap = (log_prob.mean(1)? + self.target_entropy)?.detach(); // [S]
        let loss = (self.log_alpha.as_tensor() * entropy_gap)?
            .sum_all()?
            .neg()?;
        optimizer.step(&loss.backward()?, &self.active)?;
        let alphas = self.log_alpha.as_tensor().exp()?.to_vec1::<f32>()?;
        self.settings.alpha = alphas.into_iter().map(f64::from).collect();
        Ok(())
    }

    /// Targets: θ̄ ← (1 − τ) θ̄ + τ θ (DESIGN.md §5), slow-moving so that y does not chase Q.
    fn polyak(&self) -> Result<()> {
        if let Judge::Learned { critic, .. } = &self.judge {
            critic.polyak_update(self.tau)?;
        }
        Ok(())
    }

    /// Every parameter, with the member axis: (name, variable, networks per member).
    fn named_vars(&self) -> Vec<(String, Var, usize)> {
        let mut vars: Vec<(String, Var, usize)> = self
            .actor
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v, 1))
            .collect();
        vars.push(("log_alpha".into(), self.log_alpha.clone(), 1));
        if let Judge::Learned { critic, .. } = &self.judge {
            // Q1 and Q2 of each member are stacked along the leading axis.
            vars.extend(critic.named_vars().into_iter().map(|(n, v)| (n, v, 2)));
        }
        vars
    }

    /// Member `member`'s parameters and optimiser moments, named and shaped as a solo run's
    /// checkpoint holds them.
    pub fn state(&self, member: usize) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, var, per_member) in self.named_vars() {
            out.push((name, member_part(var.as_tensor(), member, per_member)?));
        }
        out.extend(self.actor_optimizer.state("optim.actor", member)?);
        if let Some(opt) = &self.alpha_optimizer {
            out.extend(opt.state("optim.alpha", member)?);
        }
        if let Judge::Learned { optimizer, .. } = &self.judge {
            out.extend(optimizer.state("optim.critic", member)?);
        }
        Ok(out)
    }

    /// Restores member `member` from what [`Agent::state`] saved.
    pub fn load_state(
        &mut self,
        member: usize,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        use anyhow::Context;
        for (name, var, per_member) in self.named_vars() {
            let saved = tensors
                .get(&name)
                .with_context(|| format!("checkpoint lacks {name}"))?;
            let part = member_part(var.as_tensor(), member, per_member)?;
            anyhow::ensure!(
                saved.elem_count() == part.elem_count(),
                "checkpoint's {name} has shape {:?}, the model needs {:?}",
                saved.dims(),
                part.dims()
            );
            let saved = saved.to_device(&self.device)?.reshape(part.shape())?;
            // One member's slice of the stacked parameter, rewritten in place.
            let mut shape = part.dims().to_vec();
            if shape.len() < var.as_tensor().rank() {
                shape.insert(0, 1);
            }
            var.as_tensor()
                .slice_set(&saved.reshape(shape)?, 0, member * per_member)?;
        }
        self.actor_optimizer
            .load_state("optim.actor", member, tensors)?;
        if let Judge::Learned { optimizer, .. } = &mut self.judge {
            optimizer.load_state("optim.critic", member, tensors)?;
        }
        if let Some(opt) = &mut self.alpha_optimizer {
            opt.load_state("optim.alpha", member, tensors)?;
            // A tuned α lives in log_alpha; a fixed α stays the configured f64.
            let log_alpha = self.log_alpha.as_tensor().to_vec1::<f32>()?[member];
            self.settings.alpha[member] = f64::from(log_alpha).exp();
        }
        Ok(())
    }
}

/// A minibatch of every member, stacked: [S, B, …] (rewards and terminated [S, B]).
pub struct Minibatch {
    pub obs: Tensor,
    pub actions: Tensor,
    pub rewards: Tensor,
    pub next_obs: Tensor,
    pub terminated: Tensor,
}

impl Minibatch {
    /// Member i's host minibatch `batches[i]` (observations of `obs_dim`, actions of
    /// `action_dim`), stacked and copied to `device`.
    pub fn from_batches(
        batches: &[Batch],
        obs_dim: usize,
        action_dim: usize,
        device: &Device,
    ) -> Result<Minibatch> {
        let (s, n) = (
            batches.len(),
            batches.first().map_or(0, |b| b.rewards.len()),
        );
        let stack = |part: fn(&Batch) -> &[f32], width: Option<usize>| -> Result<Tensor> {
            let values: Vec<f32> = batches
                .iter()
                .flat_map(|b| part(b).iter().copied())
                .collect();
            Ok(match width {
                None => Tensor::from_vec(values, (s, n), device)?,
                Some(w) => Tensor::from_vec(values, (s, n, w), device)?,
            })
        };
        Ok(Minibatch {
            obs: stack(|b| &b.obs, Some(obs_dim))?,
            actions: stack(|b| &b.actions, Some(action_dim))?,
            rewards: stack(|b| &b.rewards, None)?,
            next_obs: stack(|b| &b.next_obs, Some(obs_dim))?,
            terminated: stack(|b| &b.terminated, None)?,
        })
    }
}

/// Member `member`'s part of a stacked parameter whose leading axis holds `per_member`
/// networks per member; a single network loses the axis (a solo run's shape).
fn member_part(t: &Tensor, member: usize, per_member: usize) -> Result<Tensor> {
    let part = t.narrow(0, member * per_member, per_member)?;
    Ok(if per_member == 1 && t.rank() > 1 {
        part.squeeze(0)?
    } else {
        part
    })
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
