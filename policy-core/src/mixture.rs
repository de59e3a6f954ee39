//! The mixture log-density and the tanh change of variables (DESIGN.md §3).
//!
//! log π(a|s) = logsumexp_k [ log w_k + Σ_d log N(u_d; μ_kd, σ_kd) ]
//!              − Σ_d [ log scale_d + 2(log 2 − u_d − softplus(−2u_d)) ]
//! with u the pre-squash action. The second line is log|da/du| for a = scale·tanh(u) + bias,
//! = −Σ_d log scale_d + 2 Σ_d ln cosh u_d, computed through [`log_cosh_sum`] so that it
//! stays finite for every finite u.

use crate::math::{max, Math};
use crate::mlp::Heads;

const HALF_LN_TAU: f32 = 0.918_938_5; // ½ ln(2π)
const LN_2: f32 = core::f32::consts::LN_2;

/// log of the Gaussian-mixture density at the pre-squash action `u`.
pub(crate) fn log_density<M: Math, const A: usize, const K: usize>(
    heads: &Heads<A, K>,
    components: usize,
    u: &[f32],
) -> f32 {
    let a = u.len().max(1);
    let mut terms = [f32::NEG_INFINITY; K];
    let per_component = heads
        .mean()
        .chunks_exact(a)
        .zip(heads.log_std().chunks_exact(a))
        .zip(&heads.log_w)
        .take(components);
    for (term, ((mean, log_std), &log_w)) in terms.iter_mut().zip(per_component) {
        let mut log_n = 0.0;
        for ((&u, &m), &ls) in u.iter().zip(mean).zip(log_std) {
            let z = (u - m) * M::exp(-ls);
            log_n -= 0.5 * z * z + ls + HALF_LN_TAU;
        }
        *term = log_w + log_n;
    }
    log_sum_exp::<M>(terms.get(..components).unwrap_or(&[]))
}

/// Σ_d ln cosh(u_d) = −½ log |det d tanh(u)/du|, as |u| + ln(1 + e^{−2|u|}) − ln 2: finite
/// for every finite u (never computes 2|u|, which overflows past 1.7e38).
pub(crate) fn log_cosh_sum<M: Math>(u: &[f32]) -> f32 {
    u.iter()
        .map(|&u| {
            let a = u.abs();
            a + M::ln_1p(M::exp(-2.0 * a)) - LN_2
        })
        .sum()
}

fn log_sum_exp<M: Math>(x: &[f32]) -> f32 {
    if x.iter().any(|v| v.is_nan()) {
        return f32::NAN; // f32::max would drop it; let the caller see it
    }
    let largest = x.iter().copied().fold(f32::NEG_INFINITY, max);
    if largest == f32::NEG_INFINITY {
        return largest;
    }
    largest + M::ln(x.iter().map(|&v| M::exp(v - largest)).sum())
}
