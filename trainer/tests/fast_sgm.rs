//! The hand-written `halfrep` update of a squashed Gaussian mixture (`sac/fast_sgm.rs`)
//! against candle's autograd path (`Agent::set_fast_path(false)`): K = 5 and K = 2 (and
//! K = 1), a solo run and populations of three members (different seeds, learning rates and
//! α; fixed and automatic α), pendulum's shapes and others with several action dimensions.
//!
//! Both paths draw the same random numbers and run the same forward operations, so the
//! draws, log π, the baseline and the losses' terms are the same bits; the backward passes
//! differ in the order of their roundings (candle's log-sum-exp and log-softmax send
//! gradients through their max that cancel only up to rounding, and it adds the heads' and
//! the paths' gradients in another order), so the parameters drift apart by a few ulps per
//! update.

mod common;

use candle_core::{Device, Tensor};
use common::fast::{self, batch, diverge, pair, worst, Shape};
use common::members::member_configs;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use trainer::{Agent, CriticSource};

/// Pendulum's shapes for `halfrep` of the squashed mixture.
fn pendulum(members: usize, components: usize, alpha: &'static str) -> Shape {
    fast::pendulum(("sgm", "halfrep"), members, components, alpha)
}

/// [`fast::step_by_step`] within this file's tolerances.
fn step_by_step(shape: &Shape, updates: usize, seed: u64) -> (f64, f64) {
    fast::step_by_step(shape, updates, seed, (STATS_TOL, STATE_TOL))
}

/// Per-update tolerances, step by step. Measured on x86-64 (AVX2 gemm kernels; the tests
/// print theirs): statistics ≤ 1.9e-6 (the losses are sums of 32 or 64 terms that partly
/// cancel, added in another order than candle's reductions; K = 5 ≤ 5.0e-7), parameters and
/// moments ≤ 2.8e-5 of [`fast::state_diff`]'s scale (K = 5 ≤ 1.2e-6; the largest are first
/// moments of the logits' and log σ's biases, whose gradients are sums over the batch that
/// cancel to a small fraction of their terms, so one rounding of a term is a large part of
/// the sum). The bounds leave room for other CPUs' kernels: 26 times the measured maximum
/// for the statistics, 11 times for the state.
const STATS_TOL: f64 = 5e-5;
const STATE_TOL: f64 = 3e-4;

/// Pendulum's shapes, K = 5 and K = 2 (and K = 1), one member and three, fixed and
/// automatic α: 200 updates step by step from the same state.
#[test]
fn each_update_from_the_same_state_agrees_with_candles() {
    for components in [5, 2, 1] {
        for (members, alpha) in [(1, "fixed"), (1, "auto"), (3, "fixed"), (3, "auto")] {
            let shape = pendulum(members, components, alpha);
            let (stats, state) = step_by_step(&shape, 200, 7);
            println!(
                "K = {components}, {members} member(s), {alpha} α: stats ≤ {stats:.2e}, state ≤ {state:.2e}"
            );
        }
    }
}

/// Without a baseline (`--baseline-samples 0`, b = 0, nothing drawn for it): 50 updates step
/// by step, as above.
#[test]
fn no_baseline_agrees_with_candles() {
    for components in [5, 1] {
        let shape = Shape {
            baseline: 0,
            ..pendulum(1, components, "auto")
        };
        let (stats, state) = step_by_step(&shape, 50, 11);
        println!("K = {components}, no baseline: stats ≤ {stats:.2e}, state ≤ {state:.2e}");
    }
}

/// Shapes pendulum does not reach — several action dimensions (so that the heads' rows and
/// columns, the scales and the per-row log π cannot be mixed up unseen), one observation, an
/// odd width, batches of 1 and 5, three members — and a log σ range that clamps at both
/// bounds: 40 updates step by step from the same state, as above.
#[test]
fn other_shapes_and_a_saturated_clamp_agree_with_candles() {
    let shapes = [
        Shape {
            obs: 1,
            actions: 2,
            hidden: 17,
            batch: 5,
            log_std: (-0.05, 0.05),
            ..pendulum(1, 5, "fixed")
        },
        Shape {
            obs: 4,
            actions: 6,
            hidden: 9,
            batch: 1,
            ..pendulum(3, 2, "auto")
        },
        Shape {
            obs: 2,
            actions: 3,
            hidden: 24,
            batch: 7,
            log_std: (-0.1, 0.02),
            ..pendulum(3, 5, "fixed")
        },
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let (stats, state) = step_by_step(shape, 40, 20 + i as u64);
        println!("shape {i}: stats ≤ {stats:.2e}, state ≤ {state:.2e}");
    }
}

/// Free-running: each path from the same start for FREE_UPDATES updates, the statistics
/// compared update by update and the final parameters and moments within FREE_TOL.
/// Measured on x86-64: statistics ≤ 1.9e-5, final state ≤ 3.4e-6. Not longer: the
/// component draws are discrete, so once the paths' ulp-sized differences move a mixing
/// weight across a uniform (measured near update 150 for pendulum, K = 5), the trajectories
/// part (as two CPUs' runs would), and the critic's bootstrapped targets compound the rest;
/// 80 updates keep well short of that on kernels that round differently.
const FREE_UPDATES: usize = 80;
const FREE_TOL: f64 = 1e-4;

#[test]
fn free_running_updates_agree_with_candles() {
    for shape in [
        pendulum(1, 5, "fixed"),
        pendulum(3, 2, "auto"),
        Shape {
            obs: 2,
            actions: 3,
            hidden: 24,
            batch: 16,
            ..pendulum(1, 5, "auto")
        },
    ] {
        let (stats, d) = fast::free_running(&shape, FREE_UPDATES, FREE_TOL);
        println!("{shape:?}: free-running stats ≤ {stats:.2e}, final state ≤ {d:.2e}");
    }
}

/// On the hand-written path, each member of a population of three computes its solo run's
/// bits: statistics and every parameter and moment after 100 updates (K = 5, fixed and
/// automatic α).
#[test]
fn population_members_give_their_solo_runs_bits() {
    for alpha in ["fixed", "auto"] {
        fast::population_members_give_solo_bits(&pendulum(3, 5, alpha), 100);
    }
}

/// A member whose log σ head is NaN (diverged) reports non-finite statistics on the
/// hand-written path as on candle's — the trainer freezes members by them — and the other
/// members' updates are those of candle's path.
#[test]
fn a_diverged_member_reports_nan_as_on_candles_path() {
    let shape = Shape {
        obs: 3,
        actions: 2,
        hidden: 16,
        batch: 8,
        ..pendulum(3, 5, "fixed")
    };
    let [(mut fast, mut fast_rngs), (mut slow, mut slow_rngs)] = pair(&shape);
    diverge(&mut fast, 1);
    diverge(&mut slow, 1);
    let batch = batch(&shape, &mut Pcg64::seed_from_u64(5));
    let a = fast.update(&batch, &mut fast_rngs).unwrap();
    let b = slow.update(&batch, &mut slow_rngs).unwrap();
    assert!(!b[1].is_finite(), "candle's path: {:?}", b[1]);
    assert!(!a[1].is_finite(), "the hand-written path: {:?}", a[1]);
    for m in [0, 2] {
        assert!(
            a[m].is_finite() && worst(&a[m], &b[m]) <= STATS_TOL,
            "member {m}: {:?} vs {:?}",
            a[m],
            b[m]
        );
    }
}

/// Which configurations take the hand-written update: rep with one squashed component and
/// halfrep and mrp with squashed components (`sac/fast_mix.rs` for mrp), against a learned
/// critic; every other estimator, the
/// unsquashed mixture and the bandits' true-reward critic keep candle's path.
#[test]
fn only_squashed_rep_halfrep_and_mrp_with_a_learned_critic_take_the_hand_written_path() {
    let routed = |policy: &str, estimator: &str, critic: CriticSource| -> bool {
        let configs = &member_configs(policy, estimator, "fixed")[..1];
        let mut rngs = vec![Pcg64::seed_from_u64(1)];
        let agent = Agent::new(configs, 3, &[-2.0], &[2.0], critic, &mut rngs, &Device::Cpu);
        agent.unwrap().uses_fast_path()
    };
    let learned = || CriticSource::LearnedDoubleQ;
    for (policy, estimator, hand_written) in [
        ("squashed", "rep", true),
        ("squashed", "halfrep", true),
        ("sgm", "halfrep", true),
        ("squashed", "like", false),
        ("sgm", "like", false),
        ("sgm", "gumbel", false),
        ("sgm", "mrp", true),
        ("squashed", "mrp", true),
        ("gm", "halfrep", false),
        ("gm", "mrp", false),
    ] {
        assert_eq!(
            routed(policy, estimator, learned()),
            hand_written,
            "{policy} / {estimator}"
        );
    }
    let true_reward =
        CriticSource::TrueReward(Box::new(|a: &Tensor| a.sum(candle_core::D::Minus1)));
    assert!(
        !routed("sgm", "halfrep", true_reward),
        "bandit's true reward"
    );
}
