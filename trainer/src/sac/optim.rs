//! Adam (no weight decay) whose moment estimates are named tensors, so a checkpoint can
//! hold the optimiser exactly and `--resume` continues the same trajectory.
//!
//! The update runs on the host in one fused loop per parameter tensor: for the small
//! networks here, candle's per-op overhead (eight tensor ops and allocations per parameter
//! tensor) cost more than the arithmetic.

use candle_core::{backprop::GradStore, Result, Tensor, Var};

/// Gradients below this magnitude count as zero, and moments below [`TINY_MOMENT`] are set
/// to zero. Without this, the moments of parameters whose gradient has vanished (dead ReLU
/// units) decay into subnormal floats, and x86 CPUs take a slow path for every operation on
/// them: it made Adam 12 % of a `halfrep` update. The update of such a parameter is
/// lr·m/(√v + ε) with √v far below ε = 1e-8, so it is negligible before and zero after.
const TINY_GRADIENT: f32 = 1e-15;
const TINY_MOMENT: f32 = 1e-30;

fn flush_tiny(x: f32, below: f32) -> f32 {
    if x.abs() < below {
        0.0
    } else {
        x
    }
}

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
                let g = flush_tiny(g, TINY_GRADIENT);
                *m = flush_tiny(b1 * *m + (1.0 - b1) * g, TINY_MOMENT);
                *v = flush_tiny(b2 * *v + (1.0 - b2) * g * g, TINY_MOMENT);
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The gradients of loss = g·θ: ∂/∂θ = g.
    fn gradient_of(var: &Var, g: f32) -> GradStore {
        let g = Tensor::new(&[g], &Device::Cpu).unwrap();
        (var.as_tensor() * g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    /// One real gradient, then 100 000 steps of ever tinier ones (a dying unit): the moments
    /// end at zero or a normal float, never subnormal, and the parameter stops moving.
    #[test]
    fn moments_of_vanished_gradients_never_become_subnormal() {
        let var = Var::from_tensor(&Tensor::new(&[0.5f32], &Device::Cpu).unwrap()).unwrap();
        let mut adam = Adam::new(vec![("p".into(), var.clone())], 1e-3).unwrap();
        let mut gradient = 1.0f32;
        for _ in 0..100_000 {
            adam.step(&gradient_of(&var, gradient)).unwrap();
            gradient *= 0.5; // reaches subnormal, then zero, within 160 steps
        }
        let (m, v) = (adam.slots[0].first[0], adam.slots[0].second[0]);
        for moment in [m, v] {
            assert!(
                moment == 0.0 || moment.is_normal(),
                "subnormal moment {moment:e}"
            );
        }
        assert_eq!(m, 0.0, "the first moment decays to exactly zero");
        let before = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        adam.step(&gradient_of(&var, 0.0)).unwrap();
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap()[0], before);
    }
}
