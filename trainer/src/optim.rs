//! Adam (no weight decay) whose moment estimates are named tensors, so a checkpoint can
//! hold the optimiser exactly and `--resume` continues the same trajectory.

use candle_core::{backprop::GradStore, Result, Tensor, Var};

pub struct Adam {
    vars: Vec<(String, Var)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    step: u64,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>, lr: f64) -> Result<Adam> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let first = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<Result<Vec<_>>>()?;
        let second = vars
            .iter()
            .map(|(_, v)| zeros(v))
            .collect::<Result<Vec<_>>>()?;
        Ok(Adam {
            vars,
            first,
            second,
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
        let (scale_m, scale_v) = (
            1.0 / (1.0 - self.beta1.powi(t)),
            1.0 / (1.0 - self.beta2.powi(t)),
        );
        for (((_, var), m), v) in self.vars.iter().zip(&mut self.first).zip(&mut self.second) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            *m = ((&*m * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            *v = ((&*v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&*m * scale_m)? / ((&*v * scale_v)?.sqrt()? + self.eps)?)?;
            var.set(&(var.as_tensor() - (update * self.lr)?)?)?;
        }
        Ok(())
    }

    /// The optimiser state as named tensors under `prefix` (for checkpoints).
    pub fn state(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = vec![(
            format!("{prefix}.step"),
            Tensor::new(&[self.step as f64], &candle_core::Device::Cpu)?,
        )];
        for (((name, _), m), v) in self.vars.iter().zip(&self.first).zip(&self.second) {
            out.push((format!("{prefix}.m.{name}"), m.clone()));
            out.push((format!("{prefix}.v.{name}"), v.clone()));
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
        let step = tensors
            .get(&format!("{prefix}.step"))
            .context("optimiser step missing from checkpoint")?;
        self.step = step.to_vec1::<f64>()?.first().copied().unwrap_or(0.0) as u64;
        for (((name, var), m), v) in self.vars.iter().zip(&mut self.first).zip(&mut self.second) {
            let device = var.device();
            *m = tensors
                .get(&format!("{prefix}.m.{name}"))
                .with_context(|| format!("{prefix}.m.{name} missing"))?
                .to_device(device)?;
            *v = tensors
                .get(&format!("{prefix}.v.{name}"))
                .with_context(|| format!("{prefix}.v.{name} missing"))?
                .to_device(device)?;
        }
        Ok(())
    }
}
