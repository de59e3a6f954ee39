//! Actor gradient estimators of DESIGN.md §4, one module each. Every estimator returns a
//! loss whose gradient estimates −∇ J(θ), J = E_π[Q(s, a) − α log π(a|s)], from one action
//! per state (plus baseline actions for `like` and `halfrep`).

mod gumbel;
mod halfrep;
mod like;
mod mrp;
mod rep;

pub use crate::config::Estimator;
use crate::sac::actor::{Heads, MixturePolicy};
use candle_core::{Result, Tensor};
use rand::Rng;

/// Q(s, a) for a batch: `obs` [B, O], `action` [B, A] → [B]. For SAC it is min(Q1, Q2);
/// for bandits the true reward.
pub trait Critic {
    fn q(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor>;
}

impl<F: Fn(&Tensor, &Tensor) -> Result<Tensor>> Critic for F {
    fn q(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self(obs, action)
    }
}

/// Settings shared by the estimators.
#[derive(Debug, Clone, Copy)]
pub struct EstimatorSettings {
    /// Entropy scale α.
    pub alpha: f64,
    /// Actions sampled for the baseline b(s) of `like` and `halfrep`.
    pub baseline_samples: usize,
    /// Gumbel-softmax temperature τ.
    pub gumbel_tau: f64,
}

impl Default for EstimatorSettings {
    fn default() -> Self {
        EstimatorSettings {
            alpha: 0.1,
            baseline_samples: 30,
            gumbel_tau: 1.0,
        }
    }
}

/// An estimator's loss and the log-probs of the actions it drew (detached, for logging and
/// the automatic-α update).
pub struct ActorLoss {
    pub loss: Tensor,
    pub log_prob: Tensor,
}

/// The actor loss of `estimator` for a batch of observations.
pub fn actor_loss(
    estimator: Estimator,
    policy: &MixturePolicy,
    obs: &Tensor,
    critic: &dyn Critic,
    settings: &EstimatorSettings,
    rng: &mut impl Rng,
) -> Result<ActorLoss> {
    let heads = policy.heads(obs)?;
    let ctx = Context {
        policy,
        heads: &heads,
        obs,
        critic,
        settings,
    };
    match estimator {
        Estimator::Rep => rep::loss(&ctx, rng),
        Estimator::Like => like::loss(&ctx, rng),
        Estimator::HalfRep => halfrep::loss(&ctx, rng),
        Estimator::Gumbel => gumbel::loss(&ctx, rng),
        Estimator::Mrp => mrp::loss(&ctx, rng),
    }
}

/// What every estimator works from.
struct Context<'a> {
    policy: &'a MixturePolicy,
    heads: &'a Heads,
    obs: &'a Tensor,
    critic: &'a dyn Critic,
    settings: &'a EstimatorSettings,
}

impl Context<'_> {
    /// The reparameterised objective α log π(a|s) − Q(s, a) per row for pre-squash actions
    /// `u` [B, A], with log π(a|s): ([B], [B]).
    fn reparameterised_terms(&self, u: &Tensor) -> Result<(Tensor, Tensor)> {
        let action = self.policy.squash(u)?;
        let log_prob = self.policy.log_prob_u(self.heads, u)?;
        let q = self.critic.q(self.obs, &action)?;
        Ok((((&log_prob * self.settings.alpha)? - q)?, log_prob))
    }

    /// b(s): the mean of Q over `baseline_samples` actions drawn from π(·|s), no gradient.
    fn baseline(&self, rng: &mut impl Rng) -> Result<Tensor> {
        let n = self.settings.baseline_samples;
        let b = self.obs.dim(0)?;
        // b(s) enters the losses under sg (DESIGN.md §4), so draw from detached heads. The n
        // copies are stacked block-wise (row j·B + i is state i), which lets one `rsample`
        // draw all n·B actions and the reshape to [n, B] below average over j.
        let detached = Heads {
            mean: self.heads.mean.detach().repeat((n, 1, 1))?,
            log_std: self.heads.log_std.detach().repeat((n, 1, 1))?,
            log_w: self.heads.log_w.detach().repeat((n, 1))?,
        };
        let u = self.policy.rsample(&detached, rng)?.u; // [n·B, A]
        let q = self
            .critic
            .q(&self.obs.repeat((n, 1))?, &self.policy.squash(&u)?)?;
        Ok(q.reshape((n, b))?.mean(0)?.detach())
    }
}
