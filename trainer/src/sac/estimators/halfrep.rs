//! `halfrep`: loss = log w_k(s) · sg(α log π(a|s) − (Q(s, a) − b(s))) + α log π(a|s) − Q(s, a);
//! k sampled, a reparameterised from component k, log π the full mixture density.

use super::{ActorLoss, Context};
use crate::sac::actor::Draw;
use candle_core::{Result, D};
use rand::Rng;

pub(super) fn loss(ctx: &Context, rng: &mut impl Rng) -> Result<ActorLoss> {
    let Draw { onehot, u } = ctx.policy.rsample(ctx.heads, rng)?;
    let action = ctx.policy.squash(&u)?;
    let log_prob = ctx.policy.log_prob_u(ctx.heads, &u)?;
    let q = ctx.critic.q(ctx.obs, &action)?;
    let log_w_k = (&ctx.heads.log_w * &onehot)?.sum(D::Minus1)?;
    let advantage = (q.detach() - ctx.baseline(rng)?)?;
    let score_weight = ((log_prob.detach() * ctx.settings.alpha)? - advantage)?.detach();
    let reparameterised = ((&log_prob * ctx.settings.alpha)? - q)?;
    let loss = ((log_w_k * score_weight)? + reparameterised)?.mean_all()?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
