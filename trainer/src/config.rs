//! Training configuration: every hyperparameter is a `mixsac train` flag and a key of the
//! `--config` TOML file (flags override the file); the fully resolved values are written to
//! `config.toml` in the output directory, which `--config` reads back to reproduce a run.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Policy classes of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// tanh-squashed Gaussian (K = 1).
    Squashed,
    /// squashed Gaussian mixture.
    Sgm,
    /// Gaussian (K = 1), actions clipped by the environment.
    Gaussian,
    /// Gaussian mixture, actions clipped by the environment.
    Gm,
}

impl PolicyKind {
    pub fn squashed(self) -> bool {
        matches!(self, PolicyKind::Squashed | PolicyKind::Sgm)
    }
    pub fn is_mixture(self) -> bool {
        matches!(self, PolicyKind::Sgm | PolicyKind::Gm)
    }
}

/// The estimator names of the CLI (`--estimator`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Reparameterisation, K = 1 only.
    Rep,
    /// Likelihood ratio with a sampled baseline.
    Like,
    /// Half reparameterisation: score for the component, reparameterisation within it.
    HalfRep,
    /// Gumbel-softmax straight-through for the component (biased).
    Gumbel,
    /// Marginalised reparameterisation: every component, weighted by w.
    Mrp,
}

impl Estimator {
    pub const ALL: [Estimator; 5] = [
        Estimator::Rep,
        Estimator::Like,
        Estimator::HalfRep,
        Estimator::Gumbel,
        Estimator::Mrp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Rep => "rep",
            Estimator::Like => "like",
            Estimator::HalfRep => "halfrep",
            Estimator::Gumbel => "gumbel",
            Estimator::Mrp => "mrp",
        }
    }
}

impl std::str::FromStr for Estimator {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Estimator::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                format!("unknown estimator `{s}` (expected one of rep, like, halfrep, gumbel, mrp)")
            })
    }
}

/// Flags of `mixsac train`; each is also a key of the TOML file given to `--config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct TrainArgs {
    /// TOML file with any of these keys (flags given on the command line win).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Output directory (config.toml, metrics.csv, policy.mxp, checkpoint/).
    #[arg(long)]
    #[serde(skip)]
    pub out: Option<PathBuf>,
    /// Environment (see `mixsac envs`).
    #[arg(long)]
    pub env: Option<String>,
    /// Policy class [default: squashed].
    #[arg(long, value_enum)]
    pub policy: Option<PolicyKind>,
    /// Mixture components K [default: 1 for squashed/gaussian, 5 for sgm/gm].
    #[arg(long)]
    pub components: Option<usize>,
    /// Actor gradient estimator: rep, like, halfrep, gumbel, mrp [default: rep for K = 1, halfrep otherwise].
    #[arg(long)]
    pub estimator: Option<String>,
    /// Entropy scale: a number ≥ 0, or `auto` for automatic tuning (target entropy −A) [default: 0.01].
    #[arg(long, allow_hyphen_values = true)]
    pub alpha: Option<String>,
    /// Environment steps (one update per step after learning_starts) [default: 20000].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of every random choice in the run [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Hidden width of the two-layer actor and critics [default: 64 classic control, 16 bandits].
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Minibatch size [default: 32].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Replay buffer capacity [default: 100000 classic control, 5000 bandits].
    #[arg(long)]
    pub buffer_size: Option<usize>,
    /// Polyak factor of the target critics [default: 0.01].
    #[arg(long)]
    pub tau: Option<f64>,
    /// Discount factor [default: 0.99].
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Actor learning rate [default: 1e-3].
    #[arg(long)]
    pub actor_lr: Option<f64>,
    /// Critic learning rate [default: 1e-3].
    #[arg(long)]
    pub critic_lr: Option<f64>,
    /// Learning rate of log α when --alpha auto [default: 3e-4].
    #[arg(long)]
    pub alpha_lr: Option<f64>,
    /// Uniformly random actions for this many first steps [default: 1000 classic control, 100 bandits].
    #[arg(long)]
    pub learning_starts: Option<usize>,
    /// Actions sampled for the baseline of like and halfrep [default: 30].
    #[arg(long)]
    pub baseline_samples: Option<usize>,
    /// Gumbel-softmax temperature [default: 1].
    #[arg(long)]
    pub gumbel_tau: Option<f64>,
    /// Lower log-std clamp [default: -20].
    #[arg(long, allow_hyphen_values = true)]
    pub log_std_min: Option<f32>,
    /// Upper log-std clamp [default: 2].
    #[arg(long, allow_hyphen_values = true)]
    pub log_std_max: Option<f32>,
    /// Steps between metrics.csv rows and checkpoints [default: 1000].
    #[arg(long)]
    pub log_every: Option<usize>,
    /// cpu, or cuda (build with --features cuda) [default: cpu].
    #[arg(long)]
    pub device: Option<String>,
    /// Python with gymnasium, for gym:<ID> environments [default: $MIXSAC_PYTHON, else python3].
    #[arg(long)]
    pub python: Option<String>,
    /// Seconds to wait for one reply of a gym:<ID> environment before stopping it [default: 60].
    #[arg(long)]
    pub env_timeout: Option<f64>,
}

/// Entropy scale: fixed, or tuned towards target entropy −A.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alpha {
    Fixed(f64),
    Auto,
}

/// The resolved configuration: what a run actually uses, saved as `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub env: String,
    pub policy: PolicyKind,
    pub components: usize,
    pub estimator: Estimator,
    /// A number, or "auto".
    pub alpha: String,
    pub steps: usize,
    pub seed: u64,
    pub hidden: usize,
    pub batch_size: usize,
    pub buffer_size: usize,
    pub tau: f64,
    pub gamma: f64,
    pub actor_lr: f64,
    pub critic_lr: f64,
    pub alpha_lr: f64,
    pub learning_starts: usize,
    pub baseline_samples: usize,
    pub gumbel_tau: f64,
    pub log_std_min: f32,
    pub log_std_max: f32,
    pub log_every: usize,
    pub device: String,
    /// Python for gym:<ID> environments (unset: $MIXSAC_PYTHON, else python3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// Seconds to wait for one reply of a gym:<ID> environment.
    #[serde(default = "default_env_timeout")]
    pub env_timeout: f64,
}

fn default_env_timeout() -> f64 {
    60.0
}

/// Which defaults of DESIGN.md §5 apply.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    ClassicControl,
    /// gym:<ID> environments (MuJoCo, DeepMind Control, users' own).
    MujocoSize,
    Bandit,
}

impl Family {
    /// The default of this family among the three.
    fn pick<T>(self, classic: T, mujoco: T, bandit: T) -> T {
        match self {
            Family::ClassicControl => classic,
            Family::MujocoSize => mujoco,
            Family::Bandit => bandit,
        }
    }
}

impl TrainArgs {
    /// Reads `--config` (if any) under the flags: flags win.
    pub fn with_file(self) -> Result<TrainArgs> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let file: TrainArgs = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(self.over(file))
    }

    /// `self`'s values, falling back to `other`'s.
    pub fn over(self, other: TrainArgs) -> TrainArgs {
        macro_rules! merge {
            ($($f:ident),*) => { TrainArgs { $($f: self.$f.or(other.$f)),* } };
        }
        merge!(
            config,
            out,
            env,
            policy,
            components,
            estimator,
            alpha,
            steps,
            seed,
            hidden,
            batch_size,
            buffer_size,
            tau,
            gamma,
            actor_lr,
            critic_lr,
            alpha_lr,
            learning_starts,
            baseline_samples,
            gumbel_tau,
            log_std_min,
            log_std_max,
            log_every,
            device,
            python,
            env_timeout
        )
    }

    /// Fills every unset value with its default and checks the combination.
    pub fn resolve(self) -> Result<Config> {
        let Some(env) = self.env.clone() else {
            bail!("--env is required (see `mixsac envs`)")
        };
        // A clear error for unknown names before anything else (no Python is started here).
        let gym = crate::envs::check_name(&env)?;
        let family = if gym {
            Family::MujocoSize
        } else if env.contains("bandit") {
            Family::Bandit
        } else {
            Family::ClassicControl
        };
        let lr = family.pick(1e-3, 3e-4, 1e-3);
        let policy = self.policy.unwrap_or(PolicyKind::Squashed);
        let components = self
            .components
            .unwrap_or(if policy.is_mixture() { 5 } else { 1 });
        let estimator = match &self.estimator {
            Some(name) => name.parse::<Estimator>().map_err(anyhow::Error::msg)?,
            None if components == 1 => Estimator::Rep,
            None => Estimator::HalfRep,
        };
        let config = Config {
            env,
            policy,
            components,
            estimator,
            alpha: self
                .alpha
                .unwrap_or_else(|| family.pick("0.01", "auto", "0.01").into()),
            steps: self.steps.unwrap_or(20_000),
            seed: self.seed.unwrap_or(0),
            hidden: self.hidden.unwrap_or(family.pick(64, 256, 16)),
            batch_size: self.batch_size.unwrap_or(family.pick(32, 256, 32)),
            buffer_size: self
                .buffer_size
                .unwrap_or(family.pick(100_000, 1_000_000, 5000)),
            tau: self.tau.unwrap_or(family.pick(0.01, 0.005, 0.01)),
            gamma: self.gamma.unwrap_or(0.99),
            actor_lr: self.actor_lr.unwrap_or(lr),
            critic_lr: self.critic_lr.unwrap_or(lr),
            alpha_lr: self.alpha_lr.unwrap_or(3e-4),
            learning_starts: self
                .learning_starts
                .unwrap_or(family.pick(1000, 10_000, 100)),
            baseline_samples: self.baseline_samples.unwrap_or(30),
            gumbel_tau: self.gumbel_tau.unwrap_or(1.0),
            log_std_min: self.log_std_min.unwrap_or(-20.0),
            log_std_max: self.log_std_max.unwrap_or(2.0),
            log_every: self.log_every.unwrap_or(1000),
            device: self.device.unwrap_or_else(|| "cpu".into()),
            python: self.python,
            env_timeout: self.env_timeout.unwrap_or(default_env_timeout()),
        };
        config.validate()?;
        Ok(config)
    }
}

impl Config {
    /// Refuses combinations that cannot run, each with a message naming the fix.
    pub fn validate(&self) -> Result<()> {
        if self.components == 0 {
            bail!("--components must be at least 1");
        }
        if !self.policy.is_mixture() && self.components != 1 {
            bail!(
                "--policy {:?} has one component; use sgm or gm for --components {}",
                self.policy,
                self.components
            );
        }
        if self.estimator == Estimator::Rep && self.components > 1 {
            bail!("the rep estimator needs a single component (K = 1); for mixtures use halfrep, gumbel, mrp or like");
        }
        self.alpha()?;
        for (name, value) in [("tau", self.tau), ("gamma", self.gamma)] {
            if !(0.0..=1.0).contains(&value) {
                bail!("--{name} must lie in [0, 1], got {value}");
            }
        }
        for (name, value) in [
            ("actor-lr", self.actor_lr),
            ("critic-lr", self.critic_lr),
            ("alpha-lr", self.alpha_lr),
            ("gumbel-tau", self.gumbel_tau),
        ] {
            if !(value.is_finite() && value > 0.0) {
                bail!("--{name} must be a positive number, got {value}");
            }
        }
        for (name, value) in [
            ("steps", self.steps),
            ("hidden", self.hidden),
            ("batch-size", self.batch_size),
            ("buffer-size", self.buffer_size),
            ("baseline-samples", self.baseline_samples),
            ("log-every", self.log_every),
        ] {
            if value == 0 {
                bail!("--{name} must be at least 1");
            }
        }
        if !(self.env_timeout.is_finite() && self.env_timeout > 0.0) {
            bail!(
                "--env-timeout must be a positive number of seconds, got {}",
                self.env_timeout
            );
        }
        if !matches!(self.device.as_str(), "cpu" | "cuda") {
            bail!("--device must be cpu or cuda, got `{}`", self.device);
        }
        Ok(())
    }

    pub fn alpha(&self) -> Result<Alpha> {
        if self.alpha == "auto" {
            return Ok(Alpha::Auto);
        }
        match self.alpha.parse::<f64>() {
            Ok(a) if a.is_finite() && a >= 0.0 => Ok(Alpha::Fixed(a)),
            _ => bail!(
                "--alpha must be a number ≥ 0 or `auto`, got `{}`",
                self.alpha
            ),
        }
    }

    pub fn is_bandit(&self) -> bool {
        !self.env.starts_with(crate::envs::GYM_PREFIX) && self.env.contains("bandit")
    }

    /// How gym:<ID> environments of this run are started.
    pub fn gym_options(&self) -> crate::envs::GymOptions {
        crate::envs::GymOptions {
            timeout: std::time::Duration::from_secs_f64(self.env_timeout),
            ..crate::envs::GymOptions::new(self.python.as_deref())
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string(self)?;
        std::fs::write(
            path,
            format!(
                "# mixsac train --config {} reproduces this run\n{text}",
                path.display()
            ),
        )
        .with_context(|| format!("cannot write {}", path.display()))
    }
}
