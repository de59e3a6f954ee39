//! The network: dense layers read in place from the file's weight bytes.

use crate::capacity::{MAX_ACTION, MAX_COMPONENTS, MAX_HIDDEN, MAX_HIDDEN_LAYERS};
use crate::error::{ActError, LoadError};
use crate::format::{Activation, BlockKind, Header};
use crate::math::{clip, Math};
use heapless::Vec as FixedVec;

/// One dense layer; weights input-major, as stored in the file.
#[derive(Clone, Copy)]
struct Dense<'a> {
    weights: &'a [[u8; 4]],
    bias: &'a [[u8; 4]],
    outputs: usize,
}

/// Widest output tile. Hosts with SIMD registers keep 32 partial sums in registers; a
/// Cortex-M4F has 32 single-precision registers in all, so it stops at 8.
const MAX_TILE: usize = if cfg!(target_arch = "arm") { 8 } else { 32 };

impl core::fmt::Debug for Dense<'_> {
    /// The shape, not thousands of weight bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let inputs = self.weights.len() / self.outputs.max(1);
        write!(f, "Dense({inputs} -> {})", self.outputs)
    }
}

impl Dense<'_> {
    /// `out[o] = bias[o] + Σ_i input[i] · w[i][o]`.
    ///
    /// Outputs are computed in tiles of up to `MAX_TILE`, then 8, 4, 2 or 1: a tile's partial sums stay in
    /// registers while the inputs stream by, and its weights for one input are contiguous
    /// (input-major storage), so the multiply-adds vectorise. `input` may be longer than the
    /// layer's input width; the extra entries are ignored.
    fn apply(&self, input: &[f32], out: &mut [f32]) {
        let mut start = 0;
        while start < self.outputs {
            start += match self.outputs - start {
                r if r >= 32 && MAX_TILE >= 32 => self.tile::<32>(input, start, out),
                r if r >= 16 && MAX_TILE >= 16 => self.tile::<16>(input, start, out),
                8.. => self.tile::<8>(input, start, out),
                4.. => self.tile::<4>(input, start, out),
                2.. => self.tile::<2>(input, start, out),
                _ => self.tile::<1>(input, start, out),
            };
        }
    }

    /// Outputs `start .. start + W`; returns `W`.
    fn tile<const W: usize>(&self, input: &[f32], start: usize, out: &mut [f32]) -> usize {
        let fixed = |words: &[[u8; 4]]| -> Option<[[u8; 4]; W]> {
            words.get(start..start + W)?.try_into().ok()
        };
        let mut acc = [0.0f32; W];
        if let Some(bias) = fixed(self.bias) {
            acc = bias.map(f32::from_le_bytes);
        }
        for (&x, row) in input
            .iter()
            .zip(self.weights.chunks_exact(self.outputs.max(1)))
        {
            if let Some(w) = fixed(row) {
                for (a, w) in acc.iter_mut().zip(w) {
                    *a += x * f32::from_le_bytes(w);
                }
            }
        }
        let dst = out.iter_mut().skip(start).take(W);
        dst.zip(acc).for_each(|(o, a)| *o = a);
        W
    }
}

/// What the network says about one observation, ready for the mixture math.
#[derive(Debug, Clone)]
pub(crate) struct Heads {
    /// Means, component-major (`k·A + d`).
    pub mean: [f32; MAX_COMPONENTS * MAX_ACTION],
    /// Clamped log-stds, same layout.
    pub log_std: [f32; MAX_COMPONENTS * MAX_ACTION],
    /// `exp(−log_std)`, same layout.
    pub inv_std: [f32; MAX_COMPONENTS * MAX_ACTION],
    /// Log mixing weights `log softmax(logits)`.
    pub log_w: [f32; MAX_COMPONENTS],
    /// Mixing weights `softmax(logits)`.
    pub w: [f32; MAX_COMPONENTS],
}

impl Default for Heads {
    fn default() -> Self {
        Heads {
            mean: [0.0; MAX_COMPONENTS * MAX_ACTION],
            log_std: [0.0; MAX_COMPONENTS * MAX_ACTION],
            inv_std: [0.0; MAX_COMPONENTS * MAX_ACTION],
            log_w: [0.0; MAX_COMPONENTS],
            w: [0.0; MAX_COMPONENTS],
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
        let words = weight_bytes.as_chunks::<4>().0;
        let wrong_length = LoadError::WeightsLength {
            expected: header.weight_count() * 4,
            found: weight_bytes.len(),
        };
        let mut hidden = FixedVec::new();
        let mut heads = [None; 3];
        // By reference: heapless's by-value iterator carries a slicing panic path in its Drop.
        for block in header.blocks().iter() {
            let n_weights = block.inputs * block.outputs;
            let start = block.offset;
            let weights = words.get(start..start + n_weights).ok_or(wrong_length)?;
            let bias = words
                .get(start + n_weights..start + block.len())
                .ok_or(wrong_length)?;
            let dense = Dense {
                weights,
                bias,
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
    /// `obs` must already be checked for length and finiteness.
    pub fn forward<M: Math>(&self, obs: &[f32], heads: &mut Heads) -> Result<(), ActError> {
        let mut buf_a = [0.0f32; MAX_HIDDEN];
        let mut buf_b = [0.0f32; MAX_HIDDEN];
        let (mut input, mut output) = (&mut buf_a, &mut buf_b);
        let mut first = true;
        for layer in &self.hidden {
            if first {
                layer.apply(obs, output);
                first = false;
            } else {
                layer.apply(input, output);
            }
            let active = output.iter_mut().take(layer.outputs);
            match self.activation {
                Activation::Relu => active.for_each(|x| *x = x.max(0.0)),
                Activation::Tanh => active.for_each(|x| *x = M::tanh(*x)),
            }
            core::mem::swap(&mut input, &mut output);
        }
        let trunk: &[f32] = input;

        let ka = self.components * self.action_dim;
        self.mean.apply(trunk, &mut heads.mean);
        self.log_std.apply(trunk, &mut heads.log_std);
        self.logits.apply(trunk, &mut heads.log_w);

        let means = heads.mean.iter().take(ka);
        let logits = heads.log_w.iter().take(self.components);
        let log_stds = heads.log_std.iter().take(ka);
        if !means.chain(logits).chain(log_stds).all(|x| x.is_finite()) {
            return Err(ActError::NonFiniteOutput);
        }
        let pairs = heads.log_std.iter_mut().zip(heads.inv_std.iter_mut());
        for (log_std, inv_std) in pairs.take(ka) {
            *log_std = clip(*log_std, self.log_std_min, self.log_std_max);
            *inv_std = M::exp(-*log_std);
        }
        let logits = heads.log_w.get_mut(..self.components).unwrap_or(&mut []);
        softmax::<M>(logits, &mut heads.w);
        Ok(())
    }
}

/// `w ← softmax(x)`, then `x ← log w = x − logsumexp(x)`, with one `exp` per entry.
fn softmax<M: Math>(x: &mut [f32], w: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    w.iter_mut()
        .zip(x.iter())
        .for_each(|(w, &v)| *w = M::exp(v - max));
    let sum: f32 = w.iter().take(x.len()).sum();
    let log_norm = max + M::ln(sum);
    w.iter_mut().for_each(|w| *w /= sum);
    x.iter_mut().for_each(|v| *v -= log_norm);
}
