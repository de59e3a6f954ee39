//! `like`: loss = log π(a|s) · sg(α log π(a|s) − (Q(s, a) − b(s))), a drawn without gradient.

use super::{ActorLoss, Context};
use candle_core::Result;
use rand::Rng;

pub(super) fn loss(ctx: &Context, rng: &mut impl Rng) -> Result<ActorLoss> {
    // a without gradient: this estimator's gradient comes through log π only.
    let u = ctx.policy.rsample(ctx.heads, rng)?.u.detach();
    let action = ctx.policy.squash(&u)?;
    let log_prob = ctx.policy.log_prob_u(ctx.heads, &u)?;
    let advantage = (ctx.critic.q(ctx.obs, &action)?.detach() - ctx.baseline(rng)?)?;
    let weight = ((log_prob.detach() * ctx.settings.alpha)? - advantage)?.detach();
    let loss = (&log_prob * weight)?.mean_all()?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
