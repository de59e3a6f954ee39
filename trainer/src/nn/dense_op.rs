//! One dense layer, act(x·W + b), as a single candle operation with a hand-written backward
//! pass on the CPU.
//!
//! Candle builds the same layer from a matmul, a broadcast add and an activation, and their
//! backward pass from about a dozen more operations, each allocating (and zero-filling) its
//! result. At the sizes SAC uses (batch 32, width 64) that bookkeeping, not the arithmetic,
//! was most of an update (BENCHMARKS.md). Here the forward pass is one matrix product into a
//! buffer pre-filled with the bias, the activation applied in place; the backward pass is two
//! matrix products and a column sum. Other devices and dtypes run the plain candle ops
//! ([`dense_unfused`]), and `tests` hold the two paths together.
//!
//! Shapes: `x` is [B, in] or, for an ensemble of M members, [M, B, in]; the weight is
//! [M, in, out] ([`WeightLayout::InOut`]) or PyTorch's [out, in] per member, [M, out, in]
//! ([`WeightLayout::OutIn`]); the bias holds M·out values. Any strides are accepted for `x` and the weight (a
//! member stride of 0 shares one input between members, as the critic ensemble does).

use crate::nn::small_product;
use candle_core::{
    bail, CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor,
};
use policy_core::format::Activation;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// How a layer's weight tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// [M, in, out] (or [in, out]): the ensemble critic's layout.
    InOut,
    /// [M, out, in] (or [out, in]): PyTorch's and candle-nn's `Linear` per member, the
    /// actor's layout.
    OutIn,
}

/// act(x·W + b); `activation` None is the identity (output layers).
pub fn dense(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    layout: WeightLayout,
    activation: Option<Activation>,
) -> Result<Tensor> {
    // Empty tensors go to candle's ops, which return empty results.
    let empty = x.elem_count() == 0 || weight.elem_count() == 0;
    if x.device().is_cpu() && x.dtype() == DType::F32 && !empty {
        x.apply_op3(weight, bias, FusedDense { layout, activation })
    } else {
        dense_unfused(x, weight, bias, layout, activation)
    }
}

/// The same layer from candle's own operations (any device; the reference for the tests).
pub fn dense_unfused(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    layout: WeightLayout,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let pre = match layout {
        WeightLayout::InOut => x.matmul(weight)?,
        WeightLayout::OutIn => x.matmul(&weight.t()?)?,
    }
    .broadcast_add(bias)?;
    match activation {
        None => Ok(pre),
        Some(Activation::Relu) => pre.relu(),
        Some(Activation::Tanh) => pre.tanh(),
    }
}

struct FusedDense {
    layout: WeightLayout,
    activation: Option<Activation>,
}

/// A stack of M matrices in strided storage: element (m, r, c) is at
/// `offset + m·member + r·row + c·col`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided {
    pub(crate) offset: usize,
    pub(crate) member: isize,
    pub(crate) row: isize,
    pub(crate) col: isize,
}

impl Strided {
    /// The first element of member m's `rows × cols` matrix, after checking that its last
    /// element lies inside `data` (strides from a `Layout` are never negative).
    fn at(&self, data: &[f32], m: usize, rows: usize, cols: usize) -> Result<*const f32> {
        let start = self.offset as isize + m as isize * self.member;
        let last = start + (rows as isize - 1) * self.row + (cols as isize - 1) * self.col;
        if start < 0 || last < start || last as usize >= data.len() {
            bail!("dense: a {rows}×{cols} view at {start} exceeds its storage");
        }
        Ok(data[start as usize..].as_ptr())
    }

    /// The same storage read as the transposed matrices.
    pub(crate) fn t(self) -> Strided {
        Strided {
            row: self.col,
            col: self.row,
            ..self
        }
    }

    /// M contiguous row-major `rows × cols` matrices, one after another.
    pub(crate) fn contiguous(rows: usize, cols: usize) -> Strided {
        Strided {
            offset: 0,
            member: (rows * cols) as isize,
            row: cols as isize,
            col: 1,
        }
    }
}

/// The shapes of one application: M members, batch B, `inputs` → `outputs`, and how x and
/// the weight (seen as [M, in, out]) are strided.
#[derive(Debug, Clone, Copy)]
struct Dims {
    members: usize,
    batch: usize,
    inputs: usize,
    outputs: usize,
    x: Strided,
    w: Strided,
}

impl FusedDense {
    fn dims(&self, x: &Layout, w: &Layout, bias: &Layout) -> Result<Dims> {
        let s = x.stride();
        let (members, batch, inputs, xs) = match *x.dims() {
            [b, i] => (1, b, i, (0, s[0], s[1])),
            [m, b, i] => (m, b, i, (s[0], s[1], s[2])),
            _ => bail!("dense: x must be [B, in] or [M, B, in], got {:?}", x.dims()),
        };
        let t = w.stride();
        let (w_members, w_inputs, outputs, ws) = match (self.layout, w.dims()) {
            (WeightLayout::InOut, &[i, o]) => (1, i, o, (0, t[0], t[1])),
            (WeightLayout::InOut, &[m, i, o]) => (m, i, o, (t[0], t[1], t[2])),
            (WeightLayout::OutIn, &[o, i]) => (1, i, o, (0, t[1], t[0])),
            (WeightLayout::OutIn, &[m, o, i]) => (m, i, o, (t[0], t[2], t[1])),
            (layout, dims) => bail!("dense: weight of shape {dims:?} does not fit {layout:?}"),
        };
        if members * batch * inputs * outputs == 0 {
            bail!(
                "dense: the fused layer needs non-empty shapes, got x {:?}",
                x.dims()
            );
        }
        if w_members != members || w_inputs != inputs {
            bail!(
                "dense: x {:?} does not fit weight {:?} ({:?})",
                x.dims(),
                w.dims(),
                self.layout
            );
        }
        if bias.shape().elem_count() != members * outputs || !bias.is_contiguous() {
            bail!(
                "dense: the bias must be contiguous with {} values, got {:?}",
                members * outputs,
                bias.dims()
            );
        }
        let strided = |offset, (member, row, col): (usize, usize, usize)| Strided {
            offset,
            member: member as isize,
            row: row as isize,
            col: col as isize,
        };
        Ok(Dims {
            members,
            batch,
            inputs,
            outputs,
            x: strided(x.start_offset(), xs),
            w: strided(w.start_offset(), ws),
        })
    }
}

/// Threads the dense layers may use ([`set_threads`]); 1 unless the user asks for more.
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Multiply-accumulates below which one product runs on one thread (splitting a 64-wide
/// layer's product costs more than it saves).
const PARALLEL_PRODUCT: usize = 1 << 20;

/// The default of `--threads` for a network `hidden` wide trained on minibatches of
/// `batch_size` on the CPU: 2 where the hidden layer's products reach [`PARALLEL_PRODUCT`]
/// multiply-adds and so are split (a 256-wide layer at batch 256: measured 1.37–1.48× for
/// rep-squashed, 1.12–1.26× for the mixture estimators, BENCHMARKS.md "--threads"), else 1
/// (a 64-wide run was slower on two threads). A fixed number, not the machine's core count,
/// so that a run's numbers do not depend on the machine it ran on.
pub fn default_threads(hidden: usize, batch_size: usize) -> usize {
    if hidden.saturating_mul(hidden).saturating_mul(batch_size) >= PARALLEL_PRODUCT {
        2
    } else {
        1
    }
}

/// Lets the dense layers use `threads` threads: on candle's path the members of a population
/// in parallel or a large product split by gemm (rayon's global pool), on the hand-written
/// update a large product split by [`product_split`]. Each output is summed by one thread in
/// the order of the one-thread product (gemm's own split divides only rows and columns), so
/// results never depend on scheduling and, as the tests check, not on `threads` either.
pub fn set_threads(threads: usize) {
    THREADS.store(threads.max(1), Ordering::Relaxed);
}

/// The threads the dense layers may use ([`set_threads`]).
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// For every member m: dst_m ← dst_m + lhs_m · rhs_m. lhs_m is `rows × inner`, rhs_m
/// `inner × cols`; dst holds the members' `rows × cols` results one after another, each laid
/// out by `dst_strides` (row, column).
fn accumulate_products(
    dst: &mut [f32],
    dst_strides: (isize, isize),
    (rows, inner, cols): (usize, usize, usize),
    (lhs, lhs_view): (&[f32], Strided),
    (rhs, rhs_view): (&[f32], Strided),
) -> Result<()> {
    let threads = THREADS.load(Ordering::Relaxed);
    let members = dst.len() / (rows * cols).max(1);
    let per_member = |(m, dst_m): (usize, &mut [f32]), parallelism| {
        product(
            dst_m,
            dst_strides,
            (rows, inner, cols),
            m,
            (lhs, lhs_view),
            (rhs, rhs_view),
            (true, parallelism),
        )
    };
    if threads > 1 && members > 1 {
        use rayon::prelude::*;
        dst.par_chunks_exact_mut(rows * cols)
            .enumerate()
            .try_for_each(|job| per_member(job, gemm::Parallelism::None))
    } else {
        let parallelism = if threads > 1 && rows * inner * cols >= PARALLEL_PRODUCT {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        dst.chunks_exact_mut(rows * cols)
            .enumerate()
            .try_for_each(|job| per_member(job, parallelism))
    }
}

/// dst_m ← dst_m + lhs_m · rhs_m for member m (see [`accumulate_products`]); with
/// `accumulate` false, dst_m ← lhs_m · rhs_m (dst_m's old values are not read).
pub(crate) fn product(
    dst_m: &mut [f32],
    dst_strides: (isize, isize),
    (rows, inner, cols): (usize, usize, usize),
    m: usize,
    (lhs, lhs_view): (&[f32], Strided),
    (rhs, rhs_view): (&[f32], Strided),
    (accumulate, parallelism): (bool, gemm::Parallelism),
) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(()); // nothing to write
    }
    // The last element the strides address must lie inside dst_m (strides are not negative).
    let last = (rows as isize - 1) * dst_strides.0 + (cols as isize - 1) * dst_strides.1;
    if dst_strides.0 < 0 || dst_strides.1 < 0 || last < 0 || last as usize >= dst_m.len() {
        bail!(
            "dense: {} values with strides {dst_strides:?} cannot hold a {rows}×{cols} product",
            dst_m.len()
        );
    }
    {
        let lhs_m = lhs_view.at(lhs, m, rows, inner)?;
        let rhs_m = rhs_view.at(rhs, m, inner, cols)?;
        // Small products by hand, with gemm's bits ([`small_product`]); the rest by gemm.
        // A product taken here runs on one thread whatever `parallelism` asks: the same
        // bits, as gemm's threads split only rows and columns at these sizes.
        // SAFETY: `at` checked that both operand views lie inside their storage, and the
        // check above that every element `dst_strides` address lies inside dst_m.
        let done = unsafe {
            small_product::gemm_small(
                rows,
                cols,
                inner,
                dst_m.as_mut_ptr(),
                dst_strides.1,
                dst_strides.0,
                accumulate,
                lhs_m,
                lhs_view.col,
                lhs_view.row,
                rhs_m,
                rhs_view.col,
                rhs_view.row,
            )
        };
        if done {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                inner,
                dst_m.as_mut_ptr(),
                dst_strides.1,
                dst_strides.0,
                accumulate,
                lhs_m,
                lhs_view.col,
                lhs_view.row,
                rhs_m,
                rhs_view.col,
                rhs_view.row,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    }
    Ok(())
}

/// [`product`] with a large product's output split into up to [`threads`] blocks of whole
/// rows (or whole columns, for a column-major destination), one gemm call per block, the
/// blocks run side by side by [`super::team`] (no more blocks than the machine has cores).
/// Each output is the same gemm sum of the same operands as on one thread ([`same_gemm_case`]
/// decides how many blocks keep it so), so the bits do not depend on the number of threads;
/// a product under [`PARALLEL_PRODUCT`] multiply-adds, or one whose blocks would share
/// memory, runs whole.
pub(crate) fn product_split(
    dst_m: &mut [f32],
    dst_strides: (isize, isize),
    dims: (usize, usize, usize),
    m: usize,
    lhs: (&[f32], Strided),
    rhs: (&[f32], Strided),
    accumulate: bool,
) -> Result<()> {
    let (rows, inner, cols) = dims;
    let parts = if rows * inner * cols < PARALLEL_PRODUCT {
        1
    } else {
        threads().min(cores())
    };
    product_in_parts(dst_m, dst_strides, dims, m, lhs, rhs, accumulate, parts)
}

/// The machine's cores (1 if it cannot tell).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Whether gemm sums each output of an (m × k)·(k × n) product in the same order when it is
/// given a block of bm × bn of its outputs instead. gemm 0.19 (gemm-common 0.19.0,
/// `gemm_basic_generic`) picks its kernel, and with it that order, from the shape: a
/// dot-product kernel when m·n ≤ 256, matrix-vector kernels when m or n is at most 1, and for
/// k > 512 another depth blocking when m and n are both at most 64; the depth blocking
/// otherwise depends on k alone. (`split_products_give_the_unsplit_bits` holds this to
/// gemm's behaviour on shapes that cross each line.)
fn same_gemm_case((m, n, k): (usize, usize, usize), (bm, bn): (usize, usize)) -> bool {
    (m <= 1) == (bm <= 1)
        && (n <= 1) == (bn <= 1)
        && (m * n <= 256) == (bm * bn <= 256)
        && (k <= 512 || (m <= 64 && n <= 64) == (bm <= 64 && bn <= 64))
}

/// [`product_split`] in at most `max_parts` blocks.
#[allow(clippy::too_many_arguments)]
fn product_in_parts(
    dst_m: &mut [f32],
    dst_strides: (isize, isize),
    (rows, inner, cols): (usize, usize, usize),
    m: usize,
    (lhs, lhs_view): (&[f32], Strided),
    (rhs, rhs_view): (&[f32], Strided),
    accumulate: bool,
    max_parts: usize,
) -> Result<()> {
    // Split along the dimension with the larger stride, so that each block is one range of
    // dst_m: lines (rows or columns) [a, e) lie in [a·stride, (e − 1)·stride + extent].
    let (rs, cs) = dst_strides;
    let by_rows = rs >= cs;
    let (lines, stride, extent) = if by_rows {
        (rows, rs, (cols as isize - 1) * cs)
    } else {
        (cols, cs, (rows as isize - 1) * rs)
    };
    // The product of lines [a, e) into `block`, which starts at line a.
    let run = |(a, e, block): (usize, usize, &mut [f32])| {
        let (mut lhs_view, mut rhs_view) = (lhs_view, rhs_view);
        let dims = if by_rows {
            lhs_view.offset += a * lhs_view.row as usize;
            (e - a, inner, cols)
        } else {
            rhs_view.offset += a * rhs_view.col as usize;
            (rows, inner, e - a)
        };
        let mode = (accumulate, gemm::Parallelism::None);
        let operands = ((lhs, lhs_view), (rhs, rhs_view));
        product(block, dst_strides, dims, m, operands.0, operands.1, mode)
    };
    let shape = (rows, cols, inner);
    let block = |size: usize| if by_rows { (size, cols) } else { (rows, size) };
    // The most blocks whose sizes (⌊lines/p⌋ and ⌈lines/p⌉) keep gemm's order.
    let parts = (2..=max_parts.min(lines))
        .rev()
        .find(|&p| {
            same_gemm_case(shape, block(lines / p))
                && same_gemm_case(shape, block(lines.div_ceil(p)))
        })
        .unwrap_or(1);
    let negative = rs < 0 || cs < 0 || lhs_view.row < 0 || rhs_view.col < 0;
    if parts < 2 || negative || extent >= stride {
        return run((0, lines, dst_m));
    }
    let bound = |i: usize| lines * i / parts;
    if bound(parts - 1) * stride as usize > dst_m.len() {
        return run((0, lines, dst_m)); // the strides overrun dst_m: product reports it
    }
    let mut blocks = Vec::with_capacity(parts);
    let mut rest = dst_m;
    for i in 0..parts {
        let (a, e) = (bound(i), bound(i + 1));
        let block_len = if i + 1 == parts {
            rest.len()
        } else {
            (e - a) * stride as usize
        };
        let (block, tail) = rest.split_at_mut(block_len);
        blocks.push((a, e, block));
        rest = tail;
    }
    // Each job takes its block out of its cell and leaves its result beside it.
    let cells: Vec<_> = blocks
        .into_iter()
        .map(|block| (Mutex::new(Some(block)), Mutex::new(Ok(()))))
        .collect();
    let jobs: Vec<_> = cells
        .iter()
        .map(|(block, result)| {
            move || {
                if let Some(block) = lock_ignoring_poison(block).take() {
                    *lock_ignoring_poison(result) = run(block);
                }
            }
        })
        .collect();
    let jobs: Vec<&(dyn Fn() + Sync)> = jobs.iter().map(|job| job as _).collect();
    super::team::run_all(&jobs);
    cells
        .into_iter()
        .try_for_each(|(_, result)| result.into_inner().unwrap_or_else(|e| e.into_inner()))
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn f32_slice(storage: &CpuStorage) -> Result<&[f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        _ => bail!("dense: the fused layer takes f32 tensors only"),
    }
}

/// Runs `f` on a tensor's host f32 data and layout.
fn with_host_data<R>(t: &Tensor, f: impl FnOnce(&[f32], &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(f32_slice(cpu)?, layout),
        _ => bail!("dense: the fused layer runs on the CPU only"),
    }
}

impl CustomOp3 for FusedDense {
    fn name(&self) -> &'static str {
        "fused-dense"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(xl, wl, bl)?;
        let (x, w) = (f32_slice(xs)?, f32_slice(ws)?);
        let bias = &f32_slice(bs)?[bl.start_offset()..][..d.members * d.outputs];
        // Every row starts as its member's bias (no zero-filling: these buffers are large
        // for the baseline's 30 actions per state).
        let mut y = Vec::with_capacity(d.members * d.batch * d.outputs);
        for bias_m in bias.chunks_exact(d.outputs) {
            for _ in 0..d.batch {
                y.extend_from_slice(bias_m);
            }
        }
        accumulate_products(
            &mut y,
            (d.outputs as isize, 1),
            (d.batch, d.inputs, d.outputs),
            (x, d.x),
            (w, d.w),
        )?;
        match self.activation {
            None => {}
            Some(Activation::Relu) => y.iter_mut().for_each(|v| *v = v.max(0.0)),
            Some(Activation::Tanh) => y.iter_mut().for_each(|v| *v = v.tanh()),
        }
        let mut shape = xl.dims().to_vec();
        *shape.last_mut().expect("x has two or three dimensions") = d.outputs;
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad_y: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = self.dims(x.layout(), weight.layout(), bias.layout())?;
        let (rows, outputs) = (d.members * d.batch, d.outputs);
        // g ⊙ act′: the gradient with respect to the pre-activation, [M, B, out] contiguous.
        let grad_y = grad_y.contiguous()?;
        let y = y.contiguous()?;
        let grad_pre = with_host_data(&grad_y, |g, gl| {
            with_host_data(&y, |y, yl| {
                let g = &g[gl.start_offset()..][..rows * outputs];
                let y = &y[yl.start_offset()..][..rows * outputs];
                Ok(match self.activation {
                    None => g.to_vec(),
                    // ReLU′ is 1 where y > 0. At a pre-activation of exactly 0 this takes the
                    // subgradient 0 (y cannot tell 0 from negative); candle's relu takes 1.
                    Some(Activation::Relu) => g
                        .iter()
                        .zip(y)
                        .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
                        .collect(),
                    Some(Activation::Tanh) => {
                        g.iter().zip(y).map(|(&g, &y)| g * (1.0 - y * y)).collect()
                    }
                })
            })
        })?;
        let per_member = d.batch * outputs;
        let device = Device::Cpu;
        let grad_pre_view = Strided::contiguous(d.batch, outputs);

        // ∂x = ∂pre · Wᵀ per member: [M, B, in].
        let grad_x = if x.track_op() {
            let mut gx = vec![0.0f32; d.members * d.batch * d.inputs];
            with_host_data(weight, |w, _| {
                accumulate_products(
                    &mut gx,
                    (d.inputs as isize, 1),
                    (d.batch, outputs, d.inputs),
                    (&grad_pre, grad_pre_view),
                    (w, d.w.t()),
                )
            })?;
            Some(Tensor::from_vec(gx, x.dims(), &device)?)
        } else {
            None
        };

        // ∂W = xᵀ · ∂pre per member, written in the weight's own layout.
        let grad_w = if weight.track_op() {
            let mut gw = vec![0.0f32; d.members * d.inputs * outputs];
            let (dst_row, dst_col) = match self.layout {
                WeightLayout::InOut => (outputs as isize, 1),
                WeightLayout::OutIn => (1, d.inputs as isize),
            };
            with_host_data(x, |x, _| {
                accumulate_products(
                    &mut gw,
                    (dst_row, dst_col),
                    (d.inputs, d.batch, outputs),
                    (x, d.x.t()),
                    (&grad_pre, grad_pre_view),
                )
            })?;
            Some(Tensor::from_vec(gw, weight.dims(), &device)?)
        } else {
            None
        };

        // ∂b = Σ over the batch of ∂pre, per member.
        let grad_b = if bias.track_op() {
            let mut gb = vec![0.0f32; d.members * outputs];
            for (m, gb_m) in gb.chunks_exact_mut(outputs).enumerate() {
                for row in grad_pre[m * per_member..][..per_member].chunks_exact(outputs) {
                    gb_m.iter_mut().zip(row).for_each(|(s, &g)| *s += g);
                }
            }
            Some(Tensor::from_vec(gb, bias.dims(), &device)?)
        } else {
            None
        };
        Ok((grad_x, grad_w, grad_b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use rand::{Rng, SeedableRng};

    fn random(shape: &[usize], rng: &mut impl Rng) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / (1.0 + x.abs().max(y.abs())))
            .fold(0.0, f32::max)
    }

    /// Split products give `product`'s bits with any number of blocks, in the operand layouts
    /// of the hand-written update (a weight read column-major or row-major, x read
    /// transposed for a weight gradient; the destination row-major, or column-major as the
    /// actor's weight gradients), with and without accumulation, for member 1 of two. The shapes
    /// include ones where a block would cross into another gemm kernel than the whole
    /// product's (one-column blocks, m·n ≤ 256, depth > 512 with blocks of ≤ 64 rows): there
    /// `same_gemm_case` must keep fewer blocks. (Without it, 256 × 1024 × 6 in 8 blocks,
    /// 256 × 1000 × 12 in 4 and 1024 × 1024 × 1 in 4 gave other bits.)
    #[test]
    fn split_products_give_the_unsplit_bits() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        // (rows, inner, cols) as `product` takes them: rows × inner times inner × cols.
        let shapes = [
            (256, 64, 64),
            (77, 131, 105),
            (9, 40, 33),
            (256, 1024, 6),
            (512, 512, 6),
            (256, 256, 17),
            (1024, 1024, 1),
            (256, 1000, 12),
            (256, 768, 12),
            (96, 700, 96),
        ];
        for (rows, inner, cols) in shapes {
            // Two members' operands one after another; member 1 is multiplied.
            let (lhs, rhs) = (random(2 * rows * inner), random(2 * inner * cols));
            let start = random(rows * cols);
            let member = |v: Strided, len: usize| Strided {
                member: len as isize,
                ..v
            };
            let row_major = |r: usize, c: usize| member(Strided::contiguous(r, c), r * c);
            let layouts = [
                // The actor's forward pass: x [rows, inner] · W, W stored [cols, inner].
                (
                    "actor forward",
                    row_major(rows, inner),
                    row_major(cols, inner).t(),
                ),
                // The critics' forward pass (W stored [inner, cols]), and the actor's input
                // gradient g · Wᵀ (W stored [out = inner, in = cols]).
                ("row-major", row_major(rows, inner), row_major(inner, cols)),
                // A weight gradient: xᵀ · g, x stored [inner, rows].
                (
                    "grad_params",
                    row_major(inner, rows).t(),
                    row_major(inner, cols),
                ),
            ];
            for (name, lhs_view, rhs_view) in layouts {
                for (dst_strides, accumulate) in [
                    ((cols as isize, 1), false),
                    ((cols as isize, 1), true),
                    ((1, rows as isize), true),
                ] {
                    let dims = (rows, inner, cols);
                    let (l, r) = ((&lhs[..], lhs_view), (&rhs[..], rhs_view));
                    let mut whole = start.clone();
                    let mode = (accumulate, gemm::Parallelism::None);
                    product(&mut whole, dst_strides, dims, 1, l, r, mode).unwrap();
                    for parts in [2, 3, 4, 5, 8, 16, 32] {
                        let mut split = start.clone();
                        product_in_parts(&mut split, dst_strides, dims, 1, l, r, accumulate, parts)
                            .unwrap();
                        let differs = split
                            .iter()
                            .zip(&whole)
                            .position(|(a, b)| a.to_bits() != b.to_bits());
                        assert_eq!(
                            differs, None,
                            "{name} {rows}×{inner}×{cols}, strides {dst_strides:?}, \
                             {parts} parts: first other bits at this index"
                        );
                    }
                }
            }
        }
    }

    /// Puts the dense layers back on one thread however a test ends.
    struct OneThreadAfter;
    impl Drop for OneThreadAfter {
        fn drop(&mut self) {
            set_threads(1);
        }
    }

    /// The bits of a tensor's values, flattened.
    fn bits_of(t: &Tensor) -> Vec<u32> {
        let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// With 2 threads, each member of a two-member layer large enough to be split gets the
    /// bits of the same layer alone (forward values and weight gradients): a population's
    /// member computes its solo run at any number of threads.
    #[test]
    fn members_of_a_split_layer_get_their_solo_bits() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(13);
        let x = random(&[2, 256, 256], &mut rng);
        let w = Var::from_tensor(&random(&[2, 256, 256], &mut rng)).unwrap();
        let b = Var::from_tensor(&random(&[2, 1, 256], &mut rng)).unwrap();
        let c = random(&[2, 256, 256], &mut rng);
        let _restore = OneThreadAfter;
        set_threads(2);
        let run = |m: Option<usize>| -> Vec<Vec<u32>> {
            let pick = |t: &Tensor| match m {
                Some(m) => t.narrow(0, m, 1).unwrap(),
                None => t.clone(),
            };
            let (wv, bv) = (pick(w.as_tensor()), pick(b.as_tensor()));
            let y = dense(
                &pick(&x),
                &wv,
                &bv,
                WeightLayout::InOut,
                Some(Activation::Relu),
            )
            .unwrap();
            let grads = (&y * &pick(&c))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grad_w = grads.get(w.as_tensor()).unwrap();
            vec![bits_of(&y), bits_of(&pick(grad_w))]
        };
        let both = run(None);
        for m in 0..2 {
            let alone = run(Some(m));
            let half = both[0].len() / 2;
            assert_eq!(
                both[0][m * half..(m + 1) * half],
                alone[0][..],
                "member {m}: forward"
            );
            assert_eq!(
                both[1][m * half..(m + 1) * half],
                alone[1][..],
                "member {m}: weight gradient"
            );
        }
    }

    /// A layer large enough for its products to be split across threads (256 × 256 × 256
    /// multiply-adds each, gemm's own split) gives the same forward values and gradients, bit
    /// for bit, on every repeat with 2 threads and with one thread, for both weight layouts:
    /// gemm's threads divide rows and columns, never a sum.
    #[test]
    fn split_products_do_not_depend_on_scheduling() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        let x = Var::from_tensor(&random(&[256, 256], &mut rng)).unwrap();
        let c = random(&[256, 256], &mut rng);
        for layout in [WeightLayout::OutIn, WeightLayout::InOut] {
            let w = Var::from_tensor(&random(&[256, 256], &mut rng)).unwrap();
            let b = Var::from_tensor(&random(&[256], &mut rng)).unwrap();
            let run = |threads: usize| -> Vec<Vec<u32>> {
                let _restore = OneThreadAfter;
                set_threads(threads);
                let y = dense(
                    x.as_tensor(),
                    w.as_tensor(),
                    b.as_tensor(),
                    layout,
                    Some(Activation::Relu),
                )
                .unwrap();
                let grads = (&y * &c).unwrap().sum_all().unwrap().backward().unwrap();
                set_threads(1);
                let bits = |t: &Tensor| -> Vec<u32> {
                    t.flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                let mut out = vec![bits(&y)];
                for var in [&x, &w, &b] {
                    out.push(bits(grads.get(var.as_tensor()).unwrap()));
                }
                out
            };
            let first = run(2);
            for _ in 0..5 {
                assert_eq!(
                    run(2),
                    first,
                    "{layout:?}: 2 threads, another schedule, other bits"
                );
            }
            assert_eq!(run(1), first, "{layout:?}: 1 thread, other bits than 2");
        }
    }

    /// Forward values and every gradient of a loss through the layer agree between the fused
    /// op and candle's own ops, for both layouts, every activation, and a broadcast
    /// (member-stride-0) input as the critic ensemble uses.
    #[test]
    fn fused_matches_candle_ops() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        /// (x, weight, bias shapes, layout, x broadcast over members)
        type Case<'a> = (&'a [usize], &'a [usize], &'a [usize], WeightLayout, bool);
        let cases: [Case; 5] = [
            (&[5, 3], &[4, 3], &[4], WeightLayout::OutIn, false),
            (
                &[3, 5, 3],
                &[3, 4, 3],
                &[3, 1, 4],
                WeightLayout::OutIn,
                false,
            ),
            (&[5, 3], &[3, 4], &[4], WeightLayout::InOut, false),
            (
                &[2, 5, 3],
                &[2, 3, 4],
                &[2, 1, 4],
                WeightLayout::InOut,
                false,
            ),
            (
                &[2, 5, 3],
                &[2, 3, 4],
                &[2, 1, 4],
                WeightLayout::InOut,
                true,
            ),
        ];
        for (x_shape, w_shape, b_shape, layout, broadcast) in cases {
            for activation in [None, Some(Activation::Relu), Some(Activation::Tanh)] {
                let x = if broadcast {
                    let one = random(&x_shape[1..], &mut rng);
                    Var::from_tensor(&one).unwrap()
                } else {
                    Var::from_tensor(&random(x_shape, &mut rng)).unwrap()
                };
                let w = Var::from_tensor(&random(w_shape, &mut rng)).unwrap();
                let b = Var::from_tensor(&random(b_shape, &mut rng)).unwrap();
                // A non-uniform upstream gradient: loss = Σ c ⊙ y.
                let mut out_shape = x_shape.to_vec();
                *out_shape.last_mut().unwrap() = w_shape[if layout == WeightLayout::OutIn {
                    w_shape.len() - 2
                } else {
                    w_shape.len() - 1
                }];
                let c = random(&out_shape, &mut rng);
                type Layer = fn(
                    &Tensor,
                    &Tensor,
                    &Tensor,
                    WeightLayout,
                    Option<Activation>,
                ) -> Result<Tensor>;
                let run = |f: Layer| {
                    let input = if broadcast {
                        x.as_tensor()
                            .unsqueeze(0)
                            .unwrap()
                            .broadcast_as(x_shape)
                            .unwrap()
                    } else {
                        x.as_tensor().clone()
                    };
                    let y = f(&input, w.as_tensor(), b.as_tensor(), layout, activation).unwrap();
                    let grads = (&y * &c).unwrap().sum_all().unwrap().backward().unwrap();
                    let g = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
                    (y, g(&x), g(&w), g(&b))
                };
                let fused = run(dense);
                let plain = run(dense_unfused);
                let what = format!("{layout:?} {activation:?} x {x_shape:?} broadcast {broadcast}");
                assert!(max_rel_diff(&fused.0, &plain.0) < 1e-6, "y: {what}");
                assert!(max_rel_diff(&fused.1, &plain.1) < 1e-6, "∂x: {what}");
                assert!(max_rel_diff(&fused.2, &plain.2) < 1e-6, "∂W: {what}");
                assert!(max_rel_diff(&fused.3, &plain.3) < 1e-6, "∂b: {what}");
            }
        }
    }

    /// Frozen (detached) parameters get no gradient work, empty batches work, and mismatched
    /// shapes are refused.
    #[test]
    fn detached_parameters_and_bad_shapes() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(8);
        let x = Var::from_tensor(&random(&[4, 3], &mut rng)).unwrap();
        let w = random(&[2, 3], &mut rng);
        let b = random(&[2], &mut rng);
        let y = dense(x.as_tensor(), &w, &b, WeightLayout::OutIn, None).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&w).is_none() && grads.get(&b).is_none());
        // ∂Σy/∂x = Σ_o W[o, :] for every row.
        let gx = grads.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let col_sums = w.sum(0).unwrap().to_vec1::<f32>().unwrap();
        for row in gx {
            for (g, s) in row.iter().zip(&col_sums) {
                assert!((g - s).abs() < 1e-6);
            }
        }
        // Empty batches give empty results, as candle's own ops do.
        let none = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        let y = dense(&none, &w, &b, WeightLayout::OutIn, Some(Activation::Relu)).unwrap();
        assert_eq!(y.dims(), &[0, 2]);
        let wrong = random(&[2, 4], &mut rng);
        let err = dense(x.as_tensor(), &wrong, &b, WeightLayout::OutIn, None).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
