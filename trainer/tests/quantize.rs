//! Accuracy of the int8 (format version 3) firmware policy against its f32 source, at the
//! states the f32 policy visits, with bounds derived from the files themselves.
//!
//! The policy is the firmware's pendulum SGM K = 5 (`firmware-example/policies/`). It is
//! quantized by policy-core's quantizer, calibrated on the states of 20 episodes of
//! `shaped-pendulum` (seed 0), and compared on the states of 20 other episodes (seed 1).
//!
//! The bounds are a forward error analysis of FORMAT.md §8.4 against the f32 network, per
//! state, from the two files' actual parameters (no tuned constant). With x the exact (f64)
//! trunk of the f32 weights, ŵ and b̂ the dequantized int8 weights and biases, and u = 2⁻²⁴:
//! - every layer: ẑ − z = (b̂ − b + Σ_i x_i (ŵ_io − w_io)) + Σ_i (x̂_i − x_i) ŵ_io. The first
//!   sum is known exactly, signed (the weights' rounding errors cancel in it); the input
//!   errors x̂_i − x_i are a known signed part d_i plus a residual |ρ_i| ≤ r_i, so ẑ − z is
//!   d_z = (first sum) + Σ d_i ŵ_io plus at most Σ r_i |ŵ_io| + 2u|ẑ| (the `f32` rescale);
//! - the activation (ReLU or tanh, both 1-Lipschitz): act(ẑ) − act(z) = (act(z + d_z) −
//!   act(z)) + (at most the residual); the 16-bit code adds half a step plus the `f32`
//!   rounding of `x · (1/s)` (< 4u · 32767 codes, doubled here); observations start with
//!   that code error alone. No code may saturate (checked);
//! - the f32 policy's own rounding: γ_{n+1} Σ |terms| per sum of n products (Higham), plus
//!   its inputs' rounding through |w|;
//! - so every head output of each policy lies in a known interval. The int8 policy must
//!   pick the f32 policy's component wherever the logit intervals separate; where the
//!   components agree the mode action differs by at most scale · the largest tanh gap
//!   between the two mean intervals, plus 1e-6 for the `f32` tanh, scale and offset on both
//!   sides (< 4 ulps of 2 each); the joint KL (an upper bound of the mixture KL) is at most
//!   its value maximised over the intervals (Gaussian KL convex in the log-std error).

use policy_core::format::{self, BlockKind};
use policy_core::int8::Params;
use policy_core::testing::quantization_error;
use policy_core::{quantize, HostPolicy};

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../firmware-example/policies/pendulum-sgm5.mxp"
);
const U: f64 = 1.0 / (1u64 << 24) as f64;
/// Code error from the `f32` rounding of `x · (1/s)` (two roundings of relative u, at most
/// 32767 codes), doubled for margin: in code steps.
const CODE_ROUNDING: f64 = 4.0 * U * 32767.0;

struct Layer {
    /// f32 weights and biases (as f64): w[i][o], b[o].
    w: Vec<Vec<f64>>,
    b: Vec<f64>,
    /// Dequantized int8 weights and biases.
    wq: Vec<Vec<f64>>,
    bq: Vec<f64>,
    /// Scale of this layer's output codes (hidden layers only).
    out_scale: Option<f64>,
}

/// Both networks' layers, from the two files.
fn layers(f32_file: &[u8], q_file: &[u8]) -> (Vec<Layer>, Vec<f64>) {
    let (h, bytes) = format::parse(f32_file).unwrap();
    let weights: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .collect();
    let (hq, qbytes) = format::parse(q_file).unwrap();
    let p = Params::new(&hq, qbytes).unwrap();
    let obs_scale: Vec<f64> = (0..h.obs_dim)
        .map(|i| f64::from(p.obs_scale(i).unwrap()))
        .collect();
    let mut out = vec![];
    for (block, q) in h.blocks().iter().zip(p.blocks.iter()) {
        let in_scale = |i: usize| match block.kind {
            BlockKind::Hidden(0) => obs_scale[i],
            BlockKind::Hidden(l) => f64::from(p.act_scale(l - 1).unwrap()),
            _ => f64::from(p.act_scale(h.hidden.len() - 1).unwrap()),
        };
        let (ni, no) = (block.inputs, block.outputs);
        let m = |o: usize| f64::from(q.scale(o).unwrap());
        out.push(Layer {
            w: (0..ni)
                .map(|i| (0..no).map(|o| weights[block.weight_index(i, o)]).collect())
                .collect(),
            b: (0..no).map(|o| weights[block.bias_index(o)]).collect(),
            wq: (0..ni)
                .map(|i| {
                    (0..no)
                        .map(|o| f64::from(q.weight(i, o).unwrap()) * m(o) / in_scale(i))
                        .collect()
                })
                .collect(),
            bq: (0..no)
                .map(|o| f64::from(q.bias(o).unwrap()) * m(o))
                .collect(),
            out_scale: match block.kind {
                BlockKind::Hidden(l) => Some(f64::from(p.act_scale(l).unwrap())),
                _ => None,
            },
        });
    }
    (out, obs_scale)
}

/// One network output: its exact value z (f64, from the f32 weights), the int8 network's
/// error split into an exactly known signed part `d` and a residual bounded by `r`
/// (int8 − exact ∈ [d − r, d + r]), and the bound `f` on the f32 policy's own rounding
/// (f32 − exact ∈ [−f, f]).
#[derive(Clone, Copy, Debug)]
struct Out {
    z: f64,
    d: f64,
    r: f64,
    f: f64,
}

impl Out {
    /// The interval of the int8 value.
    fn int8(&self) -> (f64, f64) {
        (self.z + self.d - self.r, self.z + self.d + self.r)
    }
    /// The interval of the f32 policy's value.
    fn f32(&self) -> (f64, f64) {
        (self.z - self.f, self.z + self.f)
    }
}

/// The heads (mean, log-std, logits) at `obs`, with their error bounds.
fn heads(layers: &[Layer], obs_scale: &[f64], relu: bool, obs: &[f32]) -> [Vec<Out>; 3] {
    let act = |z: f64| if relu { z.max(0.0) } else { z.tanh() };
    let x0: Vec<f64> = obs.iter().map(|&v| f64::from(v)).collect();
    for (v, s) in x0.iter().zip(obs_scale) {
        assert!(
            v.abs() / s < 32766.0,
            "observation {v} saturates its code: the bound assumes none"
        );
    }
    // Input errors: int8 path (signed part d, residual r) and f32 path (f).
    let mut d = vec![0.0; x0.len()];
    let mut r: Vec<f64> = obs_scale
        .iter()
        .map(|s| s * (0.5 + CODE_ROUNDING))
        .collect();
    let mut f = vec![0.0; x0.len()];
    let mut x = x0;
    let mut heads: Vec<Vec<Out>> = vec![];
    for layer in layers {
        let n = x.len();
        let gamma = (n + 1) as f64 * U / (1.0 - (n + 1) as f64 * U);
        let outs: Vec<Out> = (0..layer.b.len())
            .map(|o| {
                let z = layer.b[o] + (0..n).map(|i| x[i] * layer.w[i][o]).sum::<f64>();
                // ẑ − z = (b̂ − b + Σ x_i (ŵ − w)) + Σ (x̂_i − x_i) ŵ: the first sum and the
                // signed parts of the input errors are known exactly.
                let dz = layer.bq[o] - layer.b[o]
                    + (0..n)
                        .map(|i| x[i] * (layer.wq[i][o] - layer.w[i][o]) + d[i] * layer.wq[i][o])
                        .sum::<f64>();
                let mut rz: f64 = (0..n).map(|i| r[i] * layer.wq[i][o].abs()).sum();
                rz += 2.0 * U * (z.abs() + dz.abs() + rz); // f32(acc) · m
                let magnitude: f64 = layer.b[o].abs()
                    + (0..n)
                        .map(|i| (x[i].abs() + f[i]) * layer.w[i][o].abs())
                        .sum::<f64>();
                let fz =
                    (0..n).map(|i| f[i] * layer.w[i][o].abs()).sum::<f64>() + gamma * magnitude;
                Out {
                    z,
                    d: dz,
                    r: rz,
                    f: fz,
                }
            })
            .collect();
        match layer.out_scale {
            Some(s) => {
                // act(ẑ) − act(z) = (act(z + d) − act(z)) + (act(ẑ) − act(z + d)); the
                // second part is at most r (1-Lipschitz), the code adds half a step.
                x = outs.iter().map(|o| act(o.z)).collect();
                d = outs.iter().map(|o| act(o.z + o.d) - act(o.z)).collect();
                r = outs
                    .iter()
                    .map(|o| o.r + s * (0.5 + CODE_ROUNDING))
                    .collect();
                f = outs.iter().map(|o| o.f).collect();
                for ((x, d), r) in x.iter().zip(&d).zip(&r) {
                    assert!(
                        (x.abs() + d.abs() + r) / s < 32766.0,
                        "a hidden code saturates"
                    );
                }
            }
            None => heads.push(outs),
        }
    }
    heads.try_into().unwrap()
}

/// The largest |tanh(p) − tanh(q)| for p in `a`, q in `b` (tanh is increasing).
fn tanh_gap(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.1.tanh() - b.0.tanh())
        .abs()
        .max((b.1.tanh() - a.0.tanh()).abs())
}

fn logsumexp(z: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = z.clone().fold(f64::NEG_INFINITY, f64::max);
    top + z.map(|v| (v - top).exp()).sum::<f64>().ln()
}

#[test]
fn int8_pendulum_policy_stays_within_its_derived_bounds() {
    let f32_file = std::fs::read(POLICY).unwrap();
    let policy = HostPolicy::load(&f32_file).unwrap();
    let mut env = trainer::envs::make("shaped-pendulum").unwrap();
    let calibration = trainer::visited_states(&policy, &mut env, 20, 0, 1000).unwrap();
    let q_file = quantize::quantize(&f32_file, &calibration.concat()).unwrap();
    let q = HostPolicy::load(&q_file).unwrap();
    let states = trainer::visited_states(&policy, &mut env, 20, 1, 1000).unwrap();
    let (layers, obs_scale) = layers(&f32_file, &q_file);
    let h = policy.header();
    let relu = h.activation == policy_core::format::Activation::Relu;
    let (lo, hi) = (
        f64::from(h.action_low.get(0).unwrap()),
        f64::from(h.action_high.get(0).unwrap()),
    );
    let (scale, range) = ((hi - lo) / 2.0, hi - lo);
    let (ls_min, ls_max) = (f64::from(h.log_std_min), f64::from(h.log_std_max));
    let clamp = |v: f64| v.clamp(ls_min, ls_max);

    let (mut guaranteed, mut agree) = (0usize, 0usize);
    let (mut kl_sum, mut kl_bound_sum, mut mode_sum, mut mode_bound_sum) = (0.0, 0.0, 0.0, 0.0);
    let mut worst = (0.0f64, 0.0f64); // (mode error / bound, joint KL / bound)
    for obs in &states {
        let [mean, log_std, logits] = heads(&layers, &obs_scale, relu, obs);
        let (mut a1, mut a2) = ([0.0f32], [0.0f32]);
        let k1 = policy.mode(obs, &mut a1).unwrap();
        let k2 = q.mode(obs, &mut a2).unwrap();
        // 1. The int8 policy must pick the f32 policy's component wherever its logit
        //    intervals say so (with 8u of the logits' size for the f32 log-softmax).
        let top = logits.iter().map(|l| l.z.abs()).fold(0.0, f64::max) + 2.0;
        let sure = (0..logits.len())
            .filter(|&j| j != k1)
            .all(|j| logits[k1].int8().0 - logits[j].int8().1 > 8.0 * U * top);
        if sure {
            guaranteed += 1;
            assert_eq!(
                k1, k2,
                "components differ at {obs:?} despite a margin beyond the bound"
            );
        }
        // 2. Mode action where the components agree.
        if k1 == k2 {
            agree += 1;
            let bound = scale * tanh_gap(mean[k1].int8(), mean[k1].f32()) + 1e-6;
            let err = (f64::from(a1[0]) - f64::from(a2[0])).abs();
            assert!(
                err <= bound,
                "mode error {err} beyond its bound {bound} at {obs:?}"
            );
            worst.0 = worst.0.max(err / bound);
            mode_sum += err / range;
            mode_bound_sum += bound / range;
        }
        // 3. The joint KL, Σ_k w_k [ln w_k − ln ŵ_k + KL(N_k ‖ N̂_k)], with w the f32 policy's
        //    weights (≈ softmax(z); 1e-5 relative covers their rounding).
        let lse = logsumexp(logits.iter().map(|l| l.z));
        let w: Vec<f64> = logits
            .iter()
            .map(|l| (l.z - lse).exp() * (1.0 + 1e-5))
            .collect();
        let spread = |o: &Out| o.r + o.f;
        let max_spread = logits.iter().map(spread).fold(0.0, f64::max);
        // ln w_k − ln ŵ_k = (lse(ẑ) − lse(z)) − (ẑ_k − z_k), signed part exact.
        let shifted = logsumexp(logits.iter().map(|l| l.z + l.d)) - lse;
        let mut kl_bound = shifted
            + max_spread
            + logits
                .iter()
                .zip(&w)
                .map(|(l, w)| w * (spread(l) - l.d))
                .sum::<f64>();
        for k in 0..logits.len() {
            let (m, l) = (mean[k], log_std[k]);
            // Δμ and δ = ℓ̂ − ℓ (clamped) over their intervals; σ of the f32 policy at its least.
            let dmu = (m.int8().0 - m.f32().1)
                .abs()
                .max((m.int8().1 - m.f32().0).abs());
            let deltas = [
                clamp(l.int8().0) - clamp(l.f32().1),
                clamp(l.int8().1) - clamp(l.f32().0),
            ];
            let sigma = clamp(l.f32().0).exp();
            let g = |delta: f64| {
                delta + (1.0 + (dmu / sigma).powi(2)) * (-2.0 * delta).exp() / 2.0 - 0.5
            };
            kl_bound += w[k] * g(deltas[0]).max(g(deltas[1]));
        }
        let kl = quantization_error(&policy, &q, std::slice::from_ref(obs), 0)
            .unwrap()
            .kl_bound_max;
        assert!(
            kl <= kl_bound,
            "joint KL {kl} beyond its bound {kl_bound} at {obs:?}"
        );
        worst.1 = worst.1.max(kl / kl_bound);
        kl_sum += kl;
        kl_bound_sum += kl_bound;
    }
    let n = states.len() as f64;
    let report = quantization_error(&policy, &q, &states, 256).unwrap();
    eprintln!(
        "{} states: components agree at {agree} ({guaranteed} guaranteed by the margin); \
         mode error/range mean {:.2e} (bound mean {:.2e}, worst error/bound {:.3}); \
         joint KL mean {:.2e} (bound mean {:.2e}, worst KL/bound {:.3}); {report:?}",
        states.len(),
        mode_sum / agree as f64,
        mode_bound_sum / agree as f64,
        worst.0,
        kl_sum / n,
        kl_bound_sum / n,
        worst.1
    );
    // The guarantee must cover nearly every state, or the test checks little.
    assert!(
        guaranteed as f64 >= 0.99 * n,
        "only {guaranteed} of {n} states have a guaranteed component"
    );
}

/// Closed loop: 100 episodes of `shaped-pendulum`, each run by both policies from the same
/// start state with the same sampling seed (paired), so the difference of their returns
/// isolates the quantization. Pairing makes the difference's spread tiny, so even a
/// negligible effect is "significant"; the test is one of equivalence instead: the 95 %
/// confidence interval of the mean difference (normal approximation, n = 100) must lie
/// within ± the standard error of the f32 policy's own 100-episode mean return, i.e. the
/// quantization moves the return by less than evaluating the f32 policy can resolve.
#[test]
fn int8_pendulum_policy_returns_match_f32_in_closed_loop() {
    let f32_file = std::fs::read(POLICY).unwrap();
    let policy = HostPolicy::load(&f32_file).unwrap();
    let mut env = trainer::envs::make("shaped-pendulum").unwrap();
    let calibration = trainer::visited_states(&policy, &mut env, 20, 0, 1000).unwrap();
    let q_file = quantize::quantize(&f32_file, &calibration.concat()).unwrap();
    let q = HostPolicy::load(&q_file).unwrap();
    let n = 100;
    let episode = |p: &HostPolicy, seed: u64, env: &mut trainer::envs::Env| {
        trainer::evaluate(p, env, 1, seed, false).unwrap().returns[0]
    };
    let (mut f32_returns, mut diffs) = (vec![], vec![]);
    for i in 0..n {
        let seed = 1000 + i as u64;
        let (rf, rq) = (
            episode(&policy, seed, &mut env),
            episode(&q, seed, &mut env),
        );
        f32_returns.push(rf);
        diffs.push(rq - rf);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let m = mean(&diffs);
    let sd = (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = 1.96 * sd / (n as f64).sqrt();
    let mf = mean(&f32_returns);
    let se_f32 =
        (f32_returns.iter().map(|r| (r - mf).powi(2)).sum::<f64>() / ((n - 1) * n) as f64).sqrt();
    eprintln!(
        "f32 mean return {mf:.3} (standard error {se_f32:.3}); int8 − f32: mean {m:.4}, \
         95 % CI [{:.4}, {:.4}]",
        m - half,
        m + half
    );
    assert!(
        (m - half).abs() < se_f32 && (m + half).abs() < se_f32,
        "int8 changes the return by {m} ± {half}, beyond the f32 standard error {se_f32}"
    );
}
