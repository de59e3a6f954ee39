//! Adam (no weight decay) whose moment estimates are named tensors, so a checkpoint can
//! hold the optimiser exactly and `--resume` continues the same trajectory.
//!
//! The update runs on the host in one fused loop per parameter tensor: for the small
//! networks here, candle's per-op overhead (eight tensor ops and allocations per parameter
//! tensor) cost more than the arithmetic.
//!
//! Parameters carry a leading member axis (a population of S runs, [`Adam::new`]): each
//! member has its own learning rate, and a member marked inactive ([`Adam::step`]) keeps its
//! parameters and moments as they are.

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
    /// One learning rate per member.
    lrs: Vec<f64>,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// Adam over `vars`, whose leading dimension is the member axis (one member per entry of
    /// `lrs`, each with its learning rate).
    pub fn new(vars: Vec<(String, Var)>, lrs: Vec<f64>) -> Result<Adam> {
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
            lrs,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        })
    }

    /// One step of every member for which `active` holds (all of them when it is empty).
    pub fn step(&mut self, grads: &GradStore, active: &[bool]) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let scale_m = (1.0 / (1.0 - self.beta1.powi(t))) as f32;
        let scale_v = (1.0 / (1.0 - self.beta2.powi(t))) as f32;
        let eps = self.eps as f32;
        let members = self.lrs.len();
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let theta = slot.var.as_tensor();
            let mut values = theta.flatten_all()?.to_vec1::<f32>()?;
            let per_member = values.len() / members;
            let chunks = values
                .chunks_mut(per_member)
                .zip(g.chunks(per_member))
                .zip(slot.first.chunks_mut(per_member))
                .zip(slot.second.chunks_mut(per_member));
            for (member, (((values, g), first), second)) in chunks.enumerate() {
                if !active.get(member).copied().unwrap_or(true) {
                    continue;
                }
                let lr = self.lrs[member] as f32;
                for (((x, &g), m), v) in values.iter_mut().zip(g).zip(first).zip(second) {
                    let g = flush_tiny(g, TINY_GRADIENT);
                    *m = flush_tiny(b1 * *m + (1.0 - b1) * g, TINY_MOMENT);
                    *v = flush_tiny(b2 * *v + (1.0 - b2) * g * g, TINY_MOMENT);
                    *x -= lr * (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
                }
            }
            slot.var
                .set(&Tensor::from_vec(values, theta.shape(), theta.device())?)?;
        }
        Ok(())
    }

    /// Member `member`'s optimiser state as named tensors under `prefix`: what a solo run's
    /// checkpoint holds.
    pub fn state(&self, prefix: &str, member: usize) -> Result<Vec<(String, Tensor)>> {
        let cpu = candle_core::Device::Cpu;
        let mut out = vec![(
            format!("{prefix}.step"),
            Tensor::new(&[self.step as f64], &cpu)?,
        )];
        let members = self.lrs.len();
        for slot in &self.slots {
            let n = slot.first.len() / members;
            let range = member * n..(member + 1) * n;
            out.push((
                format!("{prefix}.m.{}", slot.name),
                Tensor::from_slice(&slot.first[range.clone()], n, &cpu)?,
            ));
            out.push((
                format!("{prefix}.v.{}", slot.name),
                Tensor::from_slice(&slot.second[range], n, &cpu)?,
            ));
        }
        Ok(out)
    }

    /// Restores member `member`'s part of what [`Adam::state`] saved (the step count is
    /// shared: every member's checkpoint holds the same).
    pub fn load_state(
        &mut self,
        prefix: &str,
        member: usize,
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
        let members = self.lrs.len();
        for slot in &mut self.slots {
            let n = slot.first.len() / members;
            let range = member * n..(member + 1) * n;
            for (moment, values) in [("m", &mut slot.first), ("v", &mut slot.second)] {
                let key = format!("{prefix}.{moment}.{}", slot.name);
                let saved = get(key.clone())?.to_vec1::<f32>()?;
                anyhow::ensure!(
                    saved.len() == n,
                    "checkpoint's {key} has {} values, the model needs {n}",
                    saved.len()
                );
                values[range.clone()].copy_from_slice(&saved);
            }
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
        let mut adam = Adam::new(vec![("p".into(), var.clone())], vec![1e-3]).unwrap();
        let mut gradient = 1.0f32;
        for _ in 0..100_000 {
            adam.step(&gradient_of(&var, gradient), &[]).unwrap();
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
        adam.step(&gradient_of(&var, 0.0), &[]).unwrap();
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap()[0], before);
    }
}
