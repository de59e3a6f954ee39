//! Environments of DESIGN.md §6: classic control (dynamics step-for-step equal to
//! Gymnasium's) with shaped and unshaped rewards, and bandits whose reward is also
//! available as candle tensor operations.
//!
//! Every environment is an [`Env`]: the [`Dynamics`] of one system plus what all of them
//! share: action validation and clipping, the step counter and the time-limit cut-off
//! (which sets `truncated`, never `terminated`). `gym:<ID>` names any Gymnasium
//! environment, stepped by a Python worker ([`gym`]) behind the same interface. Names are
//! parsed, printed and classified by [`EnvId`] alone.
//!
//! A leaf layer: imports no other layer of the trainer (candle only for the bandits'
//! differentiable rewards).

mod acrobot;
mod bandit;
mod batch;
pub mod gym;
mod id;
mod kwargs;
mod mountain_car;
mod pendulum;

pub use bandit::Bandit;
pub use batch::{EnvBatch, MemberStep};
pub use gym::{GymError, GymOptions};
pub use id::{EnvId, Family};
pub use kwargs::EnvKwargs;

use rand::RngCore;

/// `x ** 2` as Gymnasium computes it: C `pow(x, 2)`, which is not always `x * x` in the last
/// bit. The exponent is hidden from the optimiser, which would otherwise turn the call into
/// a multiplication; chaotic systems (Acrobot) amplify that last bit.
fn pow2(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// What one step returned besides the observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// Reward for this step.
    pub reward: f64,
    /// The episode ended in a terminal state (do not bootstrap).
    pub terminated: bool,
    /// The time-limit cut-off was reached (bootstrap through it).
    pub truncated: bool,
}

/// Why an environment refused a request. The environment's state is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// No environment has this name.
    #[error(
        "unknown environment `{0}`; `mixsac envs` lists them, and gym:<ID> runs a Gymnasium one"
    )]
    Unknown(String),
    /// A `random-bandit:A..B` range whose ends are not integers.
    #[error("bad range in `{0}` (expected random-bandit:A..B with integers A < B)")]
    BadRange(String),
    /// The action has the wrong number of entries.
    #[error("action has {found} entries, {env} takes {expected}")]
    ActionLength {
        env: String,
        expected: usize,
        found: usize,
    },
    /// The action holds a NaN or infinity.
    #[error("action entry {index} is {value}, not a finite number")]
    NonFiniteAction { index: usize, value: f64 },
    /// A Gymnasium environment failed (see [`GymError`]).
    #[error(transparent)]
    Gym(#[from] GymError),
    /// Gymnasium environments hold their state in Python; it cannot be set from here.
    #[error("{env} cannot be put into a given state: Gymnasium holds it")]
    NotRestorable { env: String },
    /// A state given to [`Env::reset_to`] has the wrong length or is not finite.
    #[error("{env} state needs {expected} finite numbers ({layout}), got {found:?}")]
    BadState {
        env: String,
        expected: usize,
        layout: &'static str,
        found: Vec<f64>,
    },
}

/// The physics (or bandit) of one environment, without the shared bookkeeping.
pub trait Dynamics: Send {
    /// Observation length.
    fn obs_dim(&self) -> usize;
    /// Writes the observation of the current state.
    fn observe(&self, obs: &mut [f32]);
    /// Draws a start state.
    fn reset(&mut self, rng: &mut dyn RngCore);
    /// The full internal state (for replay and conformance checks).
    fn state(&self) -> Vec<f64>;
    /// Names of the state entries, e.g. `"theta, theta_dot"`.
    fn state_layout(&self) -> &'static str;
    /// Sets the internal state; `state` has already been checked for length and finiteness.
    fn set_state(&mut self, state: &[f64]);
    /// Advances one step with an action already inside the bounds; returns
    /// (reward, terminated).
    fn advance(&mut self, action: &[f64]) -> (f64, bool);
}

/// Static facts about an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    /// Name as given to `--env`.
    pub name: String,
    /// One line for `mixsac envs`.
    pub description: String,
    /// Lower action bounds.
    pub action_low: Vec<f64>,
    /// Upper action bounds.
    pub action_high: Vec<f64>,
    /// Steps after which an episode is cut off (`truncated`); `usize::MAX` for none.
    pub cutoff: usize,
}

impl EnvSpec {
    /// The spec of the environments a Gymnasium worker reported.
    fn of_gym(name: &str, worker: &gym::GymWorker, options: &GymOptions) -> EnvSpec {
        let spec = worker.spec();
        let flattened = if spec.flattened {
            ", observation flattened"
        } else {
            ""
        };
        EnvSpec {
            name: name.to_string(),
            description: format!("Gymnasium {} in {}{flattened}", worker.id(), options.python),
            action_low: spec.action_low.clone(),
            action_high: spec.action_high.clone(),
            cutoff: spec.max_episode_steps.unwrap_or(usize::MAX),
        }
    }

    /// Checks `action` and writes it, clipped to the bounds as Gymnasium clips it, to
    /// `clipped`; a wrong length or a non-finite entry is refused.
    fn clip(&self, action: &[f64], clipped: &mut [f64]) -> Result<(), EnvError> {
        if action.len() != self.action_low.len() {
            return Err(EnvError::ActionLength {
                env: self.name.clone(),
                expected: self.action_low.len(),
                found: action.len(),
            });
        }
        if let Some((index, &value)) = action.iter().enumerate().find(|(_, a)| !a.is_finite()) {
            return Err(EnvError::NonFiniteAction { index, value });
        }
        let bounds = self.action_low.iter().zip(&self.action_high);
        for ((c, &a), (&lo, &hi)) in clipped.iter_mut().zip(action).zip(bounds) {
            *c = a.clamp(lo, hi);
        }
        Ok(())
    }
}

/// What steps: our own dynamics, or a Gymnasium worker (which applies its own time limit).
enum Backend {
    Local(Box<dyn Dynamics>),
    Gym(Box<gym::GymWorker>),
}

/// An environment: dynamics plus validation, clipping, step counting and the cut-off.
pub struct Env {
    spec: EnvSpec,
    backend: Backend,
    steps: usize,
    /// The action clipped to the bounds (kept to avoid an allocation per step).
    clipped: Vec<f64>,
}

impl Env {
    fn new(spec: EnvSpec, dynamics: impl Dynamics + 'static) -> Env {
        Env {
            clipped: vec![0.0; spec.action_low.len()],
            spec,
            backend: Backend::Local(Box::new(dynamics)),
            steps: 0,
        }
    }

    /// Starts a Gymnasium worker for `id`.
    fn gym(name: &str, id: &str, options: &GymOptions) -> Result<Env, EnvError> {
        let worker = gym::GymWorker::start(id, options)?;
        let spec = EnvSpec::of_gym(name, &worker, options);
        Ok(Env {
            clipped: vec![0.0; spec.action_low.len()],
            spec,
            backend: Backend::Gym(Box::new(worker)),
            steps: 0,
        })
    }

    /// Whether [`Env::state`] can be saved and restored (not for Gymnasium environments).
    pub fn can_restore(&self) -> bool {
        matches!(self.backend, Backend::Local(_))
    }

    /// Static facts: name, bounds, cut-off.
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// Observation length.
    pub fn obs_dim(&self) -> usize {
        match &self.backend {
            Backend::Local(dynamics) => dynamics.obs_dim(),
            Backend::Gym(worker) => worker.spec().obs_dim,
        }
    }

    /// Action length.
    pub fn action_dim(&self) -> usize {
        self.spec.action_low.len()
    }

    /// Starts an episode from a random start state; writes its observation. (A Gymnasium
    /// environment is reset with a seed drawn from `rng`, so runs stay reproducible.)
    pub fn reset(&mut self, rng: &mut dyn RngCore, obs: &mut [f32]) -> Result<(), EnvError> {
        match &mut self.backend {
            Backend::Local(dynamics) => {
                dynamics.reset(rng);
                dynamics.observe(obs);
            }
            Backend::Gym(worker) => {
                let first = worker.reset(u64::from(gym_seed(rng)))?;
                copy_f32(&first, obs);
            }
        }
        self.steps = 0;
        Ok(())
    }

    /// Starts an episode from a given state (see [`Env::state_layout`]); writes its observation.
    pub fn reset_to(&mut self, state: &[f64], obs: &mut [f32]) -> Result<(), EnvError> {
        let Backend::Local(dynamics) = &mut self.backend else {
            return Err(EnvError::NotRestorable {
                env: self.spec.name.clone(),
            });
        };
        let expected = dynamics.state().len();
        if state.len() != expected || state.iter().any(|x| !x.is_finite()) {
            return Err(EnvError::BadState {
                env: self.spec.name.clone(),
                expected,
                layout: dynamics.state_layout(),
                found: state.to_vec(),
            });
        }
        dynamics.set_state(state);
        self.steps = 0;
        dynamics.observe(obs);
        Ok(())
    }

    /// Steps taken in the current episode.
    pub fn episode_steps(&self) -> usize {
        self.steps
    }

    /// Continues an episode from a saved state and step count (checkpoint resume).
    pub fn resume_at(
        &mut self,
        state: &[f64],
        steps: usize,
        obs: &mut [f32],
    ) -> Result<(), EnvError> {
        self.reset_to(state, obs)?;
        self.steps = steps;
        Ok(())
    }

    /// The internal state (empty for Gymnasium environments, whose state stays in Python).
    pub fn state(&self) -> Vec<f64> {
        match &self.backend {
            Backend::Local(dynamics) => dynamics.state(),
            Backend::Gym(_) => Vec::new(),
        }
    }

    /// Names of the internal state's entries.
    pub fn state_layout(&self) -> &'static str {
        match &self.backend {
            Backend::Local(dynamics) => dynamics.state_layout(),
            Backend::Gym(_) => "held by Gymnasium, not restorable",
        }
    }

    /// The Gymnasium worker, for `gym:` environments.
    pub fn gym_worker(&mut self) -> Option<&mut gym::GymWorker> {
        match &mut self.backend {
            Backend::Gym(worker) => Some(worker),
            Backend::Local(_) => None,
        }
    }

    /// Nanoseconds per step under uniformly random actions (a fixed cycle of 1024, drawn
    /// beforehand), resetting at episode ends: `mixsac bench-envs`.
    pub fn ns_per_random_step(&mut self, steps: usize) -> Result<f64, EnvError> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
        let mut obs = vec![0.0f32; self.obs_dim()];
        let bounds: Vec<(f64, f64)> = self
            .spec
            .action_low
            .iter()
            .copied()
            .zip(self.spec.action_high.iter().copied())
            .collect();
        let actions: Vec<Vec<f64>> = (0..1024)
            .map(|_| {
                bounds
                    .iter()
                    .map(|&(l, h)| rng.random_range(l..h))
                    .collect()
            })
            .collect();
        self.reset(&mut rng, &mut obs)?;
        let start = std::time::Instant::now();
        for i in 0..steps {
            let t = self.step(&actions[i % actions.len()], &mut obs)?;
            if t.terminated || t.truncated {
                self.reset(&mut rng, &mut obs)?;
            }
        }
        std::hint::black_box(&obs);
        Ok(start.elapsed().as_nanos() as f64 / steps as f64)
    }

    /// One step. The action is clipped to the bounds, as Gymnasium clips it; a non-finite
    /// action is refused and leaves the state untouched.
    pub fn step(&mut self, action: &[f64], obs: &mut [f32]) -> Result<Transition, EnvError> {
        self.spec.clip(action, &mut self.clipped)?;
        let clipped = &self.clipped[..];
        self.steps += 1;
        match &mut self.backend {
            Backend::Local(dynamics) => {
                let (reward, terminated) = dynamics.advance(clipped);
                dynamics.observe(obs);
                // A terminal step is not also a cut-off: `truncated` means "ended by the time
                // limit only".
                let truncated = !terminated && self.steps >= self.spec.cutoff;
                Ok(Transition {
                    reward,
                    terminated,
                    truncated,
                })
            }
            Backend::Gym(worker) => {
                let step = worker.step(clipped)?;
                copy_f32(&step.obs, obs);
                Ok(step.transition())
            }
        }
    }
}

impl gym::GymStep {
    /// The step as our environments report it: `truncated` only when not also terminal.
    fn transition(&self) -> Transition {
        Transition {
            reward: self.reward,
            terminated: self.terminated,
            truncated: self.truncated && !self.terminated,
        }
    }
}

/// The seed of a Gymnasium environment's next episode, drawn from the run's generator. 32
/// bits: some environments (shimmy's DeepMind Control) seed a legacy NumPy RandomState,
/// which refuses larger seeds.
fn gym_seed(rng: &mut dyn RngCore) -> u32 {
    rng.next_u32()
}

/// Writes float64 values into an f32 observation buffer.
fn copy_f32(values: &[f64], obs: &mut [f32]) {
    for (o, &v) in obs.iter_mut().zip(values) {
        *o = v as f32;
    }
}

/// Makes an environment by name; `gym:<ID>` uses the Python of [`GymOptions::default`].
pub fn make(name: &str) -> Result<Env, EnvError> {
    name.parse::<EnvId>()?.make(&GymOptions::default())
}

impl EnvId {
    /// Makes the environment; `gym:<ID>` environments run in `gym`'s Python.
    pub fn make(&self, gym: &GymOptions) -> Result<Env, EnvError> {
        use acrobot::Acrobot;
        use mountain_car::MountainCar;
        use pendulum::Pendulum;
        let name = self.to_string();
        let spec = |description: &str, low: f64, high: f64, cutoff| EnvSpec {
            name: name.clone(),
            description: description.to_string(),
            action_low: vec![low],
            action_high: vec![high],
            cutoff,
        };
        Ok(match self {
        EnvId::Gym(id) => return Env::gym(&name, id, gym),
        EnvId::Pendulum => Env::new(
            spec("Pendulum-v1 swing-up, reward 1 while within 0.25 rad of upright, else 0", -2.0, 2.0, 200),
            Pendulum::new(false),
        ),
        EnvId::ShapedPendulum => Env::new(
            spec("Pendulum-v1 swing-up with Gymnasium's reward -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)", -2.0, 2.0, 200),
            Pendulum::new(true),
        ),
        EnvId::Acrobot => Env::new(
            spec("Acrobot-v1 (book dynamics, RK4, continuous torque), -1 per step, 0 on reaching the goal", -1.0, 1.0, 1000),
            Acrobot::new(false),
        ),
        EnvId::ShapedAcrobot => Env::new(
            spec("Acrobot-v1 with reward -cos(theta1) - cos(theta1 + theta2) - 1", -1.0, 1.0, 1000),
            Acrobot::new(true),
        ),
        EnvId::MountainCar => Env::new(
            spec("MountainCarContinuous-v0 dynamics, -1 per step until the goal", -1.0, 1.0, 1000),
            MountainCar::new(false),
        ),
        EnvId::ShapedMountainCar => Env::new(
            spec("MountainCarContinuous-v0 dynamics with reward x - 0.6", -1.0, 1.0, 1000),
            MountainCar::new(true),
        ),
        EnvId::BimodalBandit => {
            let bandit = Bandit::bimodal();
            Env::new(spec("one-step bandit, r(a) ∝ N(a; -1, 0.5) + N(a; 1, 0.5), max r = 1", -3.0, 3.0, 1), bandit)
        }
        EnvId::RandomBandit(seed) => Env::new(
            spec("one-step bandit, r(a) ∝ sum of 30 random Gaussians (seeded), max r = 1", -3.0, 3.0, 1),
            Bandit::random(*seed),
        ),
    })
    }
}
