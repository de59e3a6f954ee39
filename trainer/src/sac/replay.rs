//! A fixed-capacity replay buffer of transitions, stored as flat f32 arrays, overwriting the
//! oldest once full.

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
        for _ in 0..n {
            let i = rng.random_range(0..self.len);
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
