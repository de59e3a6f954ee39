//! Random variates from any `rand_core` generator. Deterministic given the generator's
//! stream, so a seed reproduces a run exactly on host and device.

use crate::math::Math;
use rand_core::RngCore;

/// Uniform on [0, 1) with 24 random bits (every value exactly representable in f32).
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

/// Index drawn with probabilities `w` (which sum to 1 up to rounding).
pub(crate) fn categorical<R: RngCore + ?Sized>(rng: &mut R, w: &[f32]) -> usize {
    let u = uniform(rng);
    let mut cumulative = 0.0;
    let mut last_possible = 0;
    for (k, &w) in w.iter().enumerate() {
        if w > 0.0 {
            last_possible = k;
        }
        cumulative += w;
        if u < cumulative {
            return k;
        }
    }
    // Rounding left the cumulative sum just below u: take the last possible component.
    last_possible
}
