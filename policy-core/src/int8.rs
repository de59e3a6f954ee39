//! Format version 3: int8 weights, 16-bit activation codes, 32-bit integer accumulation.
//!
//! The scheme (chosen by measurement, `policy-core/FORMAT.md` §8):
//! - every weight matrix is stored as symmetric int8 codes (−127 ..= 127, zero-point 0),
//!   with one `f32` scale **per output**, and every bias as an `i32` in units of that scale;
//! - every layer's input is a vector of 16-bit codes (−32767 ..= 32767): observation
//!   feature `i` is `round(obs[i] / s_i)` with its own scale `s_i` (folded into layer 0's
//!   weights by the quantizer), a hidden layer's output `round(act(z) / s_l)` with one scale
//!   per layer, both chosen from calibration states (`quantize`, feature `alloc`);
//! - an output is `z[o] = scale[o] · (bias[o] + Σ_i x[i] · w[i][o])`: the sum is exact in
//!   `i32` (the reader proves at load that it cannot overflow), rescaled once per output.
//!
//! Why 16-bit activations rather than 8: on the firmware's pendulum policy 8-bit
//! observation codes alone raise the mean KL from 0.02 to 0.4 nats and flip the mode action
//! across the whole range at some states; 16-bit codes cost nothing measurable over f32
//! activations (FORMAT.md §8), and an `i16 × i8` product costs what an `i8 × i8` one does
//! on a core whose multiplier is 32 bits wide.
//!
//! This module is the layout of the parameter bytes, their validation and the activation
//! codes; `qdot.rs` computes the dot products, `qnet.rs` the network, `quantize.rs` writes
//! the parameters.

use crate::capacity::MAX_HIDDEN_LAYERS;
use crate::error::LoadError;
use crate::format::Header;
use heapless::Vec as FixedVec;

/// Largest activation code: codes are `i16` in −32767 ..= 32767 (symmetric; −32768 unused).
pub const CODE_MAX: i32 = 32767;
/// Largest weight code: int8 in −127 ..= 127 (symmetric; −128 is refused).
pub const WEIGHT_MAX: i32 = 127;
/// Largest scale a file may hold: `2^31 · SCALE_MAX` (≈ 2.1e38) must stay below `f32::MAX`
/// (≈ 3.4e38), so that `acc · scale` never overflows (`acc` is an `i32`).
pub const SCALE_MAX: f32 = 1.0e29;

/// One dense layer's parameters, in place: `outputs` scales and `outputs` biases (4 bytes
/// little-endian each), and the `outputs × inputs` int8 weights, output-major (each output's
/// weights contiguous: a dot product streams one row, four weights per 32-bit load, which is
/// what the Cortex-M4's dual 16-bit multiply-accumulate wants). (Kept small: a loaded policy
/// holds one per block.)
#[derive(Debug, Clone, Copy)]
pub struct QBlock<'a> {
    /// Output width.
    pub outputs: usize,
    /// Input width (the length of each row of weights).
    pub(crate) inputs: usize,
    /// The scales, then the biases.
    pub(crate) words: &'a [[u8; 4]],
    pub(crate) weights: &'a [i8],
}

impl QBlock<'_> {
    /// Input width.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Scale of output `o`: real output = scale · accumulator.
    pub fn scale(&self, o: usize) -> Option<f32> {
        self.scales().nth(o)
    }

    /// Bias of output `o`, in units of `scale(o)`.
    pub fn bias(&self, o: usize) -> Option<i32> {
        self.bias_words().get(o).map(|b| i32::from_le_bytes(*b))
    }

    /// Weight code `w[i][o]` (input `i`, output `o`), stored at `o · inputs + i`.
    pub fn weight(&self, i: usize, o: usize) -> Option<i8> {
        let inputs = self.inputs();
        if i >= inputs {
            return None;
        }
        self.weights
            .get(o.checked_mul(inputs)?.checked_add(i)?)
            .copied()
    }

    /// The per-output scales.
    pub fn scales(&self) -> impl Iterator<Item = f32> + '_ {
        self.scale_words().iter().map(|b| f32::from_le_bytes(*b))
    }

    pub(crate) fn scale_words(&self) -> &[[u8; 4]] {
        self.words.get(..self.outputs).unwrap_or(&[])
    }

    pub(crate) fn bias_words(&self) -> &[[u8; 4]] {
        self.words.get(self.outputs..).unwrap_or(&[])
    }
}

/// The parameters of a version-3 file, split in place (nothing is copied).
///
/// Field 12 holds, with no padding: the `obs_dim` observation scales (`f32`), one output
/// scale per hidden layer (`f32`), then for each block in [`Header::blocks`] order its
/// `outputs` scales (`f32`) and `outputs` biases (`i32`), then for each block in the same
/// order its int8 weights, output-major. Every 4-byte number comes before every weight, so
/// they are all 4-byte aligned when the field is.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    obs_scale: &'a [[u8; 4]],
    act_scale: &'a [[u8; 4]],
    /// The blocks in file order.
    pub blocks: FixedVec<QBlock<'a>, { MAX_HIDDEN_LAYERS + 3 }>,
    /// The three heads' weights, one after the other (their blocks' `weights` together),
    /// for the fused heads of the DSP kernel.
    #[cfg(policy_core_dsp)]
    pub(crate) heads: &'a [i8],
}

/// `n` 4-byte words from the front of `bytes`.
fn words(bytes: &[u8], n: usize) -> Option<(&[[u8; 4]], &[u8])> {
    let (head, rest) = bytes.split_at_checked(n.checked_mul(4)?)?;
    Some((head.as_chunks::<4>().0, rest))
}

impl<'a> Params<'a> {
    /// Splits the parameter bytes of a version-3 file with this header.
    pub fn new(header: &Header, bytes: &'a [u8]) -> Result<Params<'a>, LoadError> {
        let short = LoadError::WeightsLength {
            expected: header.weight_bytes_len().unwrap_or(usize::MAX),
            found: bytes.len(),
        };
        let (obs_scale, rest) = words(bytes, header.obs_dim).ok_or(short)?;
        let (act_scale, mut rest) = words(rest, header.hidden.len()).ok_or(short)?;
        let layout = header.blocks();
        let mut scales_and_biases = FixedVec::<&[[u8; 4]], { MAX_HIDDEN_LAYERS + 3 }>::new();
        for block in layout.iter() {
            let n = block.outputs.checked_mul(2).ok_or(short)?;
            let (sb, r) = words(rest, n).ok_or(short)?;
            rest = r;
            scales_and_biases.push(sb).map_err(|_| short)?;
        }
        let mut blocks = FixedVec::new();
        #[cfg(policy_core_dsp)]
        let (all_weights, heads_start) = {
            let hidden = layout.iter().take(header.hidden.len());
            let len = |b: &crate::format::Block| b.inputs.saturating_mul(b.outputs);
            (rest, hidden.map(len).fold(0, usize::saturating_add))
        };
        for (block, &sb) in layout.iter().zip(scales_and_biases.iter()) {
            let n = block.inputs.checked_mul(block.outputs).ok_or(short)?;
            let (w, r) = rest.split_at_checked(n).ok_or(short)?;
            rest = r;
            let q = QBlock {
                outputs: block.outputs,
                inputs: block.inputs,
                words: sb,
                weights: bytemuck::cast_slice(w),
            };
            blocks.push(q).map_err(|_| short)?;
        }
        if !rest.is_empty() {
            return Err(short);
        }
        Ok(Params {
            obs_scale,
            act_scale,
            blocks,
            #[cfg(policy_core_dsp)]
            heads: bytemuck::cast_slice(all_weights.get(heads_start..).ok_or(short)?),
        })
    }

    /// Scale of observation feature `i`.
    pub fn obs_scale(&self, i: usize) -> Option<f32> {
        self.obs_scale.get(i).map(|b| f32::from_le_bytes(*b))
    }

    /// Scale of hidden layer `l`'s output codes.
    pub fn act_scale(&self, l: usize) -> Option<f32> {
        self.act_scale.get(l).map(|b| f32::from_le_bytes(*b))
    }

    /// Checks what the layout cannot: every scale a positive normal `f32` ≤ [`SCALE_MAX`],
    /// no weight code −128, and no accumulator able to overflow (`|bias| + CODE_MAX ·
    /// Σ_i |w[i][o]| ≤ i32::MAX` for every output), which makes the integer sums exact.
    pub fn validate(&self) -> Result<(), LoadError> {
        let block_scales = self.blocks.iter().flat_map(|b| b.scale_words().iter());
        let all = self
            .obs_scale
            .iter()
            .chain(self.act_scale)
            .chain(block_scales);
        for (index, s) in all.enumerate() {
            let s = f32::from_le_bytes(*s);
            if !(s.is_normal() && s > 0.0 && s <= SCALE_MAX) {
                return Err(LoadError::BadScale { index });
            }
        }
        let mut codes = self.blocks.iter().flat_map(|b| b.weights.iter());
        if let Some(index) = codes.position(|&w| w == i8::MIN) {
            return Err(LoadError::BadWeightCode { index });
        }
        for (index, block) in self.blocks.iter().enumerate() {
            let rows = block.weights.chunks_exact(block.inputs().max(1));
            for (o, row) in rows.enumerate() {
                let abs_sum: i64 = row.iter().map(|&w| i64::from(w).abs()).sum();
                let bias = i64::from(block.bias(o).unwrap_or(i32::MAX)).abs();
                if bias + i64::from(CODE_MAX) * abs_sum > i64::from(i32::MAX) {
                    return Err(LoadError::AccumulatorOverflow {
                        block: index,
                        output: o,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The activation code of a real value `x` at a scale whose reciprocal is `inv`:
/// `round(clip(x · inv, −CODE_MAX, CODE_MAX))`, rounding half away from zero. `inv` is
/// `1 / scale` computed in `f32`.
///
/// Computed without a float rounding function: `t = trunc(2 · x · inv)` (one conversion,
/// saturating; `2 · y` is exact or overflows to ±∞, which saturates alike), and
/// `round(y) = t / 2 + t % 2` (for `t ≥ 0` that is `⌊(t + 1) / 2⌋ = ⌊|y| + ½⌋`, and
/// symmetrically below 0), then an integer clamp, which gives the clipped value's code
/// because the bounds are integers. A NaN gives 0 (`as` takes it to 0), which a valid file
/// never produces. The same code as `libm::roundf` followed by the clamp, for every `f32`
/// (`tests/int8.rs` compares them), at a fraction of the instructions: no `roundf`, and
/// without an FPU no software rounding either.
pub fn code(x: f32, inv: f32) -> i16 {
    code_doubled(x * inv * 2.0)
}

/// [`code`] of `y / 2` from `y = 2 · x · inv`: with `inv2 = 2 / scale` (exactly `2 · (1 /
/// scale)` for every valid scale, and `x · inv2` exactly `2 · (x · inv)` unless that is
/// below 2⁻¹²⁵ or overflows, where both codes are 0 or both saturate), the hot path spends
/// one multiplication per code.
pub(crate) fn code_doubled(y: f32) -> i16 {
    let t = y as i32; // trunc(2 · x · inv), saturating
    let wide = (t / 2 + t % 2).clamp(-CODE_MAX, CODE_MAX);
    wide as i16
}

/// [`code_doubled`] of `max(y, 0)`, the code of a ReLU output from its pre-activation
/// `y`: for `t ≥ 0`, `t / 2 + t % 2 = t − ⌊t / 2⌋`; for `t < 0` (`y < 0`, whose ReLU is 0)
/// `t − ⌊t / 2⌋ ≤ 0`, which the lower bound 0 takes to 0, the code of 0. On ARMv7 the clamp
/// is one `usat`.
pub(crate) fn code_doubled_relu(y: f32) -> i16 {
    let t = y as i32;
    (t - (t >> 1)).clamp(0, CODE_MAX) as i16
}
