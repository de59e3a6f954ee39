//! The integer dot products of a version-3 layer: for each output `o`, `acc = bias[o] +
//! Σ_i x[i] · w[o][i]` in `i32`, exact (`int8::Params::validate` proved that no sum can
//! overflow), so every order of the additions gives the same bits. On a core with the DSP
//! extension (Cortex-M4/M7, `cfg(policy_core_dsp)`) the rows run through a dual 16-bit
//! multiply-accumulate kernel in inline assembly (`dsp.rs`); elsewhere through plain Rust.
//!
//! Layers hand each other their outputs as 16-bit codes in a [`Codes`] buffer, in the order
//! the kernel reads them ([`slot`]): the DSP kernel loads two words per group of four inputs
//! and wants `x0, x2, x1, x3` there, so each whole group is stored in that order.

use crate::int8::QBlock;

/// A layer's input codes: 4-byte aligned, so that the DSP kernel may load them in words.
#[derive(Debug, Clone)]
#[repr(C, align(4))]
pub(crate) struct Codes<const W: usize>(pub [i16; W]);

impl<const W: usize> Codes<W> {
    pub fn new() -> Self {
        Codes([0; W])
    }
}

/// Where input `i` of a layer with `n` inputs sits in its [`Codes`]: the natural order, or
/// on the DSP kernel's cores each whole group of four as `x0, x2, x1, x3` (bits 0 and 1 of
/// `i` swapped) and the last `n % 4` inputs in order.
#[inline(always)]
pub(crate) fn slot(i: usize, n: usize) -> usize {
    if cfg!(policy_core_dsp) && i < n & !3 {
        (i & !3) | ((i & 1) << 1) | ((i >> 1) & 1)
    } else {
        i
    }
}

/// Stores a whole group of four outputs' codes as [`slot`] orders them.
#[inline(always)]
pub(crate) fn store_group(out: &mut [i16; 4], codes: [i16; 4]) {
    let [c0, c1, c2, c3] = codes;
    *out = if cfg!(policy_core_dsp) {
        [c0, c2, c1, c3]
    } else {
        codes
    };
}

/// What a layer does with its outputs' sums (`bias + Σ`) and scales.
pub(crate) trait Sink {
    /// Outputs `start .. start + 4`, `start` a multiple of 4 (a whole group of [`slot`]'s).
    fn put4(&mut self, start: usize, acc: [i32; 4], scale: [f32; 4]);
    /// Output `o`, one of the last `n % 4` of the layer's `n`.
    fn put1(&mut self, o: usize, acc: i32, scale: f32);
    /// For a ReLU hidden layer: its codes buffer and `inv2 = 2 / s_l`, when `put4` and
    /// `put1` compute the codes of `relu(f32(acc) · scale)` at that `inv2` (the kernel
    /// may then write them itself).
    #[cfg(all(policy_core_dsp, policy_core_vfma))]
    fn relu_codes(&mut self) -> Option<(&mut [i16], f32)> {
        None
    }
}

/// A layer's inputs: codes in a buffer (as [`slot`] orders them), or computed on demand
/// (`code(i)`, for an observation longer than the buffers; computed again per output).
pub(crate) enum Inputs<'x, C: Fn(usize) -> i16> {
    Codes(&'x [i16]),
    By(C),
}

/// Outputs whose sums one kernel call computes, into a buffer on the stack (a tile: larger
/// buffers measured slower on the Cortex-M4F, where zeroing them is a `memset` call per
/// layer).
const CHUNK: usize = 4;

/// Every output of `block`, four at a time (then the last `outputs % 4` one by one), into
/// `sink`. (Not inlined: in its own function the loop keeps its state in registers.)
#[inline(never)]
pub(crate) fn dense<C: Fn(usize) -> i16, S: Sink, const W: usize>(
    block: &QBlock<'_>,
    x: &Inputs<'_, C>,
    sink: &mut S,
) {
    // On the Cortex-M4F/M7F a ReLU layer's whole groups of outputs go through one kernel
    // that also computes their codes; `dense_from` does the rest.
    #[cfg(all(policy_core_dsp, policy_core_vfma))]
    let start = match (x, sink.relu_codes()) {
        (Inputs::Codes(codes), Some((out, inv2))) => {
            let inputs = block.inputs();
            let codes = codes.get(..inputs).unwrap_or(&[]);
            let (bias, scale) = (block.bias_words(), block.scale_words());
            dsp::relu_groups::<W>(block.weights, inputs, codes, bias, scale, inv2, out)
        }
        _ => 0,
    };
    // (Checked here: after a whole ReLU layer in the kernel, `dense_from` would spend ~70
    // instructions finding nothing left.)
    #[cfg(all(policy_core_dsp, policy_core_vfma))]
    if start >= block.outputs {
        return;
    }
    #[cfg(not(all(policy_core_dsp, policy_core_vfma)))]
    let start = 0;
    dense_from(block, x, sink, start);
}

/// [`dense`] for the outputs from `start` on (a multiple of 4).
#[inline(always)]
fn dense_from<C: Fn(usize) -> i16, S: Sink>(
    block: &QBlock<'_>,
    x: &Inputs<'_, C>,
    sink: &mut S,
    start: usize,
) {
    let inputs = block.inputs();
    let (Some(mut rows), Some(mut bias), Some(mut scale)) = (
        block.weights.get(start * inputs..),
        block.bias_words().get(start..),
        block.scale_words().get(start..),
    ) else {
        return;
    };
    let mut start = start;
    let mut sums = [0i32; CHUNK];
    loop {
        let n = bias.len().min(CHUNK) & !3;
        let (Some((r, r_rest)), Some(sums)) =
            (rows.split_at_checked(n * inputs), sums.get_mut(..n))
        else {
            break;
        };
        if n == 0 {
            break;
        }
        rows_sums(r, inputs, x, sums);
        let groups = sums.as_chunks::<4>().0.iter();
        let words = bias.as_chunks::<4>().0.iter().zip(scale.as_chunks::<4>().0);
        for (g, (sum, (b, s))) in groups.zip(words).enumerate() {
            let [s0, s1, s2, s3] = *sum;
            let [b0, b1, b2, b3] = b.map(i32::from_le_bytes);
            // The bias last: the sum is exact, so this is the file's `bias + Σ` to the bit.
            let acc = [
                s0.wrapping_add(b0),
                s1.wrapping_add(b1),
                s2.wrapping_add(b2),
                s3.wrapping_add(b3),
            ];
            sink.put4(start + 4 * g, acc, s.map(f32::from_le_bytes));
        }
        rows = r_rest;
        (bias, scale) = (bias.get(n..).unwrap_or(&[]), scale.get(n..).unwrap_or(&[]));
        start += n;
    }
    // The last `outputs % 4`, one by one.
    let tail = rows.chunks_exact(inputs.max(1)).zip(bias).zip(scale);
    for (o, ((r, b), s)) in tail.enumerate() {
        let mut sum = [0];
        rows_sums(r, inputs, x, &mut sum);
        let [sum] = sum;
        sink.put1(
            start + o,
            sum.wrapping_add(i32::from_le_bytes(*b)),
            f32::from_le_bytes(*s),
        );
    }
}

/// `sums[t] = Σ_i x[i] · rows[t · inputs + i]` for every `t < sums.len()`, on the DSP
/// kernel (the fused heads: any number of rows, `x` the trunk's codes as [`slot`] orders
/// them).
#[cfg(policy_core_dsp)]
pub(crate) fn head_sums<const W: usize>(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    dsp::any_sums::<W>(rows, inputs, x, sums);
}

/// `sums[t] = Σ_i x[i] · rows[t · inputs + i]` for every `t < sums.len()` (the rows one
/// after the other; at most 3, or a multiple of 4).
#[inline(always)]
fn rows_sums<C: Fn(usize) -> i16>(rows: &[i8], inputs: usize, x: &Inputs<'_, C>, sums: &mut [i32]) {
    let each = rows.chunks_exact(inputs.max(1));
    match x {
        Inputs::Codes(x) => {
            let x = x.get(..inputs).unwrap_or(&[]);
            #[cfg(policy_core_dsp)]
            dsp::sums(rows, inputs, x, sums);
            #[cfg(not(policy_core_dsp))]
            for (a, row) in sums.iter_mut().zip(each) {
                *a = row.iter().zip(x).fold(0, |s, (&w, &xi)| mac(s, xi, w));
            }
        }
        Inputs::By(code) => {
            for (a, row) in sums.iter_mut().zip(each) {
                *a = row
                    .iter()
                    .enumerate()
                    .fold(0, |s, (i, &w)| mac(s, code(i), w));
            }
        }
    }
}

/// `s + x · w`. Wrapping only to keep overflow checks out of the loops: validation proved
/// that no sum leaves the `i32` range.
#[inline(always)]
fn mac(s: i32, x: i16, w: i8) -> i32 {
    s.wrapping_add(i32::from(x).wrapping_mul(i32::from(w)))
}

#[cfg(policy_core_dsp)]
mod dsp;
