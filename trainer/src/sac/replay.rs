//! A fixed-capacity replay buffer of transitions, stored as flat f32 arrays, overwriting the
//! oldest once full.

use candle_core::{DType, Device, Tensor};
use rand::Rng;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    action_dim: usize,
    obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    next_obs: Vec<f32>,
    /// 1.0 where the transition ended in a terminal state (no bootstrap), else 0.0. A
    /// time-limit cut-off is not terminal.
    terminated: Vec<f32>,
    /// Next slot to write.
    cursor: usize,
    len: usize,
}

/// A sampled batch, row-major.
pub struct Batch {
    pub obs: Vec<f32>,
    pub actions: Vec<f32>,
    pub rewards: Vec<f32>,
    pub next_obs: Vec<f32>,
    pub terminated: Vec<f32>,
}

impl ReplayBuffer {
    pub fn new(capacity: usize, obs_dim: usize, action_dim: usize) -> ReplayBuffer {
        ReplayBuffer {
            capacity,
            obs_dim,
            action_dim,
            obs: vec![0.0; capacity * obs_dim],
            actions: vec![0.0; capacity * action_dim],
            rewards: vec![0.0; capacity],
            next_obs: vec![0.0; capacity * obs_dim],
            terminated: vec![0.0; capacity],
            cursor: 0,
            len: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The slot the last [`ReplayBuffer::push`] wrote.
    pub fn last_slot(&self) -> Option<usize> {
        (self.len > 0).then(|| (self.cursor + self.capacity - 1) % self.capacity)
    }

    pub fn push(
        &mut self,
        obs: &[f32],
        action: &[f32],
        reward: f32,
        next_obs: &[f32],
        terminated: bool,
    ) {
        let (i, o, a) = (self.cursor, self.obs_dim, self.action_dim);
        self.obs[i * o..(i + 1) * o].copy_from_slice(obs);
        self.actions[i * a..(i + 1) * a].copy_from_slice(action);
        self.rewards[i] = reward;
        self.next_obs[i * o..(i + 1) * o].copy_from_slice(next_obs);
        self.terminated[i] = if terminated { 1.0 } else { 0.0 };
        self.cursor = (self.cursor + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The slots of `n` transitions drawn uniformly with replacement: the draws
    /// [`ReplayBuffer::sample`] makes, for a copy of the buffer on another device
    /// ([`DeviceReplay`]).
    pub fn sample_slots(&self, n: usize, rng: &mut impl Rng) -> Vec<usize> {
        (0..n).map(|_| rng.random_range(0..self.len)).collect()
    }

    /// `n` transitions drawn uniformly with replacement.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Batch {
        let (o, a) = (self.obs_dim, self.action_dim);
        let mut batch = Batch {
            obs: Vec::with_capacity(n * o),
            actions: Vec::with_capacity(n * a),
            rewards: Vec::with_capacity(n),
            next_obs: Vec::with_capacity(n * o),
            terminated: Vec::with_capacity(n),
        };
        for i in self.sample_slots(n, rng) {
            batch.obs.extend_from_slice(&self.obs[i * o..(i + 1) * o]);
            batch
                .actions
                .extend_from_slice(&self.actions[i * a..(i + 1) * a]);
            batch.rewards.push(self.rewards[i]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[i * o..(i + 1) * o]);
            batch.terminated.push(self.terminated[i]);
        }
        batch
    }
}

/// Row layout of [`DeviceReplay`]: obs, action, reward, next obs, terminated.
fn row_width(obs_dim: usize, action_dim: usize) -> usize {
    2 * obs_dim + action_dim + 2
}

/// A copy of a population's replay buffers on the training device, so a minibatch is
/// gathered there instead of being copied over each update. The host buffers stay the
/// source of truth (checkpoints hold them); this copy receives each step's transitions (one
/// small upload) and the slots the host draws ([`ReplayBuffer::sample_slots`]), so member i
/// still samples what its solo run samples.
///
/// Every member writes one transition per step, so all members' buffers share one cursor:
/// slot j of member m is row m·capacity + j of `rows` [S·capacity, width].
pub struct DeviceReplay {
    rows: Tensor,
    capacity: usize,
    obs_dim: usize,
    action_dim: usize,
}

impl DeviceReplay {
    /// A copy of `buffers` (one per member, equal shapes) on `device`.
    pub fn new(buffers: &[&ReplayBuffer], device: &Device) -> candle_core::Result<DeviceReplay> {
        let Some(first) = buffers.first() else {
            candle_core::bail!("a device replay buffer needs at least one member");
        };
        let (capacity, o, a) = (first.capacity, first.obs_dim, first.action_dim);
        let width = row_width(o, a);
        // Rows are indexed by u32 when gathering.
        if buffers.len() * capacity > u32::MAX as usize {
            candle_core::bail!(
                "{} members × {capacity} transitions exceed the device replay's 2³² rows",
                buffers.len()
            );
        }
        let rows = Tensor::zeros((buffers.len() * capacity, width), DType::F32, device)?;
        // One member at a time, so the host holds one member's copy, not the population's.
        for (m, b) in buffers.iter().enumerate() {
            if (b.capacity, b.obs_dim, b.action_dim) != (capacity, o, a) {
                candle_core::bail!("the members' replay buffers differ in shape");
            }
            if b.is_empty() {
                continue; // zeros already, and nothing samples them
            }
            let host: Vec<f32> = (0..capacity).flat_map(|j| Self::row(b, j)).collect();
            let member = Tensor::from_vec(host, (capacity, width), device)?;
            rows.slice_set(&member, 0, m * capacity)?;
        }
        Ok(DeviceReplay {
            rows,
            capacity,
            obs_dim: o,
            action_dim: a,
        })
    }

    /// Slot `j` of `b` as one row.
    fn row(b: &ReplayBuffer, j: usize) -> impl Iterator<Item = f32> + '_ {
        let (o, a) = (b.obs_dim, b.action_dim);
        let obs = &b.obs[j * o..(j + 1) * o];
        let action = &b.actions[j * a..(j + 1) * a];
        let next = &b.next_obs[j * o..(j + 1) * o];
        obs.iter()
            .chain(action)
            .chain(std::iter::once(&b.rewards[j]))
            .chain(next)
            .chain(std::iter::once(&b.terminated[j]))
            .copied()
    }

    /// Copies slot `slot` of every member's buffer (a member whose buffer did not take a
    /// transition this step copies whatever that slot holds: nothing samples it).
    pub fn store(&self, buffers: &[&ReplayBuffer], slot: usize) -> candle_core::Result<()> {
        let width = row_width(self.obs_dim, self.action_dim);
        let host: Vec<f32> = buffers.iter().flat_map(|b| Self::row(b, slot)).collect();
        let new = Tensor::from_vec(host, (buffers.len(), 1, width), self.rows.device())?;
        let stacked = self.rows.reshape((buffers.len(), self.capacity, width))?;
        // A reshape of a contiguous tensor shares its storage: this writes into `rows`.
        stacked.slice_set(&new, 1, slot)
    }

    /// The minibatch [S, B, …] of the slots `slots[m]` of member `sources[m]`'s buffer for
    /// each member m (a stopped member samples a training member's buffer).
    pub fn gather(
        &self,
        slots: &[Vec<usize>],
        sources: &[usize],
    ) -> candle_core::Result<crate::sac::Minibatch> {
        let (o, a) = (self.obs_dim, self.action_dim);
        let (s, b) = (slots.len(), slots.first().map_or(0, Vec::len));
        let ids: Vec<u32> = slots
            .iter()
            .zip(sources)
            .flat_map(|(slots, &m)| slots.iter().map(move |&j| (m * self.capacity + j) as u32))
            .collect();
        let ids = Tensor::from_vec(ids, s * b, self.rows.device())?;
        let rows = self
            .rows
            .index_select(&ids, 0)?
            .reshape((s, b, row_width(o, a)))?;
        let column = |start: usize, len: usize| rows.narrow(2, start, len)?.contiguous();
        Ok(crate::sac::Minibatch {
            obs: column(0, o)?,
            actions: column(o, a)?,
            rewards: column(o + a, 1)?.squeeze(2)?,
            next_obs: column(o + a + 1, o)?,
            terminated: column(2 * o + a + 1, 1)?.squeeze(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    /// Two members' buffers of capacity 5 taking 8 transitions each (so the ring wraps),
    /// copied at 3 and stored step by step after: the device copy gathers exactly the host
    /// samples, including a member sampling another's buffer.
    #[test]
    fn the_device_copy_gathers_what_the_host_samples() {
        let (o, a) = (3, 2);
        let mut buffers = [ReplayBuffer::new(5, o, a), ReplayBuffer::new(5, o, a)];
        let mut copy = None;
        for step in 0..8 {
            for (m, buffer) in buffers.iter_mut().enumerate() {
                let x = (100 * m + step) as f32;
                buffer.push(
                    &[x, x + 0.1, x + 0.2],
                    &[-x, -x - 0.5],
                    x * 10.0,
                    &[x + 1.0; 3],
                    step % 3 == 0,
                );
            }
            let refs: Vec<&ReplayBuffer> = buffers.iter().collect();
            match &copy {
                None if step == 2 => copy = Some(DeviceReplay::new(&refs, &Device::Cpu).unwrap()),
                None => {}
                Some(replay) => replay.store(&refs, refs[0].last_slot().unwrap()).unwrap(),
            }
        }
        let replay = copy.unwrap();
        let sources = [0, 0]; // member 1 samples member 0's buffer, as a stopped member does
        let mut host_rngs = [Pcg64::seed_from_u64(1), Pcg64::seed_from_u64(2)];
        let mut device_rngs = host_rngs.clone();
        let batches: Vec<Batch> = host_rngs
            .iter_mut()
            .zip(sources)
            .map(|(rng, m)| buffers[m].sample(16, rng))
            .collect();
        let slots: Vec<Vec<usize>> = device_rngs
            .iter_mut()
            .zip(sources)
            .map(|(rng, m)| buffers[m].sample_slots(16, rng))
            .collect();
        let gathered = replay.gather(&slots, &sources).unwrap();
        let host = crate::sac::Minibatch::from_batches(&batches, o, a, &Device::Cpu).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (device, host) in [
            (&gathered.obs, &host.obs),
            (&gathered.actions, &host.actions),
            (&gathered.rewards, &host.rewards),
            (&gathered.next_obs, &host.next_obs),
            (&gathered.terminated, &host.terminated),
        ] {
            assert_eq!(device.dims(), host.dims());
            assert_eq!(flat(device), flat(host));
        }
        // Both members drew from member 0's wrapped ring: steps 3..8 only.
        assert!(flat(&gathered.rewards)
            .iter()
            .all(|&r| (30.0..=70.0).contains(&r)));
    }
}
