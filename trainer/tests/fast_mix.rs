//! The hand-written `mrp` actor step of a squashed Gaussian mixture (`sac/fast_mix.rs`)
//! against candle's autograd path (`Agent::set_fast_path(false)`): K = 5, 2 and 1, a solo
//! run and populations of three members (different seeds, learning rates and α; fixed and
//! automatic α), pendulum's shapes and others with several action dimensions. The helpers
//! are `tests/common/fast.rs`'s, shared with `tests/fast_sgm.rs`.
//!
//! Both paths draw the same random numbers and run the same forward operations, so the
//! draws, log π (and its w-weighted mean) and the losses' terms are the same bits; the
//! backward passes differ in the order of their roundings, so the parameters drift apart by
//! a few ulps per update.

mod common;

use common::fast::{self, Shape};

/// Pendulum's shapes for `mrp` of the squashed mixture.
fn pendulum(members: usize, components: usize, alpha: &'static str) -> Shape {
    fast::pendulum(("sgm", "mrp"), members, components, alpha)
}

/// [`fast::step_by_step`] within this file's tolerances.
fn step_by_step(shape: &Shape, updates: usize, seed: u64) -> (f64, f64) {
    fast::step_by_step(shape, updates, seed, (STATS_TOL, STATE_TOL))
}

/// Per-update tolerances, step by step. Measured on x86-64 (AVX2 gemm kernels; the tests
/// print theirs): statistics ≤ 1.2e-6 (43 times below the bound), parameters and moments
/// ≤ 3.1e-4 of [`fast::state_diff`]'s scale (10 times below; K = 5 ≤ 6.0e-5). The largest are
/// the first moments of the logits' biases for K = 2: log π(a_k)'s gradient reaches every
/// logit as g_k ρ⁽ᵏ⁾_j, which log_softmax's −w_j Σ removes again up to a small remainder, so
/// the two paths' orders of rounding the O(α/B) terms are a large part of that remainder
/// (7e-8 absolute against moments of 2e-4 at the measured maximum, batch 1).
const STATS_TOL: f64 = 5e-5;
const STATE_TOL: f64 = 3e-3;

/// Pendulum's shapes, K = 5, 2 and 1, one member and three, fixed and automatic α: 200
/// updates step by step from the same state.
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

/// Several action dimensions (the K·B critic rows, the heads' rows and columns, the scales
/// cannot be mixed up unseen), one observation, odd widths, batches of 1 and 5, three
/// members, a log σ range that clamps at both bounds: 40 updates step by step.
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
/// Measured on x86-64: statistics ≤ 2.7e-6, final state ≤ 3.1e-6 (37 and 32 times below
/// FREE_TOL). `mrp` draws no components, so nothing discrete parts the
/// trajectories early, but the critic's bootstrapped targets compound the ulps.
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
