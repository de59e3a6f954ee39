//! Adam (no weight decay) whose moment estimates are named tensors, so a checkpoint can
//! hold the optimiser exactly and `--resume` continues the same trajectory.
//!
//! The update runs on the host in one fused loop per parameter tensor: for the small
//! networks here, candle's per-op overhead (eight tensor ops and allocations per parameter
//! tensor) cost more than the arithmetic.

use candle_core::{backprop::GradStore, Result, Tensor, Var};

struct Slot {
    name: String,
    var: Var,
    first: Vec<f32>,
    second: Vec<f32>,
}

pub struct Adam {
    slots: Vec<Slot>,
    step: u64,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>, lr: f64) -> Result<Adam> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let n = var.as_tensor().elem_count();
                Slot {
                    name,
                    var,
                    first: vec![0.0; n],
                    second: vec![0.0; n],
                }
            })
            .collect();
        Ok(Adam {
            slots,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let scale_m = (1.0 / (1.0 - self.beta1.powi(t))) as f32;
        let scale_v = (1.0 / (1.0 - self.beta2.powi(t))) as f32;
        let (lr, eps) = (self.lr as f32, self.eps as f32);
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let theta = slot.var.as_tensor();
            let mut values = theta.flatten_all()?.to_vec1::<f32>()?;
            for (((x, &g), m), v) in values
                .iter_mut()
                .zip(&g)
                .zip(&mut slot.first)
                .zip(&mut slot.second)
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *x -= lr * (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
            }
            slot.var
                .set(&Tensor::from_vec(values, theta.shape(), theta.device())?)?;
        }
        Ok(())
    }

    /// The optimiser state as named tensors under `prefix` (for checkpoints).
    pub fn state(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let cpu = candle_core::Device::Cpu;
        let mut out = vec![(
            format!("{prefix}.step"),
            Tensor::new(&[self.step as f64], &cpu)?,
        )];
        for slot in &self.slots {
            out.push((
                format!("{prefix}.m.{}", slot.name),
                Tensor::from_slice(&slot.first, slot.first.len(), &cpu)?,
            ));
            out.push((
                format!("{prefix}.v.{}", slot.name),
                Tensor::from_slice(&slot.second, slot.second.len(), &cpu)?,
            ));
        }
        Ok(out)
    }

    /// Restores what [`Adam::state`] saved.
    pub fn load_state(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        let get = |key: String| -> anyhow::Result<&Tensor> {
            tensors
                .get(&key)
                .with_context(|| format!("checkpoint lacks {key}"))
        };
        self.step = get(format!("{prefix}.step"))?
            .to_vec1::<f64>()?
            .first()
            .copied()
            .unwrap_or(0.0) as u64;
        for slot in &mut self.slots {
            slot.first = get(format!("{prefix}.m.{}", slot.name))?.to_vec1::<f32>()?;
            slot.second = get(format!("{prefix}.v.{}", slot.name))?.to_vec1::<f32>()?;
        }
        Ok(())
    }
}
