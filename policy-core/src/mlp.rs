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
    /// Whether the words are `f32` at 4-byte aligned addresses (FPU loads may read them).
    #[cfg(policy_core_vfma)]
    const ALIGNED: bool;
    fn value(self) -> f32;
}

impl Word for [u8; 4] {
    #[cfg(policy_core_vfma)]
    const ALIGNED: bool = false;
    fn value(self) -> f32 {
        f32::from_le_bytes(self)
    }
}

impl Word for f32 {
    #[cfg(policy_core_vfma)]
    const ALIGNED: bool = true;
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
    ///
    /// `fused` ([`Math::FUSED`]) rounds each `acc + x · w` once instead of twice. Not generic
    /// over the math, so that the kernel is compiled with policy-core's own optimisation
    /// level (`opt-level = 3` inside a firmware built for size), not the caller's.
    fn apply(&self, input: &[f32], out: &mut [f32], fused: bool) {
        let n = self.outputs;
        match (self.words, fused) {
            (Words::Bytes(words), false) => apply_words::<false, _>(words, n, input, out),
            (Words::Bytes(words), true) => apply_words::<true, _>(words, n, input, out),
            (Words::Floats(words), false) => apply_words::<false, _>(words, n, input, out),
            (Words::Floats(words), true) => apply_words::<true, _>(words, n, input, out),
        }
    }
}

/// Outputs are computed in tiles of up to `MAX_TILE`, then 8, 4, 2 or 1: a tile's partial
/// sums stay in registers while the inputs stream by, and its weights for one input are
/// contiguous (input-major storage), so the multiply-adds vectorise.
fn apply_words<const FUSED: bool, T: Word>(
    words: &[T],
    outputs: usize,
    input: &[f32],
    out: &mut [f32],
) {
    let Some((weights, bias)) = words.split_at_checked(words.len().saturating_sub(outputs)) else {
        return;
    };
    let mut start = 0;
    while start < outputs {
        start += match outputs - start {
            r if r >= 32 && MAX_TILE >= 32 => {
                tile::<FUSED, 32, T>(weights, bias, input, start, out)
            }
            r if r >= 16 && MAX_TILE >= 16 => {
                tile::<FUSED, 16, T>(weights, bias, input, start, out)
            }
            8.. => tile::<FUSED, 8, T>(weights, bias, input, start, out),
            4.. => tile::<FUSED, 4, T>(weights, bias, input, start, out),
            2.. => tile::<FUSED, 2, T>(weights, bias, input, start, out),
            _ => tile::<FUSED, 1, T>(weights, bias, input, start, out),
        };
    }
}

/// Outputs `start .. start + W`; returns `W`. Each output is its bias plus `x · w` for each
/// input in order, each product added with one rounding if `FUSED`, else rounded first.
fn tile<const FUSED: bool, const W: usize, T: Word>(
    weights: &[T],
    bias: &[T],
    input: &[f32],
    start: usize,
    out: &mut [f32],
) -> usize {
    #[cfg(policy_core_vfma)]
    if FUSED {
        // Here every fused tile runs on the FPU (`W <= MAX_TILE = 16`); the kernel writes
        // nothing only for a tile outside `bias` or `out`, which `apply_words` never asks
        // for, or for a layer without inputs, which the format refuses (`ZeroDim`).
        let _ = vfma::tile::<W, T>(weights, bias, input, start, out);
        return W;
    }
    let fixed = |words: &[T]| -> Option<[T; W]> { words.get(start..start + W)?.try_into().ok() };
    let mut acc = [0.0f32; W];
    if let Some(bias) = fixed(bias) {
        acc = bias.map(T::value);
    }
    for (&x, row) in input.iter().zip(weights.chunks_exact(bias.len().max(1))) {
        if let Some(w) = fixed(row) {
            for (a, w) in acc.iter_mut().zip(w) {
                *a = if FUSED {
                    libm::fmaf(x, w.value(), *a)
                } else {
                    *a + x * w.value()
                };
            }
        }
    }
    let dst = out.iter_mut().skip(start).take(W);
    dst.zip(acc).for_each(|(o, a)| *o = a);
    W
}

/// The three heads (mean, log-std, logits) of the trunk's output `input`, into `outs`.
fn apply_heads(heads: [&Dense<'_>; 3], input: &[f32], outs: [&mut [f32]; 3], fused: bool) {
    #[cfg(policy_core_vfma)]
    let outs = {
        let [o0, o1, o2] = outs;
        if fused && vfma::heads(heads, input, [&mut *o0, &mut *o1, &mut *o2]).is_some() {
            return;
        }
        [o0, o1, o2]
    };
    let ([mean, log_std, logits], [o0, o1, o2]) = (heads, outs);
    mean.apply(input, o0, fused);
    log_std.apply(input, o1, fused);
    logits.apply(input, o2, fused);
}

/// The tile on the FPU's fused multiply-add, in inline assembly: stable Rust has no fused
/// multiply-add in `core`, and (before rust-lang/rust#159988) no `asm!` operand for a
/// single-precision register on these targets, so the whole loop is one `asm!` block that
/// saves and restores the FPU registers it uses. Per input: one load of `x`, the tile's `W`
/// weights in one or two multiple-register loads, `W` `vfma.f32`, one add for the row
/// stride, two for the loop (aligned weights); unaligned ones take an integer load and a
/// move into the FPU each.
#[cfg(policy_core_vfma)]
mod vfma {
    use super::{Dense, Word, Words};

    /// `vfma.f32 s<acc>, s<x>, s<w>` for each lane `k < W`: lane `k`'s sum in `s<acc>`, its
    /// weight in `s<w>`, the input in `s<x>`.
    macro_rules! lanes {
        ($x:literal; $($k:literal $acc:literal $w:literal),*) => {
            concat!($(
                ".if {W} > ", $k, "\n",
                "vfma.f32 s", $acc, ", s", $x, ", s", $w, "\n",
                ".endif\n"
            ),*)
        };
    }

    /// Unaligned words: lane `k`'s weight through an integer load (which may be unaligned)
    /// and a move into `s17`, then its `vfma.f32`.
    macro_rules! unaligned_lanes {
        ($($k:literal),*) => {
            concat!($(
                ".if {W} > ", $k, "\n",
                "ldr {t}, [{w}], #4\n",
                "vmov s17, {t}\n",
                "vfma.f32 s", $k, ", s16, s17\n",
                ".endif\n"
            ),*)
        };
    }

    /// Unaligned words: lane `k`'s bias into `s<k>`.
    macro_rules! unaligned_init {
        ($($k:literal),*) => {
            concat!($(
                ".if {W} > ", $k, "\n",
                "ldr {t}, [{init}, #", $k, " * 4]\n",
                "vmov s", $k, ", {t}\n",
                ".endif\n"
            ),*)
        };
    }

    /// As [`super::tile`] with every multiply-add a `vfma.f32`: outputs `start .. start + W`
    /// of the layer whose rows of `bias.len()` weights are `weights`, from the inputs that
    /// have a row. `None` (nothing written) if `W` does not fit (`W` > 16, or the tile
    /// is not inside the row).
    #[inline(never)]
    pub(super) fn tile<const W: usize, T: Word>(
        weights: &[T],
        bias: &[T],
        input: &[f32],
        start: usize,
        out: &mut [f32],
    ) -> Option<()> {
        // 16 sums in s0–s15, the input in s16, weights in s17–s24.
        if W == 0 || W > 16 {
            return None;
        }
        let init: &[T; W] = bias.get(start..start + W)?.try_into().ok()?;
        let out: &mut [f32; W] = out.get_mut(start..start + W)?.try_into().ok()?;
        let stride = bias.len();
        let rows = input.len().min(weights.len().checked_div(stride)?);
        let first = weights.get(start..)?;
        // Bytes from the end of one row's tile to the start of the next one's.
        let skip = (stride - W) * 4;
        // SAFETY: the block reads `rows` inputs from `input` (`rows <= input.len()`), and
        // for row `i < rows` the `W` words at `first + i · stride`: the last one read is
        // word `start + (rows − 1) · stride + W − 1 < rows · stride <= weights.len()` of
        // `weights`, since `start + W <= stride` (`init` is inside the `stride` biases). It
        // reads the `W` words of `init` and writes the `W` floats of `out`, which do not
        // overlap them (`out` is a `&mut`). FPU loads of `f32` words (`T::ALIGNED`) are
        // aligned, as `&[f32]` guarantees; other words are read with `ldr`, which takes
        // any address on these cores. Every FPU register it writes (s0 to s16 + min(W, 8)
        // for aligned words, s0 to s17 otherwise) is saved first and restored last by
        // `vpush`/`vpop` on the stack, so no FPU register is clobbered; the general
        // registers it changes are operands.
        unsafe {
            if T::ALIGNED {
                core::arch::asm!(
                    "vpush {{s0-s{top}}}",
                    "vldm {init}, {{s0-s{last}}}",
                    "cmp {n}, #0",
                    "beq 3f",
                    "2:",
                    "vldmia {x}!, {{s16}}",
                    "vldmia {w}!, {{s17-s{a}}}",
                    lanes!(16; 0 0 17, 1 1 18, 2 2 19, 3 3 20, 4 4 21, 5 5 22, 6 6 23, 7 7 24),
                    ".if {W} > 8",
                    "vldmia {w}!, {{s17-s{b}}}",
                    lanes!(16; 8 8 17, 9 9 18, 10 10 19, 11 11 20, 12 12 21, 13 13 22, 14 14 23, 15 15 24),
                    ".endif",
                    "add {w}, {skip}",
                    "subs {n}, #1",
                    "bne 2b",
                    "3:",
                    "vstm {out}, {{s0-s{last}}}",
                    "vpop {{s0-s{top}}}",
                    init = in(reg) init.as_ptr(),
                    x = inout(reg) input.as_ptr() => _,
                    w = inout(reg) first.as_ptr() => _,
                    n = inout(reg) rows => _,
                    skip = in(reg) skip,
                    out = in(reg) out.as_mut_ptr(),
                    W = const W,
                    last = const W - 1,
                    top = const 16 + if W > 8 { 8 } else { W },
                    a = const 16 + if W > 8 { 8 } else { W },
                    b = const 16 + if W > 8 { W - 8 } else { 1 },
                );
            } else {
                core::arch::asm!(
                    "vpush {{s0-s17}}",
                    unaligned_init!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                    "cmp {n}, #0",
                    "beq 3f",
                    "2:",
                    "vldmia {x}!, {{s16}}",
                    unaligned_lanes!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                    "add {w}, {skip}",
                    "subs {n}, #1",
                    "bne 2b",
                    "3:",
                    "vstm {out}, {{s0-s{last}}}",
                    "vpop {{s0-s17}}",
                    init = in(reg) init.as_ptr(),
                    x = inout(reg) input.as_ptr() => _,
                    w = inout(reg) first.as_ptr() => _,
                    n = inout(reg) rows => _,
                    skip = in(reg) skip,
                    out = in(reg) out.as_mut_ptr(),
                    t = out(reg) _,
                    W = const W,
                    last = const W - 1,
                );
            }
        }
        Some(())
    }

    /// The three heads (mean, log-std, logits) in one pass over `input`, when all three are
    /// aligned and `W` wide with `W <= 7` (one action dimension, K <= 7 components): 21 sums
    /// (head `j`'s lane `k` in `s<8j + k>`), the input in s24, one head's weights at a time
    /// in s25–s31. Per input: one load of `x`, three of `W` weights, `3W` `vfma.f32`, two
    /// for the loop, where separate passes would take three loads of `x` and three loops
    /// (and for `W = 5` two tiles, 4 and 1, each). The same operations in the same order as
    /// three [`tile`]s, so the same results to the last bit. `None` (nothing written) if the
    /// heads do not have that shape.
    pub(super) fn heads(
        heads: [&Dense<'_>; 3],
        input: &[f32],
        outs: [&mut [f32]; 3],
    ) -> Option<()> {
        let [mean, log_std, logits] = heads;
        let width = mean.outputs;
        if log_std.outputs != width || logits.outputs != width {
            return None;
        }
        let (Words::Floats(a), Words::Floats(b), Words::Floats(c)) =
            (mean.words, log_std.words, logits.words)
        else {
            return None;
        };
        let blocks = [a, b, c];
        match width {
            1 => heads_of::<1>(blocks, input, outs),
            2 => heads_of::<2>(blocks, input, outs),
            3 => heads_of::<3>(blocks, input, outs),
            4 => heads_of::<4>(blocks, input, outs),
            5 => heads_of::<5>(blocks, input, outs),
            6 => heads_of::<6>(blocks, input, outs),
            7 => heads_of::<7>(blocks, input, outs),
            _ => None,
        }
    }

    /// [`heads`] for heads `W` wide: each block is its rows of `W` weights, then `W` biases.
    fn heads_of<const W: usize>(
        blocks: [&[f32]; 3],
        input: &[f32],
        outs: [&mut [f32]; 3],
    ) -> Option<()> {
        fn split<const W: usize>(block: &[f32]) -> Option<(&[f32], &[f32; W])> {
            let (weights, bias) = block.split_at_checked(block.len().checked_sub(W)?)?;
            Some((weights, bias.try_into().ok()?))
        }
        fn sums<const W: usize>(out: &mut [f32]) -> Option<&mut [f32; W]> {
            out.get_mut(..W)?.try_into().ok()
        }
        let [a, b, c] = blocks;
        let ((w0, b0), (w1, b1), (w2, b2)) = (split::<W>(a)?, split::<W>(b)?, split::<W>(c)?);
        let rows = input
            .len()
            .min(w0.len() / W)
            .min(w1.len() / W)
            .min(w2.len() / W);
        let [o0, o1, o2] = outs;
        let (o0, o1, o2) = (sums::<W>(o0)?, sums::<W>(o1)?, sums::<W>(o2)?);
        // Where the biases are read and the sums written, for the block to load one by one.
        let ends: [usize; 6] = [
            b0.as_ptr() as usize,
            b1.as_ptr() as usize,
            b2.as_ptr() as usize,
            o0.as_mut_ptr() as usize,
            o1.as_mut_ptr() as usize,
            o2.as_mut_ptr() as usize,
        ];
        // SAFETY: the block reads `rows <= input.len()` inputs, and `rows · W` consecutive
        // words from the start of each of `w0`, `w1`, `w2`, which hold at least that many
        // (`rows <= len / W`). It reads `W` biases from each of `b0`, `b1`, `b2` and writes
        // `W` floats to each of `o0`, `o1`, `o2` (all checked to be that long above); the
        // outputs are `&mut` slices, so they overlap nothing else. All are `f32`, so
        // aligned for FPU loads and stores, and `ends` outlives the block. Every FPU
        // register it writes (s0 to s24 + W, at most s31) is saved first and restored last
        // by `vpush`/`vpop` on the stack; the general registers it changes are operands.
        unsafe {
            core::arch::asm!(
                "vpush {{s0-s{top}}}",
                "ldr {t}, [{ends}]",
                "vldm {t}, {{s0-s{l0}}}",
                "ldr {t}, [{ends}, #4]",
                "vldm {t}, {{s8-s{l1}}}",
                "ldr {t}, [{ends}, #8]",
                "vldm {t}, {{s16-s{l2}}}",
                "cmp {n}, #0",
                "beq 3f",
                "2:",
                "vldmia {x}!, {{s24}}",
                "vldmia {w0}!, {{s25-s{wl}}}",
                lanes!(24; 0 0 25, 1 1 26, 2 2 27, 3 3 28, 4 4 29, 5 5 30, 6 6 31),
                "vldmia {w1}!, {{s25-s{wl}}}",
                lanes!(24; 0 8 25, 1 9 26, 2 10 27, 3 11 28, 4 12 29, 5 13 30, 6 14 31),
                "vldmia {w2}!, {{s25-s{wl}}}",
                lanes!(24; 0 16 25, 1 17 26, 2 18 27, 3 19 28, 4 20 29, 5 21 30, 6 22 31),
                "subs {n}, #1",
                "bne 2b",
                "3:",
                "ldr {t}, [{ends}, #12]",
                "vstm {t}, {{s0-s{l0}}}",
                "ldr {t}, [{ends}, #16]",
                "vstm {t}, {{s8-s{l1}}}",
                "ldr {t}, [{ends}, #20]",
                "vstm {t}, {{s16-s{l2}}}",
                "vpop {{s0-s{top}}}",
                ends = in(reg) ends.as_ptr(),
                x = inout(reg) input.as_ptr() => _,
                w0 = inout(reg) w0.as_ptr() => _,
                w1 = inout(reg) w1.as_ptr() => _,
                w2 = inout(reg) w2.as_ptr() => _,
                n = inout(reg) rows => _,
                t = out(reg) _,
                W = const W,
                top = const 24 + W,
                l0 = const W - 1,
                l1 = const 8 + W - 1,
                l2 = const 16 + W - 1,
                wl = const 24 + W,
            );
        }
        Some(())
    }
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
                layer.apply(obs, output, M::FUSED);
                first = false;
            } else {
                layer.apply(input, output, M::FUSED);
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

        let outs = heads.outputs_mut();
        let heads_of = [&self.mean, &self.log_std, &self.logits];
        apply_heads(heads_of, trunk, outs, M::FUSED);

        heads.finish::<M>(
            self.components,
            self.action_dim,
            (self.log_std_min, self.log_std_max),
        )
    }
}

impl<const A: usize, const K: usize> Heads<A, K> {
    /// The three heads' outputs, to be written: means, log-stds (both component-major,
    /// `k·a + d`) and logits (into `log_w`).
    pub(crate) fn outputs_mut(&mut self) -> [&mut [f32]; 3] {
        [
            self.mean.as_flattened_mut(),
            self.log_std.as_flattened_mut(),
            &mut self.log_w[..],
        ]
    }

    /// After the heads are written: refuses a non-finite output, clamps the log-stds and
    /// turns the logits into mixing weights and their logs (both network encodings).
    pub(crate) fn finish<M: Math>(
        &mut self,
        components: usize,
        action_dim: usize,
        (log_std_min, log_std_max): (f32, f32),
    ) -> Result<(), ActError> {
        let ka = components * action_dim;
        let means = self.mean().iter().take(ka);
        let logits = self.log_w.iter().take(components);
        let log_stds = self.log_std().iter().take(ka);
        if !means.chain(logits).chain(log_stds).all(|x| x.is_finite()) {
            return Err(ActError::NonFiniteOutput);
        }
        for log_std in self.log_std.as_flattened_mut().iter_mut().take(ka) {
            *log_std = clip(*log_std, log_std_min, log_std_max);
        }
        let logits = self.log_w.get_mut(..components).unwrap_or(&mut []);
        softmax::<M>(logits, &mut self.w);
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
