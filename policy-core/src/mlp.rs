//! The network: dense layers read in place from the file's weight bytes.

use crate::capacity::MAX_HIDDEN_LAYERS;
use crate::error::{ActError, LoadError};
use crate::format::{Activation, BlockKind, Header};
use crate::math::{clip, max, Math};
use heapless::Vec as FixedVec;

/// A layer's numbers as they sit in the file, read in place.
#[derive(Clone, Copy)]
enum Words<'a> {
    /// Little-endian bytes at any address.
    Bytes(&'a [[u8; 4]]),
    /// The same bytes seen as `f32`: only on little-endian targets and when the weights
    /// happen to be 4-byte aligned. On a Cortex-M4F this halves the instructions of the
    /// inner loop (one FPU load per weight instead of an integer load plus a move).
    Floats(&'a [f32]),
}

impl<'a> Words<'a> {
    fn new(bytes: &'a [u8]) -> Words<'a> {
        match bytemuck::try_cast_slice::<u8, f32>(bytes) {
            Ok(floats) if cfg!(target_endian = "little") => Words::Floats(floats),
            _ => Words::Bytes(bytes.as_chunks::<4>().0),
        }
    }

    fn len(&self) -> usize {
        match self {
            Words::Bytes(w) => w.len(),
            Words::Floats(w) => w.len(),
        }
    }

    fn get(&self, range: core::ops::Range<usize>) -> Option<Words<'a>> {
        match self {
            Words::Bytes(w) => w.get(range).map(Words::Bytes),
            Words::Floats(w) => w.get(range).map(Words::Floats),
        }
    }
}

/// A stored number: what the kernel reads weights and biases as.
trait Word: Copy {
    fn value(self) -> f32;
}

impl Word for [u8; 4] {
    fn value(self) -> f32 {
        f32::from_le_bytes(self)
    }
}

impl Word for f32 {
    fn value(self) -> f32 {
        self
    }
}

/// One dense layer; weights input-major, as stored in the file, followed by the biases.
#[derive(Clone, Copy)]
struct Dense<'a> {
    words: Words<'a>,
    outputs: usize,
}

/// Widest output tile. Hosts with SIMD registers keep 32 partial sums in registers; a
/// Cortex-M4F has 32 single-precision registers in all: 16 sums leave room for the input and
/// the weights in flight (measured: 16 beats 8 there, see BENCHMARKS.md).
const MAX_TILE: usize = if cfg!(target_arch = "arm") { 16 } else { 32 };

impl core::fmt::Debug for Dense<'_> {
    /// The shape, not thousands of weight bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inputs = (self.words.len() / self.outputs.max(1)).saturating_sub(1);
        write!(f, "Dense({inputs} -> {})", self.outputs)
    }
}

impl Dense<'_> {
    /// `out[o] = bias[o] + Σ_i input[i] · w[i][o]`. `input` may be longer than the layer's
    /// input width; the extra entries are ignored.
    fn apply(&self, input: &[f32], out: &mut [f32]) {
        match self.words {
            Words::Bytes(words) => apply_words(words, self.outputs, input, out),
            Words::Floats(words) => apply_words(words, self.outputs, input, out),
        }
    }
}

/// Outputs are computed in tiles of up to `MAX_TILE`, then 8, 4, 2 or 1: a tile's partial
/// sums stay in registers while the inputs stream by, and its weights for one input are
/// contiguous (input-major storage), so the multiply-adds vectorise.
fn apply_words<T: Word>(words: &[T], outputs: usize, input: &[f32], out: &mut [f32]) {
    let Some((weights, bias)) = words.split_at_checked(words.len().saturating_sub(outputs)) else {
        return;
    };
    let mut start = 0;
    while start < outputs {
        start += match outputs - start {
            r if r >= 32 && MAX_TILE >= 32 => tile::<32, T>(weights, bias, input, start, out),
            r if r >= 16 && MAX_TILE >= 16 => tile::<16, T>(weights, bias, input, start, out),
            8.. => tile::<8, T>(weights, bias, input, start, out),
            4.. => tile::<4, T>(weights, bias, input, start, out),
            2.. => tile::<2, T>(weights, bias, input, start, out),
            _ => tile::<1, T>(weights, bias, input, start, out),
        };
    }
}

/// Outputs `start .. start + W`; returns `W`.
fn tile<const W: usize, T: Word>(
    weights: &[T],
    bias: &[T],
    input: &[f32],
    start: usize,
    out: &mut [f32],
) -> usize {
    let fixed = |words: &[T]| -> Option<[T; W]> { words.get(start..start + W)?.try_into().ok() };
    let mut acc = [0.0f32; W];
    if let Some(bias) = fixed(bias) {
        acc = bias.map(T::value);
    }
    for (&x, row) in input.iter().zip(weights.chunks_exact(bias.len().max(1))) {
        if let Some(w) = fixed(row) {
            for (a, w) in acc.iter_mut().zip(w) {
                *a += x * w.value();
            }
        }
    }
    let dst = out.iter_mut().skip(start).take(W);
    dst.zip(acc).for_each(|(o, a)| *o = a);
    W
}

/// What the network says about one observation, ready for the mixture math. Sized by the
/// policy type's capacities `A` (actions) and `K` (components); a policy with `a ≤ A`
/// actions and `k ≤ K` components uses the first `k·a` entries of the flattened means and
/// log-stds, component-major (`k·a + d`), and the first `k` weights.
#[derive(Debug, Clone)]
pub(crate) struct Heads<const A: usize, const K: usize> {
    mean: [[f32; A]; K],
    log_std: [[f32; A]; K],
    /// Log mixing weights `log softmax(logits)`.
    pub log_w: [f32; K],
    /// Mixing weights `softmax(logits)`.
    pub w: [f32; K],
}

impl<const A: usize, const K: usize> Heads<A, K> {
    /// Means, component-major.
    pub fn mean(&self) -> &[f32] {
        self.mean.as_flattened()
    }

    /// Clamped log-stds, component-major.
    pub fn log_std(&self) -> &[f32] {
        self.log_std.as_flattened()
    }
}

impl<const A: usize, const K: usize> Default for Heads<A, K> {
    fn default() -> Self {
        Heads {
            mean: [[0.0; A]; K],
            log_std: [[0.0; A]; K],
            log_w: [0.0; K],
            w: [0.0; K],
        }
    }
}

/// The trunk and the three heads of a policy.
#[derive(Debug, Clone)]
pub(crate) struct Network<'a> {
    hidden: FixedVec<Dense<'a>, MAX_HIDDEN_LAYERS>,
    mean: Dense<'a>,
    log_std: Dense<'a>,
    logits: Dense<'a>,
    activation: Activation,
    components: usize,
    action_dim: usize,
    log_std_min: f32,
    log_std_max: f32,
}

impl<'a> Network<'a> {
    /// Splits the (already validated) weight bytes into layers; copies nothing.
    pub fn new(header: &Header, weight_bytes: &'a [u8]) -> Result<Self, LoadError> {
        let words = Words::new(weight_bytes);
        let wrong_length = LoadError::WeightsLength {
            expected: header.weight_count() * 4,
            found: weight_bytes.len(),
        };
        let mut hidden = FixedVec::new();
        let mut heads = [None; 3];
        // By reference: heapless's by-value iterator carries a slicing panic path in its Drop.
        for block in header.blocks().iter() {
            let block_words = words.get(block.offset..block.offset + block.len());
            let dense = Dense {
                words: block_words.ok_or(wrong_length)?,
                outputs: block.outputs,
            };
            let slot = match block.kind {
                BlockKind::Hidden(_) => {
                    hidden.push(dense).map_err(|_| wrong_length)?;
                    continue;
                }
                BlockKind::Mean => heads.get_mut(0),
                BlockKind::LogStd => heads.get_mut(1),
                BlockKind::Logits => heads.get_mut(2),
            };
            if let Some(slot) = slot {
                *slot = Some(dense);
            }
        }
        let [Some(mean), Some(log_std), Some(logits)] = heads else {
            return Err(wrong_length);
        };
        Ok(Network {
            hidden,
            mean,
            log_std,
            logits,
            activation: header.activation,
            components: header.components,
            action_dim: header.action_dim,
            log_std_min: header.log_std_min,
            log_std_max: header.log_std_max,
        })
    }

    /// Runs the network into `heads` (filled in place: no copy of the result).
    /// `obs` must already be checked for length and finiteness, and the policy's dimensions
    /// against the capacities `A`, `K` and `W` (wider layers would be cut short).
    pub fn forward<M: Math, const A: usize, const K: usize, const W: usize>(
        &self,
        obs: &[f32],
        heads: &mut Heads<A, K>,
    ) -> Result<(), ActError> {
        let mut buf_a = [0.0f32; W];
        let mut buf_b = [0.0f32; W];
        let (mut input, mut output) = (&mut buf_a, &mut buf_b);
        let mut first = true;
        for layer in &self.hidden {
            if first {
                layer.apply(obs, output);
                first = false;
            } else {
                layer.apply(input, output);
            }
            // Neither activation may turn an overflow into a plausible number: a
            // pre-activation that overflowed is ±∞ or NaN (inf − inf), and its true value
            // may have either sign, so both map it to NaN, which reaches the heads and is
            // refused there. ReLU: NaN and +∞ pass, −∞ · 0 is NaN, a negative x gives −0
            // (equal to 0 everywhere downstream); same instruction count as `x > 0 ? x : 0`.
            // tanh: + x · 0 is NaN for ±∞ and NaN, ±0 otherwise.
            let active = output.iter_mut().take(layer.outputs);
            match self.activation {
                Activation::Relu => active.for_each(|x| *x = if *x < 0.0 { *x * 0.0 } else { *x }),
                Activation::Tanh => active.for_each(|x| *x = M::tanh(*x) + *x * 0.0),
            }
            core::mem::swap(&mut input, &mut output);
        }
        let trunk: &[f32] = input;

        let ka = self.components * self.action_dim;
        self.mean.apply(trunk, heads.mean.as_flattened_mut());
        self.log_std.apply(trunk, heads.log_std.as_flattened_mut());
        self.logits.apply(trunk, &mut heads.log_w);

        let means = heads.mean().iter().take(ka);
        let logits = heads.log_w.iter().take(self.components);
        let log_stds = heads.log_std().iter().take(ka);
        if !means.chain(logits).chain(log_stds).all(|x| x.is_finite()) {
            return Err(ActError::NonFiniteOutput);
        }
        for log_std in heads.log_std.as_flattened_mut().iter_mut().take(ka) {
            *log_std = clip(*log_std, self.log_std_min, self.log_std_max);
        }
        let logits = heads.log_w.get_mut(..self.components).unwrap_or(&mut []);
        softmax::<M>(logits, &mut heads.w);
        Ok(())
    }
}

/// `w ← softmax(x)`, then `x ← log w = x − logsumexp(x)`, with one `exp` per entry.
fn softmax<M: Math>(x: &mut [f32], w: &mut [f32]) {
    let largest = x.iter().copied().fold(f32::NEG_INFINITY, max);
    w.iter_mut()
        .zip(x.iter())
        .for_each(|(w, &v)| *w = M::exp(v - largest));
    let sum: f32 = w.iter().take(x.len()).sum();
    let log_norm = largest + M::ln(sum);
    w.iter_mut().for_each(|w| *w /= sum);
    x.iter_mut().for_each(|v| *v -= log_norm);
}
