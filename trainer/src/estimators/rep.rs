//! `rep` (K = 1): loss = α log π(a|s) − Q(s, a), a = squash(μ + σ ε) reparameterised.

use super::{ActorLoss, Context};
use candle_core::Result;
use rand::Rng;

pub(super) fn loss(ctx: &Context, rng: &mut impl Rng) -> Result<ActorLoss> {
    let (_, u) = ctx.draw(rng)?; // K = 1: the only component
    let action = ctx.policy.squash(&u)?;
    let log_prob = ctx.policy.log_prob_u(ctx.heads, &u)?;
    let q = ctx.critic.q(ctx.obs, &action)?;
    let loss = ((&log_prob * ctx.settings.alpha)? - q)?.mean_all()?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
