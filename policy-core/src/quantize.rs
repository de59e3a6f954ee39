//! Post-training quantization: a version-1 (`f32`) file and calibration observations in, a
//! version-3 (int8) file out (feature `alloc`). The one quantizer: `mixsac quantize` calls it.
//!
//! The scheme is [`crate::int8`]'s. What this module chooses:
//! - **activation scales** from the calibration observations (states the policy visits):
//!   feature `i` of the observation gets `s_i = headroom · max |obs_i| / 32767`, hidden layer
//!   `l` gets `s_l = headroom · max h / 32767` over all its outputs (for tanh at most
//!   `1 / 32767`, its range); values beyond the calibrated range saturate at ±32767. A
//!   feature or layer that is 0 on every calibration state gets the range ±1.
//! - **weight scales**: the input scales are folded into the weights first (`w'[i][o] =
//!   w[i][o] · s_in[i]`, so the integer sum over codes approximates the real sum), then
//!   `scale[o] = max_i |w'[i][o]| / 127` per output ([`Granularity::PerOutput`], the
//!   default) or one such maximum over the whole block ([`Granularity::PerLayer`], kept to
//!   measure the choice: FORMAT.md §8), and `w = round(w' / scale[o])`, `bias =
//!   round(b[o] / scale[o])`, rounding half away from zero.
//!
//! The result is parsed back before it is returned, so every file this writes loads.

use crate::error::LoadError;
use crate::format::{self, BlockKind, Encoding, Header};
use crate::int8::{CODE_MAX, SCALE_MAX, WEIGHT_MAX};
use alloc::vec::Vec;
use core::fmt;

/// One weight scale per output or per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// One scale per output channel (the default).
    #[default]
    PerOutput,
    /// One scale per block (layer or head).
    PerLayer,
}

/// Quantizer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Weight scales per output or per layer.
    pub granularity: Granularity,
    /// Activation ranges are this multiple of the largest calibrated magnitude, so that
    /// states slightly outside the calibration set do not saturate. 2 costs one bit of the
    /// 15 (FORMAT.md §8).
    pub headroom: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            granularity: Granularity::PerOutput,
            headroom: 2.0,
        }
    }
}

/// Why a policy could not be quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QuantizeError {
    /// The input does not load (or, for the output's self-check, a scale fell out of range).
    Load(LoadError),
    /// The input is already quantized: quantize version-1 (`f32`) files only.
    NotF32,
    /// No calibration observation, or a length that is not a multiple of `obs_dim`.
    Calibration {
        /// Numbers given.
        len: usize,
        /// The policy's observation length.
        obs_dim: usize,
    },
    /// A calibration number is NaN or infinite.
    NonFiniteCalibration {
        /// Its index in the flat calibration slice.
        index: usize,
    },
    /// An output's bias is too large for its 32-bit accumulator at this weight scale.
    Overflow {
        /// Block index in file order.
        block: usize,
        /// Output of that block.
        output: usize,
    },
}

impl From<LoadError> for QuantizeError {
    fn from(e: LoadError) -> Self {
        QuantizeError::Load(e)
    }
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuantizeError::Load(e) => write!(f, "{e}"),
            QuantizeError::NotF32 => write!(f, "the policy is already quantized (format version 3)"),
            QuantizeError::Calibration { len, obs_dim } => write!(
                f,
                "{len} calibration numbers: need at least one observation of {obs_dim}, whole observations only"
            ),
            QuantizeError::NonFiniteCalibration { index } => {
                write!(f, "calibration number {index} is not finite")
            }
            QuantizeError::Overflow { block, output } => write!(
                f,
                "the bias of output {output} of block {block} does not fit a 32-bit accumulator"
            ),
        }
    }
}

impl core::error::Error for QuantizeError {}

/// [`quantize_with`] with the default [`Options`].
pub fn quantize(file: &[u8], calibration: &[f32]) -> Result<Vec<u8>, QuantizeError> {
    quantize_with(file, calibration, &Options::default())
}

/// Quantizes the version-1 policy `file`. `calibration` holds observations one after the
/// other (`obs_dim` numbers each): states the policy visits, from which the activation
/// ranges are chosen.
pub fn quantize_with(
    file: &[u8],
    calibration: &[f32],
    options: &Options,
) -> Result<Vec<u8>, QuantizeError> {
    let (header, bytes) = format::parse(file)?;
    if header.encoding != Encoding::F32 {
        return Err(QuantizeError::NotF32);
    }
    let obs_dim = header.obs_dim;
    if calibration.is_empty() || !calibration.len().is_multiple_of(obs_dim) {
        return Err(QuantizeError::Calibration {
            len: calibration.len(),
            obs_dim,
        });
    }
    if let Some(index) = calibration.iter().position(|x| !x.is_finite()) {
        return Err(QuantizeError::NonFiniteCalibration { index });
    }
    let weights: Vec<f64> = format::le_f32s(bytes).map(f64::from).collect();
    let net = Net::new(&header, &weights);
    let ranges = net.ranges(calibration);
    let to_scale = |range: f64| code_scale(range * options.headroom);
    let obs_scales: Vec<f32> = ranges.obs.iter().map(|&r| to_scale(r)).collect();
    let act_scales: Vec<f32> = ranges
        .hidden
        .iter()
        .map(|&r| match header.activation {
            // tanh never leaves ±1: more headroom than that buys nothing.
            format::Activation::Tanh => to_scale(r.min(1.0 / options.headroom)),
            format::Activation::Relu => to_scale(r),
        })
        .collect();

    let mut params: Vec<u8> = Vec::new();
    let mut codes: Vec<u8> = Vec::new();
    for s in obs_scales.iter().chain(&act_scales) {
        params.extend_from_slice(&s.to_le_bytes());
    }
    for (index, (block, layer)) in header.blocks().iter().zip(&net.layers).enumerate() {
        let input_scale = |i: usize| -> f64 {
            match block.kind {
                BlockKind::Hidden(0) => obs_scales.get(i).copied().map_or(1.0, f64::from),
                BlockKind::Hidden(l) => act_scales.get(l - 1).copied().map_or(1.0, f64::from),
                _ => act_scales.last().copied().map_or(1.0, f64::from),
            }
        };
        let q = quantize_block(layer, input_scale, options.granularity, index)?;
        for s in &q.scales {
            params.extend_from_slice(&s.to_le_bytes());
        }
        // (scales, then biases: int8::QBlock)
        for b in &q.bias {
            params.extend_from_slice(&b.to_le_bytes());
        }
        codes.extend(q.weights.iter().map(|&w| w as u8));
    }
    params.extend_from_slice(&codes);
    let header = Header {
        encoding: Encoding::Int8,
        ..header
    };
    let out = format::encode(&header, &params);
    format::parse(&out)?;
    Ok(out)
}

/// The scale whose codes ±32767 span ±`range` (±1 for a range of 0), as an `f32`; a range
/// so small that this scale would be subnormal (below `f32::MIN_POSITIVE`, which the format
/// refuses) gets `f32::MIN_POSITIVE`: its values then take fewer codes, all of them exact
/// enough for numbers below 4e-34.
fn code_scale(range: f64) -> f32 {
    let range = if range > 0.0 { range } else { 1.0 };
    normal_scale(range / f64::from(CODE_MAX))
}

/// `scale` as an `f32`, at least `f32::MIN_POSITIVE` (a valid file's scales are normal).
fn normal_scale(scale: f64) -> f32 {
    scale.max(f64::from(f32::MIN_POSITIVE)) as f32
}

/// The scale of one output whose largest folded weight magnitude is `top`, bias `bias`, with
/// `inputs` inputs: `top / 127` (the weights' codes span ±127), rounded to the nearest `f32`,
/// unless that is below `|bias| / room` or below `f32::MIN_POSITIVE` (the format refuses
/// subnormal scales); then the least `f32` at or above both (rounded up: the bias code must
/// fit), at most `SCALE_MAX`. `room = i32::MAX − 32767 · 127 · inputs` is what the load-time
/// accumulator proof (`|bias code| + 32767 · Σ_i |w[i]| ≤ i32::MAX`, `int8.rs`) leaves the
/// bias code when every weight code is ±127, so the bias code `round(bias / scale)` fits
/// whatever the weights are: a bias that dwarfs its weights makes the scale grow with it
/// rather than making quantizing fail. Only a bias above `SCALE_MAX · room` (near
/// `f32::MAX`) still overflows, and with more than 516 inputs, where the worst case leaves
/// no room, the bias is not considered here; the caller checks the actual codes either way.
fn output_scale(top: f64, bias: f64, inputs: usize) -> f32 {
    let room = f64::from(i32::MAX) - f64::from(CODE_MAX) * f64::from(WEIGHT_MAX) * inputs as f64;
    let bias_scale = if room >= 1.0 {
        libm::fabs(bias) / room
    } else {
        0.0
    };
    let floor = bias_scale.max(f64::from(f32::MIN_POSITIVE));
    let nearest = (top / f64::from(WEIGHT_MAX)) as f32;
    if f64::from(nearest) >= floor {
        return nearest;
    }
    let floor = floor.min(f64::from(SCALE_MAX));
    let scale = floor as f32;
    if f64::from(scale) < floor {
        // Below `floor` by rounding, so below SCALE_MAX: the next float up is ≤ SCALE_MAX.
        f32::from_bits(scale.to_bits() + 1)
    } else {
        scale
    }
}

/// One block's quantized parameters.
struct QuantBlock {
    scales: Vec<f32>,
    bias: Vec<i32>,
    /// Output-major, as stored.
    weights: Vec<i8>,
}

fn quantize_block(
    layer: &Layer<'_>,
    input_scale: impl Fn(usize) -> f64,
    granularity: Granularity,
    index: usize,
) -> Result<QuantBlock, QuantizeError> {
    let (inputs, outputs) = (layer.inputs, layer.outputs);
    // w'[i][o] = w[i][o] · s_in[i]: the weight as seen by the input's integer code.
    let folded = |i: usize, o: usize| layer.w(i, o) * input_scale(i);
    let column_max = |o: usize| {
        (0..inputs)
            .map(|i| libm::fabs(folded(i, o)))
            .fold(0.0, f64::max)
    };
    let block_max = (0..outputs).map(column_max).fold(0.0, f64::max);
    let mut scales = Vec::with_capacity(outputs);
    let mut bias = Vec::with_capacity(outputs);
    let mut codes = alloc::vec![0i8; inputs * outputs];
    for o in 0..outputs {
        let top = match granularity {
            Granularity::PerOutput => column_max(o),
            Granularity::PerLayer => block_max,
        };
        let scale = output_scale(top, layer.b(o), inputs);
        let scale_f64 = f64::from(scale);
        let mut abs_sum = 0i64;
        for i in 0..inputs {
            let w = libm::round(folded(i, o) / scale_f64);
            let w = w.clamp(-f64::from(WEIGHT_MAX), f64::from(WEIGHT_MAX)) as i8;
            abs_sum += i64::from(w).abs();
            if let Some(slot) = codes.get_mut(o * inputs + i) {
                *slot = w;
            }
        }
        let b = libm::round(layer.b(o) / scale_f64);
        let room = f64::from(i32::MAX) - f64::from(CODE_MAX) * abs_sum as f64;
        if libm::fabs(b) > room {
            return Err(QuantizeError::Overflow {
                block: index,
                output: o,
            });
        }
        scales.push(scale);
        bias.push(b as i32);
    }
    Ok(QuantBlock {
        scales,
        bias,
        weights: codes,
    })
}

/// One dense layer of the `f32` file, in `f64`.
struct Layer<'w> {
    inputs: usize,
    outputs: usize,
    /// The block: weights input-major, then biases.
    params: &'w [f64],
}

impl Layer<'_> {
    fn w(&self, i: usize, o: usize) -> f64 {
        self.params
            .get(i * self.outputs + o)
            .copied()
            .unwrap_or(0.0)
    }
    fn b(&self, o: usize) -> f64 {
        self.params
            .get(self.inputs * self.outputs + o)
            .copied()
            .unwrap_or(0.0)
    }
}

/// The `f32` network in `f64`, for calibration.
struct Net<'w> {
    layers: Vec<Layer<'w>>,
    hidden: usize,
    relu: bool,
}

/// Largest magnitudes seen in calibration: per observation feature, per hidden layer.
struct Ranges {
    obs: Vec<f64>,
    hidden: Vec<f64>,
}

impl<'w> Net<'w> {
    fn new(header: &Header, weights: &'w [f64]) -> Net<'w> {
        let layers = header
            .blocks()
            .iter()
            .map(|b| Layer {
                inputs: b.inputs,
                outputs: b.outputs,
                params: weights.get(b.offset..b.offset + b.len()).unwrap_or(&[]),
            })
            .collect();
        Net {
            layers,
            hidden: header.hidden.len(),
            relu: header.activation == format::Activation::Relu,
        }
    }

    fn ranges(&self, calibration: &[f32]) -> Ranges {
        let obs_dim = self.layers.first().map_or(1, |l| l.inputs);
        let mut obs = alloc::vec![0.0f64; obs_dim];
        let mut hidden = alloc::vec![0.0f64; self.hidden];
        for state in calibration.chunks_exact(obs_dim) {
            let mut x: Vec<f64> = state.iter().map(|&v| f64::from(v)).collect();
            for (m, v) in obs.iter_mut().zip(&x) {
                *m = m.max(libm::fabs(*v));
            }
            for (layer, top) in self.layers.iter().zip(hidden.iter_mut()) {
                x = (0..layer.outputs)
                    .map(|o| {
                        let z = layer.b(o)
                            + x.iter()
                                .enumerate()
                                .map(|(i, v)| v * layer.w(i, o))
                                .sum::<f64>();
                        if self.relu {
                            z.max(0.0)
                        } else {
                            libm::tanh(z)
                        }
                    })
                    .collect();
                *top = x.iter().fold(*top, |m, v| m.max(libm::fabs(*v)));
            }
        }
        Ranges { obs, hidden }
    }
}
