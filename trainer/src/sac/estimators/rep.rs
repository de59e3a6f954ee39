//! `rep` (K = 1): loss = α log π(a|s) − Q(s, a), a = squash(μ + σ ε) reparameterised.

use super::{ActorLoss, Context};
use candle_core::Result;
use rand::Rng;

pub(super) fn loss<R: Rng>(ctx: &Context, rngs: &mut [R]) -> Result<ActorLoss> {
    let u = ctx.policy.rsample(ctx.heads, rngs)?.u; // K = 1: the only component
    let (terms, log_prob) = ctx.reparameterised_terms(&u)?;
    let loss = terms.mean(1)?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
