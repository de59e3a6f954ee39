//! Exactness at the edges of f32: an operation returns the right answer or
//! `ActError::NonFiniteOutput`, never a plausible wrong one.

mod common;

use common::*;
use policy_core::format::{write_policy, Activation, BlockKind, Header};
use policy_core::{ActError, Policy};
use rand_core::RngCore;

fn pendulum_policy() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware-example/policies/pendulum-sgm5.mxp"
    );
    std::fs::read(path).unwrap()
}

/// log π(a|s) of a squashed 1-D policy at pre-squash `u`, in f64.
fn reference_log_prob(h: &Header, r: &ReferenceHeads, u: f64) -> f64 {
    let w = r.weights();
    let terms: Vec<f64> = (0..w.len())
        .map(|k| {
            let z = (u - r.mean[k]) / r.log_std[k].exp();
            w[k].ln() - 0.5 * z * z - r.log_std[k] - 0.5 * (2.0 * std::f64::consts::PI).ln()
        })
        .collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let density = if top == f64::NEG_INFINITY {
        top
    } else {
        top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
    };
    let scale = f64::from(h.action_high.get(0).unwrap() - h.action_low.get(0).unwrap()) / 2.0;
    let log_sech2 = 2.0 * (2f64.ln() - u.abs() - (-2.0 * u.abs()).exp().ln_1p());
    density - scale.ln() - log_sech2
}

/// Every operation at `obs` either refuses with NonFiniteOutput or agrees with the f64
/// evaluation of the same network (1-D squashed policies).
fn check_against_reference(bytes: &[u8], obs: &[f32]) -> usize {
    let (h, weights) = file_weights(bytes);
    let policy = Policy::from_bytes(bytes).unwrap();
    let obs64: Vec<f64> = obs.iter().map(|&x| f64::from(x)).collect();
    let r = reference_heads(&h, &weights, &obs64);
    let w_ref = r.weights();
    let heaviest = w_ref.iter().copied().fold(0.0, f64::max);
    let (scale, bias) = (
        f64::from(h.action_high.get(0).unwrap() - h.action_low.get(0).unwrap()) / 2.0,
        f64::from(h.action_high.get(0).unwrap() + h.action_low.get(0).unwrap()) / 2.0,
    );
    let refused = |e: ActError, what: &str| {
        assert_eq!(e, ActError::NonFiniteOutput, "{what} at {obs:?}");
        1
    };
    let mut refusals = 0;

    let mut w = vec![0.0f32; h.components];
    match policy.mixing_weights(obs, &mut w) {
        Ok(()) => {
            for (k, (&got, &want)) in w.iter().zip(&w_ref).enumerate() {
                assert!(
                    (f64::from(got) - want).abs() <= 1e-3,
                    "weight {k} at {obs:?}: {w:?}, f64 gives {w_ref:?}"
                );
            }
        }
        Err(e) => refusals += refused(e, "mixing_weights"),
    }
    let mut a = [0.0f32];
    match policy.mode(obs, &mut a) {
        Ok(k) => {
            assert!(
                w_ref[k] >= heaviest - 1e-3,
                "mode component {k} at {obs:?}: {w_ref:?}"
            );
            let want = scale * r.mean[k].tanh() + bias;
            assert!(
                (f64::from(a[0]) - want).abs() <= 1e-3,
                "mode {a:?} at {obs:?}, f64 gives {want}"
            );
        }
        Err(e) => refusals += refused(e, "mode"),
    }
    let mut rng = rng(5);
    match policy.sample(obs, &mut rng, &mut a) {
        Ok(s) => assert!(
            w_ref[s.component] > 1e-6,
            "sampled component {} of weight {} at {obs:?}",
            s.component,
            w_ref[s.component]
        ),
        Err(e) => refusals += refused(e, "sample"),
    }
    // With heads of order 1e20 the f32 network loses the means' low digits to
    // cancellation (inherent to f32, not a laundered NaN); compare log-probs where the
    // heads are moderate.
    let moderate = r.mean.iter().chain(&r.logits).all(|x| x.abs() < 1e4);
    for u in [0.0f32, 0.5, -3.0] {
        let want = reference_log_prob(&h, &r, f64::from(u));
        match policy.log_prob_pre_squash(obs, &[u]) {
            Ok(lp) if !moderate => assert!(!lp.is_nan()),
            Ok(lp) if want < -f64::from(f32::MAX) => {
                assert_eq!(
                    lp,
                    f32::NEG_INFINITY,
                    "log_prob({u}) at {obs:?}: f64 {want}"
                )
            }
            Ok(lp) => assert!(
                (f64::from(lp) - want).abs() <= 1e-3 * want.abs().max(1.0),
                "log_prob({u}) at {obs:?}: {lp}, f64 gives {want}"
            ),
            Err(e) => refusals += refused(e, "log_prob"),
        }
    }
    refusals
}

#[test]
fn huge_observations_refuse_instead_of_returning_wrong_weights() {
    // At obs ≈ 3e38 a hidden layer overflows: inf − inf is NaN, and a ReLU written
    // `x > 0 ? x : 0` turned it into 0, so the policy returned plausible weights
    // [.14, .30, .15, .18, .23] where f64 gives one-hot weights and a mode of −2.
    let bytes = pendulum_policy();
    let mut refusals = 0;
    for obs in [
        [3e38f32, 3e38, 3e38],
        [3e38, -3e38, 1.0],
        [-3e38, 1.0, 3e38],
        [1.0, 0.0, 3e38],
    ] {
        refusals += check_against_reference(&bytes, &obs);
    }
    assert!(refusals > 0);
    // Large but harmless observations still give answers.
    assert_eq!(check_against_reference(&bytes, &[1e3, -1e3, 8.0]), 0);
}

/// A 3-input policy whose first hidden unit sums bias −3e38 + (−3e38) + 3e38 + 3.4e38 in
/// that order: f32 reaches −∞ after the second term and stays there, while the true value
/// is +4e37. A ReLU that maps −∞ to 0 (or tanh(−∞) = −1) would launder it.
fn overflowing_unit_policy(activation: Activation) -> Vec<u8> {
    let h = Header::new(
        3,
        &[4, 4],
        1,
        2,
        activation,
        true,
        (-20.0, 2.0),
        &[-2.0],
        &[2.0],
    )
    .unwrap();
    let mut w = policy_weights(&h, 3);
    for block in h.blocks() {
        match block.kind {
            BlockKind::Hidden(0) => {
                for o in 0..block.outputs {
                    for i in 0..3 {
                        w[block.weight_index(i, o)] = 0.0;
                    }
                }
                w[block.bias_index(0)] = -3e38;
                w[block.weight_index(0, 0)] = 1.0;
                w[block.weight_index(1, 0)] = 1.0;
                w[block.weight_index(2, 0)] = 1.0;
            }
            BlockKind::Hidden(1) => {
                let scale = if activation == Activation::Relu {
                    1e-37
                } else {
                    1.0
                };
                for o in 0..block.outputs {
                    w[block.weight_index(0, o)] = scale;
                }
            }
            _ => {}
        }
    }
    write_policy(&h, &w).unwrap()
}

#[test]
fn an_overflowed_pre_activation_is_never_laundered_by_the_activation() {
    for activation in [Activation::Relu, Activation::Tanh] {
        let bytes = overflowing_unit_policy(activation);
        let refusals = check_against_reference(&bytes, &[-3e38, 3e38, 3.4e38]);
        assert!(refusals > 0, "{activation:?}");
    }
}

#[test]
fn extreme_observations_of_random_policies_never_give_wrong_answers() {
    let extremes = [0.0f32, 1.0, -2.5, 1e20, -1e30, 1e38, -1e38, 3e38, -3.4e38];
    let mut r = rng(31);
    for seed in 0..12u64 {
        let activation = if seed % 2 == 0 {
            Activation::Relu
        } else {
            Activation::Tanh
        };
        let h = Header::new(
            3,
            &[16, 16],
            1,
            3,
            activation,
            true,
            (-20.0, 2.0),
            &[-2.0],
            &[2.0],
        )
        .unwrap();
        let bytes = policy_core::testing::random_policy(&h, seed, 1.0);
        for _ in 0..40 {
            let pick = |r: &mut _| extremes[(uniform(r, 0.0, 8.999) as usize).min(8)];
            let obs = [pick(&mut r), pick(&mut r), pick(&mut r)];
            check_against_reference(&bytes, &obs);
        }
    }
}

#[test]
fn log_prob_pre_squash_is_exact_for_any_u_or_says_it_overflows() {
    let h = header(1, 2, true, 2.0);
    // Moderate components: far out the density underflows, so log π is −∞ exactly.
    let bytes = constant_heads_policy(&h, &[0.3, -0.5], &[-1.0, 0.5], &[0.2, -0.1]);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let obs = [0.1, 0.2, 0.3];
    for u in [1e20f32, 1e38, 1.7e38, 3e38, f32::MAX] {
        for u in [u, -u] {
            assert_eq!(
                policy.log_prob_pre_squash(&obs, &[u]),
                Ok(f32::NEG_INFINITY),
                "u = {u}"
            );
        }
    }
    // A component centred far out: log π = log N + 2|u| + …, finite up to f32::MAX.
    for m in [1e38f32, -1.5e38, 1.6e38] {
        let bytes = constant_heads_policy(&h, &[m, 0.0], &[0.0, 0.0], &[0.0, 0.0]);
        let policy = Policy::from_bytes(&bytes).unwrap();
        let (hh, weights) = file_weights(&bytes);
        let r = reference_heads(&hh, &weights, &[0.1, 0.2, 0.3]);
        let want = reference_log_prob(&hh, &r, f64::from(m));
        let lp = policy.log_prob_pre_squash(&obs, &[m]).unwrap();
        assert!(
            (f64::from(lp) - want).abs() <= 1e-6 * want.abs(),
            "m = {m}: {lp} vs {want}"
        );
    }
    // Beyond f32's range (2|u| ≈ 6e38) the answer is not representable: an error, not +∞.
    let bytes = constant_heads_policy(&h, &[3e38, 0.0], &[0.0, 0.0], &[0.0, 0.0]);
    let policy = Policy::from_bytes(&bytes).unwrap();
    assert_eq!(
        policy.log_prob_pre_squash(&obs, &[3e38]),
        Err(ActError::NonFiniteOutput)
    );
}

/// Returns the same word forever.
struct ConstantRng(u32);

impl RngCore for ConstantRng {
    fn next_u32(&mut self) -> u32 {
        self.0
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.0) << 32 | u64::from(self.0)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.iter_mut().for_each(|b| *b = self.0 as u8);
    }
}

#[test]
fn a_component_of_weight_1e_35_is_never_drawn() {
    // With 24-bit uniforms compared against f32 cumulative weights, a component of weight
    // 1e-35 first in line was drawn whenever the uniform was 0: 2^-24 of the time.
    let h = header(1, 2, true, 2.0);
    for logits in [[-80.6f32, 0.0], [0.0, -80.6]] {
        let bytes = constant_heads_policy(&h, &[0.3, -0.5], &[-1.0, 0.5], &logits);
        let policy = Policy::from_bytes(&bytes).unwrap();
        let tiny = if logits[0] < 0.0 { 0 } else { 1 };
        let mut w = [0.0; 2];
        policy.mixing_weights(&[0.0; 3], &mut w).unwrap();
        assert!(w[tiny] > 0.0 && w[tiny] < 2e-35, "{w:?}");
        let mut a = [0.0];
        for word in [0, 1, 0xff, 0x100, 0x8000_0000, 0xffff_ff00, u32::MAX] {
            let s = policy
                .sample(&[0.0; 3], &mut ConstantRng(word), &mut a)
                .unwrap();
            assert_ne!(s.component, tiny, "word {word:#x}");
        }
        let mut r = rng(32);
        for _ in 0..100_000 {
            let s = policy.sample(&[0.0; 3], &mut r, &mut a).unwrap();
            assert_ne!(s.component, tiny);
        }
    }
}
