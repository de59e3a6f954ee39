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
use common::members::{member_configs, random_batch, relative, stack};
use rand::Rng;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::collections::HashMap;
use trainer::{Agent, Batch, Config, CriticSource, Minibatch, UpdateStats};

/// Relative differences are taken against max(|a|, |b|, FLOOR): log π's mean crosses 0.
const FLOOR: f64 = 1e-3;

fn worst(one: &UpdateStats, other: &UpdateStats) -> f64 {
    [
        relative(one.critic_loss.unwrap(), other.critic_loss.unwrap(), FLOOR),
        relative(one.actor_loss, other.actor_loss, FLOOR),
        relative(one.alpha, other.alpha, FLOOR),
        relative(one.log_prob_mean, other.log_prob_mean, FLOOR),
    ]
    .into_iter()
    .fold(0.0, f64::max)
}

/// A network shape: observations, actions, hidden width, batch, members, components, the
/// log σ range, α ("fixed" or "auto") and the baseline's actions per state.
#[derive(Clone, Copy, Debug)]
struct Shape {
    obs: usize,
    actions: usize,
    hidden: usize,
    batch: usize,
    members: usize,
    components: usize,
    log_std: (f32, f32),
    alpha: &'static str,
    baseline: usize,
}

/// Pendulum's shapes (obs 3, action 1 in [−2, 2], hidden 32, batch 32), 30 baseline actions.
fn pendulum(members: usize, components: usize, alpha: &'static str) -> Shape {
    Shape {
        obs: 3,
        actions: 1,
        hidden: 32,
        batch: 32,
        members,
        components,
        log_std: (-20.0, 2.0),
        alpha,
        baseline: 30,
    }
}

fn configs(shape: &Shape) -> Vec<Config> {
    member_configs("sgm", "halfrep", shape.alpha)[..shape.members]
        .iter()
        .map(|c| Config {
            hidden: shape.hidden,
            batch_size: shape.batch,
            components: shape.components,
            log_std_min: shape.log_std.0,
            log_std_max: shape.log_std.1,
            baseline_samples: shape.baseline,
            ..c.clone()
        })
        .collect()
}

/// Action bounds: pendulum's for one action, distinct ones per dimension otherwise.
fn bounds(shape: &Shape) -> (Vec<f64>, Vec<f64>) {
    if shape.actions == 1 {
        return (vec![-2.0], vec![2.0]);
    }
    (0..shape.actions)
        .map(|d| (-1.0 - d as f64, 0.5 + d as f64))
        .unzip()
}

/// An agent of `configs` on the hand-written path or candle's, and its generators.
fn agent_of(shape: &Shape, configs: &[Config], fast: bool) -> (Agent, Vec<Pcg64>) {
    let mut rngs: Vec<Pcg64> = configs
        .iter()
        .map(|c| Pcg64::seed_from_u64(c.seed))
        .collect();
    let (low, high) = bounds(shape);
    let critic = CriticSource::LearnedDoubleQ;
    let mut a = Agent::new(
        configs,
        shape.obs,
        &low,
        &high,
        critic,
        &mut rngs,
        &Device::Cpu,
    )
    .unwrap();
    a.set_fast_path(fast);
    assert_eq!(
        a.uses_fast_path(),
        fast,
        "the path under test is the one taken"
    );
    (a, rngs)
}

/// Two agents (hand-written and candle's path) of `shape` from the same seeds.
fn pair(shape: &Shape) -> [(Agent, Vec<Pcg64>); 2] {
    let configs = configs(shape);
    [true, false].map(|fast| agent_of(shape, &configs, fast))
}

fn batch(shape: &Shape, rng: &mut Pcg64) -> Minibatch {
    if shape.obs == 3 && shape.actions == 1 {
        let batches: Vec<Batch> = (0..shape.members)
            .map(|_| random_batch(rng, shape.batch))
            .collect();
        return stack(&batches, &Device::Cpu);
    }
    let n = shape.batch;
    let batches: Vec<Batch> = (0..shape.members)
        .map(|_| {
            let mut draw = |count: usize, lo: f32, hi: f32| -> Vec<f32> {
                (0..count).map(|_| rng.random_range(lo..hi)).collect()
            };
            Batch {
                obs: draw(shape.obs * n, -1.0, 1.0),
                actions: draw(shape.actions * n, -1.0, 0.5),
                rewards: draw(n, -2.0, 1.0),
                next_obs: draw(shape.obs * n, -1.0, 1.0),
                terminated: (0..n).map(|i| if i % 3 == 1 { 1.0 } else { 0.0 }).collect(),
            }
        })
        .collect();
    Minibatch::from_batches(&batches, shape.obs, shape.actions, &Device::Cpu).unwrap()
}

/// Every member's state (parameters and moments) of `from`, loaded into `to`.
fn copy_state(from: &Agent, to: &mut Agent) {
    for m in 0..from.members() {
        let state: HashMap<String, Tensor> = from.state(m).unwrap().into_iter().collect();
        to.load_state(m, &state).unwrap();
    }
}

/// The largest difference between two agents' parameters and moments, relative to each
/// tensor's largest value but at least 1e-4 (1e-8 for the second moments, squared
/// gradients), and where. The floor: a tensor whose gradient sums cancel to near zero (a
/// bias whose gradient Σ_rows is 1e-7 where its terms are 1e-3/B) carries the two paths'
/// absolute rounding differences (≈ 1e-10) as a large relative one.
fn state_diff(one: &Agent, other: &Agent) -> (f64, String) {
    let mut worst: (f64, String) = (0.0, String::new());
    for m in 0..one.members() {
        let theirs: HashMap<String, Tensor> = other.state(m).unwrap().into_iter().collect();
        for (name, t) in one.state(m).unwrap() {
            let a = t.flatten_all().unwrap().to_vec1::<f32>();
            let Ok(a) = a else { continue }; // the f64 step counters
            let b = theirs[&name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let floor: f32 = if name.contains(".v.") { 1e-8 } else { 1e-4 };
            let scale = b.iter().fold(floor, |s, x| s.max(x.abs()));
            for (x, y) in a.iter().zip(&b) {
                let d = f64::from((x - y).abs() / scale);
                if d > worst.0 || d.is_nan() {
                    worst = (d, format!("member {m} {name}: {x} vs {y}"));
                }
            }
        }
    }
    worst
}

/// Step by step from identical parameters, moments and generators (the candle agent's state
/// copied into the hand-written one before each update): each update's statistics and the
/// parameters and moments it leaves agree, log π's mean bit for bit. Returns the largest differences (statistics,
/// state).
fn step_by_step(shape: &Shape, updates: usize, seed: u64) -> (f64, f64) {
    let [(mut fast, mut fast_rngs), (mut slow, mut slow_rngs)] = pair(shape);
    let mut data = Pcg64::seed_from_u64(seed);
    let (mut max_stats, mut max_state): (f64, f64) = (0.0, 0.0);
    for update in 0..updates {
        let batch = batch(shape, &mut data);
        copy_state(&slow, &mut fast);
        fast_rngs.clone_from(&slow_rngs);
        let a = fast.update(&batch, &mut fast_rngs).unwrap();
        let b = slow.update(&batch, &mut slow_rngs).unwrap();
        for (m, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x.is_finite(), "{shape:?} member {m} update {update}: {x:?}");
            // The draws and log π are the same bits (the same f32 operations in the same
            // order), so their mean (taken by the same candle operation) is too.
            assert_eq!(
                x.log_prob_mean.to_bits(),
                y.log_prob_mean.to_bits(),
                "{shape:?} member {m} update {update}: log π differs"
            );
            let d = worst(x, y);
            max_stats = max_stats.max(d);
            assert!(
                d <= STATS_TOL,
                "{shape:?} member {m} update {update}: {x:?} vs candle {y:?}"
            );
        }
        let (d, at) = state_diff(&fast, &slow);
        max_state = max_state.max(d);
        assert!(
            d <= STATE_TOL,
            "{shape:?} update {update}: parameters {d} at {at}"
        );
    }
    (max_stats, max_state)
}

/// Per-update tolerances, step by step. Measured on x86-64 (AVX2 gemm kernels; the tests
/// print theirs): statistics ≤ 1.9e-6 (the losses are sums of 32 or 64 terms that partly
/// cancel, added in another order than candle's reductions; K = 5 ≤ 5.0e-7), parameters and
/// moments ≤ 2.8e-5 of [`state_diff`]'s scale (K = 5 ≤ 1.2e-6; the largest are first
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
            members: 1,
            components: 5,
            log_std: (-0.05, 0.05),
            alpha: "fixed",
            baseline: 30,
        },
        Shape {
            obs: 4,
            actions: 6,
            hidden: 9,
            batch: 1,
            members: 3,
            components: 2,
            log_std: (-20.0, 2.0),
            alpha: "auto",
            baseline: 30,
        },
        Shape {
            obs: 2,
            actions: 3,
            hidden: 24,
            batch: 7,
            members: 3,
            components: 5,
            log_std: (-0.1, 0.02),
            alpha: "fixed",
            baseline: 30,
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
            members: 1,
            components: 5,
            log_std: (-20.0, 2.0),
            alpha: "auto",
            baseline: 30,
        },
    ] {
        let [(mut fast, mut fast_rngs), (mut slow, mut slow_rngs)] = pair(&shape);
        let mut data = Pcg64::seed_from_u64(8);
        let mut max_diff: f64 = 0.0;
        for update in 0..FREE_UPDATES {
            let batch = batch(&shape, &mut data);
            let a = fast.update(&batch, &mut fast_rngs).unwrap();
            let b = slow.update(&batch, &mut slow_rngs).unwrap();
            for (m, (x, y)) in a.iter().zip(&b).enumerate() {
                let d = worst(x, y);
                max_diff = max_diff.max(d);
                assert!(
                    d <= FREE_TOL,
                    "{shape:?} member {m} update {update}: {x:?} vs candle {y:?}"
                );
            }
        }
        let (d, at) = state_diff(&fast, &slow);
        assert!(d <= FREE_TOL, "{shape:?}: parameters {d} at {at}");
        println!("{shape:?}: free-running stats ≤ {max_diff:.2e}, final state ≤ {d:.2e}");
    }
}

/// On the hand-written path, each member of a population of three computes its solo run's
/// bits: statistics and every parameter and moment after 100 updates (K = 5, fixed and
/// automatic α).
#[test]
fn population_members_give_their_solo_runs_bits() {
    for alpha in ["fixed", "auto"] {
        let shape = pendulum(3, 5, alpha);
        let configs = configs(&shape);
        let (mut population, mut pop_rngs) = agent_of(&shape, &configs, true);
        let mut solos: Vec<(Agent, Vec<Pcg64>)> = configs
            .iter()
            .map(|c| agent_of(&shape, std::slice::from_ref(c), true))
            .collect();
        let mut data = Pcg64::seed_from_u64(99);
        for update in 0..100 {
            let batches: Vec<Batch> = (0..3).map(|_| random_batch(&mut data, 32)).collect();
            let stats = population
                .update(&stack(&batches, &Device::Cpu), &mut pop_rngs)
                .unwrap();
            for (i, (solo, rngs)) in solos.iter_mut().enumerate() {
                let alone = solo
                    .update(
                        &stack(std::slice::from_ref(&batches[i]), &Device::Cpu),
                        rngs,
                    )
                    .unwrap()[0];
                assert_eq!(stats[i], alone, "{alpha} member {i} update {update}");
            }
        }
        for (i, (solo, _)) in solos.iter().enumerate() {
            let theirs: HashMap<String, Tensor> = solo.state(0).unwrap().into_iter().collect();
            for (name, t) in population.state(i).unwrap() {
                let bits = |t: &Tensor| {
                    let t = t.flatten_all().unwrap();
                    match t.to_vec1::<f32>() {
                        Ok(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
                        Err(_) => t
                            .to_vec1::<f64>()
                            .unwrap()
                            .iter()
                            .map(|x| x.to_bits())
                            .collect::<Vec<u64>>(),
                    }
                };
                assert_eq!(bits(&t), bits(&theirs[&name]), "{alpha} member {i} {name}");
            }
        }
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
        members: 3,
        components: 5,
        log_std: (-20.0, 2.0),
        alpha: "fixed",
        baseline: 30,
    };
    let [(mut fast, mut fast_rngs), (mut slow, mut slow_rngs)] = pair(&shape);
    for agent in [&mut fast, &mut slow] {
        // Copies: the state's tensors are views of the agent's own parameters.
        let mut state: HashMap<String, Tensor> = agent
            .state(1)
            .unwrap()
            .into_iter()
            .map(|(name, t)| (name, t.copy().unwrap()))
            .collect();
        let bias = &state["actor.log_std.bias"];
        let nan = Tensor::full(f32::NAN, bias.shape(), &Device::Cpu).unwrap();
        state.insert("actor.log_std.bias".into(), nan);
        agent.load_state(1, &state).unwrap();
    }
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
