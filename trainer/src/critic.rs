//! Double Q-network with Polyak-averaged target copies (DESIGN.md §5).

use crate::nn::Dense;
use candle_core::{Device, Result, Tensor, Var, D};
use rand::Rng;

/// Q(s, a): MLP over the concatenated observation and action, ReLU, one output.
#[derive(Debug, Clone)]
pub struct QNetwork {
    layers: Vec<Dense>,
}

impl QNetwork {
    pub fn new(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<QNetwork> {
        let mut layers = Vec::new();
        let mut inputs = obs_dim + action_dim;
        for &width in hidden.iter().chain(std::iter::once(&1)) {
            layers.push(Dense::new(inputs, width, rng, device)?);
            inputs = width;
        }
        Ok(QNetwork { layers })
    }

    /// Q for `obs` [B, O] and `action` [B, A]: [B].
    pub fn forward(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self.run(obs, action, false)
    }

    /// As [`QNetwork::forward`] with the weights held constant: gradients still flow to the
    /// action (the actor's loss needs ∇ₐQ) but none are computed for the critic's weights.
    pub fn forward_frozen(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self.run(obs, action, true)
    }

    fn run(&self, obs: &Tensor, action: &Tensor, frozen: bool) -> Result<Tensor> {
        let mut x = Tensor::cat(&[obs, action], D::Minus1)?;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = if frozen {
                layer.forward_frozen(&x)?
            } else {
                layer.forward(&x)?
            };
            if i < last {
                x = x.relu()?;
            }
        }
        x.squeeze(D::Minus1)
    }

    pub fn named_vars(&self, prefix: &str) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.named_vars(&format!("{prefix}.{i}")))
            .collect()
    }
}

/// Two Q-networks and their targets.
#[derive(Debug, Clone)]
pub struct DoubleQ {
    pub q1: QNetwork,
    pub q2: QNetwork,
    pub target1: QNetwork,
    pub target2: QNetwork,
}

impl DoubleQ {
    pub fn new(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<DoubleQ> {
        let q1 = QNetwork::new(obs_dim, action_dim, hidden, rng, device)?;
        let q2 = QNetwork::new(obs_dim, action_dim, hidden, rng, device)?;
        let copy = |q: &QNetwork| -> Result<QNetwork> {
            let layers = q
                .layers
                .iter()
                .map(|l| {
                    Ok(Dense {
                        weight: Var::from_tensor(&l.weight.as_tensor().copy()?)?,
                        bias: Var::from_tensor(&l.bias.as_tensor().copy()?)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(QNetwork { layers })
        };
        Ok(DoubleQ {
            target1: copy(&q1)?,
            target2: copy(&q2)?,
            q1,
            q2,
        })
    }

    /// min(Q1, Q2) with the critics' weights held constant, for the actor's loss: gradients
    /// reach the action, none are computed for the critics: [B].
    pub fn min_q_frozen(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self.q1
            .forward_frozen(obs, action)?
            .minimum(&self.q2.forward_frozen(obs, action)?)
    }

    /// min(Q̄1, Q̄2) of the targets, no gradient: [B].
    pub fn min_target_q(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        Ok(self
            .target1
            .forward(obs, action)?
            .minimum(&self.target2.forward(obs, action)?)?
            .detach())
    }

    /// θ̄ ← (1 − τ) θ̄ + τ θ for both targets.
    pub fn polyak_update(&self, tau: f64) -> Result<()> {
        for (online, target) in [(&self.q1, &self.target1), (&self.q2, &self.target2)] {
            for (o, t) in online.layers.iter().zip(&target.layers) {
                for (ov, tv) in [(&o.weight, &t.weight), (&o.bias, &t.bias)] {
                    tv.set(&((tv.as_tensor() * (1.0 - tau))? + (ov.as_tensor() * tau)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// Online parameters (`critic.q1.0.weight`, …) and targets (`critic.target1.0.weight`, …).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut v = self.q1.named_vars("critic.q1");
        v.extend(self.q2.named_vars("critic.q2"));
        v.extend(self.target1.named_vars("critic.target1"));
        v.extend(self.target2.named_vars("critic.target2"));
        v
    }

    /// The parameters the critic optimiser updates.
    pub fn online_vars(&self) -> Vec<(String, Var)> {
        let mut v = self.q1.named_vars("critic.q1");
        v.extend(self.q2.named_vars("critic.q2"));
        v
    }
}
