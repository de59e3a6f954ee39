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
/// stored as [`slot`] says. Takes 1 row or a multiple of 4 (what `dense` asks for); other
/// counts and a misaligned `x` (a `Codes` buffer never is) go through plain Rust.
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
pub(super) fn relu_groups(
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

/// The same sums without the kernel, reading input `i` at `slot(i, inputs)`.
fn by_slot(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    for (a, row) in sums.iter_mut().zip(rows.chunks_exact(inputs.max(1))) {
        *a = row.iter().enumerate().fold(0, |s, (i, &w)| {
            mac(s, x.get(slot(i, inputs)).copied().unwrap_or(0), w)
        });
    }
}
