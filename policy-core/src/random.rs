//! Random variates from any `rand_core` generator. Deterministic given the generator's
//! stream, so a seed reproduces a run exactly on host and device.

use crate::math::Math;
use rand_core::RngCore;

/// Uniform on [0, 1) with 24 random bits (every value exactly representable in f32); used
/// by the normal sampler (the component draw works in fixed point, see [`categorical`]).
pub(crate) fn uniform<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Most pairs the polar method tries before giving up (each is accepted with probability
/// π/4, so all of them fail with probability 0.215^32 ≈ 4e-22).
const MAX_POLAR_TRIES: usize = 32;

/// Fills `out` with standard normals by Marsaglia's polar method, two per accepted pair.
///
/// The polar method needs only `ln` and `sqrt`. Box–Muller would need `sin`/`cos`, whose
/// libm versions carry a large-argument reduction with a panic path, which firmware must
/// not link. The loop is bounded; in the (never observed) case that every try is rejected
/// the pair is 0.
pub(crate) fn standard_normals<M: Math, R: RngCore + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for pair in out.chunks_mut(2) {
        let mut z = [0.0f32; 2];
        for _ in 0..MAX_POLAR_TRIES {
            let x = 2.0 * uniform(rng) - 1.0;
            let y = 2.0 * uniform(rng) - 1.0;
            let s = x * x + y * y;
            if s > 0.0 && s < 1.0 {
                let factor = M::sqrt(-2.0 * M::ln(s) / s);
                z = [x * factor, y * factor];
                break;
            }
        }
        pair.iter_mut().zip(z).for_each(|(p, z)| *p = z);
    }
}

/// Fixed-point resolution of the component draw: weights are truncated to multiples of
/// 2^-32.
const FIXED_ONE: f32 = 4_294_967_296.0;

/// ⌊w · 2^32⌋: exact (scaling by a power of two, then truncation); saturates at 1, and
/// NaN or negative weights give 0. One `vcvt` on a Cortex-M4F.
fn fixed_weight(w: f32) -> u64 {
    u64::from((w * FIXED_ONE) as u32)
}

/// Index drawn with probabilities proportional to `w`, resolved in fixed point so that
/// tiny weights get their due and no more.
///
/// Each weight becomes f_k = ⌊w_k · 2^32⌋ and the draw is the k with
/// F_{k−1} ≤ t < F_k, where F are the cumulative sums (u64, total T) and
/// t = ⌊r · T / 2^64⌋ for a 64-bit uniform r. Then P(k) = f_k / T to within 2^-64, so with
/// weights summing to 1 every component is drawn with probability within
/// 2^-32 · max(1, K · w_k) (< 2e-9 for K ≤ 8) of its weight, and a weight below
/// 2^-32 ≈ 2.3e-10 is never drawn. (A float comparison of a 24-bit uniform drew a
/// component of weight 1e-35 with probability 2^-24.) Costs one 64-bit draw, K
/// conversions and integer additions, and one 64×64-bit multiply.
pub(crate) fn categorical<R: RngCore + ?Sized>(rng: &mut R, w: &[f32]) -> usize {
    let total: u64 = w.iter().map(|&w| fixed_weight(w)).sum();
    let t = ((u128::from(rng.next_u64()) * u128::from(total)) >> 64) as u64;
    let mut cumulative = 0u64;
    for (k, &w) in w.iter().enumerate() {
        cumulative += fixed_weight(w);
        if t < cumulative {
            return k;
        }
    }
    // Only when every weight is below 2^-32 (T = 0), which softmax weights never are.
    0
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// The exact probability of each index: the r in [0, 2^64) with
    /// F_{k−1} ≤ ⌊r T / 2^64⌋ < F_k are those in [⌈F_{k−1} 2^64 / T⌉, ⌈F_k 2^64 / T⌉).
    fn exact_probabilities(w: &[f32]) -> std::vec::Vec<f64> {
        let total: u128 = w.iter().map(|&w| u128::from(fixed_weight(w))).sum();
        let first_r = |f: u128| (f << 64).div_ceil(total);
        let mut cumulative = 0u128;
        w.iter()
            .map(|&w| {
                let start = first_r(cumulative);
                cumulative += u128::from(fixed_weight(w));
                (first_r(cumulative) - start) as f64 / 2f64.powi(64)
            })
            .collect()
    }

    #[test]
    fn every_component_is_drawn_within_the_stated_bound_of_its_weight() {
        let cases: [&[f32]; 6] = [
            &[1e-35, 1.0],
            &[1.0, 1e-35],
            &[0.5, 1e-12, 0.5],
            &[0.3, 0.2, 1e-9, 0.1, 0.4, 3e-10, 2e-10],
            &[0.125; 8],
            &[0.999_999_9, 1e-7, 1e-30, 0.0],
        ];
        for w in cases {
            let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
            let k = w.len() as f64;
            for (&wk, p) in w.iter().zip(exact_probabilities(w)) {
                let want = f64::from(wk) / sum;
                let bound = 2f64.powi(-32) * (k * want).max(1.0);
                assert!((p - want).abs() <= bound, "{w:?}: {p} for weight {wk}");
                if f64::from(wk) < 2f64.powi(-32) {
                    assert_eq!(p, 0.0, "{w:?}");
                }
            }
        }
    }

    #[test]
    fn the_draw_follows_the_fixed_point_intervals() {
        struct Word(u64);
        impl RngCore for Word {
            fn next_u32(&mut self) -> u32 {
                self.0 as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0
            }
            fn fill_bytes(&mut self, _: &mut [u8]) {}
        }
        let w = [0.25f32, 1e-35, 0.75];
        assert_eq!(categorical(&mut Word(0), &w), 0);
        assert_eq!(categorical(&mut Word((1 << 62) - 1), &w), 0);
        assert_eq!(categorical(&mut Word(1 << 62), &w), 2);
        assert_eq!(categorical(&mut Word(u64::MAX), &w), 2);
        assert_eq!(categorical(&mut Word(0), &[0.0, 0.0]), 0);
    }
}
