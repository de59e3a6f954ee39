//! log π is a normalised density, and the squash correction is the exact change of variables.

mod common;

use common::*;
use policy_core::Policy;

/// Composite Simpson weights for `n` intervals (n even) on [lo, hi].
fn simpson(lo: f64, hi: f64, n: usize) -> Vec<(f64, f64)> {
    let h = (hi - lo) / n as f64;
    (0..=n)
        .map(|i| {
            let c = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            (lo + i as f64 * h, c * h / 3.0)
        })
        .collect()
}

fn mass(policy: &Policy, obs: &[f32], lo: f64, hi: f64, n: usize) -> f64 {
    let nodes = simpson(lo, hi, n);
    let p = |a: &[f32]| f64::from(policy.log_prob(obs, a).unwrap()).exp();
    match policy.action_dim() {
        1 => nodes.iter().map(|&(x, w)| w * p(&[x as f32])).sum(),
        2 => nodes
            .iter()
            .map(|&(x, wx)| {
                nodes
                    .iter()
                    .map(|&(y, wy)| wx * wy * p(&[x as f32, y as f32]))
                    .sum::<f64>()
            })
            .sum(),
        d => panic!("no quadrature for {d} dimensions"),
    }
}

#[test]
fn log_prob_integrates_to_one_over_the_action_box() {
    // Squashed policies live on [−2, 2]; unsquashed ones are Gaussians whose mass lies
    // well inside [−8, 8] (|μ| ≲ 1.2, σ ≲ 0.6, so the box spans > 10σ).
    let mut r = rng(11);
    for action_dim in [1, 2] {
        for components in [1, 2, 5] {
            for squash in [true, false] {
                let bound = if squash { 2.0 } else { 8.0 };
                let seed = (action_dim * 100 + components * 10 + squash as usize) as u64;
                let bytes = policy_bytes(action_dim, components, squash, bound, seed);
                let policy = Policy::from_bytes(&bytes).unwrap();
                let n = if action_dim == 1 { 20_000 } else { 800 };
                for _ in 0..2 {
                    let obs = random_obs(&mut r);
                    let m = mass(&policy, &obs, -f64::from(bound), f64::from(bound), n);
                    assert!(
                        (m - 1.0).abs() <= 1e-3,
                        "A={action_dim} K={components} squash={squash} obs={obs:?}: mass {m}"
                    );
                }
            }
        }
    }
}

#[test]
fn quadrature_detects_a_density_that_does_not_integrate_to_one() {
    // The same check on a squashed policy integrated over half its box must fail,
    // so the test above is able to fail.
    let bytes = policy_bytes(1, 2, true, 2.0, 3);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let m = mass(&policy, &[0.0, 0.0, 0.0], 0.0, 2.0, 20_000);
    assert!((m - 1.0).abs() > 1e-2, "half-box mass {m}");
}

/// log N(u; μ, σ) in f64.
fn log_normal(u: f64, mean: f64, log_std: f64) -> f64 {
    let z = (u - mean) / log_std.exp();
    -0.5 * z * z - log_std - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

#[test]
fn squashed_log_prob_is_the_change_of_variables_up_to_u_20() {
    // Heads fixed by biases so the exact mixture is known. The reference uses
    // log|da/du| = log scale − 2 log cosh u (f64), an independent form of the Jacobian.
    let h = header(1, 2, true, 2.0);
    let (means, log_stds, logits) = ([0.5f32, -1.0], [-0.3f32, 0.4], [0.2f32, -0.7]);
    let bytes = constant_heads_policy(&h, &means, &log_stds, &logits);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let log_norm = (f64::from(logits[0]).exp() + f64::from(logits[1]).exp()).ln();
    let obs = [0.3, -0.2, 1.0];
    let mut u = -20.0f64;
    while u <= 20.0 {
        let mixture: f64 = (0..2)
            .map(|k| {
                let lw = f64::from(logits[k]) - log_norm;
                (lw + log_normal(u, f64::from(means[k]), f64::from(log_stds[k]))).exp()
            })
            .sum();
        let log_det = 2.0f64.ln() - 2.0 * u.cosh().ln();
        let expected = mixture.ln() - log_det;
        let got = f64::from(policy.log_prob_pre_squash(&obs, &[u as f32]).unwrap());
        assert!(got.is_finite(), "u={u}: log-prob {got}");
        let tol = 1e-5 * expected.abs().max(1.0);
        assert!((got - expected).abs() <= tol, "u={u}: {got} vs {expected}");
        u += 0.25;
    }
}

#[test]
fn log_prob_of_an_action_matches_log_prob_of_its_pre_squash_value() {
    let bytes = policy_bytes(2, 3, true, 2.0, 5);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let mut r = rng(5);
    for _ in 0..200 {
        let obs = random_obs(&mut r);
        let u = [uniform(&mut r, -3.0, 3.0), uniform(&mut r, -3.0, 3.0)];
        let a = [2.0 * u[0].tanh(), 2.0 * u[1].tanh()];
        let via_action = policy.log_prob(&obs, &a).unwrap();
        let via_u = policy.log_prob_pre_squash(&obs, &u).unwrap();
        // atanh(a/2) loses precision as |u| grows (f32 spacing near ±1); 1e-3 covers |u| ≤ 3.
        assert!(
            (via_action - via_u).abs() <= 1e-3 * via_u.abs().max(1.0),
            "{via_action} vs {via_u}"
        );
    }
}

#[test]
fn log_prob_at_the_box_edge_is_finite() {
    let bytes = policy_bytes(1, 2, true, 2.0, 8);
    let policy = Policy::from_bytes(&bytes).unwrap();
    for a in [-2.0, 2.0] {
        assert!(policy.log_prob(&[0.0; 3], &[a]).unwrap().is_finite());
    }
}
