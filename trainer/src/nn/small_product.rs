//! Small f32 matrix products by hand, with the same bits as `gemm` 0.19.
//!
//! At SAC's classic-control sizes (batch 32, width 64) a `gemm::gemm` call spends a few
//! thousand instructions on dispatch, blocking and packing before its arithmetic, and an
//! update makes about 46 of them (BENCHMARKS.md, "Catching RLtools"). [`gemm_small`] does
//! the same arithmetic without that set-up, for the shapes it accepts, and declines (returns
//! false, the caller then runs `gemm::gemm`) for the rest.
//!
//! **Guarantee: every value it writes has the bits `gemm::gemm` writes for the same
//! arguments** (alpha = beta = 1, no conjugation) on the machines where it runs: x86-64 with
//! AVX2 and FMA, where gemm 0.19 (built without its `x86-v4` feature, as here) takes its
//! `fma` kernels on every CPU, AVX-512 ones included. Elsewhere it declines, so results
//! still depend only on what gemm's did. It follows gemm's own dispatch (its transposition
//! of column-oriented destinations, then `gemm_basic_generic`'s order of cases) and
//! reproduces each case's order of roundings, per output:
//!
//! * at most 256 outputs with unit-stride lhs rows and rhs columns (the horizontal
//!   kernels): per block of 1024 along k, an 8-lane FMA accumulator (the last vector
//!   zero-padded), the lanes summed pairwise in gemm's order, then the old value added;
//! * inner dimension k ≤ 2 (`gevv`): separate multiplies and adds, the old value first
//!   (dst + a₀b₀ + a₁b₁, left to right) when accumulating;
//! * one output column with a unit-stride lhs column and destination (`gemv` column-major):
//!   an FMA chain over k in order starting from the old value, or from a₀b₀ (a rounded
//!   product) when not accumulating;
//! * one output column with a unit-stride lhs row and rhs column (`gemv` row-major): eight
//!   8-lane FMA accumulators over blocks of 64, summed pairwise, then 8-wide FMA steps,
//!   the lanes summed left to right, a scalar FMA tail, and the old value added last;
//! * otherwise (the micro-kernels) an FMA chain over k in order from +0, the old value
//!   added last; taken here only for m, n ≤ 64 and k ≤ 512, where gemm sums the whole
//!   inner dimension in one block (larger shapes go to gemm).
//!
//! Transposing a product (C = AB as Cᵀ = BᵀAᵀ) changes no output's chain, since each
//! product aᵢₚbₚⱼ is exact before rounding; so the kernels below choose whichever
//! orientation has a unit-stride operand along the vector axis, packing one operand when
//! none has. NaN payloads are not promised to match (gemm's own operand order inside its
//! FMAs is the compiler's choice); NaN-ness, signed zeros and every finite value are.
//! The tests below compare against `gemm::gemm` bit for bit over random shapes, strides
//! (unit, padded, neither, broadcast) and both `accumulate` modes, and check that every
//! product of a classic-control SAC update is taken.

/// dst ← lhs·rhs (or dst + lhs·rhs with `accumulate`) for an m × k lhs and a k × n rhs, with
/// `gemm::gemm`'s argument conventions (strides in elements, column stride first) and its
/// bits; returns false, writing nothing, for the shapes and machines it leaves to gemm.
///
/// # Safety
/// As for `gemm::gemm`: every element the strides address must be valid to read (lhs, rhs)
/// or read and write (dst), and dst must not overlap lhs or rhs.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_small(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if x86::available() {
            let p = x86::Problem {
                m,
                n,
                k,
                dst,
                dst_rs,
                dst_cs,
                lhs,
                lhs_rs,
                lhs_cs,
                rhs,
                rhs_rs,
                rhs_cs,
                accumulate,
            };
            return x86::run(p);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (
        m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
    );
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// dst[i, j] (+)= Σₚ lhs[i, p]·rhs[p, j]; element (r, c) of each at r·rs + c·cs.
    #[derive(Clone, Copy)]
    pub(super) struct Problem {
        pub(super) m: usize,
        pub(super) n: usize,
        pub(super) k: usize,
        pub(super) dst: *mut f32,
        pub(super) dst_rs: isize,
        pub(super) dst_cs: isize,
        pub(super) lhs: *const f32,
        pub(super) lhs_rs: isize,
        pub(super) lhs_cs: isize,
        pub(super) rhs: *const f32,
        pub(super) rhs_rs: isize,
        pub(super) rhs_cs: isize,
        pub(super) accumulate: bool,
    }

    impl Problem {
        /// The same outputs as Cᵀ = rhsᵀ·lhsᵀ.
        fn transposed(self) -> Problem {
            Problem {
                m: self.n,
                n: self.m,
                dst_rs: self.dst_cs,
                dst_cs: self.dst_rs,
                lhs: self.rhs,
                lhs_rs: self.rhs_cs,
                lhs_cs: self.rhs_rs,
                rhs: self.lhs,
                rhs_rs: self.lhs_cs,
                rhs_cs: self.lhs_rs,
                ..self
            }
        }
    }

    /// Largest micro-kernel shape taken here: gemm sums k in one block (kc = min(k, 512))
    /// when m, n ≤ 64.
    const MICRO_MAX_MN: usize = 64;
    const MICRO_MAX_K: usize = 512;
    /// Floats of the stack buffer an operand is packed into when neither has a unit stride
    /// along an output axis.
    const PACK: usize = 4096;

    /// Every (i, j) addresses its own destination element (a sufficient check).
    fn outputs_distinct(m: usize, n: usize, rs: isize, cs: isize) -> bool {
        match (m, n) {
            (1, 1) => true,
            (1, _) => cs != 0,
            (_, 1) => rs != 0,
            _ => {
                let ((s1, d1), s2) = if rs <= cs {
                    ((rs, m), cs)
                } else {
                    ((cs, n), rs)
                };
                s1 >= 1 && s2 >= s1 * d1 as isize
            }
        }
    }

    pub(super) unsafe fn run(p: Problem) -> bool {
        if p.m == 0 || p.n == 0 {
            return true; // gemm returns without writing
        }
        let strides = [p.dst_rs, p.dst_cs, p.lhs_rs, p.lhs_cs, p.rhs_rs, p.rhs_cs];
        if p.k == 0 || strides.iter().any(|&s| s < 0) {
            return false;
        }
        // gemm::gemm transposes when the destination is column-oriented.
        let p = if p.dst_cs.abs() < p.dst_rs.abs() {
            p.transposed()
        } else {
            p
        };
        if !outputs_distinct(p.m, p.n, p.dst_rs, p.dst_cs) {
            return false;
        }
        // gemm_common::gemm::gemm_basic_generic's cases, in its order.
        if p.lhs_cs == 1 && p.rhs_rs == 1 && p.m * p.n <= 16 * 16 {
            horizontal(p);
        } else if p.k <= 2 {
            gevv(p);
        } else if p.n <= 1 && p.lhs_rs == 1 && p.dst_rs == 1 {
            return gemv_colmajor(p);
        } else if p.n <= 1 && p.lhs_cs == 1 && p.rhs_rs == 1 {
            gemv_rowmajor(p);
        } else if p.m <= 1 && p.rhs_cs == 1 && p.dst_cs == 1 {
            return gemv_colmajor(p.transposed());
        } else if p.m <= 1 && p.rhs_rs == 1 && p.lhs_cs == 1 {
            gemv_rowmajor(p.transposed());
        } else if p.m <= MICRO_MAX_MN && p.n <= MICRO_MAX_MN && p.k <= MICRO_MAX_K {
            let finish = if p.accumulate {
                Finish::Add
            } else {
                Finish::Store
            };
            return chains(p, Init::Zero, finish);
        } else {
            return false;
        }
        true
    }

    /// gemm's horizontal kernels (unit-stride lhs rows and rhs columns, at most 256
    /// outputs): per output and per block of 1024 along k, one 8-lane FMA accumulator over
    /// k (the last partial vector zero-padded), the lanes summed as
    /// ((a₀+a₄)+(a₂+a₆)) + ((a₁+a₅)+(a₃+a₇)), then added to the old value (to the previous
    /// blocks' sum).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn horizontal(p: Problem) {
        const KC: usize = 1024;
        for j in 0..p.n {
            let rhs = p.rhs.offset(j as isize * p.rhs_cs);
            for i in 0..p.m {
                let lhs = p.lhs.offset(i as isize * p.lhs_rs);
                let d = p.dst.offset(i as isize * p.dst_rs + j as isize * p.dst_cs);
                let mut start = 0;
                while start < p.k {
                    let kb = (p.k - start).min(KC);
                    let (l, r) = (lhs.add(start), rhs.add(start));
                    let mut acc = _mm256_setzero_ps();
                    let mut depth = 0;
                    while depth < kb / 8 * 8 {
                        acc = _mm256_fmadd_ps(
                            _mm256_loadu_ps(l.add(depth)),
                            _mm256_loadu_ps(r.add(depth)),
                            acc,
                        );
                        depth += 8;
                    }
                    if depth < kb {
                        let m = mask((kb - depth) as isize);
                        acc = _mm256_fmadd_ps(
                            _mm256_maskload_ps(l.add(depth), m),
                            _mm256_maskload_ps(r.add(depth), m),
                            acc,
                        );
                    }
                    let x =
                        _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
                    let r0 = _mm_add_ps(x, _mm_movehl_ps(x, x));
                    let sum = _mm_cvtss_f32(_mm_add_ss(r0, _mm_shuffle_ps::<0b0001>(r0, r0)));
                    *d = if start == 0 && !p.accumulate {
                        sum
                    } else {
                        sum + *d
                    };
                    start += kb;
                }
            }
        }
    }

    /// gemm_common::gevv (k = 1 or 2): plain multiplies and adds, no FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gevv(p: Problem) {
        let l = |i: usize, q: usize| *p.lhs.offset(i as isize * p.lhs_rs + q as isize * p.lhs_cs);
        let r = |q: usize, j: usize| *p.rhs.offset(q as isize * p.rhs_rs + j as isize * p.rhs_cs);
        for j in 0..p.n {
            for i in 0..p.m {
                let d = p.dst.offset(i as isize * p.dst_rs + j as isize * p.dst_cs);
                *d = match (p.k, p.accumulate) {
                    (1, false) => l(i, 0) * r(0, j),
                    (1, true) => l(i, 0) * r(0, j) + *d,
                    (_, false) => l(i, 1) * r(1, j) + l(i, 0) * r(0, j),
                    (_, true) => l(i, 1) * r(1, j) + (l(i, 0) * r(0, j) + *d),
                };
            }
        }
    }

    /// gemm_common::gemv::mixed_gemv_colmajor (n = 1, unit-stride lhs column and dst): an
    /// FMA chain from the old value, or from the rounded first product.
    #[target_feature(enable = "avx2,fma")]
    /// Returns whether it wrote (as `chains`; a unit-stride lhs column is never packed, so
    /// it always does).
    unsafe fn gemv_colmajor(p: Problem) -> bool {
        let init = if p.accumulate { Init::Dst } else { Init::Mul };
        chains(p, init, Finish::Store)
    }

    /// gemm_common::gemv::mixed_gemv_rowmajor (n = 1, unit-stride lhs rows and rhs column).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gemv_rowmajor(p: Problem) {
        let k = p.k;
        let (k8, k64) = (k / 8 * 8, k / 64 * 64);
        let rhs = p.rhs;
        for i in 0..p.m {
            let lhs = p.lhs.offset(i as isize * p.lhs_rs);
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut depth = 0;
            while depth < k64 {
                for (j, a) in acc.iter_mut().enumerate() {
                    let at = depth + 8 * j;
                    *a = _mm256_fmadd_ps(
                        _mm256_loadu_ps(lhs.add(at)),
                        _mm256_loadu_ps(rhs.add(at)),
                        *a,
                    );
                }
                depth += 64;
            }
            let a01 = _mm256_add_ps(acc[0], acc[1]);
            let a23 = _mm256_add_ps(acc[2], acc[3]);
            let a45 = _mm256_add_ps(acc[4], acc[5]);
            let a67 = _mm256_add_ps(acc[6], acc[7]);
            let mut a = _mm256_add_ps(_mm256_add_ps(a01, a23), _mm256_add_ps(a45, a67));
            while depth < k8 {
                a = _mm256_fmadd_ps(
                    _mm256_loadu_ps(lhs.add(depth)),
                    _mm256_loadu_ps(rhs.add(depth)),
                    a,
                );
                depth += 8;
            }
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), a);
            let mut s = lanes[0];
            for &x in &lanes[1..] {
                s += x;
            }
            while depth < k {
                s = (*lhs.add(depth)).mul_add(*rhs.add(depth), s);
                depth += 1;
            }
            let d = p.dst.offset(i as isize * p.dst_rs);
            *d = if p.accumulate { s + *d } else { s };
        }
    }

    /// Where each output's chain starts.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Init {
        /// +0, then an FMA for every p (the micro-kernels).
        Zero,
        /// The old value, then an FMA for every p (gemv, accumulating).
        Dst,
        /// The rounded product at p = 0, then an FMA for every later p (gemv, not
        /// accumulating).
        Mul,
    }

    /// What becomes of a finished chain.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Finish {
        Store,
        /// The old value added (one rounding) and stored.
        Add,
    }

    /// One chain per output (see [`Init`], [`Finish`]), vectorised along an output axis
    /// where an operand has unit stride; false (nothing written) where one would have to be
    /// packed and does not fit the buffer.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chains(p: Problem, init: Init, finish: Finish) -> bool {
        // Vector axis: the rows of the (possibly transposed) problem, lhs[·, p] unit-stride.
        let by_rows = p.lhs_rs == 1;
        let by_cols = p.rhs_cs == 1;
        let p = match (by_rows, by_cols) {
            (true, true) => {
                // Prefer unit-stride stores, then the longer axis.
                let rows_first = (p.dst_rs == 1, p.m) >= (p.dst_cs == 1, p.n);
                if rows_first {
                    p
                } else {
                    p.transposed()
                }
            }
            (true, false) => p,
            (false, true) => p.transposed(),
            (false, false) => {
                // Pack the longer side's operand into [k][len] (unit stride along it).
                let p = if p.m >= p.n { p } else { p.transposed() };
                if p.m * p.k > PACK {
                    return false;
                }
                let mut buffer = [std::mem::MaybeUninit::<f32>::uninit(); PACK];
                let packed = buffer.as_mut_ptr() as *mut f32;
                pack(packed, p);
                let packed_p = Problem {
                    lhs: packed,
                    lhs_rs: 1,
                    lhs_cs: p.m as isize,
                    ..p
                };
                tiles(packed_p, init, finish);
                return true;
            }
        };
        tiles(p, init, finish);
        true
    }

    /// packed[q·m + i] ← lhs[i, q]: 8 × 8 blocks transposed in registers where the lhs
    /// rows have unit stride, element by element elsewhere.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pack(packed: *mut f32, p: Problem) {
        let (m8, k8) = if p.lhs_cs == 1 {
            (p.m / 8 * 8, p.k / 8 * 8)
        } else {
            (0, 0)
        };
        for i0 in (0..m8).step_by(8) {
            for q0 in (0..k8).step_by(8) {
                let row = |r: usize| {
                    _mm256_loadu_ps(p.lhs.offset((i0 + r) as isize * p.lhs_rs + q0 as isize))
                };
                let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
                let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
                let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
                let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
                let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let out =
                    |c: usize, v: __m256| _mm256_storeu_ps(packed.add((q0 + c) * p.m + i0), v);
                out(0, _mm256_permute2f128_ps::<0x20>(u0, u4));
                out(1, _mm256_permute2f128_ps::<0x20>(u1, u5));
                out(2, _mm256_permute2f128_ps::<0x20>(u2, u6));
                out(3, _mm256_permute2f128_ps::<0x20>(u3, u7));
                out(4, _mm256_permute2f128_ps::<0x31>(u0, u4));
                out(5, _mm256_permute2f128_ps::<0x31>(u1, u5));
                out(6, _mm256_permute2f128_ps::<0x31>(u2, u6));
                out(7, _mm256_permute2f128_ps::<0x31>(u3, u7));
            }
        }
        // The rest: the last k % 8 of the first m8 rows, then every remaining row.
        let element = |i: usize, q: usize| {
            *packed.add(q * p.m + i) = *p.lhs.offset(i as isize * p.lhs_rs + q as isize * p.lhs_cs);
        };
        for i in 0..m8 {
            for q in k8..p.k {
                element(i, q);
            }
        }
        for i in m8..p.m {
            for q in 0..p.k {
                element(i, q);
            }
        }
    }

    /// The blocking: 16 rows (two vectors) by 6 columns of accumulators at a time.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tiles(p: Problem, init: Init, finish: Finish) {
        const ROWS: usize = 16;
        const COLS: usize = 6;
        let mut i0 = 0;
        while i0 < p.m {
            let len = (p.m - i0).min(ROWS);
            let mut j0 = 0;
            while j0 < p.n {
                let cols = (p.n - j0).min(COLS);
                let t = Tile {
                    k: p.k,
                    a: p.lhs.add(i0),
                    a_sp: p.lhs_cs,
                    b: p.rhs.offset(j0 as isize * p.rhs_cs),
                    b_sp: p.rhs_rs,
                    b_sj: p.rhs_cs,
                    dst: p
                        .dst
                        .offset(i0 as isize * p.dst_rs + j0 as isize * p.dst_cs),
                    d_si: p.dst_rs,
                    d_sj: p.dst_cs,
                    len,
                    init,
                    finish,
                };
                macro_rules! dispatch {
                    ($($c:literal)*) => {
                        match (cols, len) {
                            $(
                                ($c, 16) => tile::<$c, 2, true>(&t),
                                ($c, 8) => tile::<$c, 1, true>(&t),
                                ($c, 9..=15) => tile::<$c, 2, false>(&t),
                                ($c, _) => tile::<$c, 1, false>(&t),
                            )*
                            _ => unreachable!("at most {COLS} columns"),
                        }
                    };
                }
                dispatch!(1 2 3 4 5 6);
                j0 += cols;
            }
            i0 += len;
        }
    }

    /// One block: rows i0..i0+len (len ≤ 8·Q) of columns j0..j0+C; lhs[i, p] at
    /// a + p·a_sp + i, rhs[p, j] at b + p·b_sp + j·b_sj, dst[i, j] at dst + i·d_si + j·d_sj.
    struct Tile {
        k: usize,
        a: *const f32,
        a_sp: isize,
        b: *const f32,
        b_sp: isize,
        b_sj: isize,
        dst: *mut f32,
        d_si: isize,
        d_sj: isize,
        len: usize,
        init: Init,
        finish: Finish,
    }

    /// Lanes below `n` set.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn mask(n: isize) -> __m256i {
        let n = n.clamp(0, 8) as i32;
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const C: usize, const Q: usize, const FULL: bool>(t: &Tile) {
        let masks: [__m256i; Q] = std::array::from_fn(|q| mask(t.len as isize - 8 * q as isize));
        let lanes = |q: usize| t.len.saturating_sub(8 * q).min(8);
        let load_a = |a: *const f32| -> [__m256; Q] {
            std::array::from_fn(|q| {
                if FULL {
                    _mm256_loadu_ps(a.add(8 * q))
                } else {
                    _mm256_maskload_ps(a.add(8 * q), masks[q])
                }
            })
        };
        // The destination's (i0 + 8q ..)[j] lanes; lanes past len read as 0.
        let load_dst = |j: usize, q: usize| -> __m256 {
            let d = t.dst.offset(j as isize * t.d_sj + 8 * q as isize * t.d_si);
            if t.d_si == 1 {
                if FULL {
                    _mm256_loadu_ps(d)
                } else {
                    _mm256_maskload_ps(d, masks[q])
                }
            } else {
                let mut v = [0.0f32; 8];
                for (l, x) in v.iter_mut().enumerate().take(lanes(q)) {
                    *x = *d.offset(l as isize * t.d_si);
                }
                _mm256_loadu_ps(v.as_ptr())
            }
        };
        let mut acc = [[_mm256_setzero_ps(); Q]; C];
        let mut first = 0;
        match t.init {
            Init::Zero => {}
            Init::Dst => {
                for (j, acc_j) in acc.iter_mut().enumerate() {
                    for (q, a) in acc_j.iter_mut().enumerate() {
                        *a = load_dst(j, q);
                    }
                }
            }
            Init::Mul => {
                let av = load_a(t.a);
                for (j, acc_j) in acc.iter_mut().enumerate() {
                    let bv = _mm256_broadcast_ss(&*t.b.offset(j as isize * t.b_sj));
                    for (q, a) in acc_j.iter_mut().enumerate() {
                        *a = _mm256_mul_ps(av[q], bv);
                    }
                }
                first = 1;
            }
        }
        // One pointer per column and one offset along k, so that a step costs two adds.
        let columns: [*const f32; C] = std::array::from_fn(|j| t.b.offset(j as isize * t.b_sj));
        // Wrapping: after the last step `a` points past the operand, never read there.
        let mut a = t.a.wrapping_offset(first as isize * t.a_sp);
        let mut b_at = first as isize * t.b_sp;
        for _ in first..t.k {
            let av = load_a(a);
            for (column, acc_j) in columns.iter().zip(acc.iter_mut()) {
                let bv = _mm256_broadcast_ss(&*column.offset(b_at));
                for (q, x) in acc_j.iter_mut().enumerate() {
                    *x = _mm256_fmadd_ps(av[q], bv, *x);
                }
            }
            a = a.wrapping_offset(t.a_sp);
            b_at += t.b_sp;
        }
        for (j, acc_j) in acc.iter().enumerate() {
            for (q, &a) in acc_j.iter().enumerate() {
                let v = match t.finish {
                    Finish::Store => a,
                    Finish::Add => _mm256_add_ps(a, load_dst(j, q)),
                };
                let d = t.dst.offset(j as isize * t.d_sj + 8 * q as isize * t.d_si);
                if t.d_si == 1 {
                    if FULL {
                        _mm256_storeu_ps(d, v);
                    } else {
                        _mm256_maskstore_ps(d, masks[q], v);
                    }
                } else {
                    let mut out = [0.0f32; 8];
                    _mm256_storeu_ps(out.as_mut_ptr(), v);
                    for (l, &x) in out.iter().enumerate().take(lanes(q)) {
                        *d.offset(l as isize * t.d_si) = x;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gemm_small;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    /// Whether this machine runs the hand kernels (else every call must decline).
    fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            super::x86::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Values whose sums depend on the order of their roundings (signs and exponents
    /// mixed), with some signed zeros and subnormals; `zeros` draws mostly ±0 and ±1 (to
    /// catch the sign of zero sums).
    fn value(rng: &mut impl Rng, zeros: bool) -> f32 {
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        if zeros {
            return sign * [0.0, 0.0, 0.0, 1.0][rng.random_range(0..4)];
        }
        match rng.random_range(0..24) {
            0 => sign * 0.0,
            1 => sign * 1e-40,
            _ => sign * rng.random_range(1.0f32..2.0) * 2f32.powi(rng.random_range(-12..12)),
        }
    }

    /// (row stride, column stride) of a rows × cols view: row- or column-major, padded,
    /// neither unit, or (for operands) a broadcast; and the buffer length it needs.
    fn layout(
        rng: &mut impl Rng,
        rows: usize,
        cols: usize,
        operand: bool,
    ) -> (isize, isize, usize) {
        let (r, c) = (rows as isize, cols as isize);
        let pad = rng.random_range(1..4i64) as isize;
        let choices = if operand { 7 } else { 5 };
        let (rs, cs) = match rng.random_range(0..choices) {
            0 => (c, 1),
            1 => (1, r),
            2 => (c + pad, 1),
            3 => (1, r + pad),
            4 => (2, 2 * r + pad),
            5 => (0, 1),
            _ => (c, 0),
        };
        (rs, cs, ((r - 1) * rs + (c - 1) * cs + 1) as usize)
    }

    /// One product, by `gemm::gemm` and by `gemm_small` (gemm where it declines), compared
    /// bit for bit over the whole destination buffer (padding included); whether it was
    /// taken.
    #[allow(clippy::too_many_arguments)]
    fn check(
        rng: &mut impl Rng,
        (m, k, n): (usize, usize, usize),
        dst: (isize, isize, usize),
        lhs: (isize, isize, usize),
        rhs: (isize, isize, usize),
        accumulate: bool,
        zeros: bool,
    ) -> bool {
        let a: Vec<f32> = (0..lhs.2).map(|_| value(rng, zeros)).collect();
        let b: Vec<f32> = (0..rhs.2).map(|_| value(rng, zeros)).collect();
        // Not accumulating, the old values must not be read: NaN would show.
        let d: Vec<f32> = (0..dst.2)
            .map(|_| {
                if accumulate {
                    value(rng, zeros)
                } else {
                    f32::NAN
                }
            })
            .collect();
        let (mut expect, mut got) = (d.clone(), d);
        let taken;
        // SAFETY: each view's last element is its buffer's last (`layout`).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                expect.as_mut_ptr(),
                dst.1,
                dst.0,
                accumulate,
                a.as_ptr(),
                lhs.1,
                lhs.0,
                b.as_ptr(),
                rhs.1,
                rhs.0,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
            taken = gemm_small(
                m,
                n,
                k,
                got.as_mut_ptr(),
                dst.1,
                dst.0,
                accumulate,
                a.as_ptr(),
                lhs.1,
                lhs.0,
                b.as_ptr(),
                rhs.1,
                rhs.0,
            );
            if !taken {
                gemm::gemm(
                    m,
                    n,
                    k,
                    got.as_mut_ptr(),
                    dst.1,
                    dst.0,
                    accumulate,
                    a.as_ptr(),
                    lhs.1,
                    lhs.0,
                    b.as_ptr(),
                    rhs.1,
                    rhs.0,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        for (i, (e, g)) in expect.iter().zip(&got).enumerate() {
            assert!(
                e.to_bits() == g.to_bits() || (e.is_nan() && g.is_nan()),
                "{m}×{k}·{k}×{n}, dst {dst:?}, lhs {lhs:?}, rhs {rhs:?}, accumulate \
                 {accumulate}, taken {taken}: element {i} is {g:e} ({:#x}), gemm {e:e} ({:#x})",
                g.to_bits(),
                e.to_bits()
            );
        }
        assert!(available() || !taken, "taken without AVX2 and FMA");
        taken
    }

    /// Random shapes (every gemm case: k ≤ 2, the gemv shapes, the micro-kernels, and
    /// shapes past the hand kernels' limits), random strides, both modes: gemm's bits.
    #[test]
    fn random_products_have_gemms_bits() {
        let mut rng = Pcg64Mcg::seed_from_u64(20261126);
        let sizes = [
            1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 300,
        ];
        let depths = [
            1, 2, 3, 4, 7, 8, 9, 16, 31, 32, 33, 63, 64, 65, 127, 128, 200, 512, 513, 1025, 2049,
        ];
        let (mut taken, mut cases) = (0, 0);
        for case in 0..20000 {
            let m = sizes[rng.random_range(0..sizes.len())];
            let n = sizes[rng.random_range(0..sizes.len())];
            let k = depths[rng.random_range(0..depths.len())];
            let dst = layout(&mut rng, m, n, false);
            let lhs = layout(&mut rng, m, k, true);
            let rhs = layout(&mut rng, k, n, true);
            let accumulate = rng.random();
            let zeros = case % 5 == 0;
            taken += check(&mut rng, (m, k, n), dst, lhs, rhs, accumulate, zeros) as usize;
            cases += 1;
        }
        if available() {
            assert!(taken * 2 > cases, "only {taken} of {cases} products taken");
        }
    }

    /// The products of a SAC update and of acting at classic-control size (obs 3, action 1,
    /// hidden 64, batch 32; batch 1 when acting), with the strides `dense_op::product`
    /// passes: all taken (on AVX2 + FMA) and gemm's bits. At MuJoCo size (256 wide, batch
    /// 256) the micro-kernel shapes are left to gemm.
    #[test]
    fn sac_products_are_taken_with_gemms_bits() {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        // (inputs, outputs, actor's [out, in] weight)
        let layers = [
            (3, 64, true),
            (64, 64, true),
            (64, 2, true),
            (4, 64, false),
            (64, 64, false),
            (64, 1, false),
        ];
        let view = |rows: usize, cols: usize, (rs, cs): (isize, isize)| {
            (
                rs,
                cs,
                (rows as isize - 1) as usize * rs as usize + (cols - 1) * cs as usize + 1,
            )
        };
        for hidden_scale in [1, 4] {
            let batch = if hidden_scale == 1 { 32 } else { 256 };
            for &(inputs, outputs, actor) in &layers {
                let (i, o) = (
                    if inputs == 64 {
                        64 * hidden_scale
                    } else {
                        inputs
                    },
                    if outputs == 64 {
                        64 * hidden_scale
                    } else {
                        outputs
                    },
                );
                // The weight seen as [in, out].
                let w = if actor {
                    (1, i as isize)
                } else {
                    (o as isize, 1)
                };
                for accumulate in [false, true] {
                    for rows in [batch, 1] {
                        // forward: x [rows, in] · W
                        let f = check(
                            &mut rng,
                            (rows, i, o),
                            view(rows, o, (o as isize, 1)),
                            view(rows, i, (i as isize, 1)),
                            view(i, o, w),
                            accumulate,
                            false,
                        );
                        // ∂x = g [rows, out] · Wᵀ
                        let gx = check(
                            &mut rng,
                            (rows, o, i),
                            view(rows, i, (i as isize, 1)),
                            view(rows, o, (o as isize, 1)),
                            view(o, i, (w.1, w.0)),
                            accumulate,
                            false,
                        );
                        // ∂W = xᵀ · g, in the weight's own layout
                        let gw_dst = if actor {
                            (1, i as isize)
                        } else {
                            (o as isize, 1)
                        };
                        let gw = check(
                            &mut rng,
                            (i, rows, o),
                            view(i, o, gw_dst),
                            view(i, rows, (1, i as isize)),
                            view(rows, o, (o as isize, 1)),
                            accumulate,
                            false,
                        );
                        if available() && hidden_scale == 1 {
                            assert!(
                                f && gx && gw,
                                "layer {inputs}→{outputs} rows {rows}: taken {f} {gx} {gw}"
                            );
                        }
                        if hidden_scale == 4 && inputs == 64 && outputs == 64 && rows > 1 {
                            assert!(!f && !gx && !gw, "a 256-wide product taken");
                        }
                    }
                }
            }
        }
    }
}
