//! Policies for the tests, built through the public writer.
#![allow(dead_code)]

use policy_core::format::{write_policy, Activation, BlockKind, Header};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;

pub fn rng(seed: u64) -> Pcg32 {
    Pcg32::seed_from_u64(seed)
}

pub fn uniform(rng: &mut Pcg32, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * (rng.next_u32() >> 8) as f32 / 16_777_216.0
}

pub fn header(action_dim: usize, components: usize, squash: bool, bound: f32) -> Header<'static> {
    let low = vec![-bound; action_dim];
    let high = vec![bound; action_dim];
    Header::new(
        3,
        &[16, 16],
        action_dim,
        components,
        Activation::Relu,
        squash,
        (-20.0, 2.0),
        &low,
        &high,
    )
    .unwrap()
    .into_owned()
}

/// Random weights with the heads kept in a well-conditioned range: means within about ±1,
/// log-stds in about [−1.6, −0.6] (σ ≈ 0.2…0.55), logits within about ±1. These keep the
/// squashed densities away from the box edges, where a grid cannot integrate them.
pub fn policy_weights(header: &Header, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    let mut w = vec![0.0f32; header.weight_count()];
    for block in header.blocks() {
        let (w_scale, b_lo, b_hi) = match block.kind {
            BlockKind::Hidden(_) => (1.0, -0.5, 0.5),
            BlockKind::Mean => (0.3, -0.8, 0.8),
            BlockKind::LogStd => (0.1, -1.4, -0.8),
            BlockKind::Logits => (0.3, -0.8, 0.8),
        };
        let fan_in = (block.inputs as f32).sqrt();
        for i in 0..block.inputs {
            for o in 0..block.outputs {
                w[block.weight_index(i, o)] = uniform(&mut r, -1.0, 1.0) * w_scale / fan_in;
            }
        }
        for o in 0..block.outputs {
            w[block.bias_index(o)] = uniform(&mut r, b_lo, b_hi);
        }
    }
    w
}

pub fn policy_bytes(
    action_dim: usize,
    components: usize,
    squash: bool,
    bound: f32,
    seed: u64,
) -> Vec<u8> {
    let h = header(action_dim, components, squash, bound);
    write_policy(&h, &policy_weights(&h, seed)).unwrap()
}

/// A policy whose heads ignore the observation: head weights zero, so μ, log σ and the
/// logits are exactly the given biases (component-major for μ and log σ).
pub fn constant_heads_policy(
    header: &Header,
    means: &[f32],
    log_stds: &[f32],
    logits: &[f32],
) -> Vec<u8> {
    let mut w = policy_weights(header, 1);
    for block in header.blocks() {
        let biases: &[f32] = match block.kind {
            BlockKind::Hidden(_) => continue,
            BlockKind::Mean => means,
            BlockKind::LogStd => log_stds,
            BlockKind::Logits => logits,
        };
        for i in 0..block.inputs {
            for o in 0..block.outputs {
                w[block.weight_index(i, o)] = 0.0;
            }
        }
        for (o, &b) in biases.iter().enumerate() {
            w[block.bias_index(o)] = b;
        }
    }
    write_policy(header, &w).unwrap()
}

pub fn random_obs(r: &mut Pcg32) -> [f32; 3] {
    [
        uniform(r, -2.0, 2.0),
        uniform(r, -2.0, 2.0),
        uniform(r, -2.0, 2.0),
    ]
}

/// What the heads say at one observation, computed in f64 straight from the documented
/// weight layout (an oracle independent of policy-core's evaluation code).
pub struct ReferenceHeads {
    /// Means, component-major.
    pub mean: Vec<f64>,
    /// Clamped log-stds, component-major.
    pub log_std: Vec<f64>,
    /// Mixing logits.
    pub logits: Vec<f64>,
}

impl ReferenceHeads {
    pub fn weights(&self) -> Vec<f64> {
        let top = self
            .logits
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = self.logits.iter().map(|l| (l - top).exp()).collect();
        let z: f64 = e.iter().sum();
        e.iter().map(|x| x / z).collect()
    }
}

/// The network of DESIGN.md §3 in f64; `weights` are the file's weights as f32.
pub fn reference_heads(h: &Header, weights: &[f32], obs: &[f64]) -> ReferenceHeads {
    let mut x: Vec<f64> = obs.to_vec();
    let mut heads = Vec::new();
    for block in h.blocks() {
        let y: Vec<f64> = (0..block.outputs)
            .map(|o| {
                let s: f64 = (0..block.inputs)
                    .map(|i| x[i] * f64::from(weights[block.weight_index(i, o)]))
                    .sum();
                s + f64::from(weights[block.bias_index(o)])
            })
            .collect();
        match block.kind {
            BlockKind::Hidden(_) => match h.activation {
                Activation::Relu => x = y.iter().map(|v| v.max(0.0)).collect(),
                Activation::Tanh => x = y.iter().map(|v| v.tanh()).collect(),
            },
            _ => heads.push(y),
        }
    }
    let (lo, hi) = (f64::from(h.log_std_min), f64::from(h.log_std_max));
    ReferenceHeads {
        mean: heads[0].clone(),
        log_std: heads[1].iter().map(|v| v.clamp(lo, hi)).collect(),
        logits: heads[2].clone(),
    }
}

/// The weights of an .mxp file as f32, in file order.
pub fn file_weights(bytes: &[u8]) -> (Header<'_>, Vec<f32>) {
    let (h, raw) = policy_core::format::parse(bytes).unwrap();
    let w = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (h, w)
}
