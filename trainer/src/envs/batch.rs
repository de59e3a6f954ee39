//! The environments of a population's members, stepped together. The population asks for
//! one step of every member ([`EnvBatch::step_all`]); how that happens is decided here:
//! `gym:` members share one Python worker holding an environment per member, so a
//! population step is one round trip to Python instead of one per member, and our own
//! environments (and a solo run's, of any kind) step one after the other as [`Env::step`].
//!
//! Member i sees what a solo run with its generator sees: the same actions reach the same
//! environment, and an episode that ends is reset at once with a seed drawn from the
//! member's generator, exactly where a solo run draws it. For a shared worker the seed is
//! read ahead (from a copy of the generator) and sent with the step, and drawn for real
//! only if the episode ended: the reset costs no second round trip and the generator's
//! stream is unchanged.

use super::gym::{GymError, GymOptions, GymWorker, MemberReply, MemberRequest};
use super::{copy_f32, gym_seed, Env, EnvError, EnvId, EnvSpec, Transition};
use rand::RngCore;

/// One member's outcome of [`EnvBatch::step_all`].
#[derive(Debug, Clone, PartialEq)]
pub enum MemberStep {
    /// The member was given no action (it had stopped).
    Idle,
    /// It stepped ([`EnvBatch::next_obs`] is the observation). If the episode ended, a new
    /// one was started: `reset` says whether that worked ([`EnvBatch::first_obs`] is then
    /// its first observation).
    Stepped {
        transition: Transition,
        reset: Option<Result<(), EnvError>>,
    },
    /// The step failed; the member's environment is not to be used again.
    Failed(EnvError),
}

/// The environments of a population's members (all of one ID).
pub struct EnvBatch {
    members: Members,
    obs_dim: usize,
    /// Per member (`[S, obs_dim]`, row-major): the observation its last step ended in...
    next_obs: Vec<f32>,
    /// ...and, where that step ended the episode, the next episode's first observation.
    first_obs: Vec<f32>,
}

enum Members {
    /// One environment per member, stepped in turn.
    Each(Vec<Env>),
    /// Gymnasium environments held by one worker.
    Gym(Box<SharedGym>),
}

struct SharedGym {
    spec: EnvSpec,
    worker: GymWorker,
    /// Steps taken in each member's current episode.
    steps: Vec<usize>,
    /// Each member's clipped action (`[S, action_dim]`).
    clipped: Vec<f64>,
}

impl EnvBatch {
    /// The environments of `members` members of `id`: one shared worker for `gym:` IDs when
    /// there are several members, else one [`Env`] each.
    pub fn make(id: &EnvId, members: usize, gym: &GymOptions) -> Result<EnvBatch, EnvError> {
        let members = match id {
            EnvId::Gym(gym_id) if members > 1 => {
                let worker = GymWorker::start_many(gym_id, members, gym)?;
                let spec = EnvSpec::of_gym(&id.to_string(), &worker, gym);
                Members::Gym(Box::new(SharedGym {
                    clipped: vec![0.0; members * spec.action_low.len()],
                    steps: vec![0; members],
                    spec,
                    worker,
                }))
            }
            _ => return EnvBatch::each(id, members, gym),
        };
        Ok(EnvBatch::of(members))
    }

    /// One [`Env`] per member, stepped in turn, whatever the ID: what [`EnvBatch::make`]
    /// picks for our own environments and a solo run; for several `gym:` members it is the
    /// slower way (one worker and round trip each), kept to be measured against
    /// (`mixsac bench-envs --population`).
    pub fn each(id: &EnvId, members: usize, gym: &GymOptions) -> Result<EnvBatch, EnvError> {
        let envs = (0..members.max(1))
            .map(|_| id.make(gym))
            .collect::<Result<_, _>>()?;
        Ok(EnvBatch::of(Members::Each(envs)))
    }

    fn of(members: Members) -> EnvBatch {
        let (obs_dim, count) = match &members {
            Members::Each(envs) => (envs[0].obs_dim(), envs.len()),
            Members::Gym(shared) => (shared.worker.spec().obs_dim, shared.steps.len()),
        };
        EnvBatch {
            members,
            obs_dim,
            next_obs: vec![0.0; count * obs_dim],
            first_obs: vec![0.0; count * obs_dim],
        }
    }

    /// Members.
    pub fn count(&self) -> usize {
        self.next_obs.len() / self.obs_dim.max(1)
    }

    /// Static facts shared by every member's environment.
    pub fn spec(&self) -> &EnvSpec {
        match &self.members {
            Members::Each(envs) => envs[0].spec(),
            Members::Gym(shared) => &shared.spec,
        }
    }

    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    pub fn action_dim(&self) -> usize {
        self.spec().action_low.len()
    }

    /// Whether states can be saved and restored (see [`Env::can_restore`]).
    pub fn can_restore(&self) -> bool {
        match &self.members {
            Members::Each(envs) => envs[0].can_restore(),
            Members::Gym(_) => false,
        }
    }

    /// Starts a new episode of member `i` (see [`Env::reset`]); writes its observation.
    pub fn reset(
        &mut self,
        i: usize,
        rng: &mut dyn RngCore,
        obs: &mut [f32],
    ) -> Result<(), EnvError> {
        match &mut self.members {
            Members::Each(envs) => envs[i].reset(rng, obs),
            Members::Gym(shared) => {
                let first = shared.worker.reset_member(i, u64::from(gym_seed(rng)))?;
                copy_f32(&first, obs);
                shared.steps[i] = 0;
                Ok(())
            }
        }
    }

    /// Continues member `i`'s episode from a saved state (see [`Env::resume_at`]).
    pub fn resume_at(
        &mut self,
        i: usize,
        state: &[f64],
        steps: usize,
        obs: &mut [f32],
    ) -> Result<(), EnvError> {
        match &mut self.members {
            Members::Each(envs) => envs[i].resume_at(state, steps, obs),
            Members::Gym(shared) => Err(EnvError::NotRestorable {
                env: shared.spec.name.clone(),
            }),
        }
    }

    /// Member `i`'s internal state (empty for Gymnasium environments).
    pub fn state(&self, i: usize) -> Vec<f64> {
        match &self.members {
            Members::Each(envs) => envs[i].state(),
            Members::Gym(_) => Vec::new(),
        }
    }

    /// Steps taken in member `i`'s current episode.
    pub fn episode_steps(&self, i: usize) -> usize {
        match &self.members {
            Members::Each(envs) => envs[i].episode_steps(),
            Members::Gym(shared) => shared.steps[i],
        }
    }

    /// The observation member `i`'s last step ended in.
    pub fn next_obs(&self, i: usize) -> &[f32] {
        &self.next_obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }

    /// The first observation of the episode member `i` started after its last step.
    pub fn first_obs(&self, i: usize) -> &[f32] {
        &self.first_obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }

    /// One step of every member given an action (`actions[i]`, `None` for a member that has
    /// stopped); a member whose episode ends starts a new one, seeded from `rngs[i]` as
    /// [`Env::reset`] seeds it. Each member's outcome is its own: one member's failure
    /// leaves the others' steps intact (only a dead or hung shared worker fails them all).
    pub fn step_all<R: RngCore + Clone>(
        &mut self,
        actions: &[Option<&[f64]>],
        rngs: &mut [R],
    ) -> Vec<MemberStep> {
        let o = self.obs_dim;
        match &mut self.members {
            Members::Each(envs) => {
                let mut outcomes = Vec::with_capacity(envs.len());
                for (i, (env, rng)) in envs.iter_mut().zip(rngs).enumerate() {
                    let Some(action) = actions[i] else {
                        outcomes.push(MemberStep::Idle);
                        continue;
                    };
                    let rows = i * o..(i + 1) * o;
                    outcomes.push(match env.step(action, &mut self.next_obs[rows.clone()]) {
                        Err(e) => MemberStep::Failed(e),
                        Ok(transition) => MemberStep::Stepped {
                            transition,
                            reset: (transition.terminated || transition.truncated)
                                .then(|| env.reset(rng, &mut self.first_obs[rows])),
                        },
                    });
                }
                outcomes
            }
            Members::Gym(shared) => {
                shared.step_all(actions, rngs, &mut self.next_obs, &mut self.first_obs)
            }
        }
    }
}

impl SharedGym {
    /// [`EnvBatch::step_all`] in one round trip to the worker.
    fn step_all<R: RngCore + Clone>(
        &mut self,
        actions: &[Option<&[f64]>],
        rngs: &mut [R],
        next_obs: &mut [f32],
        first_obs: &mut [f32],
    ) -> Vec<MemberStep> {
        let (a, o) = (self.spec.action_low.len(), self.worker.spec().obs_dim);
        let mut outcomes = vec![MemberStep::Idle; actions.len()];
        for (i, action) in actions.iter().enumerate() {
            if let Some(action) = action {
                if let Err(e) = self
                    .spec
                    .clip(action, &mut self.clipped[i * a..(i + 1) * a])
                {
                    outcomes[i] = MemberStep::Failed(e);
                }
            }
        }
        let requests: Vec<Option<MemberRequest>> = actions
            .iter()
            .enumerate()
            .map(|(i, action)| {
                let clipped_ok = action.is_some() && outcomes[i] == MemberStep::Idle;
                clipped_ok.then(|| MemberRequest {
                    action: &self.clipped[i * a..(i + 1) * a],
                    // Read ahead: drawn for real below only if the episode ends.
                    reset_seed: gym_seed(&mut rngs[i].clone()),
                })
            })
            .collect();
        let replies = match self.worker.step_members(&requests) {
            Ok(replies) => replies,
            Err(e) => {
                // The worker is gone: every member that stepped shares its failure.
                for (outcome, request) in outcomes.iter_mut().zip(&requests) {
                    if request.is_some() {
                        *outcome = MemberStep::Failed(e.clone().into());
                    }
                }
                return outcomes;
            }
        };
        for (i, reply) in replies.into_iter().enumerate() {
            let rows = i * o..(i + 1) * o;
            outcomes[i] = match reply {
                MemberReply::Idle => continue,
                MemberReply::Failed(e) => MemberStep::Failed(e.into()),
                MemberReply::Stepped { step, reset }
                    if (step.terminated || step.truncated) != reset.is_some() =>
                {
                    MemberStep::Failed(EnvError::Gym(GymError::Protocol {
                        id: self.worker.id().to_string(),
                        message: "an episode's end and its reset disagree".into(),
                    }))
                }
                MemberReply::Stepped { step, reset } => {
                    self.steps[i] += 1;
                    copy_f32(&step.obs, &mut next_obs[rows.clone()]);
                    let transition = step.transition();
                    let reset = reset.map(|first| {
                        gym_seed(&mut rngs[i]);
                        self.steps[i] = 0;
                        let first = first?;
                        copy_f32(&first, &mut first_obs[rows]);
                        Ok(())
                    });
                    MemberStep::Stepped { transition, reset }
                }
            };
        }
        outcomes
    }
}
