//! Members of a small pendulum population and random minibatches for them: the agent-level
//! tests of population training (tests/population.rs) and of the CUDA path (tests/cuda.rs).

use candle_core::Device;
use clap::ValueEnum;
use rand::Rng;
use rand_pcg::Pcg64;
use trainer::{
    Agent, Alpha, Batch, Config, CriticSource, Estimator, Minibatch, PolicyKind, TrainArgs,
    UpdateStats,
};

/// Every estimator, as (policy, estimator, α: fixed or auto); rep also with automatic α.
pub const ESTIMATOR_CASES: [(&str, &str, &str); 6] = [
    ("squashed", "rep", "fixed"),
    ("squashed", "rep", "auto"),
    ("sgm", "like", "fixed"),
    ("sgm", "halfrep", "fixed"),
    ("sgm", "gumbel", "fixed"),
    ("sgm", "mrp", "auto"),
];

/// Three members that differ in everything a member may differ in.
pub fn member_configs(policy: &str, estimator: &str, alpha: &str) -> Vec<Config> {
    let settings = [
        (1u64, 1e-3, 1e-3, 0.05),
        (2, 3e-4, 1e-3, 0.2),
        (3, 1e-3, 5e-4, 0.1),
    ];
    settings
        .iter()
        .map(|&(seed, actor_lr, critic_lr, fixed_alpha)| {
            let alpha = match alpha {
                "auto" => Alpha::Auto,
                _ => Alpha::Fixed(fixed_alpha),
            };
            let args = TrainArgs {
                env: Some("shaped-pendulum".parse().unwrap()),
                policy: Some(PolicyKind::from_str(policy, true).unwrap()),
                estimator: Some(Estimator::from_str(estimator, true).unwrap()),
                components: Some(if policy == "squashed" { 1 } else { 3 }),
                hidden: Some(32),
                seed: Some(seed),
                actor_lr: Some(actor_lr),
                critic_lr: Some(critic_lr),
                alpha: Some(alpha),
                ..TrainArgs::default()
            };
            args.resolve().unwrap()
        })
        .collect()
}

/// A minibatch of random pendulum-like transitions.
pub fn random_batch(rng: &mut Pcg64, n: usize) -> Batch {
    let mut draw = |count: usize, lo: f32, hi: f32| -> Vec<f32> {
        (0..count).map(|_| rng.random_range(lo..hi)).collect()
    };
    Batch {
        obs: draw(3 * n, -1.0, 1.0),
        actions: draw(n, -2.0, 2.0),
        rewards: draw(n, -16.0, 0.0),
        next_obs: draw(3 * n, -1.0, 1.0),
        terminated: (0..n).map(|i| if i % 7 == 0 { 1.0 } else { 0.0 }).collect(),
    }
}

/// Members' host minibatches as the agent takes them, on `device`.
pub fn stack(batches: &[Batch], device: &Device) -> Minibatch {
    Minibatch::from_batches(batches, 3, 1, device).unwrap()
}

pub fn agent(configs: &[Config], rngs: &mut [Pcg64], device: &Device) -> Agent {
    Agent::new(
        configs,
        3,
        &[-2.0],
        &[2.0],
        CriticSource::LearnedDoubleQ,
        rngs,
        device,
    )
    .unwrap()
}

/// |a − b| relative to the larger of |a|, |b| and `floor`.
pub fn relative(a: f32, b: f32, floor: f64) -> f64 {
    let (a, b) = (f64::from(a), f64::from(b));
    (a - b).abs() / a.abs().max(b.abs()).max(floor)
}

/// The largest difference between two updates' statistics, each [`relative`] to `floor`.
pub fn worst(one: &UpdateStats, other: &UpdateStats, floor: f64) -> f64 {
    let critic = match (one.critic_loss, other.critic_loss) {
        (Some(p), Some(s)) => relative(p, s, floor),
        _ => 0.0,
    };
    [
        critic,
        relative(one.actor_loss, other.actor_loss, floor),
        relative(one.alpha, other.alpha, floor),
        relative(one.log_prob_mean, other.log_prob_mean, floor),
    ]
    .into_iter()
    .fold(0.0, f64::max)
}
