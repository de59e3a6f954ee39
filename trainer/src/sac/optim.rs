//! Adam (no weight decay) whose moment estimates are named tensors, so a checkpoint can
//! hold the optimiser exactly and `--resume` continues the same trajectory.
//!
//! On the CPU the update runs in one fused loop per parameter tensor: for the small
//! networks here, candle's per-op overhead (eight tensor ops and allocations per parameter
//! tensor) cost more than the arithmetic. On a GPU the moments stay on the device and the
//! update is a handful of element-wise tensor operations: copying every parameter to the
//! host and back each step would cost more than the whole update.
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
    moments: Moments,
}

/// Adam's first and second moment estimates of one parameter tensor, where its update runs.
enum Moments {
    /// On the host, updated by [`host_step`].
    Host { first: Vec<f32>, second: Vec<f32> },
    /// On the parameter's device, [S, values per member], updated by [`tensor_step`].
    Tensors { first: Tensor, second: Tensor },
}

/// One step's constants, shared by every slot.
struct StepConstants {
    beta1: f32,
    beta2: f32,
    /// 1 / (1 − β1^t) and 1 / (1 − β2^t): the bias corrections.
    scale_m: f32,
    scale_v: f32,
    eps: f32,
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
    /// `lrs`, each with its learning rate). The moments live where the parameters do: on the
    /// host for CPU parameters, on the device otherwise.
    pub fn new(vars: Vec<(String, Var)>, lrs: Vec<f64>) -> Result<Adam> {
        let on_device = vars.iter().any(|(_, v)| !v.device().is_cpu());
        Self::with_moments_on_device(vars, lrs, on_device)
    }

    /// [`Adam::new`] with the choice made by the caller: `tensors` keeps the moments as
    /// tensors beside the parameters (the GPU path), which the tests also run on the CPU.
    pub fn with_moments_on_device(
        vars: Vec<(String, Var)>,
        lrs: Vec<f64>,
        tensors: bool,
    ) -> Result<Adam> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let moments = if tensors {
                    // [S, values per member]: a member may hold several networks (the
                    // critic's Q1 and Q2), so the leading axis is not always S.
                    let t = var.as_tensor();
                    let shape = (lrs.len(), t.elem_count() / lrs.len());
                    Moments::Tensors {
                        first: Tensor::zeros(shape, t.dtype(), t.device())?,
                        second: Tensor::zeros(shape, t.dtype(), t.device())?,
                    }
                } else {
                    let n = var.as_tensor().elem_count();
                    Moments::Host {
                        first: vec![0.0; n],
                        second: vec![0.0; n],
                    }
                };
                Ok(Slot { name, var, moments })
            })
            .collect::<Result<_>>()?;
        Ok(Adam {
            slots,
            step: 0,
            lrs,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        })
    }

    /// Counts one more step and returns its constants.
    fn next_step(&mut self) -> StepConstants {
        self.step += 1;
        let t = self.step as i32;
        StepConstants {
            beta1: self.beta1 as f32,
            beta2: self.beta2 as f32,
            scale_m: (1.0 / (1.0 - self.beta1.powi(t))) as f32,
            scale_v: (1.0 / (1.0 - self.beta2.powi(t))) as f32,
            eps: self.eps as f32,
        }
    }

    /// [`Adam::step`] from gradients the caller computed on the host: `grads[i]` is the
    /// gradient of the i-th parameter given to [`Adam::new`] (every member's values, laid out
    /// as the parameter), None for a parameter without one (skipped, as `step` skips a
    /// parameter the gradient store lacks). The same per-element update as `step`'s host path;
    /// host moments only (CPU parameters).
    pub fn step_host(&mut self, grads: &[Option<&[f32]>], active: &[bool]) -> Result<()> {
        if grads.len() != self.slots.len() {
            candle_core::bail!(
                "Adam: {} gradients for {} parameters",
                grads.len(),
                self.slots.len()
            )
        }
        let constants = self.next_step();
        for (slot, g) in self.slots.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            let Moments::Host { first, second } = &mut slot.moments else {
                candle_core::bail!("Adam::step_host needs host moments")
            };
            let update = HostSliceUpdate {
                g,
                moments: std::cell::RefCell::new((first, second)),
                lrs: &self.lrs,
                active,
                constants: &constants,
            };
            slot.var.as_tensor().inplace_op1(&update)?;
        }
        Ok(())
    }

    /// Whether every moment lives on the host ([`Adam::step_host`] can run).
    pub fn on_host(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.moments, Moments::Host { .. }))
    }

    /// One step of every member for which `active` holds (all of them when it is empty).
    pub fn step(&mut self, grads: &GradStore, active: &[bool]) -> Result<()> {
        let constants = self.next_step();
        // Per-member learning rates and the frozen members, as the tensor path needs them
        // (built once per step, on the first tensor slot's device).
        let mut member_tensors: Option<(Tensor, Option<Tensor>)> = None;
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            match &mut slot.moments {
                Moments::Host { first, second } => {
                    host_step(&slot.var, g, first, second, &self.lrs, active, &constants)?
                }
                Moments::Tensors { first, second } => {
                    if member_tensors.is_none() {
                        member_tensors =
                            Some(member_tensors_on(slot.var.device(), &self.lrs, active)?);
                    }
                    let Some((lrs, frozen)) = &member_tensors else {
                        unreachable!("built above")
                    };
                    let (m, v) = tensor_step(
                        &slot.var,
                        g,
                        first,
                        second,
                        lrs,
                        frozen.as_ref(),
                        &constants,
                    )?;
                    *first = m;
                    *second = v;
                }
            }
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
            let n = slot.var.as_tensor().elem_count() / members;
            for (moment, values) in [
                ("m", slot.first_moment(member, n)?),
                ("v", slot.second_moment(member, n)?),
            ] {
                out.push((format!("{prefix}.{moment}.{}", slot.name), values));
            }
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
            let n = slot.var.as_tensor().elem_count() / members;
            for (index, moment) in ["m", "v"].into_iter().enumerate() {
                let key = format!("{prefix}.{moment}.{}", slot.name);
                let saved = get(key.clone())?.to_vec1::<f32>()?;
                anyhow::ensure!(
                    saved.len() == n,
                    "checkpoint's {key} has {} values, the model needs {n}",
                    saved.len()
                );
                slot.set_moment(index, member, &saved)?;
            }
        }
        Ok(())
    }
}

impl Slot {
    /// Member `member`'s n values of the first moment, on the host.
    fn first_moment(&self, member: usize, n: usize) -> Result<Tensor> {
        self.moment(0, member, n)
    }

    fn second_moment(&self, member: usize, n: usize) -> Result<Tensor> {
        self.moment(1, member, n)
    }

    /// Member `member`'s n values of moment `index` (0: first, 1: second) as a host tensor.
    fn moment(&self, index: usize, member: usize, n: usize) -> Result<Tensor> {
        let cpu = candle_core::Device::Cpu;
        match &self.moments {
            Moments::Host { first, second } => {
                let values = [first, second][index];
                Tensor::from_slice(&values[member * n..(member + 1) * n], n, &cpu)
            }
            Moments::Tensors { first, second } => {
                let values = [first, second][index];
                values
                    .flatten_all()?
                    .narrow(0, member * n, n)?
                    .to_device(&cpu)
            }
        }
    }

    /// Overwrites member `member`'s part of moment `index` with `saved`.
    fn set_moment(&mut self, index: usize, member: usize, saved: &[f32]) -> Result<()> {
        let n = saved.len();
        match &mut self.moments {
            Moments::Host { first, second } => {
                let values = if index == 0 { first } else { second };
                values[member * n..(member + 1) * n].copy_from_slice(saved);
            }
            Moments::Tensors { first, second } => {
                let values: &Tensor = if index == 0 { first } else { second };
                let flat = values.flatten_all()?; // shares the storage: writes into the moment
                let saved = Tensor::from_slice(saved, n, values.device())?;
                flat.slice_set(&saved, 0, member * n)?;
            }
        }
        Ok(())
    }
}

/// The host path: one fused loop over each member's values, rewriting the parameter's
/// storage in place (a copy out and back cost more than the arithmetic at these sizes).
fn host_step(
    var: &Var,
    g: &Tensor,
    first: &mut [f32],
    second: &mut [f32],
    lrs: &[f64],
    active: &[bool],
    c: &StepConstants,
) -> Result<()> {
    let g = g.contiguous()?;
    let (storage, layout) = g.storage_and_layout();
    let candle_core::Storage::Cpu(storage) = &*storage else {
        candle_core::bail!("Adam's host path takes CPU gradients")
    };
    let update = HostSliceUpdate {
        g: crate::nn::host_f32(storage, layout)?,
        moments: std::cell::RefCell::new((first, second)),
        lrs,
        active,
        constants: c,
    };
    var.as_tensor().inplace_op1(&update)
}

/// Adam's update of a parameter's values (every member's, one after another) from its
/// gradient `g`, skipping the members that `active` marks frozen.
fn update_members(
    values: &mut [f32],
    g: &[f32],
    (first, second): (&mut [f32], &mut [f32]),
    lrs: &[f64],
    active: &[bool],
    c: &StepConstants,
) {
    let per_member = values.len() / lrs.len();
    let chunks = values
        .chunks_mut(per_member)
        .zip(g.chunks(per_member))
        .zip(first.chunks_mut(per_member))
        .zip(second.chunks_mut(per_member));
    for (member, (((values, g), first), second)) in chunks.enumerate() {
        if !active.get(member).copied().unwrap_or(true) {
            continue;
        }
        let lr = lrs[member] as f32;
        for (((x, &g), m), v) in values.iter_mut().zip(g).zip(first).zip(second) {
            let g = flush_tiny(g, TINY_GRADIENT);
            *m = flush_tiny(c.beta1 * *m + (1.0 - c.beta1) * g, TINY_MOMENT);
            *v = flush_tiny(c.beta2 * *v + (1.0 - c.beta2) * g * g, TINY_MOMENT);
            *x -= lr * (*m * c.scale_m) / ((*v * c.scale_v).sqrt() + c.eps);
        }
    }
}

/// Adam's update as an in-place operation on the parameter's storage, from a host slice of
/// its gradient ([`host_step`] and [`Adam::step_host`]).
struct HostSliceUpdate<'a> {
    g: &'a [f32],
    moments: std::cell::RefCell<(&'a mut [f32], &'a mut [f32])>,
    lrs: &'a [f64],
    active: &'a [bool],
    constants: &'a StepConstants,
}

impl candle_core::InplaceOp1 for HostSliceUpdate<'_> {
    fn name(&self) -> &'static str {
        "adam-host-slice-step"
    }

    fn cpu_fwd(
        &self,
        theta: &mut candle_core::CpuStorage,
        theta_layout: &candle_core::Layout,
    ) -> Result<()> {
        let theta = crate::nn::host_f32_mut(theta, theta_layout)?;
        if theta.len() != self.g.len() {
            candle_core::bail!(
                "Adam: a gradient of {} values for a parameter of {}",
                self.g.len(),
                theta.len()
            )
        }
        let mut moments = self.moments.borrow_mut();
        let (first, second) = &mut *moments;
        update_members(
            theta,
            self.g,
            (first, second),
            self.lrs,
            self.active,
            self.constants,
        );
        Ok(())
    }
}

/// The learning rates [S] and, when some member is frozen, a mask [S] (1 = training) on
/// `device`.
fn member_tensors_on(
    device: &candle_core::Device,
    lrs: &[f64],
    active: &[bool],
) -> Result<(Tensor, Option<Tensor>)> {
    let training = |member: usize| active.get(member).copied().unwrap_or(true);
    let lr: Vec<f32> = (0..lrs.len())
        .map(|m| if training(m) { lrs[m] as f32 } else { 0.0 })
        .collect();
    let frozen = (0..lrs.len()).any(|m| !training(m));
    let mask = frozen
        .then(|| {
            let mask: Vec<u8> = (0..lrs.len()).map(|m| u8::from(training(m))).collect();
            Tensor::from_vec(mask, lrs.len(), device)
        })
        .transpose()?;
    Ok((Tensor::from_vec(lr, lrs.len(), device)?, mask))
}

/// The device path: the same update as [`host_step`] in element-wise tensor operations, the
/// parameter rewritten in place; returns the new moments. `mask` keeps a frozen member's
/// parameters and moments. Tiny values are not flushed: the subnormal slow
/// path that [`flush_tiny`] avoids is an x86 CPU's, and the update it would change is
/// negligible (see [`TINY_GRADIENT`]).
fn tensor_step(
    var: &Var,
    g: &Tensor,
    first: &Tensor,
    second: &Tensor,
    lrs: &Tensor,
    mask: Option<&Tensor>,
    c: &StepConstants,
) -> Result<(Tensor, Tensor)> {
    // Each member's values in one row, [S, n], like the moments; lrs and mask [S, 1].
    let theta = var.as_tensor();
    let rows = first.shape();
    // Detached: the gradient carries the backward graph, and moments built on it would keep
    // every step's graph (and its activations) alive through the next moment.
    let g = g.detach().reshape(rows)?;
    let m = ((first * f64::from(c.beta1))? + (&g * f64::from(1.0 - c.beta1))?)?;
    let v = ((second * f64::from(c.beta2))? + (g.sqr()? * f64::from(1.0 - c.beta2))?)?;
    let denominator = (v.affine(f64::from(c.scale_v), 0.0)?.sqrt()? + f64::from(c.eps))?;
    let step =
        (m.affine(f64::from(c.scale_m), 0.0)? / denominator)?.broadcast_mul(&lrs.unsqueeze(1)?)?;
    let theta_rows = theta.reshape(rows)?;
    let updated = (&theta_rows - step)?;
    let (m, v) = (m.detach(), v.detach());
    let (updated, m, v) = match mask {
        None => (updated, m, v),
        // A frozen member keeps everything: its learning rate is 0, but a non-finite
        // gradient (it diverged) would still make 0 · NaN = NaN of its parameters.
        Some(mask) => {
            let mask = mask.unsqueeze(1)?.broadcast_as(rows)?;
            (
                mask.where_cond(&updated, &theta_rows)?,
                mask.where_cond(&m, first)?,
                mask.where_cond(&v, second)?,
            )
        }
    };
    var.set(&updated.reshape(theta.shape())?.detach())?;
    Ok((m, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::{Rng, SeedableRng};

    /// One real gradient, then 100 000 steps of ever tinier ones (a dying unit): the moments
    /// end at zero or a normal float, never subnormal, and the parameter stops moving.
    #[test]
    fn moments_of_vanished_gradients_never_become_subnormal() {
        let var = Var::from_tensor(&Tensor::new(&[0.5f32], &Device::Cpu).unwrap()).unwrap();
        let mut adam = Adam::new(vec![("p".into(), var.clone())], vec![1e-3]).unwrap();
        let mut g = 1.0f32;
        for _ in 0..100_000 {
            adam.step(&gradient(&var, &[g]), &[]).unwrap();
            g *= 0.5; // reaches subnormal, then zero, within 160 steps
        }
        let Moments::Host { first, second } = &adam.slots[0].moments else {
            panic!("CPU parameters keep their moments on the host")
        };
        let (m, v) = (first[0], second[0]);
        for moment in [m, v] {
            assert!(
                moment == 0.0 || moment.is_normal(),
                "subnormal moment {moment:e}"
            );
        }
        assert_eq!(m, 0.0, "the first moment decays to exactly zero");
        let before = var.as_tensor().to_vec1::<f32>().unwrap()[0];
        adam.step(&gradient(&var, &[0.0]), &[]).unwrap();
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap()[0], before);
    }

    /// The gradient of loss = Σ θ ⊙ G is G.
    fn gradient(var: &Var, g: &[f32]) -> GradStore {
        let g = Tensor::from_slice(g, var.shape(), &Device::Cpu).unwrap();
        (var.as_tensor() * g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// The tensor path (what a GPU runs) computes the host path's update: 3 members with
    /// their own learning rates, two networks each (as the critic's Q1 and Q2 are stacked),
    /// member 1 frozen after 5 of 30 steps, its gradients NaN from then on. The two differ only in
    /// the order of a product (lr·m̂/d against m̂/d·lr) and of g·g·(1 − β2), a few roundings
    /// of 2⁻²⁴ relative each per step; an Adam step is at most about lr in size, so after
    /// 30 steps the parameters agree within 30 · 4 · 2⁻²⁴ · max lr, and the moments to a
    /// few parts in 10⁷.
    #[test]
    fn the_tensor_path_matches_the_host_path() {
        let shape = (6, 2, 5); // [2S, …]: member m owns rows 2m and 2m + 1
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let start: Vec<f32> = (0..60).map(|_| rng.random_range(-1.0..1.0)).collect();
        let lrs = vec![1e-3, 3e-3, 1e-2];
        let make = |tensors: bool| {
            let var = Var::from_tensor(&Tensor::from_slice(&start, shape, &Device::Cpu).unwrap())
                .unwrap();
            let adam =
                Adam::with_moments_on_device(vec![("p".into(), var.clone())], lrs.clone(), tensors)
                    .unwrap();
            (var, adam)
        };
        let (host_var, mut host) = make(false);
        let (tensor_var, mut tensors) = make(true);
        let mut frozen_at = Vec::new();
        for step in 0..30 {
            let mut g: Vec<f32> = (0..60).map(|_| rng.random_range(-2.0..2.0)).collect();
            if step >= 5 {
                // The frozen member diverged: its gradients are no longer finite.
                g[20..40].fill(f32::NAN);
            }
            let active = if step < 5 {
                vec![]
            } else {
                vec![true, false, true]
            };
            host.step(&gradient(&host_var, &g), &active).unwrap();
            tensors.step(&gradient(&tensor_var, &g), &active).unwrap();
            if step == 4 {
                frozen_at = flat(&tensor_var.as_tensor().narrow(0, 2, 2).unwrap());
            }
        }
        // Per step: the two steps differ by a few roundings of 2⁻²⁴ relative (≤ 4 · 2⁻²⁴ ·
        // lr), and x − step may then round to neighbouring floats (≤ one ulp of x, 2⁻²³ ·
        // |x|, |x| < 2 here).
        let bound = 30.0 * (4.0 * 2f32.powi(-24) * 1e-2 + 2f32.powi(-23) * 2.0);
        for (h, t) in flat(host_var.as_tensor())
            .iter()
            .zip(flat(tensor_var.as_tensor()))
        {
            assert!((h - t).abs() <= bound, "parameter {h} vs {t}");
        }
        assert_eq!(
            flat(&tensor_var.as_tensor().narrow(0, 2, 2).unwrap()),
            frozen_at,
            "a frozen member keeps its parameters"
        );
        for member in 0..3 {
            let host_state = host.state("a", member).unwrap();
            let tensor_state = tensors.state("a", member).unwrap();
            // Entry 0 is the shared step count; then each moment.
            assert_eq!(host_state.len(), 3);
            for ((name, h), (_, t)) in host_state.iter().zip(&tensor_state).skip(1) {
                for (h, t) in flat(h).iter().zip(flat(t)) {
                    let scale = h.abs().max(t.abs()).max(1e-30);
                    assert!(
                        (h - t).abs() / scale <= 1e-6,
                        "{name} member {member}: {h} vs {t}"
                    );
                }
            }
        }
    }

    /// A member's moments saved from the tensor path and loaded into a fresh one come back
    /// exactly, in that member's place only.
    #[test]
    fn tensor_moments_round_trip_through_a_checkpoint() {
        let var =
            Var::from_tensor(&Tensor::ones((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap())
                .unwrap();
        let mut adam =
            Adam::with_moments_on_device(vec![("p".into(), var.clone())], vec![1e-3; 2], true)
                .unwrap();
        for g in [0.5f32, -1.0, 2.0] {
            adam.step(&gradient(&var, &[g, 2.0 * g, 3.0 * g, -g, 0.1, 7.0]), &[])
                .unwrap();
        }
        let saved: std::collections::HashMap<String, Tensor> =
            adam.state("a", 1).unwrap().into_iter().collect();
        let mut fresh =
            Adam::with_moments_on_device(vec![("p".into(), var.clone())], vec![1e-3; 2], true)
                .unwrap();
        fresh.load_state("a", 1, &saved).unwrap();
        let reloaded: std::collections::HashMap<String, Tensor> =
            fresh.state("a", 1).unwrap().into_iter().collect();
        for key in ["a.m.p", "a.v.p"] {
            assert_eq!(flat(&reloaded[key]), flat(&saved[key]), "{key}");
            assert!(
                flat(&saved[key]).iter().all(|&x| x != 0.0),
                "{key} was trained"
            );
        }
        assert_eq!(
            reloaded["a.step"].to_vec1::<f64>().unwrap(),
            vec![3.0],
            "the step count"
        );
        let untouched = fresh.state("a", 0).unwrap();
        assert!(untouched[1..]
            .iter()
            .all(|(_, t)| flat(t).iter().all(|&x| x == 0.0)));
    }
}
