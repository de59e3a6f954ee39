//! How far a quantized policy is from its `f32` source, at observations you choose (e.g.
//! states the `f32` policy visits): [`quantization_error`].

use super::{CheckError, SplitMix64};
use crate::math::Math;
use crate::policy::Policy;
use rand_core::RngCore;
use std::vec;
use std::vec::Vec;

/// What [`quantization_error`] measured over its observations.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizationReport {
    /// Observations compared.
    pub states: usize,
    /// Largest |Δ mode action| over observations and action dimensions, relative to the
    /// action range `high − low` of that dimension.
    pub max_mode_error: f64,
    /// Mean over observations of the largest relative |Δ mode action| over dimensions.
    pub mean_mode_error: f64,
    /// Fraction of observations where both policies' mode uses the same component.
    pub mode_agreement: f64,
    /// Mean over observations of the sampled estimate of KL(π_ref ‖ π_q) (nats).
    pub kl_mean: f64,
    /// Largest per-observation sampled KL estimate.
    pub kl_max: f64,
    /// Mean over observations of the closed-form upper bound on the KL: the KL of the joint
    /// (component, pre-squash action), Σ_k w_k [ln(w_k / ŵ_k) + KL(N_k ‖ N̂_k)] ≥ KL of
    /// the mixtures (chain rule). No sampling noise.
    pub kl_bound_mean: f64,
    /// Largest per-observation joint-KL bound.
    pub kl_bound_max: f64,
}

/// The mixture over the pre-squash action u at one observation, in f64:
/// (log weight, means, stds) per component.
struct Mixture {
    components: Vec<(f64, Vec<f64>, Vec<f64>)>,
}

impl Mixture {
    fn at<M: Math, const A: usize, const K: usize, const W: usize>(
        policy: &Policy<'_, M, A, K, W>,
        obs: &[f32],
    ) -> Result<Mixture, CheckError> {
        let heads = policy.heads_at(obs)?;
        let (k, a) = (policy.components(), policy.action_dim());
        let f = |x: Option<&f32>| f64::from(x.copied().unwrap_or(0.0));
        let components = (0..k)
            .map(|j| {
                let means = (0..a).map(|d| f(heads.mean().get(j * a + d))).collect();
                let stds = (0..a)
                    .map(|d| f(heads.log_std().get(j * a + d)).exp())
                    .collect();
                (f(heads.log_w.get(j)), means, stds)
            })
            .collect();
        Ok(Mixture { components })
    }

    fn log_density(&self, u: &[f64]) -> f64 {
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        let terms: Vec<f64> = self
            .components
            .iter()
            .map(|(log_w, mu, sigma)| {
                let log_n: f64 = u
                    .iter()
                    .zip(mu.iter().zip(sigma))
                    .map(|(&x, (&m, &s))| -0.5 * ((x - m) / s).powi(2) - s.ln() - half_ln_2pi)
                    .sum();
                log_w + log_n
            })
            .collect();
        let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if top == f64::NEG_INFINITY {
            return top;
        }
        top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
    }

    fn sample(&self, rng: &mut SplitMix64, u: &mut [f64]) {
        let uniform = |rng: &mut SplitMix64| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut pick = uniform(rng);
        let mut chosen = self.components.len().saturating_sub(1);
        for (j, (log_w, _, _)) in self.components.iter().enumerate() {
            pick -= log_w.exp();
            if pick < 0.0 {
                chosen = j;
                break;
            }
        }
        let Some((_, mu, sigma)) = self.components.get(chosen) else {
            return;
        };
        for ((x, &m), &s) in u.iter_mut().zip(mu).zip(sigma) {
            // Box–Muller; 1 − uniform ∈ (0, 1] keeps the log finite.
            let r = (-2.0 * (1.0 - uniform(rng)).ln()).sqrt();
            let e = r * (2.0 * std::f64::consts::PI * uniform(rng)).cos();
            *x = m + s * e;
        }
    }

    /// Σ_k w_k [ln(w_k / ŵ_k) + Σ_d KL(N(μ, σ) ‖ N(μ̂, σ̂))].
    fn joint_kl(&self, other: &Mixture) -> f64 {
        self.components
            .iter()
            .zip(&other.components)
            .map(|((lw, mu, s), (lw2, mu2, s2))| {
                let gauss: f64 = mu
                    .iter()
                    .zip(s)
                    .zip(mu2.iter().zip(s2))
                    .map(|((&m, &s), (&m2, &s2))| {
                        (s2 / s).ln() + (s * s + (m - m2).powi(2)) / (2.0 * s2 * s2) - 0.5
                    })
                    .sum();
                lw.exp() * (lw - lw2 + gauss)
            })
            .sum()
    }
}

/// Compares a quantized policy with its reference at each of `observations`: mode actions
/// and components, and KL(π_ref ‖ π_q), estimated from `draws` pre-squash draws of the
/// reference per observation (fixed internal seed; the squash is a bijection, so this is the
/// KL of the actions too) and bounded in closed form. The two policies must have the same
/// observation and action lengths, bounds and components (e.g. a file and its quantized
/// version); `CheckError::HeadersDiffer` otherwise.
pub fn quantization_error<M: Math, const A: usize, const K: usize, const W: usize>(
    reference: &Policy<'_, M, A, K, W>,
    quantized: &Policy<'_, M, A, K, W>,
    observations: &[Vec<f32>],
    draws: usize,
) -> Result<QuantizationReport, CheckError> {
    let (h1, h2) = (reference.header(), quantized.header());
    let same = h1.obs_dim == h2.obs_dim
        && h1.action_dim == h2.action_dim
        && h1.components == h2.components
        && h1.squash == h2.squash
        && h1.action_low == h2.action_low
        && h1.action_high == h2.action_high;
    if !same {
        return Err(CheckError::HeadersDiffer);
    }
    let a = reference.action_dim();
    let range: Vec<f64> = h1
        .action_low
        .iter()
        .zip(h1.action_high.iter())
        .map(|(lo, hi)| f64::from(hi) - f64::from(lo))
        .collect();
    let mut rng = SplitMix64(0x9a17);
    let (mut a1, mut a2, mut u) = (vec![0.0f32; a], vec![0.0f32; a], vec![0.0f64; a]);
    let mut report = QuantizationReport {
        states: observations.len(),
        max_mode_error: 0.0,
        mean_mode_error: 0.0,
        mode_agreement: 0.0,
        kl_mean: 0.0,
        kl_max: 0.0,
        kl_bound_mean: 0.0,
        kl_bound_max: 0.0,
    };
    for obs in observations {
        let same_component = reference.mode(obs, &mut a1)? == quantized.mode(obs, &mut a2)?;
        let err = a1
            .iter()
            .zip(&a2)
            .zip(&range)
            .map(|((&x, &y), r)| (f64::from(x) - f64::from(y)).abs() / r)
            .fold(0.0, f64::max);
        report.max_mode_error = report.max_mode_error.max(err);
        report.mean_mode_error += err;
        report.mode_agreement += f64::from(u8::from(same_component));
        let (p, q) = (Mixture::at(reference, obs)?, Mixture::at(quantized, obs)?);
        let mut kl = 0.0;
        for _ in 0..draws {
            p.sample(&mut rng, &mut u);
            kl += p.log_density(&u) - q.log_density(&u);
        }
        let kl = kl / draws.max(1) as f64;
        report.kl_mean += kl;
        report.kl_max = report.kl_max.max(kl);
        let bound = p.joint_kl(&q);
        report.kl_bound_mean += bound;
        report.kl_bound_max = report.kl_bound_max.max(bound);
    }
    let n = observations.len().max(1) as f64;
    report.mean_mode_error /= n;
    report.mode_agreement /= n;
    report.kl_mean /= n;
    report.kl_bound_mean /= n;
    Ok(report)
}
