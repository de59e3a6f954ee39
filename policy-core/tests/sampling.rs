//! Sampling matches the density, is reproducible, and always emits a valid action.

mod common;

use common::*;
use policy_core::testing::{
    chi_square, chi_square_components, ks_test, ks_test_cdf, ks_test_samples, CheckError,
};
use policy_core::{ActError, Policy};

/// Family-wise significance level of each goodness-of-fit test below. A test that checks
/// `m` cases rejects a case at `SIGNIFICANCE / m` (Bonferroni), so a correct sampler fails a
/// whole test with probability at most 1%. Seeds are fixed, so each outcome is deterministic.
/// (Checked while writing these tests: over 200 seeds the KS p-values of these policies were
/// uniform — 2–3 below 0.01, 8–10 below 0.05, medians 0.50–0.53.)
const SIGNIFICANCE: f64 = 0.01;

#[test]
fn one_dimensional_samples_fit_the_density() {
    let mut r = rng(21);
    let per_case = SIGNIFICANCE / 6.0;
    for components in [1, 2, 5] {
        for squash in [true, false] {
            let bound = if squash { 2.0 } else { 8.0 };
            let bytes = policy_bytes(1, components, squash, bound, 40 + components as u64);
            let policy = Policy::from_bytes(&bytes).unwrap();
            let obs = random_obs(&mut r);
            let report = ks_test(&policy, &obs, 2000, &mut r).unwrap();
            assert!(
                report.passes(per_case),
                "K={components} squash={squash}: {report:?}"
            );
        }
    }
}

#[test]
fn ks_test_rejects_samples_from_another_policy() {
    // Power check: samples of one policy against the density of a different one.
    let mut r = rng(22);
    let truth = policy_bytes(1, 2, true, 2.0, 1);
    let other = policy_bytes(1, 2, true, 2.0, 2);
    let (truth, other) = (
        Policy::from_bytes(&truth).unwrap(),
        Policy::from_bytes(&other).unwrap(),
    );
    let obs = [0.5, -0.5, 1.0];
    let mut a = [0.0];
    let samples: Vec<f32> = (0..2000)
        .map(|_| {
            other.sample(&obs, &mut r, &mut a).unwrap();
            a[0]
        })
        .collect();
    let report = ks_test_samples(&truth, &obs, &samples).unwrap();
    assert!(!report.passes(SIGNIFICANCE), "{report:?}");
}

#[test]
fn component_frequencies_fit_the_mixing_weights() {
    let mut r = rng(23);
    let per_case = SIGNIFICANCE / 3.0;
    for (action_dim, components) in [(1, 2), (2, 5), (6, 8)] {
        let bytes = policy_bytes(action_dim, components, true, 1.0, 7);
        let policy = Policy::from_bytes(&bytes).unwrap();
        let obs = random_obs(&mut r);
        let report = chi_square_components(&policy, &obs, 20_000, &mut r).unwrap();
        assert!(
            report.passes(per_case),
            "A={action_dim} K={components}: {report:?}"
        );
    }
}

#[test]
fn chi_square_rejects_frequencies_of_other_weights() {
    // 20 000 draws from weights (0.3, 0.7) tested against (0.25, 0.75): expected χ² ≈ 267.
    let report = chi_square(&[6000, 14000], &[0.25, 0.75]);
    assert!(!report.passes(SIGNIFICANCE), "{report:?}");
    let fair = chi_square(&[5010, 4990], &[0.5, 0.5]);
    assert!(fair.passes(SIGNIFICANCE), "{fair:?}");
}

#[test]
fn the_same_seed_gives_the_same_samples() {
    let bytes = policy_bytes(2, 5, true, 1.0, 9);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let draw = |seed| {
        let mut r = rng(seed);
        let mut a = [0.0; 2];
        (0..500)
            .map(|i| {
                let obs = [i as f32 * 0.01, 0.5, -0.5];
                let s = policy.sample(&obs, &mut r, &mut a).unwrap();
                (a, s.component, s.log_prob)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn sampled_log_prob_is_the_log_prob_of_the_action() {
    let mut r = rng(24);
    for squash in [true, false] {
        let bytes = policy_bytes(2, 3, squash, 8.0, 10);
        let policy = Policy::from_bytes(&bytes).unwrap();
        let mut a = [0.0; 2];
        for _ in 0..500 {
            let obs = random_obs(&mut r);
            let s = policy.sample(&obs, &mut r, &mut a).unwrap();
            let lp = policy.log_prob(&obs, &a).unwrap();
            assert!(
                (s.log_prob - lp).abs() <= 1e-3 * lp.abs().max(1.0),
                "{} vs {lp}",
                s.log_prob
            );
        }
    }
}

#[test]
fn emitted_actions_are_finite_and_inside_the_box() {
    // Wide log-std bounds, large weights and extreme observations: every emitted action
    // must be finite and inside [low, high]; the only acceptable refusal is NonFiniteOutput.
    let mut r = rng(25);
    let extremes = [0.0, 1e-40, -1e-3, 3.0, -50.0, 1e4, -1e12, 3e38, -3e38];
    let mut emitted = 0;
    for seed in 0..20 {
        for squash in [true, false] {
            let low = [-1.5, -0.2];
            let high = [0.5, 3.0];
            let h = policy_core::format::Header::new(
                3,
                &[16, 16],
                2,
                4,
                policy_core::format::Activation::Tanh,
                squash,
                (-20.0, 20.0),
                &low,
                &high,
            )
            .unwrap();
            let bytes = policy_core::testing::random_policy(&h, seed, 3.0);
            let policy = Policy::from_bytes(&bytes).unwrap();
            for _ in 0..50 {
                let pick = |r: &mut _| extremes[(uniform(r, 0.0, 8.999) as usize).min(8)];
                let obs = [pick(&mut r), pick(&mut r), uniform(&mut r, -5.0, 5.0)];
                let in_box = |a: &[f32; 2]| {
                    (0..2).all(|d| a[d].is_finite() && low[d] <= a[d] && a[d] <= high[d])
                };
                // Each result is checked before the next call can overwrite the action.
                let mut a = [f32::NAN; 2];
                match policy.sample(&obs, &mut r, &mut a) {
                    Ok(_) => {
                        emitted += 1;
                        assert!(in_box(&a), "sample {a:?}");
                    }
                    Err(e) => assert_eq!(e, ActError::NonFiniteOutput),
                }
                let mut a = [f32::NAN; 2];
                match policy.mode(&obs, &mut a) {
                    Ok(_) => {
                        emitted += 1;
                        assert!(in_box(&a), "mode {a:?}");
                    }
                    Err(e) => assert_eq!(e, ActError::NonFiniteOutput),
                }
            }
        }
    }
    // 2496 of 4000: observations of ±3e38 overflow the first layer, and an
    // overflowed pre-activation is refused (its sign is unknown) rather than passed
    // through tanh as ±1, which counted 3000+ here before.
    assert!(emitted > 2000, "only {emitted} actions emitted");
}

#[test]
fn mode_is_the_squashed_mean_of_the_heaviest_component() {
    let h = header(1, 3, true, 2.0);
    let bytes = constant_heads_policy(&h, &[0.1, -0.8, 2.0], &[-1.0, -1.0, -1.0], &[0.0, 1.5, 1.0]);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let mut a = [0.0];
    let k = policy.mode(&[0.0, 1.0, 2.0], &mut a).unwrap();
    assert_eq!(k, 1);
    assert!((a[0] - 2.0 * (-0.8f32).tanh()).abs() < 1e-6, "{a:?}");
    let mut w = [0.0; 3];
    policy.mixing_weights(&[0.0, 1.0, 2.0], &mut w).unwrap();
    let z: f32 = [0.0f32, 1.5, 1.0].iter().map(|l| l.exp()).sum();
    for (wk, l) in w.iter().zip([0.0f32, 1.5, 1.0]) {
        assert!((wk - l.exp() / z).abs() < 1e-6, "{w:?}");
    }
}

/// CDF of a·tanh-squashed N(μ, σ) at `a`, for a box [−bound, bound].
fn squashed_normal_cdf(a: f64, bound: f64, mean: f64, std: f64) -> f64 {
    let y = (a / bound).clamp(-1.0 + 1e-12, 1.0 - 1e-12);
    0.5 * (1.0 + puruspe::erf((y.atanh() - mean) / (std * std::f64::consts::SQRT_2)))
}

#[test]
fn each_action_dimension_of_a_joint_mixture_fits_its_marginal() {
    // Two components with different means in both dimensions: the marginal of dimension d
    // is Σ_k w_k · (squashed N(μ_kd, σ_kd)). A sampler that mixed up components or
    // dimensions fails here even though each draw's log-prob is self-consistent.
    let h = header(2, 2, true, 2.0);
    let means = [0.8f32, -0.4, -0.9, 0.6]; // component-major: (k0: d0, d1), (k1: d0, d1)
    let log_stds = [-1.0f32, -0.5, -0.7, -1.2];
    let logits = [0.3f32, -0.2];
    let bytes = constant_heads_policy(&h, &means, &log_stds, &logits);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
    let w: Vec<f64> = logits.iter().map(|&l| f64::from(l).exp() / z).collect();
    let mut r = rng(26);
    let obs = [0.1, 0.2, 0.3];
    let mut a = [0.0; 2];
    let draws: Vec<[f32; 2]> = (0..4000)
        .map(|_| {
            policy.sample(&obs, &mut r, &mut a).unwrap();
            a
        })
        .collect();
    for d in 0..2 {
        let samples: Vec<f64> = draws.iter().map(|a| f64::from(a[d])).collect();
        let cdf = |x: f64| {
            (0..2)
                .map(|k| {
                    let (m, ls) = (f64::from(means[2 * k + d]), f64::from(log_stds[2 * k + d]));
                    w[k] * squashed_normal_cdf(x, 2.0, m, ls.exp())
                })
                .sum::<f64>()
        };
        let report = ks_test_cdf(&samples, cdf).unwrap();
        assert!(
            report.passes(SIGNIFICANCE / 2.0),
            "dimension {d}: {report:?}"
        );
    }
    // Power: dimension 0's samples against dimension 1's marginal must be rejected.
    let samples: Vec<f64> = draws.iter().map(|a| f64::from(a[0])).collect();
    let wrong = |x: f64| {
        (0..2)
            .map(|k| {
                w[k] * squashed_normal_cdf(
                    x,
                    2.0,
                    f64::from(means[2 * k + 1]),
                    f64::from(log_stds[2 * k + 1]).exp(),
                )
            })
            .sum::<f64>()
    };
    assert!(!ks_test_cdf(&samples, wrong).unwrap().passes(SIGNIFICANCE));
}

#[test]
fn goodness_of_fit_refuses_non_finite_or_out_of_box_samples() {
    let bytes = policy_bytes(1, 2, true, 2.0, 3);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let mut samples = vec![0.5f32; 200];
    samples[17] = f32::NAN;
    assert!(matches!(
        ks_test_samples(&policy, &[0.0; 3], &samples),
        Err(CheckError::NonFinite { .. })
    ));
    samples[17] = 2.5;
    assert!(matches!(
        ks_test_samples(&policy, &[0.0; 3], &samples),
        Err(CheckError::NonFinite { .. })
    ));
    let with_nan: Vec<f64> = (0..200)
        .map(|i| if i == 5 { f64::NAN } else { 0.0 })
        .collect();
    assert!(ks_test_cdf(&with_nan, |x| x).is_err());
}

#[test]
fn compare_policies_sees_components_that_never_win_the_mode() {
    use policy_core::testing::compare_policies;
    let h = header(1, 2, true, 2.0);
    let observations: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32 * 0.1, 0.0, 1.0]).collect();
    // Same mode component (logit 1.0 vs 0.0), different secondary means: ±1.5.
    let p1 = constant_heads_policy(&h, &[0.0, 1.5], &[-1.0, -1.0], &[1.0, 0.0]);
    let p2 = constant_heads_policy(&h, &[0.0, -1.5], &[-1.0, -1.0], &[1.0, 0.0]);
    let (a, b) = (
        Policy::from_bytes(&p1).unwrap(),
        Policy::from_bytes(&p2).unwrap(),
    );
    assert!(compare_policies(&a, &a, &observations, 1e-6).is_ok());
    match compare_policies(&a, &b, &observations, 1e-3) {
        Err(CheckError::Mismatch { quantity, .. }) => assert_eq!(quantity, "log_prob"),
        other => panic!("expected a log_prob mismatch, got {other:?}"),
    }
    // Headers that differ only in the log-std clamp are different policies.
    let mut h3 = h.clone();
    h3.log_std_min = -5.0;
    let p3 = constant_heads_policy(&h3, &[0.0, 1.5], &[-1.0, -1.0], &[1.0, 0.0]);
    let c = Policy::from_bytes(&p3).unwrap();
    assert_eq!(
        compare_policies(&a, &c, &observations, 1e-3),
        Err(CheckError::HeadersDiffer)
    );
}

/// Policies whose emitted actions have atoms or steep ends: a squashed mixture with a
/// component far enough out that f32 tanh saturates (mass exactly on the bound), an
/// unsquashed one whose clipping puts mass on both bounds, and a plain random one.
fn calibration_policies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "saturating squashed",
            constant_heads_policy(
                &header(1, 2, true, 2.0),
                &[0.3, 5.0],
                &[-1.0, 1.2],
                &[0.0, 0.2],
            ),
        ),
        (
            "clipped unsquashed",
            constant_heads_policy(
                &header(1, 2, false, 1.0),
                &[-0.6, 0.7],
                &[-1.0, -0.8],
                &[0.1, 0.0],
            ),
        ),
        ("random squashed", policy_bytes(1, 5, true, 2.0, 45)),
    ]
}

#[test]
fn ks_p_values_of_correct_samplers_are_uniform() {
    // 40 seeds per policy. Under a correct sampler the number of p-values below 0.05 is
    // Binomial(40, 0.05): P(≥ 8) = 7.1e-4; below 0.5 it is Binomial(40, 0.5):
    // P(≤ 10 or ≥ 30) = 2.2e-3. Three policies: a correct sampler fails with
    // probability < 0.9 %. (Seeds are fixed, so the outcome is deterministic.)
    for (name, bytes) in calibration_policies() {
        let policy = Policy::from_bytes(&bytes).unwrap();
        let obs = [0.4, -0.3, 0.9];
        let p: Vec<f64> = (0..40)
            .map(|seed| {
                ks_test(&policy, &obs, 2000, &mut rng(1000 + seed))
                    .unwrap()
                    .p_value
            })
            .collect();
        let below = |x: f64| p.iter().filter(|&&v| v < x).count();
        assert!(
            below(0.05) < 8,
            "{name}: {} of 40 below 0.05: {p:?}",
            below(0.05)
        );
        assert!(
            (11..30).contains(&below(0.5)),
            "{name}: {} of 40 below 0.5: {p:?}",
            below(0.5)
        );
    }
}

#[test]
fn ks_test_rejects_a_sampler_whose_std_is_ten_percent_too_wide() {
    let means = [0.3f32, -0.8];
    let log_stds = [-1.0f32, -0.6];
    let logits = [0.2f32, -0.1];
    let wide: Vec<f32> = log_stds.iter().map(|l| l + 1.1f32.ln()).collect();
    for squash in [true, false] {
        let h = header(1, 2, squash, 2.0);
        let truth = constant_heads_policy(&h, &means, &log_stds, &logits);
        let wrong = constant_heads_policy(&h, &means, &wide, &logits);
        let (truth, wrong) = (
            Policy::from_bytes(&truth).unwrap(),
            Policy::from_bytes(&wrong).unwrap(),
        );
        let obs = [0.0; 3];
        let mut r = rng(27);
        let mut a = [0.0];
        let samples: Vec<f32> = (0..100_000)
            .map(|_| {
                wrong.sample(&obs, &mut r, &mut a).unwrap();
                a[0]
            })
            .collect();
        let report = ks_test_samples(&truth, &obs, &samples).unwrap();
        assert!(!report.passes(SIGNIFICANCE), "squash={squash}: {report:?}");
        // ... while the right policy's own samples pass.
        let right = ks_test(&truth, &obs, 100_000, &mut r).unwrap();
        assert!(right.passes(SIGNIFICANCE), "squash={squash}: {right:?}");
        assert!(right.statistic <= 1.0 && report.statistic <= 1.0);
    }
}
