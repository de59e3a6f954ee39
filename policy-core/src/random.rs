//! Random variates from any `rand_core` generator, with a fixed number of draws each
//! (no rejection loops), so a seed reproduces a run exactly on host and device.

use crate::math::Math;
use rand_core::RngCore;

/// Uniform on [0, 1) with 24 random bits (every value exactly representable in f32).
pub(crate) fn uniform<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Fills `out` with standard normals by the Box–Muller transform, two per pair of draws.
/// With 24-bit uniforms |z| ≤ 5.77: the truncated tail has probability below 1e-8.
pub(crate) fn standard_normals<M: Math, R: RngCore + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for pair in out.chunks_mut(2) {
        let u1 = 1.0 - uniform(rng); // (0, 1], so ln is finite
        let u2 = uniform(rng);
        let radius = M::sqrt(-2.0 * M::ln(u1));
        let (sin, cos) = M::sin_cos(core::f32::consts::TAU * u2);
        let mut z = [radius * cos, radius * sin].into_iter();
        pair.iter_mut().for_each(|p| *p = z.next().unwrap_or(0.0));
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
