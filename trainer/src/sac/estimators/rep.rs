//! `rep` (K = 1): loss = α log π(a|s) − Q(s, a), a = squash(μ + σ ε) reparameterised.

use super::{ActorLoss, Context};
use candle_core::Result;
use rand::Rng;

pub(super) fn loss<R: Rng>(ctx: &Context, rngs: &mut [R]) -> Result<ActorLoss> {
    // K = 1: the only component.
    let (action, log_prob) = ctx.policy.draw_action(ctx.heads, rngs)?;
    let q = ctx.critic.q(ctx.obs, &action)?;
    let terms = (ctx.settings.times_alpha(&log_prob)? - q)?;
    let loss = terms.mean(1)?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
