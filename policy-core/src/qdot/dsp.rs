//! The rows of a tile on the Cortex-M4/M7 DSP extension, in inline assembly (stable Rust
//! has no intrinsics for it): per group of four inputs, one `ldrd` of their codes, and per
//! output one word load of its four int8 weights, two `sxtb16` (weights 0 and 2, then 1 and
//! 3, sign-extended to 16-bit halves) and two `smlad` (two 16 × 16-bit products added to
//! the 32-bit sum each), as CMSIS-NN does: 5 instructions per 4 multiply-accumulates, and
//! one `ldrd` per group shared by the tile's outputs. The codes are stored `x0, x2, x1, x3`
//! per group ([`super::slot`]) so that the two words pair with the two `sxtb16` halves.
//! The sums are exact, so the results are those of the portable path to the bit.

use super::{mac, slot};

/// One row's group: its four weights from `$addr` into `{t}`, then into `$acc`.
macro_rules! row {
    ($addr:literal, $acc:literal) => {
        concat!(
            "ldr {t}, ",
            $addr,
            "\n",
            "sxtb16 {u}, {t}\n",
            "sxtb16 {t}, {t}, ror #8\n",
            "smlad {",
            $acc,
            "}, {x02}, {u}, {",
            $acc,
            "}\n",
            "smlad {",
            $acc,
            "}, {x13}, {t}, {",
            $acc,
            "}\n"
        )
    };
}

/// One group of four inputs for rows 0 to `T − 1`: row 0 at `p0`, row 1 at `p0 + n`, row 2
/// at `p0 + 2n`, row 3 at `p3`; rows 0 and 3 advance by post-increment (the offset forms
/// first, while `p0` still points at this group).
macro_rules! group {
    () => {
        concat!(
            "ldrd {x02}, {x13}, [{xp}], #8\n",
            ".if {T} > 1\n",
            row!("[{p0}, {n}]", "a1"),
            ".endif\n",
            ".if {T} > 2\n",
            row!("[{p0}, {n}, lsl #1]", "a2"),
            ".endif\n",
            ".if {T} > 3\n",
            row!("[{p3}], #4", "a3"),
            ".endif\n",
            row!("[{p0}], #4", "a0"),
        )
    };
}

/// One of the last `n % 4` inputs (stored in order after the groups): its code, then one
/// sign-extended weight and one 16 × 16-bit multiply-accumulate per row.
macro_rules! single {
    () => {
        concat!(
            "ldrsh {x02}, [{xp}], #2\n",
            ".if {T} > 1\n",
            "ldrsb {t}, [{p0}, {n}]\n",
            "smlabb {a1}, {x02}, {t}, {a1}\n",
            ".endif\n",
            ".if {T} > 2\n",
            "ldrsb {t}, [{p0}, {n}, lsl #1]\n",
            "smlabb {a2}, {x02}, {t}, {a2}\n",
            ".endif\n",
            ".if {T} > 3\n",
            "ldrsb {t}, [{p3}], #1\n",
            "smlabb {a3}, {x02}, {t}, {a3}\n",
            ".endif\n",
            "ldrsb {t}, [{p0}], #1\n",
            "smlabb {a0}, {x02}, {t}, {a0}\n",
        )
    };
}

/// The dot products of one tile: the whole groups (none if `xp = end`; an odd number
/// enters at the second copy of the loop body), then the last `n % 4` inputs. On entry `xp`
/// points at the codes and `end` at the end of their whole groups; on exit `xp` is past the
/// last code, `p0` past row 0 and `p3` past row 3.
macro_rules! dot {
    () => {
        concat!(
            "cmp {xp}, {end}\n",
            "beq 6f\n",
            "sub {t}, {end}, {xp}\n",
            "tst {t}, #8\n",
            "bne 3f\n",
            "2:\n",
            group!(),
            "3:\n",
            group!(),
            "cmp {xp}, {end}\n",
            "bne 2b\n",
            "6:\n",
            "ands {t}, {n}, #3\n",
            "beq 5f\n",
            "add {end}, {end}, {t}, lsl #1\n",
            "4:\n",
            single!(),
            "cmp {xp}, {end}\n",
            "bne 4b\n",
            "5:\n",
        )
    };
}

/// `sums[t] = Σ_i x[i] · rows[t · inputs + i]` for every `t < sums.len()`, `rows` holding
/// that many rows of `inputs` weights one after the other, `x` the layer's `inputs` codes
/// stored as [`slot`] says. One row goes through [`one`], a multiple of 4 rows through
/// [`tiles`]; other counts, and a misaligned `x` (a `Codes` buffer never is), through plain
/// Rust.
#[inline(always)]
pub(super) fn sums(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    let n = sums.len();
    let fits =
        rows.len() >= n * inputs && x.len() >= inputs && (x.as_ptr() as usize).is_multiple_of(4);
    match (n, fits) {
        (0, _) => {}
        (1, true) => {
            if let Some(sum) = sums.first_mut() {
                *sum = one(rows, inputs, x);
            }
        }
        (_, true) if n.is_multiple_of(4) => tiles(rows, inputs, x, sums),
        _ => by_slot(rows, inputs, x, sums),
    }
}

/// [`sums`] for any number of rows (the fused heads): rows of 64, 128 or 256 inputs (up
/// to the width capacity `W`: wider strides are not instantiated) at a 4-byte aligned
/// address through the `ldrd` kernel ([`sums_s`]); other rows through [`tiles`], then
/// [`one`] for the last `n % 4`; a misaligned `x` (a `Codes` buffer never is) through plain
/// Rust.
#[inline(always)]
pub(super) fn any_sums<const W: usize>(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    let n = sums.len();
    let fits =
        rows.len() >= n * inputs && x.len() >= inputs && (x.as_ptr() as usize).is_multiple_of(4);
    let wide = fits && n >= 4 && (rows.as_ptr() as usize).is_multiple_of(4);
    match inputs {
        _ if !fits => by_slot(rows, inputs, x, sums),
        // SAFETY: `wide` says `rows` is aligned, `fits` that `x` is.
        64 if wide && 64 <= W => unsafe { sums_s::<64>(rows, x, sums) },
        // SAFETY: `wide` says `rows` is aligned, `fits` that `x` is.
        128 if wide && 128 <= W => unsafe { sums_s::<128>(rows, x, sums) },
        // SAFETY: `wide` says `rows` is aligned, `fits` that `x` is.
        256 if wide && 256 <= W => unsafe { sums_s::<256>(rows, x, sums) },
        _ => {
            let (whole, rest) = sums.split_at_mut(n & !3);
            if !whole.is_empty() {
                tiles(rows, inputs, x, whole);
            }
            let rest_rows = rows.get((n & !3) * inputs..).unwrap_or(&[]);
            for (sum, row) in rest.iter_mut().zip(rest_rows.chunks_exact(inputs.max(1))) {
                *sum = one(row, inputs, x);
            }
        }
    }
}

/// [`sums`] for one row: as [`tiles`] for `T = 1`, without its stack frame.
#[inline(always)]
fn one(rows: &[i8], inputs: usize, x: &[i16]) -> i32 {
    let (p0, xp) = (rows.as_ptr(), x.as_ptr());
    let mut a0 = 0i32;
    // SAFETY: as in `tiles` for one tile of `T = 1`: it reads the `inputs` codes of `x`
    // (`ldrd` from the 4-byte aligned `x` for the whole groups, then `ldrsh`) and the
    // `inputs` weights of row 0 (`ldr` per group, then `ldrsb`), all inside `x` and `rows`
    // (checked by `sums`). It writes no memory; the registers it changes are operands, and
    // the flags.
    unsafe {
        core::arch::asm!(
            "bic {t}, {n}, #3",
            "add {end}, {xp}, {t}, lsl #1",
            dot!(),
            a0 = inout(reg) a0,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            x02 = out(reg) _,
            x13 = out(reg) _,
            t = out(reg) _,
            u = out(reg) _,
            p0 = inout(reg) p0 => _,
            p3 = out(reg) _,
            n = in(reg) inputs,
            xp = inout(reg) xp => _,
            end = out(reg) _,
            T = const 1,
            options(readonly, nostack),
        );
    }
    a0
}

/// [`sums`] for a multiple of 4 rows: tile after tile of 4 rows, each sum in a register
/// while the codes stream by, the 4 sums stored after each tile.
#[inline(always)]
fn tiles(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    let (p0, xp) = (rows.as_ptr(), x.as_ptr());
    let out = sums.as_mut_ptr();
    let out_end = out.wrapping_add(sums.len());
    // SAFETY: for each tile `k < sums.len() / 4` (at least one: `sums` checks the count),
    // the block reads, from `xp = x`, the `whole / 4` groups of 4 codes (8 bytes each, by
    // `ldrd`, which needs a 4-byte aligned address: `x` is, checked by `sums`, and each
    // group advances it by 8) and then `inputs − whole` codes by `ldrsh`: `2 · inputs <=
    // 2 · x.len()` bytes; then it steps `xp` back by `2 · inputs` to `x`. For each row `t <
    // 4` of the tile it reads bytes `(4k + t) · inputs + i`, `i < inputs`, of `rows` (by
    // 4-byte `ldr`, which takes any address on ARMv7E-M, while `i < whole`, then by
    // `ldrsb`): row 0 at `p0`, rows 1 and 2 at the offsets `n = inputs` and `2n` from it,
    // row 3 at `p3 = p0 + 3n`; after the tile `p3` is at `p0 + 4n`, the next tile's row 0.
    // All inside `rows` (`sums.len() · inputs <= rows.len()`, checked by `sums`). It writes
    // the 4 sums of tile `k` to `out + 4k` (`strd`, 4-byte aligned `i32`s), inside `sums`, and stops when the pointer reaches `out_end = out + sums.len()`. `out` and
    // `out_end` live in 8 bytes of stack below the stack pointer it finds, released before
    // it ends. The general registers it changes are operands, and the flags.
    unsafe {
        core::arch::asm!(
            "strd {x02}, {x13}, [sp, #-8]!",
            "7:",
            "movs {a0}, #0",
            "movs {a1}, #0",
            "movs {a2}, #0",
            "movs {a3}, #0",
            "add {p3}, {p0}, {n}, lsl #1",
            "add {p3}, {p3}, {n}",
            "bic {t}, {n}, #3",
            "add {end}, {xp}, {t}, lsl #1",
            dot!(),
            "ldr {t}, [sp]",
            "strd {a0}, {a1}, [{t}], #8",
            "strd {a2}, {a3}, [{t}], #8",
            "str {t}, [sp]",
            // Row 3 ended where the next tile's row 0 starts.
            "mov {p0}, {p3}",
            "sub {xp}, {xp}, {n}, lsl #1",
            "ldr {u}, [sp, #4]",
            "cmp {t}, {u}",
            "bne 7b",
            "add sp, #8",
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            x02 = inout(reg) out => _,
            x13 = inout(reg) out_end => _,
            t = out(reg) _,
            u = out(reg) _,
            p0 = inout(reg) p0 => _,
            p3 = out(reg) _,
            n = in(reg) inputs,
            xp = inout(reg) xp => _,
            end = out(reg) _,
            T = const 4,
        );
    }
}

/// Output `k` of a tile (sum in `$acc`) of a ReLU layer to its code, as
/// `Hidden::code` computes it: `f32(acc)` (`vcvt`, round to nearest), `· scale` (the next
/// scale, from `{u}`), `· inv2` (`s2`), `trunc` (`vcvt`, toward zero, saturating), then
/// `t − ⌊t/2⌋` clamped to 0 ..= 32767 (`usat`), stored at byte `$at` of the group.
#[cfg(policy_core_vfma)]
macro_rules! requant {
    ($acc:literal, $at:literal) => {
        concat!(
            "ldr {x02}, [{u}], #4\n",
            "vmov s1, {x02}\n",
            "vmov s0, {",
            $acc,
            "}\n",
            "vcvt.f32.s32 s0, s0\n",
            "vmul.f32 s0, s0, s1\n",
            "vmul.f32 s0, s0, s2\n",
            "vcvt.s32.f32 s0, s0\n",
            "vmov {",
            $acc,
            "}, s0\n",
            "sub {",
            $acc,
            "}, {",
            $acc,
            "}, {",
            $acc,
            "}, asr #1\n",
            "usat {",
            $acc,
            "}, #15, {",
            $acc,
            "}\n",
            "strh {",
            $acc,
            "}, [{t}, #",
            $at,
            "]\n",
        )
    };
}

/// The whole groups of 4 outputs of a ReLU layer, from their sums to their codes in one
/// pass (the sums never leave the registers): `out[slot(o)]` for `o < 4 · (outputs / 4)`,
/// `bias`, `scale` and `rows` the block's, `inv2 = 2 / s_l`. Bit for bit what
/// `qnet::Hidden::<_, true>` computes from `dense`'s sums, in fewer instructions (about 11
/// per output instead of 20). Returns how many outputs it wrote: 0 when the shapes do not
/// fit (then `dense` does them all).
#[cfg(policy_core_vfma)]
pub(super) fn relu_groups<const W: usize>(
    rows: &[i8],
    inputs: usize,
    x: &[i16],
    bias: &[[u8; 4]],
    scale: &[[u8; 4]],
    inv2: f32,
    out: &mut [i16],
) -> usize {
    let n = bias.len().min(scale.len()).min(out.len()) & !3;
    let fits =
        rows.len() >= n * inputs && x.len() >= inputs && (x.as_ptr() as usize).is_multiple_of(4);
    if n == 0 || !fits {
        return 0;
    }
    let addresses = [
        rows.as_ptr() as usize,
        bias.as_ptr() as usize,
        scale.as_ptr() as usize,
    ];
    let aligned = addresses
        .into_iter()
        .fold(out.as_ptr() as usize, |a, b| a | b)
        .is_multiple_of(4);
    match inputs {
        64 if aligned && 64 <= W => {
            return relu_run(relu_groups_s::<64>, rows, x, bias, scale, inv2, out, n)
        }
        128 if aligned && 128 <= W => {
            return relu_run(relu_groups_s::<128>, rows, x, bias, scale, inv2, out, n)
        }
        256 if aligned && 256 <= W => {
            return relu_run(relu_groups_s::<256>, rows, x, bias, scale, inv2, out, n)
        }
        3 if aligned => {
            return relu_run(relu_groups_small::<3>, rows, x, bias, scale, inv2, out, n)
        }
        _ => {}
    }
    let (p0, xp) = (rows.as_ptr(), x.as_ptr());
    let out = out.as_mut_ptr();
    let out_end = out.wrapping_add(n);
    // SAFETY: the dot products read what `tiles` reads for `n` rows (a multiple of 4, at
    // least 4): inside `x` and `rows`, checked above. Per tile `k` it reads the 4 biases at
    // `bias + 16k` and the 4 scales at `scale + 16k` (`ldr`, any alignment), inside `bias`
    // and `scale` (`4k + 4 <= n`), and writes 4 codes (`strh`, 2-byte aligned `i16`s) at
    // bytes 0, 2, 4 and 6 of `out + 4k`, inside `out` (`n <= out.len()`); it stops when
    // the output pointer reaches `out_end = out + n`. Its pointers live in 16 bytes of
    // stack below the stack pointer it finds, released before it ends. It uses `s0`–`s2`,
    // saved first and restored last (`vpush`/`vpop`); the general registers it changes
    // are operands, and the flags.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s2}}",
            "vmov s2, {u}",
            "sub sp, sp, #16",
            "strd {x02}, {x13}, [sp]",
            "strd {t}, {end}, [sp, #8]",
            "7:",
            // Each sum starts from its bias.
            "ldr {t}, [sp, #8]",
            "ldr {a0}, [{t}], #4",
            "ldr {a1}, [{t}], #4",
            "ldr {a2}, [{t}], #4",
            "ldr {a3}, [{t}], #4",
            "str {t}, [sp, #8]",
            "add {p3}, {p0}, {n}, lsl #1",
            "add {p3}, {p3}, {n}",
            "bic {t}, {n}, #3",
            "add {end}, {xp}, {t}, lsl #1",
            dot!(),
            "ldr {u}, [sp, #12]",
            "ldr {t}, [sp]",
            // Outputs 0, 1, 2, 3 at slots 0, 2, 1, 3 of the group (`slot`).
            requant!("a0", "0"),
            requant!("a1", "4"),
            requant!("a2", "2"),
            requant!("a3", "6"),
            "str {u}, [sp, #12]",
            "add {t}, {t}, #8",
            "str {t}, [sp]",
            "mov {p0}, {p3}",
            "sub {xp}, {xp}, {n}, lsl #1",
            "ldr {u}, [sp, #4]",
            "cmp {t}, {u}",
            "bne 7b",
            "add sp, sp, #16",
            "vpop {{s0-s2}}",
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            x02 = inout(reg) out => _,
            x13 = inout(reg) out_end => _,
            t = inout(reg) bias.as_ptr() => _,
            u = inout(reg) inv2.to_bits() => _,
            p0 = inout(reg) p0 => _,
            p3 = out(reg) _,
            n = in(reg) inputs,
            xp = inout(reg) xp => _,
            end = inout(reg) scale.as_ptr() => _,
            T = const 4,
        );
    }
    n
}

/// One row's 8 weights (two groups of four) from `$addr` by `ldrd` into `{w0}`, `{w1}`,
/// then into `$acc`: `{c0}`, `{c1}` hold the first group's codes, `{c2}`, `{c3}` the second's.
macro_rules! row8 {
    ($addr:literal, $acc:literal) => {
        concat!(
            "ldrd {w0}, {w1}, ",
            $addr,
            "\n",
            "sxtb16 {u}, {w0}\n",
            "sxtb16 {w0}, {w0}, ror #8\n",
            "smlad {",
            $acc,
            "}, {c0}, {u}, {",
            $acc,
            "}\n",
            "smlad {",
            $acc,
            "}, {c1}, {w0}, {",
            $acc,
            "}\n",
            "sxtb16 {u}, {w1}\n",
            "sxtb16 {w1}, {w1}, ror #8\n",
            "smlad {",
            $acc,
            "}, {c2}, {u}, {",
            $acc,
            "}\n",
            "smlad {",
            $acc,
            "}, {c3}, {w1}, {",
            $acc,
            "}\n"
        )
    };
}

/// Eight inputs (two groups) for rows 0 to `T − 1` of a layer whose rows are `S` bytes
/// long (`{S1}` = S, `{S2}` = 2S, `{S3}` = 3S): row `r` at the immediate offset `r · S`
/// from `p0`, row 0 last, advancing `p0` by 8; the codes advance `xp` by 16.
macro_rules! oct {
    () => {
        concat!(
            "ldrd {c2}, {c3}, [{xp}, #8]\n",
            "ldrd {c0}, {c1}, [{xp}], #16\n",
            ".if {T} > 1\n",
            row8!("[{p0}, #{S1}]", "a1"),
            ".endif\n",
            ".if {T} > 2\n",
            row8!("[{p0}, #{S2}]", "a2"),
            ".endif\n",
            ".if {T} > 3\n",
            row8!("[{p0}, #{S3}]", "a3"),
            ".endif\n",
            row8!("[{p0}], #8", "a0"),
        )
    };
}

/// [`any_sums`] for `n >= 4` rows of `S` inputs (a multiple of 16, `3S + 8 ≤ 1020`),
/// `rows` 4-byte aligned: tiles of 4 rows, and for the last `n % 4` the 4 rows that end
/// there (recomputing up to 3 sums, to the same values: one kernel for every `n`).
///
/// # Safety
/// `rows` and `x` 4-byte aligned ([`tiles_s`]); [`any_sums`] checks it.
#[inline(never)]
unsafe fn sums_s<const S: usize>(rows: &[i8], x: &[i16], sums: &mut [i32]) {
    let (whole, _) = sums.as_chunks_mut::<4>();
    // SAFETY: the caller's guarantee, passed on.
    unsafe { tiles_s::<S>(rows, x, whole) };
    let last = sums.len().saturating_sub(4);
    if !last.is_multiple_of(4) {
        let rows = rows.get(last * S..).unwrap_or(&[]);
        if let Some(out) = sums
            .get_mut(last..)
            .and_then(|s| s.as_chunks_mut::<4>().0.get_mut(..1))
        {
            // SAFETY: `rows` from a row start, a multiple of S (16) bytes in: still aligned.
            unsafe { tiles_s::<S>(rows, x, out) };
        }
    }
}

/// The sums of `4 · out.len()` rows of `S` inputs (a multiple of 16) at `rows` against the
/// `S` codes of `x`, tile after tile of 4 rows, per 8 inputs one `ldrd` of each row's
/// weights (the row stride `S` is an immediate offset): 38 instructions per 32
/// multiply-accumulates; nothing for a short `rows`. (Not inlined: `sums_s` calls it twice.)
///
/// # Safety
/// `rows` and `x` 4-byte aligned (the lengths are checked here).
#[inline(never)]
unsafe fn tiles_s<const S: usize>(rows: &[i8], x: &[i16], out: &mut [[i32; 4]]) {
    const { assert!(S.is_multiple_of(16) && 3 * S + 8 <= 1020) };
    if out.is_empty() || rows.len() < out.len() * 4 * S || x.len() < S {
        return;
    }
    let (p0, xp) = (rows.as_ptr(), x.as_ptr());
    let out_end = out.as_mut_ptr_range().end;
    // SAFETY: the caller guarantees that `x` and `rows` are 4-byte aligned; above, that `x` holds `S` codes and `rows` the `4 · out.len()` rows of `S`
    // bytes, at least one tile. Per tile `k` and 16 inputs it reads 32 bytes of codes from
    // `xp` (`ldrd`, aligned: `xp` advances by 16, and steps back by `2S` after each tile) and
    // 16 bytes of each row `r < 4` at `p0 + r · S` (`ldrd`, aligned: `S` is a multiple of 16
    // and `p0` advances by 8, then to the next tile), until `xp` reaches `x + 2S`: inside `x`
    // and `rows`. It writes the 4 sums of tile `k` (`strd` twice, 4-byte aligned `i32`s) at
    // `out + k`, inside `out`, and stops when the pointer reaches `out_end`. Its pointers
    // live in 16 bytes of stack below the stack pointer it finds, released before it ends.
    // The registers it changes are operands, and the flags.
    unsafe {
        core::arch::asm!(
            "sub sp, sp, #16",
            // [sp]: out, [sp + 4]: out_end, [sp + 8]: the end of the codes.
            "strd {c0}, {c1}, [sp]",
            "add {u}, {xp}, #{X}",
            "str {u}, [sp, #8]",
            "7:",
            "movs {a0}, #0",
            "movs {a1}, #0",
            "movs {a2}, #0",
            "movs {a3}, #0",
            "2:",
            oct!(),
            oct!(),
            "ldr {u}, [sp, #8]",
            "cmp {xp}, {u}",
            "bne 2b",
            "ldrd {u}, {w0}, [sp]",
            "strd {a0}, {a1}, [{u}], #8",
            "strd {a2}, {a3}, [{u}], #8",
            "str {u}, [sp]",
            // Row 0 ended where row 1 starts: the next tile is 3 rows on.
            "add {p0}, {p0}, #{S3}",
            "sub {xp}, {xp}, #{X}",
            "cmp {u}, {w0}",
            "bne 7b",
            "add sp, sp, #16",
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            c0 = inout(reg) out.as_mut_ptr() => _,
            c1 = inout(reg) out_end => _,
            c2 = out(reg) _,
            c3 = out(reg) _,
            w0 = out(reg) _,
            w1 = out(reg) _,
            u = out(reg) _,
            p0 = inout(reg) p0 => _,
            xp = inout(reg) xp => _,
            X = const 2 * S,
            S1 = const S,
            S2 = const 2 * S,
            S3 = const 3 * S,
            T = const 4,
        );
    }
}

/// Four sums (`{a0}`–`{a3}`) of a ReLU layer to their codes, as `Hidden::code` computes
/// them (see `requant!`), four at a time in `s0`–`s3`: the tile's scales in `s4`–`s7`
/// (loaded by one `vldmia`), `inv2` in `s8`; the codes packed in slot order (`c0, c2, c1,
/// c3`, [`super::slot`]) into `{a0}`, `{a1}`.
#[cfg(policy_core_vfma)]
macro_rules! requant4 {
    () => {
        concat!(
            "vmov s0, s1, {a0}, {a1}\n",
            "vmov s2, s3, {a2}, {a3}\n",
            "vcvt.f32.s32 s0, s0\n",
            "vcvt.f32.s32 s1, s1\n",
            "vcvt.f32.s32 s2, s2\n",
            "vcvt.f32.s32 s3, s3\n",
            "vmul.f32 s0, s0, s4\n",
            "vmul.f32 s1, s1, s5\n",
            "vmul.f32 s2, s2, s6\n",
            "vmul.f32 s3, s3, s7\n",
            "vmul.f32 s0, s0, s8\n",
            "vmul.f32 s1, s1, s8\n",
            "vmul.f32 s2, s2, s8\n",
            "vmul.f32 s3, s3, s8\n",
            "vcvt.s32.f32 s0, s0\n",
            "vcvt.s32.f32 s1, s1\n",
            "vcvt.s32.f32 s2, s2\n",
            "vcvt.s32.f32 s3, s3\n",
            "vmov {a0}, {a1}, s0, s1\n",
            "vmov {a2}, {a3}, s2, s3\n",
            "sub {a0}, {a0}, {a0}, asr #1\n",
            "sub {a1}, {a1}, {a1}, asr #1\n",
            "sub {a2}, {a2}, {a2}, asr #1\n",
            "sub {a3}, {a3}, {a3}, asr #1\n",
            "usat {a0}, #15, {a0}\n",
            "usat {a1}, #15, {a1}\n",
            "usat {a2}, #15, {a2}\n",
            "usat {a3}, #15, {a3}\n",
            "pkhbt {a0}, {a0}, {a2}, lsl #16\n",
            "pkhbt {a1}, {a1}, {a3}, lsl #16\n",
        )
    };
}

/// [`relu_groups`] for rows of `S` inputs (a multiple of 16, `3S + 8 ≤ 1020`), every
/// pointer 4-byte aligned: per tile the 4 biases by two `ldrd`, the dot products as
/// [`tiles_s`], the requantization four at a time (`requant4!`), the 4 codes by one `strd`.
///
/// # Safety
/// The shapes and alignments `relu_groups` checks before it calls a kernel: `n` a multiple
/// of 4 and at least 4, `n · S <= rows.len()`, `S <= x.len()`, `n` entries in `bias`,
/// `scale` and `out`, and every one of those pointers 4-byte aligned.
#[cfg(policy_core_vfma)]
#[allow(clippy::too_many_arguments)]
unsafe fn relu_groups_s<const S: usize>(
    rows: &[i8],
    x: &[i16],
    bias: &[[u8; 4]],
    scale: &[[u8; 4]],
    inv2: f32,
    out: &mut [i16],
    n: usize,
) {
    const { assert!(S.is_multiple_of(16) && 3 * S + 8 <= 1020) };
    let (p0, xp) = (rows.as_ptr(), x.as_ptr());
    let out = out.as_mut_ptr();
    let out_end = out.wrapping_add(n);
    // SAFETY: the caller guarantees (see `# Safety`; `relu_groups` checks it): `n` a multiple
    // of 4, at least 4; `n · S <= rows.len()`,
    // `S <= x.len()`, `n` biases, scales and codes in `bias`, `scale` and `out`; `rows`,
    // `x`, `bias`, `scale` and `out` 4-byte aligned. Per tile `k` it reads the dot products'
    // bytes as `tiles_s` does for rows `4k .. 4k + 4` (inside `rows` and `x`), the 4 biases
    // at `bias + 16k` (`ldrd`), the 4 scales at `scale + 16k` (`vldmia`), and writes 4
    // codes (8 bytes, `strd`) at `out + 4k` (byte `8k`), inside `out`; it stops when the
    // output pointer reaches `out_end = out + n`. Its pointers live in 24 bytes of stack
    // below the stack pointer it finds, released before it ends. It uses `s0`–`s8`, saved
    // first and restored last (`vpush`/`vpop`); the general registers it changes are
    // operands, and the flags.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s8}}",
            "vmov s8, {u}",
            "sub sp, sp, #24",
            // [sp]: out, [sp + 4]: out_end, [sp + 8]: bias, [sp + 12]: scale,
            // [sp + 16]: the end of the codes.
            "strd {c0}, {c1}, [sp]",
            "strd {w0}, {w1}, [sp, #8]",
            "add {u}, {xp}, #{X}",
            "str {u}, [sp, #16]",
            "7:",
            // Each sum starts from its bias; the tile's scales wait in `s4`–`s7`.
            "ldrd {u}, {w1}, [sp, #8]",
            "ldrd {a0}, {a1}, [{u}], #8",
            "ldrd {a2}, {a3}, [{u}], #8",
            "vldmia {w1}!, {{s4-s7}}",
            "strd {u}, {w1}, [sp, #8]",
            // 16 inputs per pass; rows of 64 inputs in one unrolled run of 4 passes.
            "2:",
            ".rept {U}",
            oct!(),
            oct!(),
            ".endr",
            ".if {U} < {P}",
            "ldr {u}, [sp, #16]",
            "cmp {xp}, {u}",
            "bne 2b",
            ".endif",
            requant4!(),
            "ldrd {u}, {w0}, [sp]",
            "strd {a0}, {a1}, [{u}], #8",
            "str {u}, [sp]",
            // Row 0 ended where row 1 starts: the next tile is 3 rows on.
            "add {p0}, {p0}, #{S3}",
            "sub {xp}, {xp}, #{X}",
            "cmp {u}, {w0}",
            "bne 7b",
            "add sp, sp, #24",
            "vpop {{s0-s8}}",
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            c0 = inout(reg) out => _,
            c1 = inout(reg) out_end => _,
            c2 = out(reg) _,
            c3 = out(reg) _,
            w0 = inout(reg) bias.as_ptr() => _,
            w1 = inout(reg) scale.as_ptr() => _,
            u = inout(reg) inv2.to_bits() => _,
            p0 = inout(reg) p0 => _,
            xp = inout(reg) xp => _,
            X = const 2 * S,
            S1 = const S,
            S2 = const 2 * S,
            S3 = const 3 * S,
            T = const 4,
            P = const S / 16,
            U = const if S <= 64 { S / 16 } else { 1 },
        );
    }
}

/// [`relu_groups`] for a layer of `N` = 3 inputs (an observation such as the pendulum's;
/// `N = 2` would work the same way, but no test runs it, so it is not instantiated): the
/// codes in two
/// registers for the whole layer (`x0 | x2 << 16` and `x1`, the missing ones 0), and per row
/// one `ldr` of a word holding its `N` weights and `4 − N` bytes of a neighbouring row,
/// which meet a code of 0: row 0 of a tile from its first byte, rows 1–3 ending at their
/// last byte, so that no load leaves `rows`. Then the requantization of [`relu_groups_s`].
///
/// # Safety
/// As [`relu_groups_s`], with `N` inputs per row (`n · N <= rows.len()`); `rows` may be
/// misaligned.
#[cfg(policy_core_vfma)]
#[allow(clippy::too_many_arguments)]
unsafe fn relu_groups_small<const N: usize>(
    rows: &[i8],
    x: &[i16],
    bias: &[[u8; 4]],
    scale: &[[u8; 4]],
    inv2: f32,
    out: &mut [i16],
    n: usize,
) {
    // Two or three inputs: the codes' registers hold three, and a row's word four bytes.
    const { assert!(N == 2 || N == 3) };
    let code = |i: usize| x.get(i).map_or(0, |&c| u32::from(c as u16));
    let c02 = code(0) | if N > 2 { code(2) << 16 } else { 0 };
    let c1 = code(1);
    let out = out.as_mut_ptr();
    let out_end = out.wrapping_add(n);
    // SAFETY: `relu_groups` checked: `n` a multiple of 4, at least 4; `n · N <= rows.len()`;
    // `n` biases, scales and codes in `bias`, `scale` and `out`; `bias`, `scale` and `out`
    // 4-byte aligned. Per tile `k` (rows `4k .. 4k + 4`, starting at byte `4kN` of `rows`)
    // it reads the word at `4kN` (row 0: `4kN + 4 <= 4kN + 4N`, inside the tile as `N >=
    // 1`) and the word ending at the last byte of each of rows 1–3 (`4kN + rN + N − 4 >=
    // 2N − 4 >= 0` for `N >= 2`), by `ldr` (any alignment on ARMv7E-M): inside `rows`. It
    // reads the biases and scales and writes the codes as `relu_groups_s` does, inside
    // `bias`, `scale` and `out`, and stops when the output pointer reaches `out_end`. It
    // uses `s0`–`s8`, saved first and restored last (`vpush`/`vpop`); the general registers
    // it changes are operands, and the flags.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s8}}",
            "vmov s8, {u}",
            "7:",
            "ldrd {a0}, {a1}, [{bp}], #8",
            "ldrd {a2}, {a3}, [{bp}], #8",
            // Row 0: weights 0 and 2, then 1 and the next row's first.
            "ldr {w0}, [{p0}]",
            "sxtb16 {u}, {w0}",
            "sxtb16 {w0}, {w0}, ror #8",
            "smlad {a0}, {c02}, {u}, {a0}",
            "smlad {a0}, {c1}, {w0}, {a0}",
            // Rows 1–3: the word ending at the row's last byte, rotated to put weight 0 in
            // byte 0 (and weight 1 in byte 0 of the second rotation).
            "ldr {w0}, [{p0}, #{B1}]",
            "sxtb16 {u}, {w0}, ror #{R0}",
            "sxtb16 {w0}, {w0}, ror #{R1}",
            "smlad {a1}, {c02}, {u}, {a1}",
            "smlad {a1}, {c1}, {w0}, {a1}",
            "ldr {w0}, [{p0}, #{B2}]",
            "sxtb16 {u}, {w0}, ror #{R0}",
            "sxtb16 {w0}, {w0}, ror #{R1}",
            "smlad {a2}, {c02}, {u}, {a2}",
            "smlad {a2}, {c1}, {w0}, {a2}",
            "ldr {w0}, [{p0}, #{B3}]",
            "sxtb16 {u}, {w0}, ror #{R0}",
            "sxtb16 {w0}, {w0}, ror #{R1}",
            "smlad {a3}, {c02}, {u}, {a3}",
            "smlad {a3}, {c1}, {w0}, {a3}",
            "add {p0}, {p0}, #{S4}",
            "vldmia {sc}!, {{s4-s7}}",
            requant4!(),
            "strd {a0}, {a1}, [{op}], #8",
            "cmp {op}, {oe}",
            "bne 7b",
            "vpop {{s0-s8}}",
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            c02 = in(reg) c02,
            c1 = in(reg) c1,
            w0 = out(reg) _,
            u = inout(reg) inv2.to_bits() => _,
            p0 = inout(reg) rows.as_ptr() => _,
            bp = inout(reg) bias.as_ptr() => _,
            sc = inout(reg) scale.as_ptr() => _,
            op = inout(reg) out => _,
            oe = in(reg) out_end,
            B1 = const 2 * N - 4,
            B2 = const 3 * N - 4,
            B3 = const 4 * N - 4,
            R0 = const 8 * (4 - N),
            R1 = const (8 * (5 - N)) % 32,
            S4 = const 4 * N,
        );
    }
}

/// One of `relu_groups`' kernels: `(rows, x, bias, scale, inv2, out, n)`.
#[cfg(policy_core_vfma)]
type ReluKernel = unsafe fn(&[i8], &[i16], &[[u8; 4]], &[[u8; 4]], f32, &mut [i16], usize);

/// Runs one of `relu_groups`' kernels for its `n` outputs; returns `n`.
#[cfg(policy_core_vfma)]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn relu_run(
    kernel: ReluKernel,
    rows: &[i8],
    x: &[i16],
    bias: &[[u8; 4]],
    scale: &[[u8; 4]],
    inv2: f32,
    out: &mut [i16],
    n: usize,
) -> usize {
    // SAFETY: `relu_groups` calls this only after checking what its kernels need (see
    // `relu_groups_s`), for the kernel that fits the layer's input count.
    unsafe { kernel(rows, x, bias, scale, inv2, out, n) };
    n
}

/// The same sums without the kernel, reading input `i` at `slot(i, inputs)`.
fn by_slot(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    for (a, row) in sums.iter_mut().zip(rows.chunks_exact(inputs.max(1))) {
        *a = row.iter().enumerate().fold(0, |s, (i, &w)| {
            mac(s, x.get(slot(i, inputs)).copied().unwrap_or(0), w)
        });
    }
}
