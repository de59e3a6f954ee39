//! `mrp`: loss = Σ_k w_k(s) [α log π(a_k|s) − Q(s, a_k)], one reparameterised a_k from every
//! component (the expectation over k taken exactly: unbiased, no score-function term).

use super::{ActorLoss, Context};
use crate::sac::actor::standard_normal;
use candle_core::{Result, D};
use rand::Rng;

pub(super) fn loss<R: Rng>(ctx: &Context, rngs: &mut [R]) -> Result<ActorLoss> {
    let (s, b, k, a) = ctx.heads.mean.dims4()?;
    let eps = standard_normal(&[b, k, a], rngs, ctx.obs.device())?;
    let u = ctx.policy.sample_every_component(ctx.heads, &eps)?; // [S, B, K, A]
    let log_prob = ctx.policy.log_prob_u_many(ctx.heads, &u)?; // [S, B, K]
    let actions = ctx.policy.squash(&u)?.reshape((s, b * k, a))?;
    let obs = ctx
        .obs
        .unsqueeze(2)?
        .repeat((1, 1, k, 1))?
        .reshape((s, b * k, ()))?;
    let q = ctx.critic.q(&obs, &actions)?.reshape((s, b, k))?;
    let w = ctx.heads.log_w.exp()?;
    let per_component = (ctx.settings.times_alpha(&log_prob)? - q)?;
    let loss = (w * per_component)?.sum(D::Minus1)?.mean(1)?;
    // For logging: log π of the w-weighted draws, i.e. its expectation over k.
    let expected_log_prob = (ctx.heads.log_w.exp()? * &log_prob)?.sum(D::Minus1)?;
    Ok(ActorLoss {
        loss,
        log_prob: expected_log_prob.detach(),
    })
}
