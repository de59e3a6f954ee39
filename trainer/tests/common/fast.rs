//! The hand-written updates against candle's path (tests/fast_rep.rs, fast_sgm.rs and
//! fast_mix.rs): network shapes, pairs of agents from the same seeds, their minibatches,
//! the comparison of statistics and of state, and the mixture tests' comparison loops.
//! Each test file keeps its own tolerances and passes them in.

use super::members::{member_configs, random_batch, stack};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::HashMap;
use trainer::{Agent, Batch, Config, CriticSource, Minibatch, UpdateStats};

/// Relative differences are taken against max(|a|, |b|, FLOOR): log π's mean crosses 0.
pub const FLOOR: f64 = 1e-3;

/// The largest relative difference between two updates' statistics (both with a critic).
pub fn worst(one: &UpdateStats, other: &UpdateStats) -> f64 {
    assert!(
        one.critic_loss.is_some() && other.critic_loss.is_some(),
        "a critic loss: {one:?} vs {other:?}"
    );
    super::members::worst(one, other, FLOOR)
}

/// A network shape and method: policy and estimator, observations, actions, hidden width,
/// batch, members, components, the log σ range, α ("fixed" or "auto") and the baseline's
/// actions per state.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub policy: &'static str,
    pub estimator: &'static str,
    pub obs: usize,
    pub actions: usize,
    pub hidden: usize,
    pub batch: usize,
    pub members: usize,
    pub components: usize,
    pub log_std: (f32, f32),
    pub alpha: &'static str,
    pub baseline: usize,
}

/// Pendulum's shapes (obs 3, action 1 in [−2, 2], hidden 32, batch 32) with the default log
/// σ range and 30 baseline actions.
pub fn pendulum(
    (policy, estimator): (&'static str, &'static str),
    members: usize,
    components: usize,
    alpha: &'static str,
) -> Shape {
    Shape {
        policy,
        estimator,
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

pub fn configs(shape: &Shape) -> Vec<Config> {
    member_configs(shape.policy, shape.estimator, shape.alpha)[..shape.members]
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
pub fn agent_of(shape: &Shape, configs: &[Config], fast: bool) -> (Agent, Vec<Pcg64>) {
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
pub fn pair(shape: &Shape) -> [(Agent, Vec<Pcg64>); 2] {
    let configs = configs(shape);
    [true, false].map(|fast| agent_of(shape, &configs, fast))
}

/// Every member's random minibatch: pendulum-like transitions for pendulum's shapes, else
/// uniform values with every third transition terminal.
pub fn batch(shape: &Shape, rng: &mut Pcg64) -> Minibatch {
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
pub fn copy_state(from: &Agent, to: &mut Agent) {
    for m in 0..from.members() {
        let state: HashMap<String, Tensor> = from.state(m).unwrap().into_iter().collect();
        to.load_state(m, &state).unwrap();
    }
}

/// The largest difference between two agents' parameters and moments (a NaN counts as the
/// largest), relative to each tensor's largest value but at least `floor(tensor name)`, and
/// where.
pub fn state_diff(one: &Agent, other: &Agent, floor: impl Fn(&str) -> f32) -> (f64, String) {
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
            let scale = b.iter().fold(floor(&name), |s, x| s.max(x.abs()));
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

/// The mixtures' [`state_diff`] floor: 1e-4, 1e-8 for the second moments (squared
/// gradients). A tensor whose gradient sums cancel to near zero (a bias whose gradient
/// Σ_rows is 1e-7 where its terms are 1e-3/B) carries the two paths' absolute rounding
/// differences (≈ 1e-10) as a large relative one.
pub fn mixture_floor(name: &str) -> f32 {
    if name.contains(".v.") {
        1e-8
    } else {
        1e-4
    }
}

/// A mixture's step by step comparison, from identical parameters, moments and generators
/// (the candle agent's state copied into the hand-written one before each update): each
/// update's statistics agree within `stats_tol`, log π's mean bit for bit, and the
/// parameters and moments it leaves within `state_tol` ([`mixture_floor`]). Returns the
/// largest differences (statistics, state).
pub fn step_by_step(
    shape: &Shape,
    updates: usize,
    seed: u64,
    (stats_tol, state_tol): (f64, f64),
) -> (f64, f64) {
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
                d <= stats_tol,
                "{shape:?} member {m} update {update}: {x:?} vs candle {y:?}"
            );
        }
        let (d, at) = state_diff(&fast, &slow, mixture_floor);
        max_state = max_state.max(d);
        assert!(
            d <= state_tol,
            "{shape:?} update {update}: parameters {d} at {at}"
        );
    }
    (max_stats, max_state)
}

/// A mixture's free-running comparison: each path from the same start for `updates`
/// updates (data from seed 8), the statistics compared update by update and the final
/// parameters and moments ([`mixture_floor`]) within `tol`. Returns the largest differences
/// (statistics, final state).
pub fn free_running(shape: &Shape, updates: usize, tol: f64) -> (f64, f64) {
    let [(mut fast, mut fast_rngs), (mut slow, mut slow_rngs)] = pair(shape);
    let mut data = Pcg64::seed_from_u64(8);
    let mut max_diff: f64 = 0.0;
    for update in 0..updates {
        let batch = batch(shape, &mut data);
        let a = fast.update(&batch, &mut fast_rngs).unwrap();
        let b = slow.update(&batch, &mut slow_rngs).unwrap();
        for (m, (x, y)) in a.iter().zip(&b).enumerate() {
            let d = worst(x, y);
            max_diff = max_diff.max(d);
            assert!(
                d <= tol,
                "{shape:?} member {m} update {update}: {x:?} vs candle {y:?}"
            );
        }
    }
    let (d, at) = state_diff(&fast, &slow, mixture_floor);
    assert!(d <= tol, "{shape:?}: parameters {d} at {at}");
    (max_diff, d)
}

/// On the hand-written path, each member of a population of pendulum's `shape` computes its
/// solo run's bits: statistics and, after `updates` updates (data from seed 99), every
/// parameter and moment.
pub fn population_members_give_solo_bits(shape: &Shape, updates: usize) {
    assert!(shape.obs == 3 && shape.actions == 1, "pendulum's shapes");
    let configs = configs(shape);
    let (mut population, mut pop_rngs) = agent_of(shape, &configs, true);
    let mut solos: Vec<(Agent, Vec<Pcg64>)> = configs
        .iter()
        .map(|c| agent_of(shape, std::slice::from_ref(c), true))
        .collect();
    let alpha = shape.alpha;
    let mut data = Pcg64::seed_from_u64(99);
    for update in 0..updates {
        let batches: Vec<Batch> = (0..shape.members)
            .map(|_| random_batch(&mut data, shape.batch))
            .collect();
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

/// Makes member m diverged: its log σ head's bias NaN, through its state.
pub fn diverge(agent: &mut Agent, m: usize) {
    // Copies: the state's tensors are views of the agent's own parameters.
    let mut state: HashMap<String, Tensor> = agent
        .state(m)
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.copy().unwrap()))
        .collect();
    let bias = &state["actor.log_std.bias"];
    let nan = Tensor::full(f32::NAN, bias.shape(), &Device::Cpu).unwrap();
    state.insert("actor.log_std.bias".into(), nan);
    agent.load_state(m, &state).unwrap();
}
