//! Each unbiased estimator's mean single-sample gradient matches the exact gradient of
//! J(θ) = E_π[r(a)] − α E_π[log π(a)] on a one-dimensional problem with a known reward
//! (the bimodal bandit), the exact gradient coming from quadrature. DESIGN.md §4.

use candle_core::{Device, Tensor, D};
use policy_core::format::{Activation, Header};
use rand::SeedableRng;
use trainer::envs::Bandit;
use trainer::to_f32_vec;
use trainer::{actor_loss, Critic, Estimator, EstimatorSettings};
use trainer::{Heads, MixturePolicy};

const ALPHA: f64 = 0.1;
const BATCHES: usize = 100;
const BATCH: usize = 1000;
/// Two-sided Student-t (99 degrees of freedom) quantile at a family-wise level of 0.01
/// Bonferroni-split over up to 1000 gradient coordinates: 0.01/1000 → 4.66.
const T_CRIT: f64 = 4.66;

/// A policy whose component log-stds are shifted by `log_std_shift` from the initialisation.
fn narrowed(components: usize, seed: u64, log_std_shift: f64) -> MixturePolicy {
    let p = policy(components, seed);
    for (name, var) in p.named_vars() {
        if name == "actor.log_std.bias" {
            var.set(&var.as_tensor().affine(1.0, log_std_shift).unwrap())
                .unwrap();
        }
    }
    p
}

fn policy(components: usize, seed: u64) -> MixturePolicy {
    let spec = Header::new(
        1,
        &[16, 16],
        1,
        components,
        Activation::Relu,
        true,
        (-20.0, 2.0),
        &[-3.0],
        &[3.0],
    )
    .unwrap();
    MixturePolicy::new(
        spec,
        &mut [rand_pcg::Pcg64::seed_from_u64(seed)],
        &Device::Cpu,
    )
    .unwrap()
}

fn flat_grad(policy: &MixturePolicy, loss: &Tensor) -> Vec<f64> {
    let grads = loss.backward().unwrap();
    let mut out = Vec::new();
    for (_, var) in policy.named_vars() {
        let g = grads.get(var.as_tensor()).map(|g| to_f32_vec(g).unwrap());
        let n = var.as_tensor().elem_count();
        out.extend(g.unwrap_or_else(|| vec![0.0; n]).into_iter().map(f64::from));
    }
    out
}

/// −∇J by Simpson quadrature over the pre-squash action u ∈ [−30, 30] (60 001 points):
/// J = ∫ p_u(u) (r(a(u)) − α log π(a(u))) du.
fn exact_negative_gradient(policy: &MixturePolicy, bandit: &Bandit, alpha: f64) -> Vec<f64> {
    let device = Device::Cpu;
    let n = 60_000;
    let (lo, hi) = (-30.0f64, 30.0f64);
    let h = (hi - lo) / n as f64;
    let u: Vec<f32> = (0..=n).map(|i| (lo + h * i as f64) as f32).collect();
    let w: Vec<f32> = (0..=n)
        .map(|i| {
            (h / 3.0
                * if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                }) as f32
        })
        .collect();
    // One member, n + 1 rows, one action each: [S, B, M, A] = [1, n + 1, 1, 1].
    let u = Tensor::from_vec(u, (1, n + 1, 1, 1), &device).unwrap();
    let w = Tensor::from_vec(w, (1, n + 1), &device).unwrap();
    let heads = policy
        .heads(&Tensor::zeros((1, 1, 1), candle_core::DType::F32, &device).unwrap())
        .unwrap();
    let heads = Heads {
        mean: heads.mean.repeat((1, n + 1, 1, 1)).unwrap(),
        log_std: heads.log_std.repeat((1, n + 1, 1, 1)).unwrap(),
        log_w: heads.log_w.repeat((1, n + 1, 1)).unwrap(),
    };
    let log_p_u = policy
        .log_density_u_many(&heads, &u)
        .unwrap()
        .squeeze(2)
        .unwrap();
    let log_pi = (&log_p_u - policy.squash_log_det(&u).unwrap().squeeze(2).unwrap()).unwrap();
    let a = policy.squash(&u.squeeze(2).unwrap()).unwrap();
    let r = bandit.reward_tensor(&a).unwrap().squeeze(2).unwrap();
    let integrand = (log_p_u.exp().unwrap() * (r - (log_pi * alpha).unwrap()).unwrap()).unwrap();
    let j = (integrand * w).unwrap().sum_all().unwrap();
    let neg_j = j.neg().unwrap();
    flat_grad(policy, &neg_j)
}

struct Summary {
    mean: Vec<f64>,
    se: Vec<f64>,
    /// Σ over coordinates of the variance of one single-sample gradient.
    total_variance: f64,
}

fn monte_carlo(
    estimator: Estimator,
    policy: &MixturePolicy,
    bandit: &Bandit,
    seed: u64,
) -> Summary {
    let device = Device::Cpu;
    let critic = |_obs: &Tensor, a: &Tensor| bandit.reward_tensor(a)?.squeeze(D::Minus1);
    let settings = EstimatorSettings {
        alpha: vec![ALPHA],
        ..EstimatorSettings::default()
    };
    let obs = Tensor::zeros((1, BATCH, 1), candle_core::DType::F32, &device).unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let grads: Vec<Vec<f64>> = (0..BATCHES)
        .map(|_| {
            let out = actor_loss(
                estimator,
                policy,
                &obs,
                &critic as &dyn Critic,
                &settings,
                std::slice::from_mut(&mut rng),
            )
            .unwrap();
            flat_grad(policy, &out.loss.sum_all().unwrap())
        })
        .collect();
    let dims = grads[0].len();
    let m = BATCHES as f64;
    let mean: Vec<f64> = (0..dims)
        .map(|i| grads.iter().map(|g| g[i]).sum::<f64>() / m)
        .collect();
    let var_of_batch_mean: Vec<f64> = (0..dims)
        .map(|i| grads.iter().map(|g| (g[i] - mean[i]).powi(2)).sum::<f64>() / (m - 1.0))
        .collect();
    Summary {
        se: var_of_batch_mean.iter().map(|v| (v / m).sqrt()).collect(),
        total_variance: var_of_batch_mean.iter().sum::<f64>() * BATCH as f64,
        mean,
    }
}

/// Largest |mean − exact| / SE over coordinates (coordinates with no variance must match to
/// 1e-6, e.g. first-layer weights, whose input is always 0 here).
fn max_t(summary: &Summary, exact: &[f64]) -> f64 {
    assert!(
        exact.len() <= 1000,
        "T_CRIT is derived for at most 1000 coordinates"
    );
    let mut worst: f64 = 0.0;
    for ((&m, &se), &e) in summary.mean.iter().zip(&summary.se).zip(exact) {
        // f32 quadrature and summation leave ~1e-6 of numerical error in `exact`.
        let scale = (se * se + 1e-12).sqrt();
        worst = worst.max((m - e).abs() / scale);
    }
    worst
}

#[test]
fn unbiased_estimators_match_the_quadrature_gradient() {
    let bandit = Bandit::bimodal();
    let mixture = policy(3, 11);
    let exact = exact_negative_gradient(&mixture, &bandit, ALPHA);
    println!("estimator  max |t|   total single-sample gradient variance   (K = 3, α = {ALPHA})");
    for estimator in [
        Estimator::Like,
        Estimator::HalfRep,
        Estimator::Mrp,
        Estimator::Gumbel,
    ] {
        let summary = monte_carlo(estimator, &mixture, &bandit, 5);
        let t = max_t(&summary, &exact);
        println!("{:<9} {t:>8.2}   {:.4e}", estimator, summary.total_variance);
        if estimator != Estimator::Gumbel {
            assert!(
                t <= T_CRIT,
                "{}: max |t| {t} > {T_CRIT}: biased gradient",
                estimator
            );
        }
    }

    let base = policy(1, 12);
    let exact = exact_negative_gradient(&base, &bandit, ALPHA);
    let summary = monte_carlo(Estimator::Rep, &base, &bandit, 6);
    let t = max_t(&summary, &exact);
    println!("rep (K=1) {t:>8.2}   {:.4e}", summary.total_variance);
    assert!(t <= T_CRIT, "rep: max |t| {t}");
}

#[test]
fn the_comparison_detects_a_wrong_gradient() {
    // The same check against the exact gradient for another α must fail, so the test above
    // can fail.
    let bandit = Bandit::bimodal();
    let mixture = policy(3, 11);
    let wrong = exact_negative_gradient(&mixture, &bandit, 2.0 * ALPHA);
    let summary = monte_carlo(Estimator::Mrp, &mixture, &bandit, 7);
    let t = max_t(&summary, &wrong);
    assert!(
        t > T_CRIT,
        "max |t| {t} against the gradient for α = {}",
        2.0 * ALPHA
    );
}

#[test]
fn which_of_mrp_and_like_has_less_variance_depends_on_the_component_width() {
    // Measured while writing this test (single-sample gradient variance summed over all
    // parameters, bimodal bandit, α = 0.1, K = 3, 30-sample baseline for like):
    //   log-std shift   0: like 0.16  mrp 1.8   (σ ≈ 1 at initialisation)
    //   log-std shift  -1: like 0.35  mrp 3.1
    //   log-std shift  -2: like 8.0   mrp 2.9   (σ ≈ 0.14)
    // The score-function variance grows like 1/σ² while the pathwise one does not, so `mrp`
    // is the lower-variance estimator once components are narrow (as they become during
    // training), but not for wide, freshly initialised components. Both orderings are
    // asserted so that a change in either estimator shows up here.
    let bandit = Bandit::bimodal();
    let wide = narrowed(3, 11, 0.0);
    let (like, mrp) = (
        monte_carlo(Estimator::Like, &wide, &bandit, 8),
        monte_carlo(Estimator::Mrp, &wide, &bandit, 8),
    );
    println!(
        "wide:   like {:.3e}  mrp {:.3e}",
        like.total_variance, mrp.total_variance
    );
    assert!(like.total_variance < mrp.total_variance);
    let narrow = narrowed(3, 11, -2.0);
    let (like, mrp) = (
        monte_carlo(Estimator::Like, &narrow, &bandit, 9),
        monte_carlo(Estimator::Mrp, &narrow, &bandit, 9),
    );
    println!(
        "narrow: like {:.3e}  mrp {:.3e}",
        like.total_variance, mrp.total_variance
    );
    assert!(
        mrp.total_variance < like.total_variance,
        "mrp should have lower variance than like for narrow components"
    );
}

/// gumbel's straight-through gradient reaches the mixing logits (DESIGN.md §4: z =
/// onehot(argmax y) + y − sg(y), the backward pass through y = softmax((log w + g)/τ)). Two
/// components of the bimodal bandit's policy, one at the reward's peak a = 1 and one on its
/// slope at a = 2.5, so narrow (σ = e⁻¹⁰ in u) that every draw sits at its mean, equal
/// weights, α = 0 (so log π, the other path to the logits, is off). Then each row's gradient
/// on the logits is y₀y₁ (∂L/∂u)(u₁ − u₀)/τ on the far component's logit and its negative on
/// the peak's, with ∂L/∂u ≥ 0 at both means (the reward falls to the right of its peak):
/// the sum must favour the peak. (With wide components the estimator's bias can reverse
/// that sign: the noise of the drawn component correlates with ∂L/∂u.) A softmax without a
/// backward pass, as candle-nn's fused `softmax_last_dim` is, gives exactly 0 here.
#[test]
fn gumbel_sends_the_straight_through_gradient_to_the_mixing_logits() {
    let device = Device::Cpu;
    let p = policy(2, 5);
    // u-space means of a = 3 tanh(u) = 1 and 2.5; draws at the means; equal weights.
    let heads: [(&str, Vec<f32>); 3] = [
        (
            "actor.mean",
            vec![(1.0f32 / 3.0).atanh(), (2.5f32 / 3.0).atanh()],
        ),
        ("actor.log_std", vec![-10.0; 2]),
        ("actor.logits", vec![0.0; 2]),
    ];
    for (name, var) in p.named_vars() {
        for (head, bias) in &heads {
            if name == format!("{head}.weight") {
                var.set(&var.as_tensor().zeros_like().unwrap()).unwrap();
            } else if name == format!("{head}.bias") {
                let shape = var.as_tensor().shape().clone();
                let value = Tensor::new(bias.as_slice(), &device).unwrap();
                var.set(&value.reshape(shape).unwrap()).unwrap();
            }
        }
    }
    let bandit = Bandit::bimodal();
    let critic = |_obs: &Tensor, a: &Tensor| bandit.reward_tensor(a)?.squeeze(D::Minus1);
    let settings = EstimatorSettings {
        alpha: vec![0.0],
        ..EstimatorSettings::default()
    };
    let obs = Tensor::zeros((1, BATCH, 1), candle_core::DType::F32, &device).unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
    let out = actor_loss(
        Estimator::Gumbel,
        &p,
        &obs,
        &critic as &dyn Critic,
        &settings,
        std::slice::from_mut(&mut rng),
    )
    .unwrap();
    let grads = out.loss.sum_all().unwrap().backward().unwrap();
    let logits_bias = p
        .named_vars()
        .into_iter()
        .find(|(name, _)| name == "actor.logits.bias")
        .unwrap()
        .1;
    let g = grads
        .get(logits_bias.as_tensor())
        .map(|g| to_f32_vec(g).unwrap())
        .unwrap_or_else(|| vec![0.0; 2]);
    assert!(
        g[0] < 0.0 && g[1] > 0.0,
        "∂loss/∂logits {g:?}: the straight-through gradient should favour the component at the peak"
    );
}
