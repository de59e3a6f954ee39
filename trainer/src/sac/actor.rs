//! The actor of DESIGN.md §3 in candle: an MLP trunk and three heads (means, log-stds,
//! mixing logits) defining a joint mixture of K (squashed) Gaussians, for every member of a
//! population at once (a solo run is a population of one): every tensor carries a leading
//! member axis S. The log-density here is
//! the differentiable twin of policy-core's; `tests/parity.rs` holds the two together, and
//! [`MixturePolicy::export`] writes the `.mxp` file with policy-core's writer.

use crate::nn::{to_f32_vec, Dense};
use crate::sac::squashed_draw;
use anyhow::Context;
use candle_core::{Device, Result, Tensor, Var, D};
use policy_core::format::{write_policy, BlockKind, Header};
use rand::Rng;
use rand_distr::StandardNormal;

const HALF_LN_TAU: f64 = 0.918_938_533_204_672_8; // ½ ln(2π)

/// The heads' outputs for a batch: μ and clamped log σ of shape [S, B, K, A], log w of
/// [S, B, K].
#[derive(Debug, Clone)]
pub struct Heads {
    pub mean: Tensor,
    pub log_std: Tensor,
    pub log_w: Tensor,
}

/// One action per row drawn by [`MixturePolicy::rsample`].
#[derive(Debug, Clone)]
pub struct Draw {
    /// The sampled component k of each row as a one-hot row: [S, B, K].
    pub onehot: Tensor,
    /// The pre-squash action u = μ_k + σ_k ⊙ ε, reparameterised: [S, B, A].
    pub u: Tensor,
}

#[derive(Debug, Clone)]
pub struct MixturePolicy {
    /// Shape and bounds: policy-core's header, the one definition shared with the file.
    spec: Header<'static>,
    trunk: Vec<Dense>,
    mean: Dense,
    log_std: Dense,
    logits: Dense,
    /// (high − low)/2 and (high + low)/2, shape [A].
    scale: Tensor,
    offset: Tensor,
    log_scale_sum: f64,
}

impl MixturePolicy {
    /// A freshly initialised population of policies of the (validated) shape `spec`, one
    /// member per generator in `rngs` (member i drawn from `rngs[i]`, as a solo run draws).
    pub fn new<R: Rng>(
        spec: Header<'static>,
        rngs: &mut [R],
        device: &Device,
    ) -> anyhow::Result<Self> {
        let mut trunk = Vec::new();
        let mut inputs = spec.obs_dim;
        for &width in &spec.hidden {
            trunk.push(Dense::new(inputs, width, rngs, device)?);
            inputs = width;
        }
        let (k, a) = (spec.components, spec.action_dim);
        let mean = Dense::new(inputs, k * a, rngs, device)?;
        let log_std = Dense::new(inputs, k * a, rngs, device)?;
        let logits = Dense::new(inputs, k, rngs, device)?;
        let (scale, offset): (Vec<f32>, Vec<f32>) = spec
            .action_low
            .iter()
            .zip(spec.action_high.iter())
            .map(|(lo, hi)| (hi / 2.0 - lo / 2.0, hi / 2.0 + lo / 2.0))
            .unzip();
        let log_scale_sum = scale.iter().map(|&s| f64::from(s).ln()).sum();
        Ok(MixturePolicy {
            scale: Tensor::from_vec(scale, a, device)?,
            offset: Tensor::from_vec(offset, a, device)?,
            log_scale_sum,
            spec,
            trunk,
            mean,
            log_std,
            logits,
        })
    }

    pub fn spec(&self) -> &Header<'static> {
        &self.spec
    }

    /// The trunk, the mean and log-std heads and the logits head, for the hand-written
    /// update ([`crate::sac::fast_rep`]).
    pub(crate) fn layers(&self) -> (&[Dense], &Dense, &Dense, &Dense) {
        (&self.trunk, &self.mean, &self.log_std, &self.logits)
    }

    /// The squashing's constants, as [`Self::draw_action`] hands them to the fused draw.
    pub(crate) fn squash_constants(&self) -> Result<squashed_draw::Squash> {
        Ok(squashed_draw::Squash {
            scale: self.scale.to_vec1()?,
            offset: self.offset.to_vec1()?,
            log_scale_sum: self.log_scale_sum,
        })
    }

    /// Members S of the population.
    pub fn members(&self) -> usize {
        self.logits.bias.as_tensor().dim(0).unwrap_or(1)
    }

    /// Every parameter with its checkpoint name (`actor.hidden.0.weight`, `actor.mean.bias`, …).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<(String, Var)> = Vec::new();
        for (i, layer) in self.trunk.iter().enumerate() {
            vars.extend(layer.named_vars(&format!("actor.hidden.{i}")));
        }
        vars.extend(self.mean.named_vars("actor.mean"));
        vars.extend(self.log_std.named_vars("actor.log_std"));
        vars.extend(self.logits.named_vars("actor.logits"));
        vars
    }

    /// The heads for a batch of observations [S, B, obs].
    pub fn heads(&self, obs: &Tensor) -> Result<Heads> {
        let mut x = obs.clone();
        for layer in &self.trunk {
            x = layer.forward(&x, Some(self.spec.activation))?;
        }
        let (s, b, _) = x.dims3()?;
        let (k, a) = (self.spec.components, self.spec.action_dim);
        let mean = self.mean.forward(&x, None)?.reshape((s, b, k, a))?;
        let log_std = self.log_std.forward(&x, None)?.reshape((s, b, k, a))?;
        let log_std = log_std.clamp(self.spec.log_std_min, self.spec.log_std_max)?;
        let log_w = if k == 1 {
            // log softmax of one logit is exactly 0, and so is every gradient through it.
            Tensor::zeros((s, b, 1), x.dtype(), x.device())?
        } else {
            candle_nn::ops::log_softmax(&self.logits.forward(&x, None)?, D::Minus1)?
        };
        Ok(Heads {
            mean,
            log_std,
            log_w,
        })
    }

    /// log π of the actions whose pre-squash values are `u` [S, B, A] (DESIGN.md §3):
    /// logsumexp_k [log w_k + Σ_d log N(u_d; μ_kd, σ_kd)] − Σ_d log|da_d/du_d|. Returns
    /// [S, B].
    pub fn log_prob_u(&self, heads: &Heads, u: &Tensor) -> Result<Tensor> {
        self.log_prob_u_many(heads, &u.unsqueeze(2)?)?.squeeze(2)
    }

    /// [`Self::log_prob_u`] for M pre-squash actions per row: `u` [S, B, M, A], result
    /// [S, B, M].
    pub fn log_prob_u_many(&self, heads: &Heads, u: &Tensor) -> Result<Tensor> {
        let log_density = self.log_density_u_many(heads, u)?;
        if self.spec.squash {
            log_density - self.squash_log_det(u)?
        } else {
            Ok(log_density)
        }
    }

    /// log of the Gaussian-mixture density of pre-squash actions `u` [S, B, M, A]:
    /// [S, B, M].
    pub fn log_density_u_many(&self, heads: &Heads, u: &Tensor) -> Result<Tensor> {
        // [S, B, M, 1, A] against [S, B, 1, K, A]
        let inv_std = heads.log_std.neg()?.exp()?.unsqueeze(2)?;
        let z = u
            .unsqueeze(3)?
            .broadcast_sub(&heads.mean.unsqueeze(2)?)?
            .broadcast_mul(&inv_std)?;
        let log_n = (z.sqr()? * -0.5)?.broadcast_sub(&heads.log_std.unsqueeze(2)?)?;
        let log_n = log_n.affine(1.0, -HALF_LN_TAU)?.sum(D::Minus1)?; // [S, B, M, K]
        if self.spec.components == 1 {
            // log w = 0 and logsumexp over one term is the identity: same values, fewer ops.
            return log_n.squeeze(D::Minus1);
        }
        log_n
            .broadcast_add(&heads.log_w.unsqueeze(2)?)?
            .log_sum_exp(D::Minus1)
    }

    /// Σ_d [log scale_d + 2(log 2 − u_d − softplus(−2u_d))] for u of shape [..., A].
    pub fn squash_log_det(&self, u: &Tensor) -> Result<Tensor> {
        let x = (u * -2.0)?;
        let softplus = (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        let per_dim = ((u.neg()? - softplus)? + std::f64::consts::LN_2)? * 2.0;
        per_dim?.sum(D::Minus1)? + self.log_scale_sum
    }

    /// One reparameterised draw per row (DESIGN.md §3): k ~ Cat(w), ε ~ N(0, I),
    /// u = μ_k + σ_k ⊙ ε, for `heads` of B rows per member. Gradients flow to μ_k and σ_k
    /// (not to w: k is a sample). Takes from member i's `rngs[i]` its B component draws first,
    /// then its B × A normals; every caller (acting, the critic's target, the estimators, the
    /// baseline) relies on that order for reproducible runs, and a population member on it to
    /// draw exactly what its solo run draws.
    pub fn rsample<R: Rng>(&self, heads: &Heads, rngs: &mut [R]) -> Result<Draw> {
        let onehot = sample_components(&heads.log_w, rngs)?;
        let (_, b, _) = heads.log_w.dims3()?;
        let eps = standard_normal(&[b, self.spec.action_dim], rngs, heads.log_w.device())?;
        let u = self.sample_from_components(heads, &onehot, &eps)?;
        Ok(Draw { onehot, u })
    }

    /// One reparameterised draw per row, drawn as [`Self::rsample`] draws it, as its action
    /// and log π: ([S, B, A], [S, B]). A single squashed Gaussian (K = 1) on the CPU is one
    /// fused operation ([`squashed_draw`]); other policies compose [`Self::rsample`],
    /// [`Self::squash`] and [`Self::log_prob_u`].
    pub fn draw_action<R: Rng>(&self, heads: &Heads, rngs: &mut [R]) -> Result<(Tensor, Tensor)> {
        let (s, b, _, a) = heads.mean.dims4()?;
        if self.fuses_draws(heads) {
            for rng in rngs.iter_mut() {
                skip_component_draws(rng, b);
            }
            let eps = standard_normal(&[b, a], rngs, heads.mean.device())?;
            let squash = self.squash_constants()?;
            let drawn = squashed_draw::squashed_draw(
                &heads.mean.reshape((s, b, a))?,
                &heads.log_std.reshape((s, b, a))?,
                &eps,
                &squash,
            )?;
            return Ok((drawn.narrow(2, 0, a)?, drawn.narrow(2, a, 1)?.squeeze(2)?));
        }
        let u = self.rsample(heads, rngs)?.u;
        Ok((self.squash(&u)?, self.log_prob_u(heads, &u)?))
    }

    /// Whether [`Self::draw_action`] runs as one fused operation for `heads`.
    pub fn fuses_draws(&self, heads: &Heads) -> bool {
        self.spec.components == 1 && self.spec.squash && squashed_draw::fused(&heads.mean)
    }

    /// Reparameterised draw from one component per row: u = Σ_k onehot_k (μ_k + σ_k ε), with
    /// `onehot` [S, B, K] and `eps` [S, B, A]. Gradients flow to μ and σ of the chosen component.
    pub fn sample_from_components(
        &self,
        heads: &Heads,
        onehot: &Tensor,
        eps: &Tensor,
    ) -> Result<Tensor> {
        let per_component = self.sample_every_component(heads, &eps.unsqueeze(2)?)?;
        per_component.broadcast_mul(&onehot.unsqueeze(3)?)?.sum(2)
    }

    /// Reparameterised draws u_k = μ_k + σ_k ε_k from every component: `eps` [S, B, K, A]
    /// (or [S, B, 1, A] to share ε), result [S, B, K, A].
    pub fn sample_every_component(&self, heads: &Heads, eps: &Tensor) -> Result<Tensor> {
        heads
            .mean
            .broadcast_add(&heads.log_std.exp()?.broadcast_mul(eps)?)
    }

    /// The action for pre-squash `u` [..., A]: scale·tanh(u) + offset, or u itself unsquashed
    /// (the environment clips it, as policy-core does on the device).
    pub fn squash(&self, u: &Tensor) -> Result<Tensor> {
        if self.spec.squash {
            u.tanh()?
                .broadcast_mul(&self.scale)?
                .broadcast_add(&self.offset)
        } else {
            Ok(u.clone())
        }
    }

    /// The `.mxp` file of member `member`'s policy, written by policy-core (weights
    /// transposed to its input-major layout).
    pub fn export(&self, member: usize) -> anyhow::Result<Vec<u8>> {
        let header = &self.spec;
        let mut weights = vec![0.0f32; header.weight_count()];
        for block in header.blocks() {
            let layer = match block.kind {
                BlockKind::Hidden(i) => self.trunk.get(i).context("trunk layer")?,
                BlockKind::Mean => &self.mean,
                BlockKind::LogStd => &self.log_std,
                BlockKind::Logits => &self.logits,
            };
            let w = to_f32_vec(&layer.weight.as_tensor().get(member)?)?; // [out, in], row-major
            let b = to_f32_vec(&layer.bias.as_tensor().get(member)?)?;
            for o in 0..block.outputs {
                for i in 0..block.inputs {
                    weights[block.weight_index(i, o)] = w[o * block.inputs + i];
                }
                weights[block.bias_index(o)] = b[o];
            }
        }
        write_policy(header, &weights).map_err(|e| anyhow::anyhow!("cannot export the policy: {e}"))
    }
}

/// The component draws of a single component for `rows` rows: one uniform each, taken (as
/// [`sample_components`] takes them) so that the normals after them are a solo run's, and unused.
pub(crate) fn skip_component_draws<R: Rng>(rng: &mut R, rows: usize) {
    for _ in 0..rows {
        let _: f32 = rng.random();
    }
}

/// Standard normal noise of shape [S, `shape`…], member i's from `rngs[i]` (our seeded
/// generators: candle's cannot be seeded).
pub fn standard_normal<R: Rng>(shape: &[usize], rngs: &mut [R], device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut values: Vec<f32> = Vec::with_capacity(n * rngs.len());
    for rng in rngs.iter_mut() {
        values.extend((0..n).map(|_| rng.sample::<f32, _>(StandardNormal)));
    }
    let full: Vec<usize> = std::iter::once(rngs.len())
        .chain(shape.iter().copied())
        .collect();
    Tensor::from_vec(values, full, device)
}

/// The component a uniform `v` in [0, 1) picks from mixing weights `w` (= exp(log w)): the
/// first whose cumulative weight exceeds `v`, else the last (rounding may leave the total
/// short of 1). The one rule of both the candle path and the hand-written update.
pub(crate) fn component_of(w: &[f32], v: f32) -> usize {
    let mut cumulative = 0.0f32;
    for (j, &wj) in w.iter().enumerate() {
        cumulative += wj;
        if v < cumulative {
            return j;
        }
    }
    w.len() - 1
}

/// One-hot rows [S, B, K] of components drawn from the mixing weights exp(`log_w`)
/// [S, B, K]: one uniform per row from its member's generator, inverted through the
/// cumulative weights.
fn sample_components<R: Rng>(log_w: &Tensor, rngs: &mut [R]) -> Result<Tensor> {
    let (s, b, k) = log_w.dims3()?;
    let w = to_f32_vec(&log_w.exp()?)?;
    let mut onehot = vec![0.0f32; s * b * k];
    let rows = w.chunks(k).zip(onehot.chunks_mut(k));
    let member_of_row = (0..s).flat_map(|m| std::iter::repeat_n(m, b));
    for ((row, out), m) in rows.zip(member_of_row) {
        let u: f32 = rngs[m].random();
        out[component_of(row, u)] = 1.0;
    }
    Tensor::from_vec(onehot, (s, b, k), log_w.device())
}
