//! The network of a version-3 file ([`crate::int8`]): integer dot products with 32-bit
//! accumulation, rescaled to `f32` once per output.
//!
//! Per hidden output: `acc = bias + Σ_i x[i] · w[i][o]` in `i32` (exact: `Params::validate`
//! proved it cannot overflow), `z = (acc as f32) · scale[o]`, then the activation, then the
//! next layer's 16-bit code `round(act(z) · (1 / s_l))`. The heads stop at `z`. The only
//! per-input work is an integer multiply-add, which is what makes a core without an FPU fast.
//! The dot products are `qdot.rs`'s (on the Cortex-M4/M7 its DSP kernel); this module turns
//! their sums into codes ([`Hidden`]) and head outputs ([`Head`]).

use crate::error::{ActError, LoadError};
use crate::format::{Activation, Header};
use crate::int8::{code_doubled, code_doubled_relu, Params};
use crate::math::Math;
use crate::mlp::Heads;
use crate::qdot::{dense, slot, store_group, Codes, Inputs, Sink};
use core::marker::PhantomData;

/// The output `f32(acc) · scale`: `as f32` rounds to nearest, ties to even (exact below
/// 2^24), then one `f32` multiplication.
#[inline(always)]
fn rescale(acc: i32, scale: f32) -> f32 {
    acc as f32 * scale
}

/// `2 / scale`: a code is `code_doubled(x · (2 / s))` (`int8::code_doubled`), one
/// multiplication per code. A valid file's scales are positive normal numbers, so this is
/// finite.
fn doubled_inverse(scale: Option<f32>) -> f32 {
    2.0 / scale.unwrap_or(1.0)
}

/// A hidden layer's outputs: activation, then the next layer's codes (`inv2 = 2 / s_l`),
/// stored as `qdot::slot` orders them.
struct Hidden<'o, M, const RELU: bool> {
    out: &'o mut [i16],
    inv2: f32,
    math: PhantomData<M>,
}

impl<M: Math, const RELU: bool> Hidden<'_, M, RELU> {
    /// The code of an output with sum `acc` and scale `s`.
    #[inline(always)]
    fn code(&self, acc: i32, s: f32) -> i16 {
        // ReLU in the integer code: a negative pre-activation's code is clamped to 0.
        if RELU {
            code_doubled_relu(rescale(acc, s) * self.inv2)
        } else {
            code_doubled(M::tanh(rescale(acc, s)) * self.inv2)
        }
    }
}

impl<M: Math, const RELU: bool> Sink for Hidden<'_, M, RELU> {
    #[inline(always)]
    fn put4(&mut self, start: usize, acc: [i32; 4], scale: [f32; 4]) {
        let ([a0, a1, a2, a3], [s0, s1, s2, s3]) = (acc, scale);
        let codes = [
            self.code(a0, s0),
            self.code(a1, s1),
            self.code(a2, s2),
            self.code(a3, s3),
        ];
        let out = self
            .out
            .get_mut(start..)
            .and_then(|o| o.first_chunk_mut::<4>());
        if let Some(out) = out {
            store_group(out, codes);
        }
    }

    #[inline(always)]
    fn put1(&mut self, o: usize, acc: i32, scale: f32) {
        let code = self.code(acc, scale);
        if let Some(x) = self.out.get_mut(o) {
            *x = code;
        }
    }

    #[cfg(all(policy_core_dsp, policy_core_vfma))]
    fn relu_codes(&mut self) -> Option<(&mut [i16], f32)> {
        RELU.then_some((&mut *self.out, self.inv2))
    }
}

/// A head's outputs, `f32(acc) · scale`.
struct Head<'o> {
    out: &'o mut [f32],
}

impl Sink for Head<'_> {
    #[inline(always)]
    fn put4(&mut self, start: usize, acc: [i32; 4], scale: [f32; 4]) {
        let ([a0, a1, a2, a3], [s0, s1, s2, s3]) = (acc, scale);
        let z = [
            rescale(a0, s0),
            rescale(a1, s1),
            rescale(a2, s2),
            rescale(a3, s3),
        ];
        if let Some(out) = self
            .out
            .get_mut(start..)
            .and_then(|o| o.first_chunk_mut::<4>())
        {
            *out = z;
        }
    }

    #[inline(always)]
    fn put1(&mut self, o: usize, acc: i32, scale: f32) {
        if let Some(z) = self.out.get_mut(o) {
            *z = rescale(acc, scale);
        }
    }
}

/// Most head outputs [`QNetwork::fused_heads`] computes in one pass.
#[cfg(policy_core_dsp)]
const FUSED_HEADS: usize = 16;

/// The trunk and heads of a version-3 policy.
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

    /// On the DSP kernel's cores: the three heads as one layer of `2KA + K` outputs (their
    /// weights are contiguous in the file, `Params::heads`), tiles of 4 across the heads'
    /// boundaries, one pass over the trunk's codes per tile; then each output's
    /// `f32(bias + Σ) · scale`, the bits of [`Head`]. Hands `outs` back when the heads have
    /// more than [`FUSED_HEADS`] outputs together.
    #[cfg(policy_core_dsp)]
    fn fused_heads<'o, const W: usize>(
        &self,
        trunk: &[i16],
        outs: [&'o mut [f32]; 3],
    ) -> Result<(), [&'o mut [f32]; 3]> {
        let heads = self.params.blocks.get(self.hidden_layers..).unwrap_or(&[]);
        let inputs = heads.first().map_or(0, |b| b.inputs());
        let n: usize = heads.iter().map(|b| b.outputs).sum();
        let same = heads.iter().all(|b| b.inputs() == inputs);
        let rows = self.params.heads;
        if n > FUSED_HEADS || !same || Some(rows.len()) != n.checked_mul(inputs) {
            return Err(outs);
        }
        let mut sums = [0i32; FUSED_HEADS];
        let x = trunk.get(..inputs).unwrap_or(&[]);
        crate::qdot::head_sums::<W>(rows, inputs, x, sums.get_mut(..n).unwrap_or(&mut []));
        let mut sums = sums.get(..n).unwrap_or(&[]);
        for (block, out) in heads.iter().zip(outs) {
            let (mine, rest) = sums.split_at_checked(block.outputs).unwrap_or((&[], &[]));
            sums = rest;
            let words = block.bias_words().iter().zip(block.scale_words());
            for ((&sum, (b, s)), z) in mine.iter().zip(words).zip(out.iter_mut()) {
                // The bias last, as `dense` adds it: the same `bias + Σ` to the bit.
                *z = rescale(
                    sum.wrapping_add(i32::from_le_bytes(*b)),
                    f32::from_le_bytes(*s),
                );
            }
        }
        Ok(())
    }

    /// As `Network::forward`: `obs` checked, dimensions within the capacities.
    pub fn forward<M: Math, const A: usize, const K: usize, const W: usize>(
        &self,
        obs: &[f32],
        heads: &mut Heads<A, K>,
    ) -> Result<(), ActError> {
        let mut buf_a = Codes::<W>::new();
        let mut buf_b = Codes::<W>::new();
        let (mut input, mut output) = (&mut buf_a, &mut buf_b);
        let n_obs = obs.len();
        let obs_code = |i: usize| match (obs.get(i), self.params.obs_scale(i)) {
            (Some(&x), s @ Some(_)) => code_doubled(x * doubled_inverse(s)),
            _ => 0,
        };
        // The usual case: the observation's codes once, in the input buffer (free until
        // layer 1). A longer observation (the buffer holds `W`, and the observation length
        // is not one of the policy type's capacities) is coded again for every output.
        let obs_fits = n_obs <= W;
        if obs_fits {
            for i in 0..n_obs {
                if let Some(x) = input.0.get_mut(slot(i, n_obs)) {
                    *x = obs_code(i);
                }
            }
        }
        let blocks = self.params.blocks.iter();
        for (l, block) in blocks.clone().take(self.hidden_layers).enumerate() {
            let inv2 = doubled_inverse(self.params.act_scale(l));
            let out = &mut output.0[..];
            let x = if l > 0 || obs_fits {
                Inputs::Codes(&input.0[..])
            } else {
                Inputs::By(&obs_code)
            };
            if self.activation == Activation::Relu {
                let mut sink = Hidden::<M, true> {
                    out,
                    inv2,
                    math: PhantomData,
                };
                dense::<_, _, W>(block, &x, &mut sink);
            } else {
                let mut sink = Hidden::<M, false> {
                    out,
                    inv2,
                    math: PhantomData,
                };
                dense::<_, _, W>(block, &x, &mut sink);
            }
            core::mem::swap(&mut input, &mut output);
        }
        let outs = heads.outputs_mut();
        #[cfg(policy_core_dsp)]
        let outs = self.fused_heads::<W>(&input.0[..], outs).err();
        #[cfg(not(policy_core_dsp))]
        let outs = Some(outs);
        if let Some(outs) = outs {
            let trunk = Inputs::<fn(usize) -> i16>::Codes(&input.0[..]);
            for (block, out) in blocks.skip(self.hidden_layers).zip(outs) {
                dense::<_, _, W>(block, &trunk, &mut Head { out });
            }
        }
        heads.finish::<M>(self.components, self.action_dim, self.log_std_bounds)
    }
}
