//! `gumbel`: loss = α log π(a|s) − Q(s, a) with u = Σ_k z_k u_k,
//! z = onehot(argmax y) + y − sg(y), y = softmax((log w + g)/τ), g ~ Gumbel(0, 1) (biased).

use super::{ActorLoss, Context};
use crate::sac::actor::standard_normal;
use candle_core::{DType, Result, Tensor, D};
use rand::Rng;

pub(super) fn loss<R: Rng>(ctx: &Context, rngs: &mut [R]) -> Result<ActorLoss> {
    let (s, b, k, a) = ctx.heads.mean.dims4()?;
    let device = ctx.obs.device();
    let mut gumbel: Vec<f32> = Vec::with_capacity(s * b * k);
    for rng in rngs.iter_mut() {
        gumbel.extend((0..b * k).map(|_| {
            let u: f32 = rng.random_range(f32::MIN_POSITIVE..1.0);
            -(-u.ln()).ln()
        }));
    }
    let g = Tensor::from_vec(gumbel, (s, b, k), device)?;
    // candle-nn's composed softmax, which has a backward pass: its fused `softmax_last_dim`
    // has none, and then the straight-through term below would send nothing to the logits.
    let y = candle_nn::ops::softmax(
        &((&ctx.heads.log_w + g)? / ctx.settings.gumbel_tau)?,
        D::Minus1,
    )?;
    let hard = Tensor::arange(0u32, k as u32, device)?
        .reshape((1, 1, k))?
        .broadcast_eq(&y.argmax_keepdim(D::Minus1)?)?
        .to_dtype(DType::F32)?;
    let z = ((hard + &y)? - y.detach())?; // straight-through: forward one-hot, backward softmax
    let eps = standard_normal(&[b, k, a], rngs, device)?;
    let per_component = ctx.policy.sample_every_component(ctx.heads, &eps)?;
    let u = per_component.broadcast_mul(&z.unsqueeze(3)?)?.sum(2)?;
    let (terms, log_prob) = ctx.reparameterised_terms(&u)?;
    let loss = terms.mean(1)?;
    Ok(ActorLoss {
        loss,
        log_prob: log_prob.detach(),
    })
}
