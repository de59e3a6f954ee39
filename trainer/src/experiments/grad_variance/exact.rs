//! The exact actor objective and its gradient for one-dimensional actions, by quadrature:
//!
//!   J(θ) = mean over states s of Σ_k w_k(s) ∫ φ(x) f_s(μ_k(s) + σ_k(s) x) dx,
//!   f_s(u) = Q(s, a(u)) − α log π(a(u)|s),
//!
//! u the pre-squash action, a(u) the policy's squash and φ the standard normal density.
//! Each component's integral is taken in its own standard variable x, by composite
//! Gauss–Legendre panels on [−X_MAX, X_MAX] (`experiments::quadrature`, shared with the
//! stationary study). The nodes are reparameterised, u = μ_k + σ_k x, so candle's autodiff
//! of the rule's sum is the rule applied to ∇_θ of the integrand: no derivative of a density
//! is written by hand. log π, the squash and Q come from the actor and the critic themselves
//! (one definition of the policy's math).

use super::flat_gradient;
use crate::sac::actor::MixturePolicy;
use crate::sac::estimators::Critic;
use candle_core::{Result, Tensor, D};

/// Half-width of the integration range in standard units: N(0, 1) has 1.2e-15 of its mass
/// beyond ±8, below f32's resolution of J.
pub const X_MAX: f64 = 8.0;
/// Gauss–Legendre nodes per panel.
pub const NODES_PER_PANEL: usize = 8;
/// Quadrature nodes (all components of all states) evaluated in one autodiff graph: bounds
/// the memory of a learned critic's activations (65 536 rows × 64 wide × 2 networks ≈ 34 MB
/// per layer), whatever `--panels` is: a rule with more nodes than this per state is taken a
/// run of panels at a time.
pub const NODE_BUDGET: usize = 1 << 16;

/// The composite rule: `panels` equal panels on [−X_MAX, X_MAX], [`NODES_PER_PANEL`] nodes
/// each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quadrature {
    pub panels: usize,
}

impl Quadrature {
    /// Panels of width 1/32 standard unit: resolves features down to about 0.03 σ (a random
    /// bandit's narrowest peak, s = 0.1 on the action scale 3, is 0.033 wide in u at u = 0).
    pub const DEFAULT: Quadrature = Quadrature { panels: 512 };

    /// The same rule with every panel halved, to measure the rule's own error.
    pub fn refined(self) -> Quadrature {
        Quadrature {
            panels: 2 * self.panels,
        }
    }

    /// Nodes x_j and weights c_j (Gauss–Legendre weight × φ(x_j)), so that
    /// ∫ φ(x) g(x) dx ≈ Σ_j c_j g(x_j).
    pub fn rule(self) -> Vec<(f64, f64)> {
        self.rule_of_panels(0..self.panels)
    }

    /// The nodes and weights of [`Quadrature::rule`] that lie in the panels `panels`.
    fn rule_of_panels(self, panels: std::ops::Range<usize>) -> Vec<(f64, f64)> {
        let base = crate::experiments::quadrature::gauss_legendre(NODES_PER_PANEL);
        let width = 2.0 * X_MAX / self.panels as f64;
        let phi = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        panels
            .flat_map(|p| {
                let mid = -X_MAX + width * (p as f64 + 0.5);
                base.iter().map(move |&(t, g)| {
                    let x = mid + 0.5 * width * t;
                    (x, 0.5 * width * g * phi(x))
                })
            })
            .collect()
    }
}

/// J and ∇J with respect to the actor's parameters (flattened in the order of
/// [`MixturePolicy::named_vars`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Exact {
    pub value: f64,
    pub gradient: Vec<f64>,
}

/// J(θ) and ∇J over the states `obs` [1, B, O] for the actor `policy` (one member) with Q
/// from `critic` and entropy scale `alpha`, or None when the action is not one-dimensional
/// (no quadrature rule here for that).
pub fn objective(
    policy: &MixturePolicy,
    critic: &dyn Critic,
    obs: &Tensor,
    alpha: f64,
    quadrature: Quadrature,
) -> Result<Option<Exact>> {
    objective_within(policy, critic, obs, alpha, quadrature, NODE_BUDGET)
}

/// [`objective`] with at most `budget` quadrature nodes (all components of all states) in
/// one autodiff graph (at least one panel of one state): the states, and for a rule finer
/// than `budget` the panels, are taken a part at a time. J is a sum over states and panels,
/// so each part is differentiated on its own and the parts' values and gradients are summed
/// (in f64).
pub fn objective_within(
    policy: &MixturePolicy,
    critic: &dyn Critic,
    obs: &Tensor,
    alpha: f64,
    quadrature: Quadrature,
    budget: usize,
) -> Result<Option<Exact>> {
    if policy.spec().action_dim != 1 {
        return Ok(None);
    }
    let (_, states, _) = obs.dims3()?;
    let nodes_per_panel = NODES_PER_PANEL * policy.spec().components;
    let panels_per_part = (budget / nodes_per_panel).clamp(1, quadrature.panels.max(1));
    let states_per_part = (budget / (panels_per_part * nodes_per_panel)).max(1);
    let mut value = 0.0;
    let mut gradient: Option<Vec<f64>> = None;
    for first_panel in (0..quadrature.panels).step_by(panels_per_part) {
        let panels = first_panel..(first_panel + panels_per_part).min(quadrature.panels);
        let rule = quadrature.rule_of_panels(panels);
        let m = rule.len();
        let x: Vec<f32> = rule.iter().map(|&(x, _)| x as f32).collect();
        let c: Vec<f32> = rule.iter().map(|&(_, c)| c as f32).collect();
        let x = Tensor::from_vec(x, (1, 1, 1, m, 1), obs.device())?;
        let c = Tensor::from_vec(c, (1, 1, 1, m), obs.device())?;
        for start in (0..states).step_by(states_per_part) {
            let rows = states_per_part.min(states - start);
            let part = obs.narrow(1, start, rows)?;
            let sum = integrate(policy, critic, &part, alpha, &x, &c)?;
            // J is a mean over states.
            let share = (sum / states as f64)?;
            value += f64::from(share.to_scalar::<f32>()?);
            let g = flat_gradient(policy, &share.backward()?)?;
            gradient = Some(match gradient {
                None => g,
                Some(total) => total.iter().zip(&g).map(|(a, b)| a + b).collect(),
            });
        }
    }
    Ok(gradient.map(|gradient| Exact { value, gradient }))
}

/// Σ over the states `obs` [1, b, O] of Σ_k w_k Σ_j c_j f(μ_k + σ_k x_j): a scalar.
fn integrate(
    policy: &MixturePolicy,
    critic: &dyn Critic,
    obs: &Tensor,
    alpha: f64,
    x: &Tensor,
    c: &Tensor,
) -> Result<Tensor> {
    let heads = policy.heads(obs)?;
    let (s, b, k, a) = heads.mean.dims4()?;
    let m = x.dim(3)?;
    // u [1, b, k, m, 1]: every node of every component, as M = k·m actions per state.
    let u = heads
        .mean
        .unsqueeze(3)?
        .broadcast_add(&heads.log_std.exp()?.unsqueeze(3)?.broadcast_mul(x)?)?
        .reshape((s, b, k * m, a))?;
    let log_pi = policy.log_prob_u_many(&heads, &u)?.reshape((s, b, k, m))?;
    let actions = policy.squash(&u)?.reshape((s, b * k * m, a))?;
    let states = obs
        .unsqueeze(2)?
        .repeat((1, 1, k * m, 1))?
        .reshape((s, b * k * m, ()))?;
    let q = critic.q(&states, &actions)?.reshape((s, b, k, m))?;
    let f = (q - (log_pi * alpha)?)?;
    let per_component = f.broadcast_mul(c)?.sum(D::Minus1)?; // [1, b, k]
    (heads.log_w.exp()? * per_component)?.sum_all()
}
