//! `like`: loss = log π(a|s) · sg(α log π(a|s) − (Q(s, a) − b(s))), a drawn without gradient.

use super::{ActorLoss, Context};
use candle_core::Result;
use rand::Rng;

pub(super) fn loss<R: Rng>(ctx: &Context, rngs: &mut [R]) -> Result<ActorLoss> {
    // a without gradient: this estimator's gradient comes through log π only.
    let u = ctx.policy.rsample(ctx.heads, rngs)?.u.detach();
    let action = ctx.policy.squash(&u)?;
    let log_prob = ctx.policy.log_prob_u(ctx.heads, &u)?;
    let advantage = (ctx.critic.q(ctx.obs, &action)?.detach() - ctx.baseline(rngs)?)?;
    let weight = (ctx.settings.times_alpha(&log_prob.detach())? - advantage)?.detach();
    let loss = (&log_prob * weight)?.mean(1)?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
