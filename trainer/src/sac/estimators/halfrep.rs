//! `halfrep`: loss = log w_k(s) · sg(α log π(a|s) − (Q(s, a) − b(s))) + α log π(a|s) − Q(s, a);
//! k sampled, a reparameterised from component k, log π the full mixture density.

use super::{ActorLoss, Context};
use crate::sac::actor::Draw;
use candle_core::{Result, D};
use rand::Rng;

pub(super) fn loss<R: Rng>(ctx: &Context, rngs: &mut [R]) -> Result<ActorLoss> {
    let Draw { onehot, u } = ctx.policy.rsample(ctx.heads, rngs)?;
    let action = ctx.policy.squash(&u)?;
    let log_prob = ctx.policy.log_prob_u(ctx.heads, &u)?;
    let q = ctx.critic.q(ctx.obs, &action)?;
    let log_w_k = (&ctx.heads.log_w * &onehot)?.sum(D::Minus1)?;
    let advantage = (q.detach() - ctx.baseline(rngs)?)?;
    let score_weight = (ctx.settings.times_alpha(&log_prob.detach())? - advantage)?.detach();
    let reparameterised = (ctx.settings.times_alpha(&log_prob)? - q)?;
    let loss = ((log_w_k * score_weight)? + reparameterised)?.mean(1)?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
