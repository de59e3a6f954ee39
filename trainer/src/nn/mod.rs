//! Neural-network building blocks: dense layers whose parameters are candle `Var`s
//! initialised from our own seeded RNG (candle's CPU generator cannot be seeded, and runs
//! must be reproducible), and the fused CPU dense operation ([`dense_op`]).
//!
//! Imports candle and policy-core's `Activation` only; every other layer may use it.

pub mod dense_op;
pub mod small_product;
mod team;

use crate::nn::dense_op::{dense, WeightLayout};
use candle_core::{DType, Device, Result, Tensor, Var};
use policy_core::format::Activation;
use rand::Rng;

/// `y = x Wᵀ + b` for every member of a population: W of shape [S, out, in] (PyTorch's and
/// candle-nn's [out, in] per member), b of shape [S, 1, out].
#[derive(Debug, Clone)]
pub struct Dense {
    pub weight: Var,
    pub bias: Var,
}

impl Dense {
    /// PyTorch's default `Linear` initialisation: W and b uniform in ±1/√in, member i's
    /// drawn from `rngs[i]` (weights first, then biases, as a solo run draws them).
    pub fn new<R: Rng>(
        inputs: usize,
        outputs: usize,
        rngs: &mut [R],
        device: &Device,
    ) -> Result<Dense> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for rng in rngs.iter_mut() {
            weights.extend((0..outputs * inputs).map(|_| rng.random_range(-bound..bound)));
            biases.extend((0..outputs).map(|_| rng.random_range(-bound..bound)));
        }
        let members = rngs.len();
        let weight = Tensor::from_vec(weights, (members, outputs, inputs), device)?;
        let bias = Tensor::from_vec(biases, (members, 1, outputs), device)?;
        Ok(Dense {
            weight: Var::from_tensor(&weight)?,
            bias: Var::from_tensor(&bias)?,
        })
    }

    /// act(x Wᵀ + b) for x [S, B, in]; `activation` None is the identity.
    pub fn forward(&self, x: &Tensor, activation: Option<Activation>) -> Result<Tensor> {
        dense(
            x,
            self.weight.as_tensor(),
            self.bias.as_tensor(),
            WeightLayout::OutIn,
            activation,
        )
    }

    /// The parameters with their names under `prefix` (`prefix.weight`, `prefix.bias`).
    pub fn named_vars(&self, prefix: &str) -> Vec<(String, Var)> {
        vec![
            (format!("{prefix}.weight"), self.weight.clone()),
            (format!("{prefix}.bias"), self.bias.clone()),
        ]
    }
}

/// Host copy of a tensor as f32, row-major.
pub fn to_f32_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

/// The values of a contiguous f32 CPU tensor, in place (for the hand-written CPU kernels).
pub(crate) fn host_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(v), Some((start, end))) => Ok(&v[start..end]),
        _ => candle_core::bail!("a contiguous f32 CPU tensor was expected"),
    }
}

/// [`host_f32`], writable (an in-place operation's destination).
pub(crate) fn host_f32_mut<'a>(
    storage: &'a mut candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(v), Some((start, end))) => Ok(&mut v[start..end]),
        _ => candle_core::bail!("a contiguous f32 CPU tensor was expected"),
    }
}
