//! The network of a version-2 file ([`crate::int8`]): integer dot products with 32-bit
//! accumulation, rescaled to `f32` once per output.
//!
//! Per hidden output: `acc = bias + Σ_i x[i] · w[i][o]` in `i32` (exact: `Params::validate`
//! proved it cannot overflow), `z = (acc as f32) · scale[o]`, then the activation, then the
//! next layer's 16-bit code `round(act(z) · (1 / s_l))`. The heads stop at `z`. The only
//! per-input work is an integer multiply-add, which is what makes a core without an FPU fast.

use crate::error::{ActError, LoadError};
use crate::format::{Activation, Header};
use crate::int8::{code, Params, QBlock};
use crate::math::Math;
use crate::mlp::Heads;

/// The inputs of a layer as 16-bit codes.
trait Codes {
    fn code(&self, i: usize) -> i16;
}

/// A hidden layer's output codes.
impl Codes for [i16] {
    fn code(&self, i: usize) -> i16 {
        self.get(i).copied().unwrap_or(0)
    }
}

/// The observation, quantized as it is read: feature `i` at its own scale. Converted once
/// into the input buffer when it fits; a longer observation (the buffer holds `WIDTH`, and
/// the observation length is not one of the policy type's capacities) is converted again
/// by each tile of layer 0.
struct ObsCodes<'o> {
    obs: &'o [f32],
    scales: &'o [[u8; 4]],
}

impl Codes for ObsCodes<'_> {
    fn code(&self, i: usize) -> i16 {
        match (self.obs.get(i), self.scales.get(i)) {
            (Some(&x), Some(s)) => code(x, 1.0 / f32::from_le_bytes(*s)),
            _ => 0,
        }
    }
}

/// Widest output tile: the partial sums stay in registers while the inputs stream by. The
/// Cortex-M cores have 13 general registers (the M0 reaches 8 of them cheaply).
const MAX_TILE: usize = if cfg!(target_arch = "arm") { 16 } else { 32 };

/// `sink(o, acc[o], scale[o])` for every output `o` of `block`, `acc[o] = bias[o] + Σ_i
/// x[i] · w[i][o]`; the output is `scale[o] · acc[o]`, which the sink computes (a ReLU can
/// act on `acc` first: the scale is positive, so the sign is the accumulator's).
fn dense<X: Codes + ?Sized, F: FnMut(usize, i32, f32)>(block: &QBlock<'_>, x: &X, mut sink: F) {
    let n = block.outputs;
    let mut start = 0;
    while start < n {
        start += match n - start {
            r if r >= 32 && MAX_TILE >= 32 => tile::<32, X, F>(block, x, start, &mut sink),
            r if r >= 16 && MAX_TILE >= 16 => tile::<16, X, F>(block, x, start, &mut sink),
            r if r >= 8 && MAX_TILE >= 8 => tile::<8, X, F>(block, x, start, &mut sink),
            4.. => tile::<4, X, F>(block, x, start, &mut sink),
            2.. => tile::<2, X, F>(block, x, start, &mut sink),
            _ => tile::<1, X, F>(block, x, start, &mut sink),
        };
    }
}

/// Outputs `start .. start + T`; returns `T`.
fn tile<const T: usize, X: Codes + ?Sized, F: FnMut(usize, i32, f32)>(
    block: &QBlock<'_>,
    x: &X,
    start: usize,
    sink: &mut F,
) -> usize {
    let mut acc = [0i32; T];
    for (a, b) in acc.iter_mut().zip(block.bias_words().iter().skip(start)) {
        *a = i32::from_le_bytes(*b);
    }
    let rows = block.weights.chunks_exact(block.outputs.max(1));
    for (i, row) in rows.enumerate() {
        let Some(w) = row.get(start..start + T) else {
            break;
        };
        let xi = i32::from(x.code(i));
        for (a, &w) in acc.iter_mut().zip(w) {
            // Wrapping only to keep overflow checks out of the loop: validation proved
            // that no sum leaves the i32 range.
            *a = a.wrapping_add(xi.wrapping_mul(i32::from(w)));
        }
    }
    let scales = block.scale_words().iter().skip(start);
    for (t, (&a, s)) in acc.iter().zip(scales).enumerate() {
        sink(start + t, a, f32::from_le_bytes(*s));
    }
    T
}

/// The output `f32(acc) · scale`: `as f32` rounds to nearest, ties to even (exact below
/// 2^24), then one `f32` multiplication.
fn rescale(acc: i32, scale: f32) -> f32 {
    acc as f32 * scale
}

/// The trunk and heads of a version-2 policy.
#[derive(Debug, Clone)]
pub(crate) struct QNetwork<'a> {
    params: Params<'a>,
    hidden_layers: usize,
    activation: Activation,
    components: usize,
    action_dim: usize,
    log_std_bounds: (f32, f32),
}

impl<'a> QNetwork<'a> {
    /// Splits the (already validated) parameter bytes; copies nothing.
    pub fn new(header: &Header, bytes: &'a [u8]) -> Result<Self, LoadError> {
        Ok(QNetwork {
            params: Params::new(header, bytes)?,
            hidden_layers: header.hidden.len(),
            activation: header.activation,
            components: header.components,
            action_dim: header.action_dim,
            log_std_bounds: (header.log_std_min, header.log_std_max),
        })
    }

    /// As `Network::forward`: `obs` checked, dimensions within the capacities.
    pub fn forward<M: Math, const A: usize, const K: usize, const W: usize>(
        &self,
        obs: &[f32],
        heads: &mut Heads<A, K>,
    ) -> Result<(), ActError> {
        let mut buf_a = [0i16; W];
        let mut buf_b = [0i16; W];
        let (mut input, mut output) = (&mut buf_a, &mut buf_b);
        let obs = ObsCodes {
            obs,
            scales: self.params.obs_scales(),
        };
        let blocks = self.params.blocks.iter();
        for (l, block) in blocks.clone().take(self.hidden_layers).enumerate() {
            // A valid file's scales are positive normal numbers, so `inv` is finite.
            let inv = 1.0 / self.params.act_scale(l).unwrap_or(1.0);
            let relu = self.activation == Activation::Relu;
            let out = &mut *output;
            let sink = |o: usize, acc: i32, scale: f32| {
                // ReLU on the accumulator: max(f32(acc) · scale, 0) is f32(max(acc, 0)) ·
                // scale for a positive scale, to the bit, without a float comparison.
                let h = if relu {
                    rescale(acc.max(0), scale)
                } else {
                    M::tanh(rescale(acc, scale))
                };
                if let Some(slot) = out.get_mut(o) {
                    *slot = code(h, inv);
                }
            };
            if l == 0 && obs.obs.len() <= W {
                // The usual case: the observation's codes once, in the input buffer (free
                // until layer 1), instead of once per tile (soft-float without an FPU).
                for (i, slot) in input.iter_mut().enumerate().take(obs.obs.len()) {
                    *slot = obs.code(i);
                }
                dense(block, input.get(..obs.obs.len()).unwrap_or(&[]), sink);
            } else if l == 0 {
                dense(block, &obs, sink);
            } else {
                dense(block, &input[..], sink);
            }
            core::mem::swap(&mut input, &mut output);
        }
        let trunk: &[i16] = &input[..];
        let outs = heads.outputs_mut();
        for (block, out) in blocks.skip(self.hidden_layers).zip(outs) {
            dense(block, trunk, |o, acc, scale| {
                if let Some(slot) = out.get_mut(o) {
                    *slot = rescale(acc, scale);
                }
            });
        }
        heads.finish::<M>(self.components, self.action_dim, self.log_std_bounds)
    }
}
