//! One reparameterised draw of a single squashed Gaussian (K = 1) with its log-density, as
//! one candle operation with a hand-written backward pass, on the CPU.
//!
//! Composed from candle's own operations, a draw, its squashing and its log π are about
//! thirty small tensor operations forward and as many backward, each allocating its result;
//! at SAC's sizes that bookkeeping costs more than the arithmetic (BENCHMARKS.md). The
//! forward pass here performs the same f32 operations in the same order as the composition
//! ([`MixturePolicy::rsample`](super::actor::MixturePolicy::rsample),
//! [`squash`](super::actor::MixturePolicy::squash) and
//! [`log_prob_u`](super::actor::MixturePolicy::log_prob_u)), so its values are the same bits;
//! (for fewer than 32 action dimensions: candle sums longer rows in another order). The
//! backward pass is the chain rule written out, equal to candle's up to the order of its
//! roundings. `tests` hold the two together.
//!
//! Per row and action dimension d, with σ = exp(log σ), u = μ + σ ε, z = (u − μ) · exp(−log σ):
//!   a_d = scale_d · tanh(u_d) + offset_d,
//!   log π = Σ_d (−z_d²/2 − log σ_d − ½ log 2π) − Σ_d [log scale_d + 2 (log 2 − u_d − softplus(−2 u_d))].

use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor};

/// ½ ln(2π), rounded from f64 as candle's affine map rounds the composition's constant.
const HALF_LN_TAU: f32 = 0.918_938_533_204_672_8_f64 as f32;

/// log N(u; μ, σ) of one dimension from its standardised value `z` and log σ `l`, the
/// composition's f32 operations in its order (each `* c` is candle's affine map v · c + 0).
#[inline]
pub(crate) fn log_normal_dim(z: f32, l: f32) -> f32 {
    ((z * z * -0.5 + 0.0) - l) * 1.0 + -HALF_LN_TAU
}

/// 2 (log 2 − u − softplus(−2u)) = log(1 − tanh² u) of one pre-squash dimension, the
/// composition's f32 operations in its order.
#[inline]
pub(crate) fn tanh_log_det_dim(u: f32) -> f32 {
    let x = u * -2.0 + 0.0;
    let softplus = x.max(0.0) + ((-x.abs()).exp() + 1.0).ln();
    (((-u - softplus) * 1.0 + std::f32::consts::LN_2) * 2.0) + 0.0
}

/// The squashing's constants, per action dimension.
#[derive(Debug, Clone)]
pub struct Squash {
    /// (high − low)/2 and (high + low)/2.
    pub scale: Vec<f32>,
    pub offset: Vec<f32>,
    /// Σ_d log scale_d.
    pub log_scale_sum: f64,
}

/// The draws u = μ + σ ε for `mean`, `log_std` (already clamped) and `eps`, all [S, B, A],
/// as [S, B, A + 1]: the squashed actions, then log π. CPU and f32 only (the caller composes
/// candle's operations elsewhere).
pub fn squashed_draw(
    mean: &Tensor,
    log_std: &Tensor,
    eps: &Tensor,
    squash: &Squash,
) -> Result<Tensor> {
    let (mean, log_std, eps) = (mean.contiguous()?, log_std.contiguous()?, eps.contiguous()?);
    mean.apply_op3(&log_std, &eps, SquashedDraw(squash.clone()))
}

/// Whether [`squashed_draw`] can run on tensors like `t`.
pub fn fused(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

struct SquashedDraw(Squash);

/// One action dimension's draw and standardised value.
struct Dim {
    u: f32,
    /// (u − μ) · exp(−log σ), as the composition computes it.
    z: f32,
}

impl Dim {
    /// σ and u = μ + σ ε.
    fn draw(mean: f32, log_std: f32, eps: f32) -> (f32, f32) {
        let sigma = log_std.exp();
        (sigma, mean + sigma * eps)
    }

    fn new(mean: f32, log_std: f32, eps: f32) -> Dim {
        let (_, u) = Dim::draw(mean, log_std, eps);
        let inv_std = (-log_std).exp();
        Dim {
            u,
            z: (u - mean) * inv_std,
        }
    }
}

/// One row's draw (A action dimensions): writes the squashed actions into `action` and
/// returns log π, the same f32 operations in the same order as the composition.
pub(crate) fn draw_row(
    mean: &[f32],
    log_std: &[f32],
    eps: &[f32],
    squash: &Squash,
    action: &mut [f32],
) -> f32 {
    let log_scale_sum = squash.log_scale_sum as f32;
    let (mut log_density, mut log_det) = (0.0f32, 0.0f32);
    for (d, ((&m, &l), &e)) in mean.iter().zip(log_std).zip(eps).enumerate() {
        let dim = Dim::new(m, l, e);
        log_density += log_normal_dim(dim.z, l);
        log_det += tanh_log_det_dim(dim.u);
        action[d] = dim.u.tanh() * squash.scale[d] + squash.offset[d];
    }
    log_density - (log_det * 1.0 + log_scale_sum)
}

/// (∂/∂μ, ∂/∂log σ) of one action dimension with mean `m`, clamped log σ `l`, noise `e` and
/// scale `scale`, from the action's gradient and log π's (see the backward pass below).
pub(crate) fn grad_dim(
    m: f32,
    l: f32,
    e: f32,
    scale: f32,
    g_action: f32,
    g_log_prob: f32,
) -> (f32, f32) {
    let (sigma, u) = Dim::draw(m, l, e);
    let t = u.tanh();
    let g_u = g_action * scale * (1.0 - t * t) + 2.0 * g_log_prob * t;
    (g_u, g_u * sigma * e - g_log_prob)
}

fn host<'a>(storage: &'a CpuStorage, layout: &Layout, n: usize) -> Result<&'a [f32]> {
    let values = crate::nn::host_f32(storage, layout)?;
    if values.len() != n {
        bail!(
            "squashed_draw: {} values where {n} were expected",
            values.len()
        )
    }
    Ok(values)
}

impl SquashedDraw {
    /// (rows, A) of [S, B, A] inputs that agree with each other and with the squashing.
    fn dims(&self, layouts: [&Layout; 3]) -> Result<(usize, usize)> {
        let dims = layouts[0].dims();
        if layouts.iter().any(|l| l.dims() != dims) || dims.len() != 3 {
            bail!("squashed_draw: mean, log σ and ε must share one [S, B, A] shape, got {dims:?}")
        }
        let a = dims[2];
        if a != self.0.scale.len() || a != self.0.offset.len() {
            bail!(
                "squashed_draw: {a} action dimensions, {} scales",
                self.0.scale.len()
            )
        }
        Ok((dims[0] * dims[1], a))
    }
}

impl CustomOp3 for SquashedDraw {
    fn name(&self) -> &'static str {
        "squashed-draw"
    }

    fn cpu_fwd(
        &self,
        ms: &CpuStorage,
        ml: &Layout,
        ls: &CpuStorage,
        ll: &Layout,
        es: &CpuStorage,
        el: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, a) = self.dims([ml, ll, el])?;
        let (mean, log_std, eps) = (
            host(ms, ml, rows * a)?,
            host(ls, ll, rows * a)?,
            host(es, el, rows * a)?,
        );
        let mut out = vec![0.0f32; rows * (a + 1)];
        for (r, out) in out.chunks_exact_mut(a + 1).enumerate() {
            let row = r * a..(r + 1) * a;
            let (action, log_prob) = out.split_at_mut(a);
            log_prob[0] = draw_row(
                &mean[row.clone()],
                &log_std[row.clone()],
                &eps[row],
                &self.0,
                action,
            );
        }
        let dims = ml.dims();
        Ok((CpuStorage::F32(out), Shape::from((dims[0], dims[1], a + 1))))
    }

    /// The chain rule through u = μ + σ ε, the squashing and log π, with g_a the actions'
    /// gradient and g the log-density's. In exact arithmetic z = ε, so the Gaussian term
    /// −z²/2 depends on neither μ nor log σ, and what remains is
    ///   ∂/∂μ = g_a · scale (1 − tanh² u) + 2 g tanh u,  ∂/∂log σ = ∂/∂μ · σ ε − g;
    /// ε gets none (it is noise). Candle's graph reaches the same through two paths that
    /// cancel (±g z/σ), which leaves rounding noise of about 2⁻²⁴ g |z|/σ where σ is tiny.
    fn bwd(
        &self,
        mean: &Tensor,
        log_std: &Tensor,
        eps: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, a) = self.dims([mean.layout(), log_std.layout(), eps.layout()])?;
        let grad_res = grad_res.contiguous()?;
        let read = |t: &Tensor, n: usize| -> Result<Vec<f32>> {
            let (storage, layout) = t.storage_and_layout();
            match &*storage {
                Storage::Cpu(cpu) => Ok(host(cpu, layout, n)?.to_vec()),
                _ => bail!("squashed_draw runs on the CPU only"),
            }
        };
        let (m, l, e) = (
            read(mean, rows * a)?,
            read(log_std, rows * a)?,
            read(eps, rows * a)?,
        );
        let g_out = read(&grad_res, rows * (a + 1))?;
        let (mut g_mean, mut g_log_std) =
            (Vec::with_capacity(rows * a), Vec::with_capacity(rows * a));
        for r in 0..rows {
            let g_log_prob = g_out[r * (a + 1) + a];
            for d in 0..a {
                let i = r * a + d;
                let g_action = g_out[r * (a + 1) + d];
                let (gm, gl) = grad_dim(m[i], l[i], e[i], self.0.scale[d], g_action, g_log_prob);
                g_mean.push(gm);
                g_log_std.push(gl);
            }
        }
        let shape = mean.shape();
        let device = mean.device();
        Ok((
            Some(Tensor::from_vec(g_mean, shape, device)?),
            Some(Tensor::from_vec(g_log_std, shape, device)?),
            None,
        ))
    }
}
