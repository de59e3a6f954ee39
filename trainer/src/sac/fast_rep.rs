//! The SAC update by hand on the CPU: the workspace ([`FastRep`]) and the critic's step of
//! every hand-written update, and the `rep` actor step of a single squashed Gaussian
//! (K = 1); the backward passes are written out, as RLtools does, instead of candle's
//! autograd. The `halfrep` actor step of a squashed mixture is [`super::fast_sgm`]'s.
//!
//! At SAC's sizes (batch 32, width 64) an update through candle is about two hundred tensor
//! operations and as many allocations and zero-filled gradient buffers; the arithmetic is
//! the smaller part (BENCHMARKS.md). Here every matrix product is the same call the
//! fused dense layer ([`crate::nn::dense_op`]) makes (gemm, or for small shapes
//! [`crate::nn::small_product`] with gemm's bits), so the forward values are the same
//! bits as candle's path; the backward passes are the chain rule written out, equal to
//! candle's up to the order of a few roundings (`tests/fast_rep.rs` holds the two paths
//! together). Parameters are read in place from the `Var`s' storage, activations and
//! gradients live in one reusable [`FastRep`] workspace, and Adam steps from those buffers
//! ([`Adam::step_host`]), so checkpoints and moments are exactly as the candle path keeps
//! them.
//!
//! Measured with callgrind (`mixsac bench --steps 2000 --repeats 1 --only rep-squashed`:
//! 1000 random steps, then 1000 updates at obs 3, action 1, hidden 64, batch 32): 2.236 G →
//! 1.403 G instructions, an update 2.18 M → 1.35 M, of which the matrix products (gemm) are
//! 0.97 M and Adam 0.15 M.
//!
//! Used by [`Agent::update`](super::Agent::update) only when every condition holds: CPU,
//! f32, a squashed policy with one component, the `rep` estimator and a learned double Q.
//! The workspace and the critic's step (which draws a′ from K components) also serve the
//! `halfrep` update of a squashed mixture, whose actor step is [`super::fast_sgm`]'s.
//! With `--threads N` each large product is split into up to N blocks of whole output rows
//! ([`product_split`]): the same sums, so the same bits as on one thread.
//! Member i's random draws are taken from `rngs[i]` in the candle path's order: per draw,
//! B uniforms (the component draws; for one component drawn and unused) then B × A normals.

use crate::nn::dense_op::{product_split, Strided};
use crate::sac::actor::MixturePolicy;
use crate::sac::critic::DoubleQ;
use crate::sac::optim::Adam;
use crate::sac::squashed_draw::{draw_row, grad_dim, Squash};
use crate::sac::Minibatch;
use candle_core::{bail, Layout, Result, Storage, Tensor, Var};
use rand::Rng;
use rand_distr::StandardNormal;
use std::ops::Deref;

/// Read locks on tensors' storage, held while their values are read in place (dropped
/// before Adam rewrites a parameter).
pub(super) fn lock<'a>(
    tensors: impl IntoIterator<Item = &'a Tensor>,
) -> Vec<(impl Deref<Target = Storage> + 'a, &'a Layout)> {
    tensors
        .into_iter()
        .map(|t| t.storage_and_layout())
        .collect()
}

/// The locked tensors' values (contiguous, f32, on the CPU).
pub(super) fn values<'g, G: Deref<Target = Storage>>(
    guards: &'g [(G, &Layout)],
) -> Result<Vec<&'g [f32]>> {
    guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(cpu) => crate::nn::host_f32(cpu, layout),
            _ => bail!("fast_rep: CPU tensors only"),
        })
        .collect()
}

/// Rows of `cols` values one after another, one matrix shared by every member index.
pub(super) fn rows_of(cols: usize) -> Strided {
    Strided {
        offset: 0,
        member: 0,
        row: cols as isize,
        col: 1,
    }
}

/// The actor's weights [S, out, in] read as [in, out] matrices.
pub(super) fn out_in(inputs: usize, outputs: usize) -> Strided {
    Strided {
        offset: 0,
        member: (inputs * outputs) as isize,
        row: 1,
        col: inputs as isize,
    }
}

/// The critics' weights [2S, in, out].
pub(super) fn in_out(inputs: usize, outputs: usize) -> Strided {
    Strided {
        offset: 0,
        member: (inputs * outputs) as isize,
        row: outputs as isize,
        col: 1,
    }
}

/// y ← act(x · W_n + b_n) for x [rows, inputs] (row-major), with the fused dense layer's
/// product (the same bits).
pub(super) fn forward(
    y: &mut [f32],
    x: &[f32],
    (w, w_view, n): (&[f32], Strided, usize),
    bias: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    relu: bool,
) -> Result<()> {
    let y = &mut y[..rows * outputs];
    product_split(
        y,
        (outputs as isize, 1),
        (rows, inputs, outputs),
        n,
        (x, rows_of(inputs)),
        (w, w_view),
        false,
    )?;
    // The bias added after the product in one pass with the activation: the same sum
    // bias + x·W, rounded once, as the fused layer's product into a bias-filled buffer.
    let bias = &bias[n * outputs..(n + 1) * outputs];
    for row in y.chunks_exact_mut(outputs) {
        if relu {
            row.iter_mut()
                .zip(bias)
                .for_each(|(v, &b)| *v = (*v + b).max(0.0));
        } else {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
    }
    Ok(())
}

/// ∂x ← ∂pre · W_nᵀ, [rows, inputs], for ∂pre [rows, outputs].
pub(super) fn grad_input(
    gx: &mut [f32],
    g: &[f32],
    (w, w_view, n): (&[f32], Strided, usize),
    (rows, inputs, outputs): (usize, usize, usize),
) -> Result<()> {
    product_split(
        &mut gx[..rows * inputs],
        (inputs as isize, 1),
        (rows, outputs, inputs),
        n,
        (g, rows_of(outputs)),
        (w, w_view.t()),
        false,
    )
}

/// ∂W ← xᵀ · ∂pre written into `gw` (one matrix) with the weight's (row, column) strides of
/// its [in, out] view, and ∂b ← Σ_rows ∂pre into `gb`.
pub(super) fn grad_params(
    (gw, gw_strides): (&mut [f32], (isize, isize)),
    gb: &mut [f32],
    x: &[f32],
    g: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
) -> Result<()> {
    product_split(
        gw,
        gw_strides,
        (inputs, rows, outputs),
        0,
        (x, rows_of(inputs).t()),
        (g, rows_of(outputs)),
        false,
    )?;
    gb.fill(0.0);
    for row in g[..rows * outputs].chunks_exact(outputs) {
        gb.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
    Ok(())
}

/// `x` ← [obs, action] row by row, for rows of `o` observations and `a` actions.
pub(super) fn critic_input(x: &mut [f32], obs: &[f32], action: &[f32], (o, a): (usize, usize)) {
    // Only the rows of `action`: `x` is sized for the baseline's longer batches.
    for (r, row) in x.chunks_exact_mut(o + a).take(action.len() / a).enumerate() {
        row[..o].copy_from_slice(&obs[r * o..(r + 1) * o]);
        row[o..].copy_from_slice(&action[r * a..(r + 1) * a]);
    }
}

/// ReLU′ from the layer's output: g ← g where y > 0, else 0 (as the fused layer takes it).
pub(super) fn relu_grad(g: &mut [f32], y: &[f32]) {
    g.iter_mut()
        .zip(y)
        .for_each(|(g, &y)| *g = if y > 0.0 { *g } else { 0.0 });
}

/// candle's element-wise `maximum`: a NaN in `a` stays (unlike `f32::max`), so a diverged
/// member's NaN reaches its losses as on candle's path.
pub(super) fn candle_max(a: f32, b: f32) -> f32 {
    if a < b {
        b
    } else {
        a
    }
}

/// candle's element-wise `minimum`, and its reduce-min over [a, b]: a NaN in `a` stays, one
/// in `b` alone is passed over.
pub(super) fn candle_min(a: f32, b: f32) -> f32 {
    if a > b {
        b
    } else {
        a
    }
}

/// candle's `clamp(lo, hi)`: `maximum(lo)`, then `minimum(hi)`.
pub(super) fn clamp(raw: f32, (lo, hi): (f32, f32)) -> f32 {
    candle_min(candle_max(raw, lo), hi)
}

/// candle's `clamp(lo, hi)` = `maximum(lo)` then `minimum(hi)` backward: the gradient passes
/// where strictly inside, half of it at a tie with a bound, none outside.
pub(super) fn clamp_grad(g: f32, raw: f32, (lo, hi): (f32, f32)) -> f32 {
    let above = candle_max(raw, lo);
    let out = candle_min(above, hi);
    let mask = |a: f32, b: f32| if a == b { 1.0f32 } else { 0.0 };
    let g = (mask(out, above) * g) / (mask(out, hi) + 1.0);
    (mask(above, raw) * g) / (mask(above, lo) + 1.0)
}

/// The reusable buffers of the hand-written update (no allocation once sized).
/// Shared with the mixture's `halfrep` step ([`super::fast_sgm`]), which adds the
/// mixture-only buffers' uses.
pub(crate) struct FastRep {
    pub(super) obs_dim: usize,
    pub(super) action_dim: usize,
    /// Mixture components K (1 for `rep`); the mean and log σ heads have K × A outputs.
    pub(super) components: usize,
    /// Actions per state of `halfrep`'s baseline (0 for `rep`): the critic buffers hold
    /// B · max(1, n, `actions_per_state`) rows.
    pub(super) baseline_samples: usize,
    /// Actions per state the actor's loss scores (`mrp`: K, one from every component; else
    /// 1): the draws' buffers hold B · this many rows.
    pub(super) actions_per_state: usize,
    /// Actor widths: [obs, hidden…].
    pub(super) trunk: Vec<usize>,
    /// Critic widths: [obs + action, hidden…, 1].
    pub(super) critic: Vec<usize>,
    pub(super) squash: Squash,
    pub(super) log_std_range: (f32, f32),
    pub(super) batch: usize,
    pub(super) members: usize,
    /// Per member: the trunk's outputs, one buffer per layer [B, width].
    pub(super) h: Vec<Vec<f32>>,
    /// The heads [B, K·A] (component k's dimension d at k·A + d), the logits and log w [B, K].
    pub(super) mean: Vec<f32>,
    pub(super) raw_log_std: Vec<f32>,
    pub(super) log_std: Vec<f32>,
    pub(super) logits: Vec<f32>,
    pub(super) log_w: Vec<f32>,
    /// The draws: noise and pre-squash actions [B, A], components [B], their
    /// responsibilities softmax_k(log w_k + log N_k(u)) [B, K].
    pub(super) eps: Vec<f32>,
    pub(super) u: Vec<f32>,
    pub(super) choice: Vec<usize>,
    pub(super) resp: Vec<f32>,
    /// `mrp`: log π of every component's action [B, K].
    pub(super) log_prob_each: Vec<f32>,
    /// `halfrep`'s baseline: the components of its n·B draws, b(s) [B].
    pub(super) baseline_choice: Vec<usize>,
    pub(super) baseline: Vec<f32>,
    /// The mixing weights w = exp(log w) [B, K] of the draws, and σ = exp(log σ) [B, K·A]
    /// (filled by the baseline's draws only).
    pub(super) weights: Vec<f32>,
    pub(super) sigma: Vec<f32>,
    pub(super) action: Vec<f32>,
    /// Every member's log π of this step's draws, [S, B].
    pub(super) log_prob: Vec<f32>,
    /// The critics' input [rows, obs + action] and each layer's outputs of both networks
    /// [2, rows, width].
    pub(super) x: Vec<f32>,
    /// The critic's regression targets [B].
    pub(super) y: Vec<f32>,
    pub(super) q_acts: Vec<Vec<f32>>,
    /// Backward scratch: ∂pre of a critic layer, [B, width] (two, swapped layer by layer).
    pub(super) g_a: Vec<f32>,
    pub(super) g_b: Vec<f32>,
    /// ∂ of the actions, of log π, of the heads.
    pub(super) g_action: Vec<f32>,
    pub(super) g_action_k: Vec<f32>,
    pub(super) g_log_prob: Vec<f32>,
    /// `halfrep`: ∂ of log w_c, the score term's weight / B, [B]; `mrp`: ∂ of w_k [B, K].
    pub(super) g_score: Vec<f32>,
    pub(super) g_mean: Vec<f32>,
    pub(super) g_raw_log_std: Vec<f32>,
    pub(super) g_logits: Vec<f32>,
    /// Parameter gradients, laid out as the parameters (every member's), in Adam's order
    /// (the logits head's only for K > 1).
    pub(super) actor_grads: Vec<Vec<f32>>,
    pub(super) critic_grads: Vec<Vec<f32>>,
}

impl FastRep {
    /// The workspace for `actor` and `critic`, with `baseline_samples` actions per state for
    /// `halfrep`'s baseline (0 otherwise) and `actions_per_state` scored by the actor's loss
    /// (K for `mrp`, 1 otherwise).
    pub(crate) fn new(
        actor: &MixturePolicy,
        critic: &DoubleQ,
        baseline_samples: usize,
        actions_per_state: usize,
    ) -> Result<FastRep> {
        let spec = actor.spec();
        let (obs_dim, action_dim) = (spec.obs_dim, spec.action_dim);
        let components = spec.components;
        let mut trunk = vec![obs_dim];
        trunk.extend(spec.hidden.iter().copied());
        let mut widths = vec![obs_dim + action_dim];
        for (w, _) in critic.online.layer_vars() {
            widths.push(w.as_tensor().dim(2)?);
        }
        let width_max = trunk.iter().chain(&widths).copied().max().unwrap_or(1);
        let (trunk_layers, mean, log_std, logits) = actor.layers();
        let mut actor_grads = Vec::new();
        // The logits head gets no gradient for K = 1 (log w = 0): no buffer.
        let logits = (components > 1).then_some(logits);
        for layer in trunk_layers.iter().chain([mean, log_std]).chain(logits) {
            actor_grads.push(vec![0.0; layer.weight.as_tensor().elem_count()]);
            actor_grads.push(vec![0.0; layer.bias.as_tensor().elem_count()]);
        }
        let critic_grads = critic
            .online
            .layer_vars()
            .flat_map(|(w, b)| [w.as_tensor().elem_count(), b.as_tensor().elem_count()])
            .map(|n| vec![0.0; n])
            .collect();
        Ok(FastRep {
            obs_dim,
            action_dim,
            components,
            baseline_samples,
            actions_per_state,
            squash: actor.squash_constants()?,
            log_std_range: (spec.log_std_min, spec.log_std_max),
            h: vec![Vec::new(); trunk.len() - 1],
            q_acts: vec![Vec::new(); widths.len() - 1],
            trunk,
            critic: widths,
            batch: 0,
            members: actor.members(),
            mean: Vec::new(),
            raw_log_std: Vec::new(),
            log_std: Vec::new(),
            logits: Vec::new(),
            log_w: Vec::new(),
            eps: Vec::new(),
            u: Vec::new(),
            choice: Vec::new(),
            resp: Vec::new(),
            log_prob_each: Vec::new(),
            baseline_choice: Vec::new(),
            baseline: Vec::new(),
            weights: Vec::new(),
            sigma: Vec::new(),
            action: Vec::new(),
            log_prob: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            g_a: vec![0.0; width_max],
            g_b: vec![0.0; width_max],
            g_action: Vec::new(),
            g_action_k: Vec::new(),
            g_log_prob: Vec::new(),
            g_score: Vec::new(),
            g_mean: Vec::new(),
            g_raw_log_std: Vec::new(),
            g_logits: Vec::new(),
            actor_grads,
            critic_grads,
        })
    }

    /// Sizes the per-batch buffers for batches of `b` rows (a no-op once sized).
    fn size_for(&mut self, b: usize) {
        if self.batch == b {
            return;
        }
        self.batch = b;
        let (a, s, k) = (self.action_dim, self.members, self.components);
        // The baseline's actions and `mrp`'s K per state go through the critics too.
        let per = self.actions_per_state.max(1);
        let rows = b * self.baseline_samples.max(per);
        for (h, &w) in self.h.iter_mut().zip(&self.trunk[1..]) {
            h.resize(b * w, 0.0);
        }
        for (q, &w) in self.q_acts.iter_mut().zip(&self.critic[1..]) {
            q.resize(2 * rows * w, 0.0);
        }
        let width_max = self.trunk.iter().chain(&self.critic).copied().max();
        let width_max = width_max.unwrap_or(1);
        for v in [&mut self.g_a, &mut self.g_b] {
            v.resize(b * per * width_max, 0.0);
        }
        for v in [
            &mut self.mean,
            &mut self.raw_log_std,
            &mut self.log_std,
            &mut self.g_mean,
            &mut self.g_raw_log_std,
            &mut self.sigma,
        ] {
            v.resize(b * k * a, 0.0);
        }
        for v in [
            &mut self.eps,
            &mut self.u,
            &mut self.action,
            &mut self.g_action,
            &mut self.g_action_k,
        ] {
            v.resize(b * per * a, 0.0);
        }
        for v in [
            &mut self.logits,
            &mut self.log_w,
            &mut self.g_logits,
            &mut self.weights,
        ] {
            v.resize(b * k, 0.0);
        }
        self.resp.resize(b * per * k, 0.0);
        self.log_prob_each.resize(b * k, 0.0);
        self.choice.resize(b, 0);
        self.baseline_choice.resize(rows, 0);
        self.baseline.resize(b, 0.0);
        self.g_log_prob.resize(b, 0.0);
        self.g_score.resize(b * per, 0.0);
        self.y.resize(b, 0.0);
        self.log_prob.resize(s * b, 0.0);
        self.x.resize(rows * (self.obs_dim + a), 0.0);
    }

    /// Member m's actor forward on `obs` [B, obs]: the trunk's outputs, μ, the raw and the
    /// clamped log σ, and for K > 1 the logits and log w = log_softmax(logits).
    pub(super) fn actor_forward(&mut self, p: &[&[f32]], m: usize, obs: &[f32]) -> Result<()> {
        let (b, k) = (self.batch, self.components);
        let a = k * self.action_dim;
        let layers = self.trunk.len() - 1;
        for l in 0..layers {
            let (inputs, outputs) = (self.trunk[l], self.trunk[l + 1]);
            let (before, rest) = self.h.split_at_mut(l);
            let x = if l == 0 { obs } else { &before[l - 1][..] };
            let w = (p[2 * l], out_in(inputs, outputs), m);
            forward(&mut rest[0], x, w, p[2 * l + 1], (b, inputs, outputs), true)?;
        }
        let (last, h) = (self.trunk[layers], &self.h[layers - 1]);
        let (i_mean, i_log_std) = (2 * layers, 2 * layers + 2);
        let w = (p[i_mean], out_in(last, a), m);
        forward(&mut self.mean, h, w, p[i_mean + 1], (b, last, a), false)?;
        let w = (p[i_log_std], out_in(last, a), m);
        let bias = p[i_log_std + 1];
        forward(&mut self.raw_log_std, h, w, bias, (b, last, a), false)?;
        for (c, &r) in self.log_std.iter_mut().zip(&self.raw_log_std) {
            *c = clamp(r, self.log_std_range);
        }
        if k > 1 {
            let i_logits = 2 * layers + 4;
            let w = (p[i_logits], out_in(last, k), m);
            forward(&mut self.logits, h, w, p[i_logits + 1], (b, last, k), false)?;
            for (lw, l) in self
                .log_w
                .chunks_exact_mut(k)
                .zip(self.logits.chunks_exact(k))
            {
                super::fast_sgm::log_softmax(l, lw);
            }
        }
        Ok(())
    }

    /// Members S and batch B of observations [S, B, O], checked against this workspace and
    /// the `generators` given, with the buffers sized for B.
    pub(super) fn prepare(&mut self, obs: &Tensor, generators: usize) -> Result<(usize, usize)> {
        let (s, b, _) = obs.dims3()?;
        if s != self.members || generators != s {
            bail!(
                "fast_rep: {s} members' batches and {generators} generators for {} members",
                self.members
            )
        }
        self.size_for(b);
        Ok((s, b))
    }

    /// One draw per row from member m's heads, taking its random numbers as
    /// [`MixturePolicy::draw_action`] does: the actions and log π (into member m's row of
    /// `log_prob`); for K > 1 also u, the components and their responsibilities.
    pub(super) fn draw<R: Rng>(&mut self, m: usize, rng: &mut R) -> Result<()> {
        if self.components > 1 {
            self.draw_mixture(m, rng);
            return Ok(());
        }
        let (b, a) = (self.batch, self.action_dim);
        crate::sac::actor::skip_component_draws(rng, b);
        for e in self.eps[..b * a].iter_mut() {
            *e = rng.sample::<f32, _>(StandardNormal);
        }
        for r in 0..b {
            let row = r * a..(r + 1) * a;
            self.log_prob[m * b + r] = draw_row(
                &self.mean[row.clone()],
                &self.log_std[row.clone()],
                &self.eps[row.clone()],
                &self.squash,
                &mut self.action[row],
            );
        }
        Ok(())
    }

    /// Both networks of member m (indices 2m, 2m + 1) on the first `b` rows of `self.x`,
    /// every layer's outputs kept; the last layer's [2, b] are Q1 and Q2.
    pub(super) fn critic_forward(&mut self, p: &[&[f32]], m: usize, b: usize) -> Result<()> {
        for l in 0..self.critic.len() - 1 {
            let (inputs, outputs) = (self.critic[l], self.critic[l + 1]);
            let relu = l + 2 < self.critic.len();
            let (before, rest) = self.q_acts.split_at_mut(l);
            for k in 0..2 {
                let n = 2 * m + k;
                let x = if l == 0 {
                    &self.x[..b * inputs]
                } else {
                    &before[l - 1][k * b * inputs..(k + 1) * b * inputs]
                };
                let y = &mut rest[0][k * b * outputs..(k + 1) * b * outputs];
                let w = (p[2 * l], in_out(inputs, outputs), n);
                forward(y, x, w, p[2 * l + 1], (b, inputs, outputs), relu)?;
            }
        }
        Ok(())
    }

    /// Backward through network k of member m from the output's gradient in `self.g_a`
    /// [B]: parameter gradients into `critic_grads` when `params`, else only the actions'
    /// gradient into `g_action_k` [B, A].
    pub(super) fn critic_backward(
        &mut self,
        p: &[&[f32]],
        m: usize,
        k: usize,
        params: bool,
    ) -> Result<()> {
        self.critic_backward_rows(p, m, k, params, self.batch)
    }

    /// [`Self::critic_backward`] on the first `b` rows of the last forward pass.
    pub(super) fn critic_backward_rows(
        &mut self,
        p: &[&[f32]],
        m: usize,
        k: usize,
        params: bool,
        b: usize,
    ) -> Result<()> {
        let n = 2 * m + k;
        let (o, a) = (self.obs_dim, self.action_dim);
        for l in (0..self.critic.len() - 1).rev() {
            let (inputs, outputs) = (self.critic[l], self.critic[l + 1]);
            let w = p[2 * l];
            if params {
                let x = if l == 0 {
                    &self.x[..b * inputs]
                } else {
                    &self.q_acts[l - 1][k * b * inputs..(k + 1) * b * inputs]
                };
                let (gw, gb) = self.critic_grads.split_at_mut(2 * l + 1);
                let gw = &mut gw[2 * l][n * inputs * outputs..(n + 1) * inputs * outputs];
                let gb = &mut gb[0][n * outputs..(n + 1) * outputs];
                grad_params(
                    (gw, (outputs as isize, 1)),
                    gb,
                    x,
                    &self.g_a,
                    (b, inputs, outputs),
                )?;
            }
            if l > 0 {
                let view = (w, in_out(inputs, outputs), n);
                grad_input(&mut self.g_b, &self.g_a, view, (b, inputs, outputs))?;
                let y = &self.q_acts[l - 1][k * b * inputs..(k + 1) * b * inputs];
                relu_grad(&mut self.g_b[..b * inputs], y);
                std::mem::swap(&mut self.g_a, &mut self.g_b);
            } else if !params {
                // The actions' columns of the input only: rows o.. of W_0 [in, out].
                let mut view = in_out(inputs, outputs);
                view.offset = o * outputs;
                grad_input(
                    &mut self.g_action_k,
                    &self.g_a,
                    (w, view, n),
                    (b, a, outputs),
                )?;
            }
        }
        Ok(())
    }

    /// The critic's step (see [`super::Agent`]'s `critic_step`): every member's loss, the
    /// critics stepped by `optimizer`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn critic_step<R: Rng>(
        &mut self,
        actor: &MixturePolicy,
        critic: &DoubleQ,
        optimizer: &mut Adam,
        batch: &Minibatch,
        (alphas, gamma): (&[f64], f64),
        rngs: &mut [R],
        active: &[bool],
    ) -> Result<Vec<f32>> {
        let (s, b) = self.prepare(&batch.obs, rngs.len())?;
        let (o, a) = (self.obs_dim, self.action_dim);
        let mut losses = Vec::with_capacity(s);
        {
            let actor_locks = lock(actor_params(actor, self.components));
            let target_locks = lock(critic_params(&critic.target));
            let online_locks = lock(critic_params(&critic.online));
            let (actor_views, target, online) = (
                values(&actor_locks)?,
                values(&target_locks)?,
                values(&online_locks)?,
            );
            let data_locks = lock([
                &batch.obs,
                &batch.actions,
                &batch.rewards,
                &batch.next_obs,
                &batch.terminated,
            ]);
            let data = values(&data_locks)?;
            let (obs, actions, rewards, next_obs, terminated) =
                (data[0], data[1], data[2], data[3], data[4]);
            // ∂loss/∂q = ((q − y) · ∂sum) · 2, ∂sum = 2 · 1/(2B) (the mean's scale).
            let g_sum = 2.0f32 * (1.0 / (2 * b) as f64) as f32;
            for (m, rng) in rngs.iter_mut().enumerate() {
                let alpha = alphas[m] as f32;
                // a′ ~ π(·|s′) and the targets' min Q̄(s′, a′).
                self.actor_forward(&actor_views, m, &next_obs[m * b * o..(m + 1) * b * o])?;
                self.draw(m, rng)?;
                let next_obs_m = &next_obs[m * b * o..(m + 1) * b * o];
                critic_input(&mut self.x, next_obs_m, &self.action[..b * a], (o, a));
                self.critic_forward(&target, m, b)?;
                let last = self.q_acts.len() - 1;
                // y = r + γ (1 − terminated)(min Q̄ − α log π′), rounded as the tensor
                // expression (each scalar product is candle's affine map v · c + 0).
                let q = &self.q_acts[last];
                for (r, y) in self.y.iter_mut().enumerate() {
                    let min_q = candle_min(q[r], q[b + r]);
                    let soft = min_q - (self.log_prob[m * b + r] * alpha + 0.0);
                    let not_done = -terminated[m * b + r] * 1.0 + 1.0;
                    *y = rewards[m * b + r] + ((soft * not_done) * gamma as f32 + 0.0);
                }
                // Q1, Q2 on the stored transitions, and the regression's gradient.
                critic_input(
                    &mut self.x,
                    &obs[m * b * o..(m + 1) * b * o],
                    &actions[m * b * a..(m + 1) * b * a],
                    (o, a),
                );
                self.critic_forward(&online, m, b)?;
                let mut sum = 0.0f32;
                for k in 0..2 {
                    for r in 0..b {
                        let td = self.q_acts[last][k * b + r] - self.y[r];
                        sum += td * td;
                    }
                }
                losses.push((sum * (1.0 / (2 * b) as f64) as f32 + 0.0) * 2.0 + 0.0);
                for k in 0..2 {
                    for r in 0..b {
                        let td = self.q_acts[last][k * b + r] - self.y[r];
                        self.g_a[r] = (td * g_sum) * 2.0 + 0.0;
                    }
                    self.critic_backward(&online, m, k, true)?;
                }
            }
        }
        let grads: Vec<Option<&[f32]>> = self.critic_grads.iter().map(|g| Some(&g[..])).collect();
        optimizer.step_host(&grads, active)?;
        Ok(losses)
    }

    /// The actor's `rep` step (see [`super::Agent`]'s `actor_step`) against the online
    /// critics held fixed: every member's loss and log π [S, B] of the drawn actions.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn actor_step<R: Rng>(
        &mut self,
        actor: &MixturePolicy,
        critic: &DoubleQ,
        optimizer: &mut Adam,
        obs: &Tensor,
        alphas: &[f64],
        rngs: &mut [R],
        active: &[bool],
    ) -> Result<(Vec<f32>, Tensor)> {
        let (s, b) = self.prepare(obs, rngs.len())?;
        let (o, a) = (self.obs_dim, self.action_dim);
        let mut losses = Vec::with_capacity(s);
        {
            let actor_locks = lock(actor_params(actor, self.components));
            let online_locks = lock(critic_params(&critic.online));
            let (actor_views, online) = (values(&actor_locks)?, values(&online_locks)?);
            let data_locks = lock([obs]);
            let obs = values(&data_locks)?[0];
            // ∂loss/∂term = 1/B (the mean's scale).
            let g_term = (1.0 / b as f64) as f32;
            for (m, rng) in rngs.iter_mut().enumerate() {
                let alpha = alphas[m] as f32;
                let obs_m = &obs[m * b * o..(m + 1) * b * o];
                self.actor_forward(&actor_views, m, obs_m)?;
                self.draw(m, rng)?;
                critic_input(&mut self.x, obs_m, &self.action, (o, a));
                self.critic_forward(&online, m, b)?;
                let q_last = self.q_acts.len() - 1;
                let mut sum = 0.0f32;
                for r in 0..b {
                    let q = &self.q_acts[q_last];
                    sum += (self.log_prob[m * b + r] * alpha + 0.0) - candle_min(q[r], q[b + r]);
                }
                losses.push(sum * g_term + 0.0);
                // ∂ of log π: 1/B · α; of min Q: −1/B, to every network attaining it.
                self.g_log_prob.fill(g_term * alpha + 0.0);
                self.g_action.fill(0.0);
                for k in 0..2 {
                    for r in 0..b {
                        let q = &self.q_acts[q_last];
                        let attains = q[k * b + r] == candle_min(q[r], q[b + r]);
                        self.g_a[r] = if attains { -g_term } else { 0.0 };
                    }
                    self.critic_backward(&online, m, k, false)?;
                    for (g, &gk) in self.g_action.iter_mut().zip(&self.g_action_k) {
                        *g += gk;
                    }
                }
                // Through the draw and the clamp to the heads.
                for r in 0..b {
                    for d in 0..a {
                        let i = r * a + d;
                        let (gm, gl) = grad_dim(
                            self.mean[i],
                            self.log_std[i],
                            self.eps[i],
                            self.squash.scale[d],
                            self.g_action[i],
                            self.g_log_prob[r],
                        );
                        self.g_mean[i] = gm;
                        self.g_raw_log_std[i] = gl;
                    }
                    self.clamp_and_logits_grad(r);
                }
                self.actor_backward(&actor_views, m, obs_m)?;
            }
        }
        let mut grads: Vec<Option<&[f32]>> =
            self.actor_grads.iter().map(|g| Some(&g[..])).collect();
        // The logits head: no gradient (K = 1), so Adam leaves it and its moments alone.
        grads.extend([None, None]);
        optimizer.step_host(&grads, active)?;
        let log_prob = Tensor::from_slice(&self.log_prob, (s, b), obs.device())?;
        Ok((losses, log_prob))
    }
}

impl FastRep {
    /// The end of row r's heads' backward pass, once the draw's and log π's gradients are in
    /// `g_raw_log_std` and (K > 1) ∂log w in `g_logits`: the log σ clamp's gradient, then
    /// log_softmax's to the logits, ∂ℓ_j = ∂log w_j − w_j Σ_k ∂log w_k, both in place.
    /// Shared by the `rep`, `halfrep` and `mrp` actor steps.
    pub(super) fn clamp_and_logits_grad(&mut self, r: usize) {
        let (a, k) = (self.action_dim, self.components);
        for i in r * k * a..(r + 1) * k * a {
            self.g_raw_log_std[i] = clamp_grad(
                self.g_raw_log_std[i],
                self.raw_log_std[i],
                self.log_std_range,
            );
        }
        // K = 1 has no logits head (log w = 0): nothing reads `g_logits`.
        if k > 1 {
            let rows_k = r * k..(r + 1) * k;
            let total: f32 = self.g_logits[rows_k.clone()].iter().sum();
            for i in rows_k {
                self.g_logits[i] -= self.weights[i] * total;
            }
        }
    }

    /// Member m's actor backward from its heads' gradients (`g_mean`, `g_raw_log_std` and for
    /// K > 1 `g_logits`): every parameter's gradient into `actor_grads`.
    pub(super) fn actor_backward(&mut self, p: &[&[f32]], m: usize, obs_m: &[f32]) -> Result<()> {
        let (b, k) = (self.batch, self.components);
        let a = k * self.action_dim;
        let layers = self.trunk.len() - 1;
        let last_width = self.trunk[layers];
        // The heads' parameters and their input's gradient.
        let h = &self.h[layers - 1];
        let strides = (1, last_width as isize);
        let heads = [
            (layers, &self.g_mean, a),
            (layers + 1, &self.g_raw_log_std, a),
            (layers + 2, &self.g_logits, k),
        ];
        // The logits head only for K > 1 (log w = 0 otherwise).
        let heads = &heads[..if k > 1 { 3 } else { 2 }];
        for &(head, g, outputs) in heads {
            let (gw, gb) = self.actor_grads.split_at_mut(2 * head + 1);
            let member = m * outputs * last_width..(m + 1) * outputs * last_width;
            let gw = &mut gw[2 * head][member];
            let gb = &mut gb[0][m * outputs..(m + 1) * outputs];
            grad_params((gw, strides), gb, h, g, (b, last_width, outputs))?;
        }
        let n = b * last_width;
        for (i, &(head, g, outputs)) in heads.iter().enumerate() {
            let w = (p[2 * head], out_in(last_width, outputs), m);
            let dims = (b, last_width, outputs);
            if i == 0 {
                grad_input(&mut self.g_a, g, w, dims)?;
            } else {
                grad_input(&mut self.g_b, g, w, dims)?;
                for (x, &y) in self.g_a[..n].iter_mut().zip(&self.g_b[..n]) {
                    *x += y;
                }
            }
        }
        // The trunk, last layer first.
        for l in (0..layers).rev() {
            let (inputs, outputs) = (self.trunk[l], self.trunk[l + 1]);
            relu_grad(&mut self.g_a[..b * outputs], &self.h[l]);
            let x = if l == 0 { obs_m } else { &self.h[l - 1][..] };
            let (gw, gb) = self.actor_grads.split_at_mut(2 * l + 1);
            let gw = &mut gw[2 * l][m * inputs * outputs..(m + 1) * inputs * outputs];
            let gb = &mut gb[0][m * outputs..(m + 1) * outputs];
            let dims = (b, inputs, outputs);
            grad_params((gw, (1, inputs as isize)), gb, x, &self.g_a, dims)?;
            if l > 0 {
                let w = (p[2 * l], out_in(inputs, outputs), m);
                grad_input(&mut self.g_b, &self.g_a, w, dims)?;
                std::mem::swap(&mut self.g_a, &mut self.g_b);
            }
        }
        Ok(())
    }
}

/// The actor's parameters in [`MixturePolicy::named_vars`]' order, the logits head only for
/// K = `components` > 1.
pub(super) fn actor_params(actor: &MixturePolicy, components: usize) -> Vec<&Tensor> {
    let (trunk, mean, log_std, logits) = actor.layers();
    trunk
        .iter()
        .chain([mean, log_std])
        .chain((components > 1).then_some(logits))
        .flat_map(|l| [l.weight.as_tensor(), l.bias.as_tensor()])
        .collect()
}

/// A critic ensemble's parameters, layer by layer (weight, bias).
pub(super) fn critic_params(q: &crate::sac::critic::QEnsemble) -> Vec<&Tensor> {
    q.layer_vars()
        .flat_map(|(w, b): (&Var, &Var)| [w.as_tensor(), b.as_tensor()])
        .collect()
}
