//! Double Q-network with Polyak-averaged target copies (DESIGN.md §5).
//!
//! The two Q-networks are one two-member ensemble: every layer holds both members' weights
//! ([2, in, out]) and runs as one batched matrix product, which halves the number of tensor
//! operations per update (candle's per-operation cost dominates at these sizes). A population
//! of S runs stacks its members' pairs: [2S, in, out], Q1 and Q2
//! of member i at 2i and 2i + 1.

use crate::nn::dense_op::{dense, WeightLayout};
use candle_core::{Device, Result, Tensor, Var, D};
use policy_core::format::Activation;
use rand::Rng;

/// Networks per run: Q1 and Q2.
const PAIR: usize = 2;

/// One layer of every network: W [2S, in, out], b [2S, 1, out].
#[derive(Debug, Clone)]
struct EnsembleDense {
    weight: Var,
    bias: Var,
}

impl EnsembleDense {
    /// Each network initialised like PyTorch's `Linear`: uniform in ±1/√in; run i's pair
    /// from `rngs[i]` (both weights, then both biases, as a solo run draws them).
    fn new<R: Rng>(inputs: usize, outputs: usize, rngs: &mut [R], device: &Device) -> Result<Self> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for rng in rngs.iter_mut() {
            weights.extend((0..PAIR * inputs * outputs).map(|_| rng.random_range(-bound..bound)));
            biases.extend((0..PAIR * outputs).map(|_| rng.random_range(-bound..bound)));
        }
        let networks = PAIR * rngs.len();
        let weight = Tensor::from_vec(weights, (networks, inputs, outputs), device)?;
        let bias = Tensor::from_vec(biases, (networks, 1, outputs), device)?;
        Ok(EnsembleDense {
            weight: Var::from_tensor(&weight)?,
            bias: Var::from_tensor(&bias)?,
        })
    }

    /// act(x W + b): `x` [2S, B, in] → [2S, B, out]; `frozen` detaches the parameters.
    fn forward(&self, x: &Tensor, frozen: bool, activation: Option<Activation>) -> Result<Tensor> {
        let (w, b) = match frozen {
            true => (
                self.weight.as_tensor().detach(),
                self.bias.as_tensor().detach(),
            ),
            false => (
                self.weight.as_tensor().clone(),
                self.bias.as_tensor().clone(),
            ),
        };
        dense(x, &w, &b, WeightLayout::InOut, activation)
    }

    fn copy(&self) -> Result<Self> {
        Ok(EnsembleDense {
            weight: Var::from_tensor(&self.weight.as_tensor().copy()?)?,
            bias: Var::from_tensor(&self.bias.as_tensor().copy()?)?,
        })
    }
}

/// Q1 and Q2 as one ensemble: MLP over the concatenated observation and action, ReLU.
#[derive(Debug, Clone)]
pub struct QEnsemble {
    layers: Vec<EnsembleDense>,
}

impl QEnsemble {
    fn new<R: Rng>(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        rngs: &mut [R],
        device: &Device,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut inputs = obs_dim + action_dim;
        for &width in hidden.iter().chain(std::iter::once(&1)) {
            layers.push(EnsembleDense::new(inputs, width, rngs, device)?);
            inputs = width;
        }
        Ok(QEnsemble { layers })
    }

    /// (Q1, Q2) for `obs` [S, B, O] and `action` [S, B, A], as [S, 2, B].
    pub fn forward(&self, obs: &Tensor, action: &Tensor, frozen: bool) -> Result<Tensor> {
        let x = Tensor::cat(&[obs, action], D::Minus1)?;
        let (s, b, width) = x.dims3()?;
        let mut x = if s == 1 {
            // One run: both networks read the same rows (member stride 0, no copy).
            x.broadcast_as((PAIR, b, width))?
        } else {
            x.unsqueeze(1)?
                .broadcast_as((s, PAIR, b, width))?
                .contiguous()?
                .reshape((s * PAIR, b, width))?
        };
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let activation = (i < last).then_some(Activation::Relu);
            x = layer.forward(&x, frozen, activation)?;
        }
        x.reshape((s, PAIR, b))
    }

    /// Every layer's (weight [2S, in, out], bias [2S, 1, out]), input layer first.
    pub(crate) fn layer_vars(&self) -> impl Iterator<Item = (&Var, &Var)> + '_ {
        self.layers.iter().map(|l| (&l.weight, &l.bias))
    }

    fn named_vars(&self, prefix: &str) -> Vec<(String, Var)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                [
                    (format!("{prefix}.{i}.weight"), l.weight.clone()),
                    (format!("{prefix}.{i}.bias"), l.bias.clone()),
                ]
            })
            .collect()
    }
}

/// The two Q-networks and their targets.
#[derive(Debug, Clone)]
pub struct DoubleQ {
    pub online: QEnsemble,
    pub target: QEnsemble,
}

impl DoubleQ {
    pub fn new<R: Rng>(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        rngs: &mut [R],
        device: &Device,
    ) -> Result<DoubleQ> {
        let online = QEnsemble::new(obs_dim, action_dim, hidden, rngs, device)?;
        let target = QEnsemble {
            layers: online
                .layers
                .iter()
                .map(EnsembleDense::copy)
                .collect::<Result<_>>()?,
        };
        Ok(DoubleQ { online, target })
    }

    /// (Q1, Q2) of the online networks, [S, 2, B], for the critic's loss.
    pub fn q_both(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self.online.forward(obs, action, false)
    }

    /// min(Q1, Q2) with the critics' weights held constant, for the actor's loss: gradients
    /// reach the action, none are computed for the critics: [S, B].
    pub fn min_q_frozen(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        self.online.forward(obs, action, true)?.min(1)
    }

    /// min(Q̄1, Q̄2) of the targets, no gradient: [S, B].
    pub fn min_target_q(&self, obs: &Tensor, action: &Tensor) -> Result<Tensor> {
        Ok(self.target.forward(obs, action, true)?.min(1)?.detach())
    }

    /// θ̄ ← (1 − τ) θ̄ + τ θ for both targets: in place on the CPU, as tensor operations
    /// elsewhere (the same roundings either way).
    pub fn polyak_update(&self, tau: f64) -> Result<()> {
        for (o, t) in self.online.layers.iter().zip(&self.target.layers) {
            for (ov, tv) in [(&o.weight, &t.weight), (&o.bias, &t.bias)] {
                if tv.device().is_cpu() {
                    tv.as_tensor()
                        .inplace_op2(ov.as_tensor(), &Polyak { tau })?;
                } else {
                    tv.set(&((tv.as_tensor() * (1.0 - tau))? + (ov.as_tensor() * tau)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// Online parameters (`critic.q.0.weight`, …) and targets (`critic.target.0.weight`, …).
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut v = self.online.named_vars("critic.q");
        v.extend(self.target.named_vars("critic.target"));
        v
    }

    /// The parameters the critic optimiser updates.
    pub fn online_vars(&self) -> Vec<(String, Var)> {
        self.online.named_vars("critic.q")
    }
}

/// θ̄ ← (1 − τ) θ̄ + τ θ on the target's storage (the online parameters the second operand),
/// rounded as the tensor expression `θ̄ · (1 − τ) + θ · τ` rounds: each product is candle's
/// affine map v · m + 0 in f32.
struct Polyak {
    tau: f64,
}

impl candle_core::InplaceOp2 for Polyak {
    fn name(&self) -> &'static str {
        "polyak"
    }

    fn cpu_fwd(
        &self,
        target: &mut candle_core::CpuStorage,
        target_layout: &candle_core::Layout,
        online: &candle_core::CpuStorage,
        online_layout: &candle_core::Layout,
    ) -> Result<()> {
        let target = crate::nn::host_f32_mut(target, target_layout)?;
        let online = crate::nn::host_f32(online, online_layout)?;
        if target.len() != online.len() {
            candle_core::bail!(
                "Polyak: {} target values, {} online",
                target.len(),
                online.len()
            )
        }
        let (keep, take) = ((1.0 - self.tau) as f32, self.tau as f32);
        for (t, &o) in target.iter_mut().zip(online) {
            *t = (*t * keep + 0.0) + (o * take + 0.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The in-place update rounds exactly as the tensor expression does (the GPU path), signed
    /// zeros included.
    #[test]
    fn in_place_polyak_matches_the_tensor_expression_bit_for_bit() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let mut values = |n: usize| -> Vec<f32> {
            let mut v: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
            v[0] = -0.0;
            v
        };
        let (online, target) = (values(257), values(257));
        let cpu = Device::Cpu;
        let tau = 0.005;
        let online = Tensor::from_slice(&online, 257, &cpu).unwrap();
        let target = Var::from_tensor(&Tensor::from_slice(&target, 257, &cpu).unwrap()).unwrap();
        let expected = ((target.as_tensor() * (1.0 - tau)).unwrap() + (&online * tau).unwrap())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        target
            .as_tensor()
            .inplace_op2(&online, &Polyak { tau })
            .unwrap();
        let got = target.as_tensor().to_vec1::<f32>().unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&expected));
    }
}
