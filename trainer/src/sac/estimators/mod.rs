//! Actor gradient estimators of DESIGN.md §4, one module each. Every estimator returns a
//! loss whose gradient estimates −∇ J(θ), J = E_π[Q(s, a) − α log π(a|s)], from one action
//! per state (plus baseline actions for `like` and `halfrep`), for every member of a
//! population: one loss per member, each a function of its member's parameters only.

mod gumbel;
mod halfrep;
mod like;
mod mrp;
mod rep;

pub use crate::config::Estimator;
use crate::sac::actor::{Heads, MixturePolicy};
use candle_core::{Result, Tensor};
use rand::Rng;

/// Q(s, a) for a batch: `obs` [S, B, O], `action` [S, B, A] → [S, B]. For SAC it is
/// min(Q1, Q2); for bandits the true reward.
pub trait Critic {
    fn q(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor>;
}

impl<F: Fn(&Tensor, &Tensor) -> Result<Tensor>> Critic for F {
    fn q(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self(obs, action)
    }
}

/// Settings shared by the estimators.
#[derive(Debug, Clone)]
pub struct EstimatorSettings {
    /// Entropy scale α of each member.
    pub alpha: Vec<f64>,
    /// Actions sampled for the baseline b(s) of `like` and `halfrep`; 0 means no baseline
    /// (b = 0), the plain likelihood-ratio estimator.
    pub baseline_samples: usize,
    /// Gumbel-softmax temperature τ.
    pub gumbel_tau: f64,
}

impl Default for EstimatorSettings {
    fn default() -> Self {
        EstimatorSettings {
            alpha: vec![0.1],
            baseline_samples: 30,
            gumbel_tau: 1.0,
        }
    }
}

impl EstimatorSettings {
    /// α · `t` for `t` of shape [S, …]: each member's values scaled by its own α.
    pub fn times_alpha(&self, t: &Tensor) -> Result<Tensor> {
        match self.alpha.as_slice() {
            // One α for all (always so for a solo run): a scalar multiply.
            [first, rest @ ..] if rest.iter().all(|a| a == first) => t * *first,
            alphas => {
                let values: Vec<f32> = alphas.iter().map(|&a| a as f32).collect();
                let mut shape = vec![1; t.rank()];
                shape[0] = alphas.len();
                t.broadcast_mul(&Tensor::from_vec(values, shape, t.device())?)
            }
        }
    }
}

/// An estimator's loss per member [S] and the log-probs of the actions it drew [S, B]
/// (detached, for logging and the automatic-α update).
pub struct ActorLoss {
    pub loss: Tensor,
    pub log_prob: Tensor,
}

/// The actor loss of `estimator` for a batch of observations [S, B, O]; member i's random
/// draws come from `rngs[i]`.
pub fn actor_loss<R: Rng>(
    estimator: Estimator,
    policy: &MixturePolicy,
    obs: &Tensor,
    critic: &dyn Critic,
    settings: &EstimatorSettings,
    rngs: &mut [R],
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
        Estimator::Rep => rep::loss(&ctx, rngs),
        Estimator::Like => like::loss(&ctx, rngs),
        Estimator::HalfRep => halfrep::loss(&ctx, rngs),
        Estimator::Gumbel => gumbel::loss(&ctx, rngs),
        Estimator::Mrp => mrp::loss(&ctx, rngs),
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
    /// `u` [S, B, A], with log π(a|s): ([S, B], [S, B]).
    fn reparameterised_terms(&self, u: &Tensor) -> Result<(Tensor, Tensor)> {
        let action = self.policy.squash(u)?;
        let log_prob = self.policy.log_prob_u(self.heads, u)?;
        let q = self.critic.q(self.obs, &action)?;
        Ok(((self.settings.times_alpha(&log_prob)? - q)?, log_prob))
    }

    /// b(s): the mean of Q over `baseline_samples` actions drawn from π(·|s), no gradient;
    /// 0 when `baseline_samples` is 0 (nothing is drawn).
    fn baseline<R: Rng>(&self, rngs: &mut [R]) -> Result<Tensor> {
        let n = self.settings.baseline_samples;
        let (s, b, _) = self.obs.dims3()?;
        if n == 0 {
            return Tensor::zeros((s, b), self.obs.dtype(), self.obs.device());
        }
        // b(s) enters the losses under sg (DESIGN.md §4), so draw from detached heads. The n
        // copies are stacked block-wise per member (row j·B + i is state i), which lets one
        // `rsample` draw all n·B actions and the reshape to [S, n, B] below average over j.
        let detached = Heads {
            mean: self.heads.mean.detach().repeat((1, n, 1, 1))?,
            log_std: self.heads.log_std.detach().repeat((1, n, 1, 1))?,
            log_w: self.heads.log_w.detach().repeat((1, n, 1))?,
        };
        let u = self.policy.rsample(&detached, rngs)?.u; // [S, n·B, A]
        let q = self
            .critic
            .q(&self.obs.repeat((1, n, 1))?, &self.policy.squash(&u)?)?;
        Ok(q.reshape((s, n, b))?.mean(1)?.detach())
    }
}
