//! Host-side checks of a shipped policy, for your own tests (feature `std`).
//!
//! - [`ks_test`] / [`ks_test_samples`]: do the sampled (or logged) actions of a 1-D policy at
//!   one observation follow its distribution, atoms on the bounds included? [`ks_test_cdf`]
//!   for any other continuous CDF (e.g. a marginal).
//! - [`chi_square_components`]: are the sampled components distributed as the mixing weights?
//! - [`compare_policies`]: do two policy files act identically?
//! - [`random_policy`]: a random, valid policy file to exercise code paths.
//! - [`quantization_error`]: how far a quantized (version-3) file acts from its `f32` source.
//!
//! The goodness-of-fit checks return a [`FitReport`] with a p-value; a test chooses its
//! significance level and asserts [`FitReport::passes`]. Use a fixed RNG seed so the
//! outcome is reproducible.

use crate::error::ActError;
use crate::format::{write_policy, Header};
use crate::math::Math;
use crate::policy::Policy;
use rand_core::RngCore;
use std::fmt;
use std::vec::Vec;

mod accuracy;
pub use accuracy::{quantization_error, QuantizationReport};

/// Result of a goodness-of-fit test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitReport {
    /// Test statistic (KS distance D, or Pearson's χ²).
    pub statistic: f64,
    /// Probability of a statistic at least this large if the samples fit.
    pub p_value: f64,
    /// Number of samples drawn.
    pub samples: usize,
}

impl FitReport {
    /// Whether the fit is not rejected at `significance` (e.g. 0.01).
    pub fn passes(&self, significance: f64) -> bool {
        self.p_value >= significance
    }
}

/// Why a check could not run or did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckError {
    /// The KS test needs a 1-D action.
    NotOneDimensional {
        /// The policy's action dimension.
        action_dim: usize,
    },
    /// Too few samples for the test's asymptotics (needs at least 100).
    TooFewSamples(usize),
    /// The policy refused the observation.
    Act(ActError),
    /// A sample or a CDF value is not finite, or a sample lies outside the action box.
    NonFinite {
        /// What was bad (`"sample"` or `"CDF value"`).
        what: &'static str,
        /// The offending value.
        value: f64,
    },
    /// The two files have different headers (dimensions, bounds, activation, clamps).
    HeadersDiffer,
    /// Two policies disagree on an observation.
    Mismatch {
        /// Index of the observation.
        obs_index: usize,
        /// What differs (`"mode action"`, `"mode component"`, `"log_prob"`, `"mixing weight"`).
        quantity: &'static str,
        /// Value from the first policy.
        first: f64,
        /// Value from the second policy.
        second: f64,
    },
}

impl From<ActError> for CheckError {
    fn from(e: ActError) -> Self {
        CheckError::Act(e)
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NotOneDimensional { action_dim } => write!(
                f,
                "the KS test needs a 1-D action, the policy has {action_dim}"
            ),
            CheckError::TooFewSamples(n) => write!(f, "{n} samples are too few (need 100)"),
            CheckError::Act(e) => write!(f, "{e}"),
            CheckError::NonFinite { what, value } => {
                write!(f, "{what} {value} is not finite or outside the action box")
            }
            CheckError::HeadersDiffer => write!(f, "the policies' headers differ"),
            CheckError::Mismatch {
                obs_index,
                quantity,
                first,
                second,
            } => write!(
                f,
                "observation {obs_index}: {quantity} differs ({first} vs {second})"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

/// Kolmogorov–Smirnov test of `n` sampled actions at `obs` against the exact distribution
/// of the emitted actions (see [`ks_test_samples`]).
pub fn ks_test<M: Math, R: RngCore + ?Sized, const A: usize, const K: usize, const W: usize>(
    policy: &Policy<'_, M, A, K, W>,
    obs: &[f32],
    n: usize,
    rng: &mut R,
) -> Result<FitReport, CheckError> {
    if policy.action_dim() != 1 {
        return Err(CheckError::NotOneDimensional {
            action_dim: policy.action_dim(),
        });
    }
    if n < 100 {
        return Err(CheckError::TooFewSamples(n));
    }
    let mut samples = Vec::with_capacity(n);
    let mut action = [0.0f32];
    for _ in 0..n {
        policy.sample(obs, rng, &mut action)?;
        samples.extend_from_slice(&action);
    }
    ks_test_samples(policy, obs, &samples)
}

/// Kolmogorov–Smirnov test of given 1-D `samples` (e.g. actions logged on a device) against
/// the distribution of the actions the policy emits at `obs`.
///
/// That distribution is computed in pre-squash space, where the mixture's CDF is
/// Σ_k w_k Φ((u − μ_k)/σ_k): P(action ≤ a) is that CDF at the largest `f32` u the policy
/// maps to an action ≤ a (found by bisection through the policy's own f32 squash and clip).
/// This accounts for the mass that lands exactly on a bound (f32 tanh saturates beyond
/// |u| ≈ 9; an unsquashed draw is clipped to the box) and for the coarse steps of f32 actions
/// near a saturated bound. Such atoms make the distribution discontinuous, so each sample
/// is mapped to a uniform by the randomised probability integral transform,
/// P(A < a) + v · P(A = a) with v from a fixed internal seed, and the KS statistic is that
/// of these uniforms: under a correct sampler the p-value is uniform on [0, 1] (for a
/// continuous distribution this is the ordinary KS test).
pub fn ks_test_samples<M: Math, const A: usize, const K: usize, const W: usize>(
    policy: &Policy<'_, M, A, K, W>,
    obs: &[f32],
    samples: &[f32],
) -> Result<FitReport, CheckError> {
    if policy.action_dim() != 1 {
        return Err(CheckError::NotOneDimensional {
            action_dim: policy.action_dim(),
        });
    }
    if samples.len() < 100 {
        return Err(CheckError::TooFewSamples(samples.len()));
    }
    let low = policy.header().action_low.get(0).unwrap_or(-1.0);
    let high = policy.header().action_high.get(0).unwrap_or(1.0);
    if let Some(&bad) = samples.iter().find(|&&a| !(a >= low && a <= high)) {
        return Err(CheckError::NonFinite {
            what: "sample",
            value: f64::from(bad),
        });
    }
    let mixture = PreSquashMixture::at(policy, obs)?;
    let mut v = SplitMix64(0x006b_7370_6974);
    let mut uniforms = Vec::with_capacity(samples.len());
    for &a in samples {
        let (below, at_most) = if policy.header().squash {
            let below = mixture.cdf_where(|u| Ok(policy.emit_first(u)? < a))?;
            let at_most = mixture.cdf_where(|u| Ok(policy.emit_first(u)? <= a))?;
            (below, at_most)
        } else {
            // The draw u is clipped: mass P(u ≤ low) sits on low, P(u ≥ high) on high.
            let below = if a <= low {
                0.0
            } else {
                mixture.cdf(f64::from(a))
            };
            let at_most = if a >= high {
                1.0
            } else {
                mixture.cdf(f64::from(a))
            };
            (below, at_most)
        };
        let spread = (v.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        uniforms.push(below + spread * (at_most - below).max(0.0));
    }
    ks_test_cdf(&uniforms, |x| x.clamp(0.0, 1.0))
}

/// The Gaussian mixture over the pre-squash action u at one observation, in f64.
struct PreSquashMixture {
    /// (weight, mean, std) per component; weights normalised to sum to 1.
    components: Vec<(f64, f64, f64)>,
}

impl PreSquashMixture {
    fn at<M: Math, const A: usize, const K: usize, const W: usize>(
        policy: &Policy<'_, M, A, K, W>,
        obs: &[f32],
    ) -> Result<Self, CheckError> {
        let heads = policy.heads_at(obs)?;
        let k = policy.components();
        let total: f64 = heads.w.iter().take(k).map(|&w| f64::from(w)).sum();
        let components = (0..k)
            .map(|j| {
                let w = f64::from(heads.w.get(j).copied().unwrap_or(0.0)) / total;
                let mean = f64::from(heads.mean().get(j).copied().unwrap_or(0.0));
                // The sampler's own σ = exp(log σ), computed in f32 as it does.
                let std = f64::from(M::exp(heads.log_std().get(j).copied().unwrap_or(0.0)));
                (w, mean, std)
            })
            .collect();
        Ok(PreSquashMixture { components })
    }

    /// P(u ≤ x).
    fn cdf(&self, x: f64) -> f64 {
        self.components
            .iter()
            .map(|&(w, m, s)| w * 0.5 * puruspe::erfc(-(x - m) / (s * std::f64::consts::SQRT_2)))
            .sum::<f64>()
            .clamp(0.0, 1.0)
    }

    /// P(holds(u)) for a predicate that holds for every f32 u up to some point and for
    /// none beyond (the policy's squash is monotone): the CDF at the boundary, found by
    /// bisection over the f32 values in order, u treated as continuous within one f32 step.
    fn cdf_where(&self, holds: impl Fn(f32) -> Result<bool, ActError>) -> Result<f64, CheckError> {
        let (mut yes, mut no) = (f32_key(-f32::MAX), f32_key(f32::MAX));
        if !holds(-f32::MAX)? {
            return Ok(0.0);
        }
        if holds(f32::MAX)? {
            return Ok(1.0);
        }
        while no - yes > 1 {
            let mid = yes + (no - yes) / 2;
            if holds(f32_from_key(mid))? {
                yes = mid;
            } else {
                no = mid;
            }
        }
        let boundary = 0.5 * (f64::from(f32_from_key(yes)) + f64::from(f32_from_key(no)));
        Ok(self.cdf(boundary))
    }
}

/// A key that orders finite f32 values as numbers (−0 and +0 share 0).
fn f32_key(x: f32) -> i64 {
    let bits = i64::from(x.to_bits() & 0x7fff_ffff);
    if x.is_sign_negative() {
        -bits
    } else {
        bits
    }
}

fn f32_from_key(key: i64) -> f32 {
    let magnitude = key.unsigned_abs() as u32;
    if key < 0 {
        f32::from_bits(magnitude | 0x8000_0000)
    } else {
        f32::from_bits(magnitude)
    }
}

/// Kolmogorov–Smirnov test of `samples` against any continuous CDF, e.g. a marginal of a
/// multi-dimensional policy. p-value from the Kolmogorov distribution with Stephens'
/// small-sample correction.
pub fn ks_test_cdf(samples: &[f64], cdf: impl Fn(f64) -> f64) -> Result<FitReport, CheckError> {
    let n = samples.len();
    if n < 100 {
        return Err(CheckError::TooFewSamples(n));
    }
    if let Some(&bad) = samples.iter().find(|a| !a.is_finite()) {
        return Err(CheckError::NonFinite {
            what: "sample",
            value: bad,
        });
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let nf = n as f64;
    let mut statistic: f64 = 0.0;
    for (i, &a) in sorted.iter().enumerate() {
        let f = cdf(a);
        if !f.is_finite() {
            return Err(CheckError::NonFinite {
                what: "CDF value",
                value: f,
            });
        }
        let gap = (f - i as f64 / nf)
            .abs()
            .max(((i + 1) as f64 / nf - f).abs());
        statistic = statistic.max(gap);
    }
    Ok(FitReport {
        statistic,
        p_value: kolmogorov_p_value(statistic, n),
        samples: n,
    })
}

/// P(D_n ≥ d) from the Kolmogorov distribution with Stephens' small-sample correction.
fn kolmogorov_p_value(d: f64, n: usize) -> f64 {
    let sqrt_n = (n as f64).sqrt();
    let lambda = (sqrt_n + 0.12 + 0.11 / sqrt_n) * d;
    if lambda < 0.2 {
        return 1.0;
    }
    let series: f64 = (1..=100)
        .map(|k| {
            let k = f64::from(k);
            let sign = if k as u32 % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    (2.0 * series).clamp(0.0, 1.0)
}

/// Pearson χ² test of `n` sampled component indices at `obs` against the mixing weights
/// (K − 1 degrees of freedom).
pub fn chi_square_components<
    M: Math,
    R: RngCore + ?Sized,
    const A: usize,
    const K: usize,
    const W: usize,
>(
    policy: &Policy<'_, M, A, K, W>,
    obs: &[f32],
    n: usize,
    rng: &mut R,
) -> Result<FitReport, CheckError> {
    if n < 100 {
        return Err(CheckError::TooFewSamples(n));
    }
    let k = policy.components();
    let mut weights = std::vec![0.0f32; k];
    policy.mixing_weights(obs, &mut weights)?;
    let mut counts = std::vec![0usize; k];
    let mut action = std::vec![0.0f32; policy.action_dim()];
    for _ in 0..n {
        let sample = policy.sample(obs, rng, &mut action)?;
        if let Some(c) = counts.get_mut(sample.component) {
            *c += 1;
        }
    }
    Ok(chi_square(&counts, &weights))
}

/// Pearson's χ² of observed `counts` against probabilities `weights`.
pub fn chi_square(counts: &[usize], weights: &[f32]) -> FitReport {
    let n: usize = counts.iter().sum();
    let statistic: f64 = counts
        .iter()
        .zip(weights)
        .filter(|(_, &w)| w > 0.0)
        .map(|(&c, &w)| {
            let expected = n as f64 * f64::from(w);
            (c as f64 - expected).powi(2) / expected
        })
        .sum();
    let dof = weights
        .iter()
        .filter(|&&w| w > 0.0)
        .count()
        .saturating_sub(1);
    let p_value = if dof == 0 {
        1.0
    } else {
        puruspe::gammq(dof as f64 / 2.0, statistic / 2.0)
    };
    FitReport {
        statistic,
        p_value,
        samples: n,
    }
}

/// Checks that two policy files act identically on `observations`: equal headers; the same
/// deterministic component; and deterministic actions, mixing weights and log-probs equal
/// within `rel_tol` (relative to max(1, |value|)). Log-probs are compared at the
/// deterministic action and at [`COMPARED_SAMPLES`] actions sampled from `first` (fixed
/// seed), so components that never win the mode are compared too.
pub fn compare_policies<M: Math, const A: usize, const K: usize, const W: usize>(
    first: &Policy<'_, M, A, K, W>,
    second: &Policy<'_, M, A, K, W>,
    observations: &[Vec<f32>],
    rel_tol: f64,
) -> Result<(), CheckError> {
    if first.header() != second.header() {
        return Err(CheckError::HeadersDiffer);
    }
    let (a, k) = (first.action_dim(), first.components());
    let close = |x: f32, y: f32| {
        let (x, y) = (f64::from(x), f64::from(y));
        (x - y).abs() <= rel_tol * x.abs().max(y.abs()).max(1.0)
    };
    let mut rng = SplitMix64(0x5eed);
    for (obs_index, obs) in observations.iter().enumerate() {
        let mismatch = |quantity, first: f32, second: f32| CheckError::Mismatch {
            obs_index,
            quantity,
            first: f64::from(first),
            second: f64::from(second),
        };
        let (mut a1, mut a2) = (std::vec![0.0; a], std::vec![0.0; a]);
        let c1 = first.mode(obs, &mut a1)?;
        let c2 = second.mode(obs, &mut a2)?;
        if c1 != c2 {
            return Err(mismatch("mode component", c1 as f32, c2 as f32));
        }
        for (&x, &y) in a1.iter().zip(&a2) {
            if !close(x, y) {
                return Err(mismatch("mode action", x, y));
            }
        }
        let (mut w1, mut w2) = (std::vec![0.0; k], std::vec![0.0; k]);
        first.mixing_weights(obs, &mut w1)?;
        second.mixing_weights(obs, &mut w2)?;
        for (&x, &y) in w1.iter().zip(&w2) {
            if !close(x, y) {
                return Err(mismatch("mixing weight", x, y));
            }
        }
        for i in 0..=COMPARED_SAMPLES {
            if i > 0 {
                first.sample(obs, &mut rng, &mut a1)?;
            }
            let (l1, l2) = (first.log_prob(obs, &a1)?, second.log_prob(obs, &a1)?);
            if !(close(l1, l2) || l1 == l2) {
                return Err(mismatch("log_prob", l1, l2));
            }
        }
    }
    Ok(())
}

/// Actions per observation at which [`compare_policies`] compares log-probs, besides the mode.
pub const COMPARED_SAMPLES: usize = 16;

/// SplitMix64: a small fixed generator for the helpers here, independent of the caller's RNG.
struct SplitMix64(u64);

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.iter_mut().zip(bytes).for_each(|(d, b)| *d = b);
        }
    }
}

/// A valid policy file with weights drawn uniformly from ±`scale`/√fan-in and biases from
/// ±`scale`, reproducible from `seed`.
pub fn random_policy(header: &Header, seed: u64, scale: f32) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    let mut weights = std::vec![0.0f32; header.weight_count()];
    for block in header.blocks() {
        let fan_in = (block.inputs as f32).sqrt();
        for i in 0..block.inputs {
            for o in 0..block.outputs {
                if let Some(w) = weights.get_mut(block.weight_index(i, o)) {
                    *w = symmetric_uniform(&mut rng) * scale / fan_in;
                }
            }
        }
        for o in 0..block.outputs {
            if let Some(b) = weights.get_mut(block.bias_index(o)) {
                *b = symmetric_uniform(&mut rng) * scale;
            }
        }
    }
    // A validated header and finite weights always encode.
    write_policy(header, &weights).unwrap_or_default()
}

/// Uniform on (−1, 1) with 24 random bits.
fn symmetric_uniform(rng: &mut SplitMix64) -> f32 {
    ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// How far the `fast-math` build strays from libm, measured by [`fast_math_error`].
#[cfg(feature = "fast-math")]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FastMathError {
    /// Max |Δ| of deterministic actions.
    pub mode_action: f32,
    /// Max |Δ| of sampled actions from the same RNG stream, when both chose the same component.
    pub sampled_action: f32,
    /// Draws (of `draws`) whose component differed.
    pub component_mismatches: usize,
    /// Number of draws compared.
    pub draws: usize,
    /// Max |Δ| of mixing weights.
    pub mixing_weight: f32,
    /// Max |Δ log π| / max(1, |log π|) of the same action.
    pub log_prob_relative: f32,
}

/// Evaluates random policies (shapes from 3-64×64-1-5 to 17-256×256-6-5, actions in
/// [−2, 2]) on 2000 random observations each with both [`crate::math::Libm`] and
/// [`crate::math::MicroMath`], compiled into the same binary, and reports the largest gaps.
#[cfg(feature = "fast-math")]
pub fn fast_math_error() -> FastMathError {
    use crate::format::Activation;
    use crate::math::{Libm, MicroMath};
    let mut e = FastMathError::default();
    let mut state = SplitMix64(3);
    let shapes = [
        (3, 64, 1, 5, Activation::Relu),
        (17, 256, 6, 5, Activation::Relu),
        (4, 32, 2, 3, Activation::Tanh),
        (6, 64, 1, 1, Activation::Tanh),
    ];
    for (seed, (obs_dim, hidden, action, k, activation)) in (0u64..).zip(shapes) {
        let (low, high) = (std::vec![-2.0; action], std::vec![2.0; action]);
        let header = Header::new(
            obs_dim,
            &[hidden, hidden],
            action,
            k,
            activation,
            true,
            (-5.0, 2.0),
            &low,
            &high,
        );
        let Ok(header) = header else { continue };
        let bytes = random_policy(&header, seed, 1.0);
        let (Ok(accurate), Ok(fast)) = (
            Policy::<Libm>::load(&bytes),
            Policy::<MicroMath>::load(&bytes),
        ) else {
            continue;
        };
        let (mut a1, mut a2) = (std::vec![0.0; action], std::vec![0.0; action]);
        let (mut w1, mut w2) = (std::vec![0.0; k], std::vec![0.0; k]);
        let max_gap = |acc: f32, x: &[f32], y: &[f32]| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(acc, f32::max)
        };
        for draw in 0..2000u64 {
            let obs: Vec<f32> = (0..obs_dim)
                .map(|_| 2.0 * symmetric_uniform(&mut state))
                .collect();
            let ok = accurate.mode(&obs, &mut a1).is_ok() && fast.mode(&obs, &mut a2).is_ok();
            if ok {
                e.mode_action = max_gap(e.mode_action, &a1, &a2);
            }
            if accurate.mixing_weights(&obs, &mut w1).is_ok()
                && fast.mixing_weights(&obs, &mut w2).is_ok()
            {
                e.mixing_weight = max_gap(e.mixing_weight, &w1, &w2);
            }
            let mut rng1 = SplitMix64(draw);
            let mut rng2 = SplitMix64(draw);
            if let (Ok(s1), Ok(s2)) = (
                accurate.sample(&obs, &mut rng1, &mut a1),
                fast.sample(&obs, &mut rng2, &mut a2),
            ) {
                e.draws += 1;
                if s1.component == s2.component {
                    e.sampled_action = max_gap(e.sampled_action, &a1, &a2);
                } else {
                    e.component_mismatches += 1;
                }
            }
            if let (Ok(l1), Ok(l2)) = (accurate.log_prob(&obs, &a1), fast.log_prob(&obs, &a1)) {
                e.log_prob_relative = e.log_prob_relative.max((l1 - l2).abs() / l1.abs().max(1.0));
            }
        }
    }
    e
}
