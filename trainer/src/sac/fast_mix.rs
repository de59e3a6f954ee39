//! The `mrp` actor step of a squashed Gaussian mixture (`sgm`) by hand on the CPU, in the
//! workspace and with the products of [`super::fast_rep`] (whose critic step serves it) and
//! the per-row log π and heads' backward of [`super::fast_sgm`].
//!
//! loss = 1/B Σ_s Σ_k w_k(s) [α log π(a_k|s) − Q(s, a_k)], one reparameterised
//! a_k = tanh(μ_k + σ_k ε_k) · scale + offset from every component, so the critics see K·B
//! rows (row r·K + k is state r's a_k). The forward pass performs candle's f32 operations in
//! candle's order ([`super::estimators`]' `mrp`), so draws, log π and the loss's terms are
//! the same bits; the backward pass is the chain rule written out, equal to candle's up to
//! the order of its roundings (`tests/fast_mix.rs`).
//!
//! Used by [`Agent::update`](super::Agent::update) when every condition holds: CPU, f32,
//! a squashed policy, the `mrp` estimator, a learned double Q and host Adam moments. Member
//! i draws from `rngs[i]` what candle's path draws: B × K × A normals, (state, component,
//! dimension) in that order, and no uniforms.
//!
//! Gradients, per state, with g_k = α w_k / B the weight of log π(a_k) and
//! ∂w_k = (α log π(a_k) − Q(s, a_k)) / B:
//!   ∂Q(s, a_k) = −w_k / B, back through the critics to ∂a_k;
//!   each log π(a_k) depends on every head (responsibilities ρ⁽ᵏ⁾) and on u_k: the heads'
//!   gradients of one drawn action are [`grad_row`]'s with component k drawn, g = g_k, summed
//!   over k; ∂log w_j += w_j ∂w_j (w = exp(log w)); then through log_softmax to the logits.
//!
//! Through candle, every one of the K·B rows is a handful of small tensors (repeats,
//! reshapes, broadcasts, a [B, K, K, A] log-density) allocated and differentiated one
//! operation at a time; here they are loops over buffers sized once. Measured on a shared
//! 2-core VM with the long experiment paused (`mixsac bench --only mrp-sgm --steps 3000
//! --repeats 3`: pendulum, K = 5, hidden 64, batch 32, the first 1000 steps random), medians
//! of two sets of three alternated rounds: 2827 and 3195 steps/s on candle's path (the
//! build before this module), 5323 and 5726 here (1.88× and 1.79×; single rounds ranged
//! 2526–3253 and 4250–6161).

use super::fast_rep::{actor_params, candle_min, critic_params, lock, values, FastRep};
use super::fast_sgm::{grad_row, log_prob_row, RowDraw, RowHeads};
use crate::sac::actor::MixturePolicy;
use crate::sac::critic::DoubleQ;
use crate::sac::optim::Adam;
use candle_core::{Result, Tensor};
use rand::Rng;
use rand_distr::StandardNormal;

impl FastRep {
    /// Member m's K actions per state from its heads (row r·K + k from component k): ε, u,
    /// the actions, w = exp(log w), every action's log π (`log_prob_each`) and its
    /// responsibilities, and member m's row of `log_prob` (E_w[log π], as candle logs it).
    fn draw_every_component<R: Rng>(&mut self, m: usize, rng: &mut R) {
        let (b, a, k) = (self.batch, self.action_dim, self.components);
        for e in self.eps[..b * k * a].iter_mut() {
            *e = rng.sample::<f32, _>(StandardNormal);
        }
        for (w, &lw) in self.weights.iter_mut().zip(&self.log_w) {
            *w = lw.exp();
        }
        let log_scale_sum = self.squash.log_scale_sum as f32;
        for r in 0..b {
            let heads = RowHeads {
                mean: &self.mean[r * k * a..(r + 1) * k * a],
                log_std: &self.log_std[r * k * a..(r + 1) * k * a],
                log_w: &self.log_w[r * k..(r + 1) * k],
            };
            let mut expected = 0.0f32;
            for j in 0..k {
                let row = r * k + j;
                // The heads' index of component j's dimension d is the action row's too.
                for d in 0..a {
                    let i = row * a + d;
                    self.u[i] = self.mean[i] + self.log_std[i].exp() * self.eps[i];
                    self.action[i] =
                        self.u[i].tanh() * self.squash.scale[d] + self.squash.offset[d];
                }
                let u = &self.u[row * a..(row + 1) * a];
                let resp = &mut self.resp[row * k..(row + 1) * k];
                self.log_prob_each[row] = log_prob_row(&heads, u, log_scale_sum, resp);
                expected += self.weights[row] * self.log_prob_each[row];
            }
            self.log_prob[m * b + r] = expected;
        }
    }

    /// The heads' gradients (see the module doc) from the actions' gradient `g_action`
    /// [B·K, A], ∂w in `g_score` [B, K] and log π's weight `g_alpha` = α / B.
    fn mrp_heads_grad(&mut self, g_alpha: f32, scratch: &mut [Vec<f32>; 3]) {
        let (b, a, k) = (self.batch, self.action_dim, self.components);
        self.g_mean.fill(0.0);
        self.g_raw_log_std.fill(0.0);
        self.g_logits.fill(0.0);
        let [s_mean, s_log_std, s_log_w] = scratch;
        for r in 0..b {
            let (rows_a, rows_k) = (r * k * a..(r + 1) * k * a, r * k..(r + 1) * k);
            let heads = RowHeads {
                mean: &self.mean[rows_a.clone()],
                log_std: &self.log_std[rows_a.clone()],
                log_w: &self.log_w[rows_k.clone()],
            };
            for j in 0..k {
                let row = r * k + j;
                let draw = RowDraw {
                    eps: &self.eps[row * a..(row + 1) * a],
                    u: &self.u[row * a..(row + 1) * a],
                    component: j,
                    resp: &self.resp[row * k..(row + 1) * k],
                };
                let g = g_alpha * self.weights[row];
                let g_action = &self.g_action[row * a..(row + 1) * a];
                grad_row(
                    &heads,
                    &draw,
                    &self.squash.scale,
                    (g_action, g, 0.0),
                    s_mean,
                    s_log_std,
                    s_log_w,
                );
                let sums = [
                    (&mut self.g_mean[rows_a.clone()], &*s_mean),
                    (&mut self.g_raw_log_std[rows_a.clone()], &*s_log_std),
                    (&mut self.g_logits[rows_k.clone()], &*s_log_w),
                ];
                for (total, part) in sums {
                    total.iter_mut().zip(part).for_each(|(t, &p)| *t += p);
                }
            }
            // ∂log w_j = w_j ∂w_j + Σ_k (log π(a_k)'s), then through log_softmax (the log σ
            // clamp's gradient, taken first there, touches no ∂log w: the same bits).
            for i in rows_k {
                self.g_logits[i] += self.weights[i] * self.g_score[i];
            }
            self.clamp_and_logits_grad(r);
        }
    }

    /// The actor's `mrp` step (see [`super::Agent`]'s `actor_step`) against the online
    /// critics held fixed: every member's loss and E_w[log π] [S, B] of its draws.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mrp_actor_step<R: Rng>(
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
        let rows = b * k;
        let mut losses = Vec::with_capacity(s);
        let mut scratch = [vec![0.0f32; k * a], vec![0.0f32; k * a], vec![0.0f32; k]];
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
                self.draw_every_component(m, rng);
                // The critics' input: row r·K + j is [obs_r, a_rj].
                for (row, x) in self.x.chunks_exact_mut(o + a).take(rows).enumerate() {
                    let r = row / k;
                    x[..o].copy_from_slice(&obs_m[r * o..(r + 1) * o]);
                    x[o..].copy_from_slice(&self.action[row * a..(row + 1) * a]);
                }
                self.critic_forward(&online, m, rows)?;
                let q = &self.q_acts[last];
                let mut sum = 0.0f32;
                for r in 0..b {
                    let mut row_sum = 0.0f32;
                    for j in 0..k {
                        let row = r * k + j;
                        let term = (self.log_prob_each[row] * alpha + 0.0)
                            - candle_min(q[row], q[rows + row]);
                        row_sum += self.weights[row] * term;
                        self.g_score[row] = g_term * term;
                    }
                    sum += row_sum;
                }
                losses.push(sum * g_term + 0.0);
                // ∂ of min Q(s, a_k): −w_k/B, to every network attaining it.
                self.g_action[..rows * a].fill(0.0);
                for net in 0..2 {
                    for row in 0..rows {
                        let q = &self.q_acts[last];
                        let attains = q[net * rows + row] == candle_min(q[row], q[rows + row]);
                        self.g_a[row] = if attains {
                            -(g_term * self.weights[row])
                        } else {
                            0.0
                        };
                    }
                    self.critic_backward_rows(&online, m, net, false, rows)?;
                    let (g, gk) = (&mut self.g_action[..rows * a], &self.g_action_k);
                    g.iter_mut().zip(gk).for_each(|(g, &gk)| *g += gk);
                }
                self.mrp_heads_grad(g_term * alpha + 0.0, &mut scratch);
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
