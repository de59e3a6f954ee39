//! `mrp`: loss = Σ_k w_k(s) [α log π(a_k|s) − Q(s, a_k)], one reparameterised a_k from every
//! component (the expectation over k taken exactly: unbiased, no score-function term).

use super::{ActorLoss, Context};
use crate::sac::actor::standard_normal;
use candle_core::{Result, D};
use rand::Rng;

pub(super) fn loss(ctx: &Context, rng: &mut impl Rng) -> Result<ActorLoss> {
    let (b, k, a) = ctx.heads.mean.dims3()?;
    let eps = standard_normal(&[b, k, a], rng, ctx.obs.device())?;
    let u = ctx.policy.sample_every_component(ctx.heads, &eps)?; // [B, K, A]
    let log_prob = ctx.policy.log_prob_u_many(ctx.heads, &u)?; // [B, K]
    let actions = ctx.policy.squash(&u)?.reshape((b * k, a))?;
    let obs = ctx
        .obs
        .unsqueeze(1)?
        .repeat((1, k, 1))?
        .reshape((b * k, ()))?;
    let q = ctx.critic.q(&obs, &actions)?.reshape((b, k))?;
    let w = ctx.heads.log_w.exp()?;
    let per_component = ((&log_prob * ctx.settings.alpha)? - q)?;
    let loss = (w * per_component)?.sum(D::Minus1)?.mean_all()?;
    // For logging: log π of the w-weighted draws, i.e. its expectation over k.
    let expected_log_prob = (ctx.heads.log_w.exp()? * &log_prob)?.sum(D::Minus1)?;
    Ok(ActorLoss {
        loss,
        log_prob: expected_log_prob.detach(),
    })
}
