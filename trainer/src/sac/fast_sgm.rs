//! The `halfrep` actor step of a squashed Gaussian mixture (`sgm`, any K ≥ 1, any action
//! dimension) by hand on the CPU, in the workspace and with the products of
//! [`super::fast_rep`] (whose critic step serves both; its draws for K > 1 are
//! [`FastRep::draw_mixture`] here).
//!
//! Through candle, a `halfrep` update at SAC's sizes is mostly per-element copies,
//! allocations and element-wise maps (the baseline's 30 actions per state are repeated,
//! concatenated and broadcast as tensors); only about 37 % of its time was matrix products.
//! Here the forward pass performs candle's f32 operations in candle's order (the products
//! are the fused dense layer's, [`crate::nn::dense_op`]), so the draws, log π, the baseline
//! and the losses' terms are the same bits (for fewer than 32 action dimensions: candle
//! sums longer rows in another order); the backward pass is the chain rule written out
//! (below), equal to candle's up to the order of its roundings (`tests/fast_sgm.rs`).
//! Measured on a shared 2-core VM (`mixsac bench --only halfrep-sgm --steps 3000 --repeats
//! 3`: pendulum, K = 5, hidden 64, batch 32, the first 1000 steps random), medians of two
//! sets of three alternated rounds: 1943 and 1856 steps/s on candle's path, 2696 and 2754
//! here (1.39× and 1.48×; single rounds ranged 1519–2021 and 2382–3342). In a profile the
//! matrix products are now about 57 % of the time, libm's tanh and exp about 8 %.
//!
//! Used by [`Agent::update`](super::Agent::update) only when every condition holds: CPU,
//! f32, a squashed policy (`sgm`, or `squashed` for K = 1), the `halfrep` estimator, a
//! learned double Q and host Adam moments. Member i draws from `rngs[i]` what candle's path
//! draws, in its order: B component uniforms, then B × A normals for the actor's actions,
//! then n·B uniforms and n·B × A normals for the baseline (row j·B + i is state i).
//!
//! Per row, with t_k = log w_k + Σ_d log N(u_d; μ_kd, σ_kd), responsibilities
//! ρ = softmax(t), z_kd = (u_d − μ_kd)/σ_kd, the drawn component c and g = ∂L/∂log π:
//!   ∂u_d = g_a,d · scale_d (1 − tanh² u_d) + 2 g tanh u_d − g Σ_k ρ_k z_kd/σ_kd,
//!   for k ≠ c: ∂μ_kd = g ρ_k z_kd/σ_kd, ∂log σ_kd = g ρ_k (z_kd² − 1);
//!   for c (u = μ_c + σ_c ε, the terms in z_c cancelled exactly since z_c = ε):
//!   ∂μ_cd = ∂u_d + g ρ_c z_cd/σ_cd, ∂log σ_cd = (∂μ_cd) σ_cd ε_d − g ρ_c;
//!   ∂log w_k = g ρ_k (+ the score term's weight for k = c), and through log_softmax
//!   ∂ℓ_j = ∂log w_j − w_j Σ_k ∂log w_k.
//! For K = 1 this is [`super::squashed_draw`]'s backward pass.

use super::fast_rep::{
    actor_params, candle_min, critic_input, critic_params, lock, values, FastRep,
};
use crate::sac::actor::{component_of, MixturePolicy};
use crate::sac::critic::DoubleQ;
use crate::sac::optim::Adam;
use crate::sac::squashed_draw::{log_normal_dim, tanh_log_det_dim};
use candle_core::{Result, Tensor};
use rand::Rng;
use rand_distr::StandardNormal;

/// candle's reduce-max of a row (the first of equal values; values only matter here).
fn row_max(row: &[f32]) -> f32 {
    row[1..]
        .iter()
        .fold(row[0], |m, &v| if v > m { v } else { m })
}

/// candle-nn's `log_softmax` of one row: (x − max) − ln Σ exp(x − max), summed in order.
pub(super) fn log_softmax(logits: &[f32], out: &mut [f32]) {
    let max = row_max(logits);
    let mut sum = 0.0f32;
    for &l in logits {
        sum += (l - max).exp();
    }
    let log_sum = sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l - max) - log_sum;
    }
}

/// One row's heads: μ and clamped log σ [K·A] (component k's dimension d at k·A + d) and
/// log w [K].
pub(super) struct RowHeads<'a> {
    pub(super) mean: &'a [f32],
    pub(super) log_std: &'a [f32],
    pub(super) log_w: &'a [f32],
}

/// log π of pre-squash `u` [A] under `heads` (DESIGN.md §3) for K > 1 (one component takes
/// [`super::squashed_draw`]'s path), the same f32 operations in the same order as
/// [`MixturePolicy::log_prob_u`]; the responsibilities softmax_k(t_k) go into `resp` [K].
pub(super) fn log_prob_row(
    heads: &RowHeads,
    u: &[f32],
    log_scale_sum: f32,
    resp: &mut [f32],
) -> f32 {
    let a = u.len();
    // t_k = log w_k + log N_k(u), kept in `resp` until normalised.
    for (j, t) in resp.iter_mut().enumerate() {
        let mut log_n = 0.0f32;
        for (d, &u_d) in u.iter().enumerate() {
            let (m, l) = (heads.mean[j * a + d], heads.log_std[j * a + d]);
            let z = (u_d - m) * (-l).exp();
            log_n += log_normal_dim(z, l);
        }
        *t = log_n;
    }
    for (t, &lw) in resp.iter_mut().zip(heads.log_w) {
        *t += lw;
    }
    let max = row_max(resp);
    let mut sum = 0.0f32;
    for t in resp.iter_mut() {
        *t = (*t - max).exp();
        sum += *t;
    }
    resp.iter_mut().for_each(|e| *e /= sum);
    let log_density = sum.ln() + max;
    let mut log_det = 0.0f32;
    for &u_d in u {
        log_det += tanh_log_det_dim(u_d);
    }
    log_density - (log_det * 1.0 + log_scale_sum)
}

/// One row's draw as the backward pass needs it.
pub(super) struct RowDraw<'a> {
    pub(super) eps: &'a [f32],
    pub(super) u: &'a [f32],
    pub(super) component: usize,
    pub(super) resp: &'a [f32],
}

/// One row's heads' gradients (see the module doc): into `g_mean` and `g_log_std` [K·A]
/// (before the clamp) and `g_log_w` [K], from the actions' gradient `g_action` [A], log π's
/// `g` and the score term's weight `g_score` on log w_c.
#[allow(clippy::too_many_arguments)]
pub(super) fn grad_row(
    heads: &RowHeads,
    draw: &RowDraw,
    scale: &[f32],
    (g_action, g, g_score): (&[f32], f32, f32),
    g_mean: &mut [f32],
    g_log_std: &mut [f32],
    g_log_w: &mut [f32],
) {
    let a = draw.u.len();
    let c = draw.component;
    for (d, &u_d) in draw.u.iter().enumerate() {
        let t = u_d.tanh();
        // As `squashed_draw::grad_dim` for K = 1.
        let mut g_u = g_action[d] * scale[d] * (1.0 - t * t) + 2.0 * g * t;
        for (j, &rho) in draw.resp.iter().enumerate() {
            if j == c {
                continue;
            }
            let i = j * a + d;
            let inv_std = (-heads.log_std[i]).exp();
            let z = (u_d - heads.mean[i]) * inv_std;
            let w = g * rho;
            g_mean[i] = w * z * inv_std;
            g_log_std[i] = w * (z * z - 1.0);
            g_u -= g_mean[i];
        }
        let i = c * a + d;
        let sigma = heads.log_std[i].exp();
        g_mean[i] = g_u;
        g_log_std[i] = g_u * sigma * draw.eps[d] - g * draw.resp[c];
    }
    for (gw, &rho) in g_log_w.iter_mut().zip(draw.resp) {
        *gw = g * rho;
    }
    g_log_w[c] += g_score;
}

impl FastRep {
    /// One mixture draw per row from member m's heads (K > 1), its random numbers taken as
    /// [`MixturePolicy::rsample`] takes them: B uniforms, then B × A normals. Fills `eps`,
    /// `u`, `choice`, `resp`, `action` and member m's row of `log_prob`.
    pub(super) fn draw_mixture<R: Rng>(&mut self, m: usize, rng: &mut R) {
        let (b, a, k) = (self.batch, self.action_dim, self.components);
        for (w, &lw) in self.weights.iter_mut().zip(&self.log_w) {
            *w = lw.exp();
        }
        for r in 0..b {
            let v: f32 = rng.random();
            self.choice[r] = component_of(&self.weights[r * k..(r + 1) * k], v);
        }
        for e in self.eps[..b * a].iter_mut() {
            *e = rng.sample::<f32, _>(StandardNormal);
        }
        let log_scale_sum = self.squash.log_scale_sum as f32;
        for r in 0..b {
            let heads = RowHeads {
                mean: &self.mean[r * k * a..(r + 1) * k * a],
                log_std: &self.log_std[r * k * a..(r + 1) * k * a],
                log_w: &self.log_w[r * k..(r + 1) * k],
            };
            let c = self.choice[r];
            for d in 0..a {
                let i = r * a + d;
                let (mean, log_std) = (heads.mean[c * a + d], heads.log_std[c * a + d]);
                self.u[i] = mean + log_std.exp() * self.eps[i];
                self.action[i] = self.u[i].tanh() * self.squash.scale[d] + self.squash.offset[d];
            }
            let u = &self.u[r * a..(r + 1) * a];
            let resp = &mut self.resp[r * k..(r + 1) * k];
            self.log_prob[m * b + r] = log_prob_row(&heads, u, log_scale_sum, resp);
        }
    }

    /// `halfrep`'s baseline b(s) of member m into `baseline` [B]: the mean of min(Q1, Q2)
    /// over n actions per state drawn from the heads (no gradient), drawn as
    /// [`MixturePolicy::rsample`] draws n·B rows (row j·B + i is state i).
    fn baseline<R: Rng>(
        &mut self,
        online: &[&[f32]],
        m: usize,
        obs_m: &[f32],
        rng: &mut R,
    ) -> Result<()> {
        let (b, a, k, o) = (self.batch, self.action_dim, self.components, self.obs_dim);
        let n = self.baseline_samples;
        if n == 0 {
            self.baseline.fill(0.0);
            return Ok(());
        }
        let rows = n * b;
        // Each state's weights and σ once (candle's exp of the repeated heads: the same bits).
        if k == 1 {
            self.weights.fill(1.0);
        } else {
            for (w, &lw) in self.weights.iter_mut().zip(&self.log_w) {
                *w = lw.exp();
            }
        }
        for (sigma, &l) in self.sigma.iter_mut().zip(&self.log_std) {
            *sigma = l.exp();
        }
        for r in 0..rows {
            let v: f32 = rng.random();
            let i = r % b;
            self.baseline_choice[r] = component_of(&self.weights[i * k..(i + 1) * k], v);
        }
        // The normals in the order candle draws them, row by row, straight into the
        // critics' input [obs_i, action].
        let width = o + a;
        for r in 0..rows {
            let (i, c) = (r % b, self.baseline_choice[r]);
            let row = &mut self.x[r * width..(r + 1) * width];
            row[..o].copy_from_slice(&obs_m[i * o..(i + 1) * o]);
            for d in 0..a {
                let e: f32 = rng.sample(StandardNormal);
                let h = i * k * a + c * a + d;
                let u = self.mean[h] + self.sigma[h] * e;
                row[o + d] = u.tanh() * self.squash.scale[d] + self.squash.offset[d];
            }
        }
        self.critic_forward(online, m, rows)?;
        let q = &self.q_acts[self.q_acts.len() - 1];
        // The mean over j, summed in j's order as candle reduces the middle axis.
        self.baseline.fill(0.0);
        for r in 0..rows {
            self.baseline[r % b] += candle_min(q[r], q[rows + r]);
        }
        let scale = (1.0 / n as f64) as f32;
        self.baseline.iter_mut().for_each(|v| *v = *v * scale + 0.0);
        Ok(())
    }

    /// The heads' gradients of every row (the raw log σ's and the logits' included) from the
    /// actions' gradient `g_action`, the score weights `g_score` and log π's `g`.
    fn heads_grad(&mut self, g: f32) {
        let (b, a, k) = (self.batch, self.action_dim, self.components);
        for r in 0..b {
            let (rows_a, rows_k) = (r * k * a..(r + 1) * k * a, r * k..(r + 1) * k);
            let heads = RowHeads {
                mean: &self.mean[rows_a.clone()],
                log_std: &self.log_std[rows_a.clone()],
                log_w: &self.log_w[rows_k.clone()],
            };
            let draw = RowDraw {
                eps: &self.eps[r * a..(r + 1) * a],
                u: &self.u[r * a..(r + 1) * a],
                component: self.choice[r],
                resp: &self.resp[rows_k.clone()],
            };
            let g_action = &self.g_action[r * a..(r + 1) * a];
            // ∂log w first, turned into ∂logits in place below.
            grad_row(
                &heads,
                &draw,
                &self.squash.scale,
                (g_action, g, self.g_score[r]),
                &mut self.g_mean[rows_a.clone()],
                &mut self.g_raw_log_std[rows_a],
                &mut self.g_logits[rows_k],
            );
            self.clamp_and_logits_grad(r);
        }
    }

    /// The actor's `halfrep` step (see [`super::Agent`]'s `actor_step`) against the online
    /// critics held fixed: every member's loss and log π [S, B] of the drawn actions.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn halfrep_actor_step<R: Rng>(
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
        let (o, a, k) = (self.obs_dim, self.action_dim, self.components);
        let mut losses = Vec::with_capacity(s);
        {
            let actor_locks = lock(actor_params(actor, k));
            let online_locks = lock(critic_params(&critic.online));
            let (actor_views, online) = (values(&actor_locks)?, values(&online_locks)?);
            let data_locks = lock([obs]);
            let obs = values(&data_locks)?[0];
            // ∂loss/∂term = 1/B (the mean's scale).
            let g_term = (1.0 / b as f64) as f32;
            let last = self.q_acts.len() - 1;
            for (m, rng) in rngs.iter_mut().enumerate() {
                let alpha = alphas[m] as f32;
                let obs_m = &obs[m * b * o..(m + 1) * b * o];
                self.actor_forward(&actor_views, m, obs_m)?;
                // Drawn in candle's order: the actions, then the baseline's.
                self.draw(m, rng)?;
                if k == 1 {
                    // `draw` took the fused K = 1 path, which keeps no u: rebuilt as that
                    // path computed it (μ + σ ε), from the only component.
                    for (i, u) in self.u.iter_mut().enumerate() {
                        *u = self.mean[i] + self.log_std[i].exp() * self.eps[i];
                    }
                    self.choice[..b].fill(0);
                    self.resp.fill(1.0);
                }
                self.baseline(&online, m, obs_m, rng)?;
                // Q on the drawn actions; the critics' activations kept for the backward pass.
                critic_input(&mut self.x, obs_m, &self.action, (o, a));
                self.critic_forward(&online, m, b)?;
                let q = &self.q_acts[last];
                let mut sum = 0.0f32;
                let log_prob = &self.log_prob[m * b..(m + 1) * b];
                for r in 0..b {
                    let min_q = candle_min(q[r], q[b + r]);
                    let alpha_log_prob = log_prob[r] * alpha + 0.0;
                    let score_weight = alpha_log_prob - (min_q - self.baseline[r]);
                    let log_w_k = if k > 1 {
                        self.log_w[r * k + self.choice[r]]
                    } else {
                        0.0
                    };
                    // ∂/∂log w_c of the score term, kept for the backward pass.
                    self.g_score[r] = g_term * score_weight;
                    sum += log_w_k * score_weight + (alpha_log_prob - min_q);
                }
                losses.push(sum * g_term + 0.0);
                // ∂ of min Q: −1/B, to every network attaining it.
                self.g_action.fill(0.0);
                for net in 0..2 {
                    for r in 0..b {
                        let q = &self.q_acts[last];
                        let attains = q[net * b + r] == candle_min(q[r], q[b + r]);
                        self.g_a[r] = if attains { -g_term } else { 0.0 };
                    }
                    self.critic_backward(&online, m, net, false)?;
                    for (g, &gk) in self.g_action.iter_mut().zip(&self.g_action_k) {
                        *g += gk;
                    }
                }
                // Through the draw, log π and the clamp to the heads; log w to the logits.
                self.heads_grad(g_term * alpha + 0.0);
                self.actor_backward(&actor_views, m, obs_m)?;
            }
        }
        let mut grads: Vec<Option<&[f32]>> =
            self.actor_grads.iter().map(|g| Some(&g[..])).collect();
        if k == 1 {
            // The logits head: no gradient (log w = 0), so Adam leaves it alone.
            grads.extend([None, None]);
        }
        optimizer.step_host(&grads, active)?;
        let log_prob = Tensor::from_slice(&self.log_prob, (s, b), obs.device())?;
        Ok((losses, log_prob))
    }
}
