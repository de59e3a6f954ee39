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

/// `sums[t] = Σ_i x[i] · rows[t · inputs + i]` for every `t < sums.len()`, `rows` holding
/// that many rows of `inputs` weights one after the other, `x` the layer's `inputs` codes
/// stored as [`slot`] says. Takes 1 row or a multiple of 4; other counts (which `dense`
/// never asks for) and a misaligned `x` (a `Codes` buffer never is) go through plain Rust.
#[inline(always)]
pub(super) fn sums(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    let n = sums.len();
    let fits = rows.len() >= n * inputs && x.len() >= inputs && x.as_ptr() as usize % 4 == 0;
    match (n, fits) {
        (1, true) => {
            if let Some(sum) = sums.first_mut() {
                *sum = one(rows, inputs, x);
            }
        }
        (4.., true) if n % 4 == 0 => tiles(rows, inputs, x, sums),
        _ => by_slot(rows, inputs, x, sums),
    }
}

/// [`sums`] for one row.
#[inline(always)]
fn one(rows: &[i8], inputs: usize, x: &[i16]) -> i32 {
    let whole = inputs & !3;
    let (p0, xp) = (rows.as_ptr(), x.as_ptr());
    let mut a0 = 0i32;
    // SAFETY: as in `tiles` for one row (`T = 1`): it reads the `inputs` codes of `x`
    // (`ldrd` from the 4-byte aligned `x` for the `whole / 4` groups, then `ldrsh`) and the
    // `inputs` weights of row 0 (`ldr` per group, then `ldrsb`), all checked to be inside
    // `x` and `rows` by `sums`. No memory is written; the registers it changes are
    // operands, and the flags.
    unsafe {
        core::arch::asm!(
            "cmp {xp}, {end}",
            "beq 6f",
            "sub {t}, {end}, {xp}",
            "tst {t}, #8",
            "bne 3f",
            "2:",
            group!(),
            "3:",
            group!(),
            "cmp {xp}, {end}",
            "bne 2b",
            "6:",
            "ands {t}, {n}, #3",
            "beq 5f",
            "add {end}, {end}, {t}, lsl #1",
            "4:",
            single!(),
            "cmp {xp}, {end}",
            "bne 4b",
            "5:",
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
            end = inout(reg) xp.wrapping_add(whole) => _,
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
    // All inside `rows` (`sums.len() · inputs <= rows.len()`, checked by `sums`). It
    // writes the 4 sums of tile `k` to `out + 4k` (`strd`, 4-byte aligned `i32`s), inside
    // `sums`, and stops when the pointer reaches `out_end = out + sums.len()`. `out` and
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
            "cmp {xp}, {end}",
            "beq 6f",
            "sub {t}, {end}, {xp}",
            "tst {t}, #8",
            "bne 3f",
            "2:",
            group!(),
            "3:",
            group!(),
            "cmp {xp}, {end}",
            "bne 2b",
            "6:",
            "ands {t}, {n}, #3",
            "beq 5f",
            "add {end}, {end}, {t}, lsl #1",
            "4:",
            single!(),
            "cmp {xp}, {end}",
            "bne 4b",
            "5:",
            "ldr {t}, [sp]",
            "strd {a0}, {a1}, [{t}], #8",
            "strd {a2}, {a3}, [{t}], #8",
            "str {t}, [sp]",
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

/// The same sums without the kernel, reading input `i` at `slot(i, inputs)`.
fn by_slot(rows: &[i8], inputs: usize, x: &[i16], sums: &mut [i32]) {
    for (a, row) in sums.iter_mut().zip(rows.chunks_exact(inputs.max(1))) {
        *a = row.iter().enumerate().fold(0, |s, (i, &w)| {
            mac(s, x.get(slot(i, inputs)).copied().unwrap_or(0), w)
        });
    }
}
