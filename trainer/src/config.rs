//! Training configuration. Every hyperparameter is defined once, in the table passed to the
//! `hyperparameters!` macro below: its name (the `mixsac train` flag and the TOML
//! key), its type, its help text and its default per environment family (DESIGN.md §5).
//! From that table come [`TrainArgs`] (the flags and the `--config` file: unset values are
//! `None`), [`Config`] (the resolved values, saved as `config.toml`, which `--config` reads
//! back to reproduce a run), the merge of flags over a file, the resolution of defaults,
//! and the defaults shown by `--help` ([`document_defaults`]).
//!
//! Also the typed names of settings: [`PolicyKind`], [`Estimator`], [`Alpha`], [`Device`].
//! May import `envs` (for the environment's family); every layer above may import this.

use crate::envs::{EnvId, EnvKwargs, Family};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
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

/// Actor gradient estimators of DESIGN.md §4 (`--estimator`); `sac::estimators` holds one
/// module per estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Reparameterisation, K = 1 only.
    Rep,
    /// Likelihood ratio with a sampled baseline.
    Like,
    /// Half reparameterisation: score for the component, reparameterisation within it.
    #[value(name = "halfrep")]
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
}

/// Where the tensors live (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    /// An NVIDIA GPU; needs a build with `--features cuda`.
    Cuda,
}

/// Names as the command line and the TOML files spell them.
macro_rules! display_as_value_enum {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let value = clap::ValueEnum::to_possible_value(self).ok_or(fmt::Error)?;
                f.pad(value.get_name())
            }
        }
    )*};
}
display_as_value_enum!(PolicyKind, Estimator, Device);

/// Entropy scale α: fixed, or tuned towards the target entropy −A (`auto`). In TOML a
/// number or the string `"auto"` (numbers as strings, as older `config.toml` files have
/// them, are accepted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alpha {
    Fixed(f64),
    Auto,
}

impl std::str::FromStr for Alpha {
    type Err = String;
    fn from_str(text: &str) -> Result<Alpha, String> {
        if text == "auto" {
            return Ok(Alpha::Auto);
        }
        match text.parse::<f64>() {
            Ok(a) if a.is_finite() && a >= 0.0 => Ok(Alpha::Fixed(a)),
            _ => Err(format!(
                "--alpha must be a number ≥ 0 or `auto`, got `{text}`"
            )),
        }
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Alpha::Fixed(a) => write!(f, "{a}"),
            Alpha::Auto => f.write_str("auto"),
        }
    }
}

impl Serialize for Alpha {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Alpha::Fixed(a) => s.serialize_f64(*a),
            Alpha::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Alpha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Alpha, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Number(f64),
            Word(String),
        }
        let text = match Text::deserialize(d)? {
            Text::Number(a) => a.to_string(),
            Text::Word(w) => w,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One hyperparameter as `--help` documents it.
pub struct Hyperparameter {
    /// The field, TOML key and (with `-` for `_`) the flag.
    pub name: &'static str,
    pub help: &'static str,
    /// The default in a family, as text.
    pub default: fn(Family) -> String,
    /// The default follows from other settings (its text says how) rather than a family.
    pub derived: bool,
}

/// Generates [`TrainArgs`], [`Config`], their merge and resolution, and [`HYPERPARAMETERS`]
/// from one table. (A macro because the same list of fields must appear in two structs,
/// two functions and a help table; written by hand they drift apart, as they once did.)
/// For `/// Minibatch size.` `batch_size: usize = family(32, 256, 32);` it generates the
/// flag field `pub batch_size: Option<usize>` of `TrainArgs`, the field `pub batch_size:
/// usize` of `Config`, `batch_size: self.batch_size.or(other.batch_size)` in the merge,
/// `family.pick(32, 256, 32)` as the default, and its `--help` entry. Each entry is `/// help` `name: Type = default;` where the default is
/// `all(v)` (every family), `family(classic_control, gym, bandit)`, or `derived("text",
/// expr)`: an expression of the settings above it, described by `text` in the help.
macro_rules! hyperparameters {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $kind:ident($($default:tt)*);
    )+) => {
        /// Flags of `mixsac train`; each is also a key of the TOML file given to `--config`
        /// and of a sweep spec's `[train]` table. `None` is "not given".
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
            /// Environment (see `mixsac envs`); its family sets the defaults below.
            #[arg(long)]
            pub env: Option<EnvId>,
            /// Keyword arguments for gym.make of a gym:<ID> environment, as a JSON object,
            /// e.g. '{"env_name": "reach-v3"}' (in TOML also a table).
            #[arg(long)]
            pub env_kwargs: Option<EnvKwargs>,
            /// Python with gymnasium, for gym:<ID> environments [default: $MIXSAC_PYTHON, else python3].
            #[arg(long)]
            pub python: Option<String>,
            $(
                $(#[doc = $doc])+
                #[arg(long)]
                pub $name: Option<$ty>,
            )+
        }

        /// The resolved configuration: what a run actually uses, saved as `config.toml`.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Config {
            pub env: EnvId,
            /// Keyword arguments for gym.make (gym:<ID> only; empty: none).
            #[serde(skip_serializing_if = "EnvKwargs::is_empty")]
            pub env_kwargs: EnvKwargs,
            $(
                $(#[doc = $doc])+
                pub $name: $ty,
            )+
            /// Python for gym:<ID> environments (unset: $MIXSAC_PYTHON, else python3).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub python: Option<String>,
        }

        impl TrainArgs {
            /// `self`'s values, falling back to `other`'s.
            pub fn over(self, other: TrainArgs) -> TrainArgs {
                TrainArgs {
                    config: self.config.or(other.config),
                    out: self.out.or(other.out),
                    env: self.env.or(other.env),
                    env_kwargs: self.env_kwargs.or(other.env_kwargs),
                    python: self.python.or(other.python),
                    $( $name: self.$name.or(other.$name), )+
                }
            }

            /// The hyperparameters left unset.
            fn unset(&self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $( if self.$name.is_none() { names.push(stringify!($name)); } )+
                names
            }

            /// Every unset value filled with its default, in table order (a derived default
            /// sees the settings above it).
            fn with_defaults(self) -> Result<Config> {
                let Some(env) = self.env else {
                    bail!("--env is required (see `mixsac envs`)")
                };
                let family = env.family();
                $(
                    let $name: $ty = match self.$name {
                        Some(value) => value,
                        None => hyperparameters!(@value family, $kind($($default)*)),
                    };
                )+
                let env_kwargs = self.env_kwargs.unwrap_or_default();
                Ok(Config { env, env_kwargs, $( $name, )+ python: self.python })
            }
        }

        /// Every hyperparameter, in table order, for `--help`.
        pub const HYPERPARAMETERS: &[Hyperparameter] = &[$(
            Hyperparameter {
                name: stringify!($name),
                help: concat!($($doc),+),
                default: |_family| hyperparameters!(@text _family, $kind($($default)*)),
                derived: hyperparameters!(@derived $kind),
            },
        )+];
    };
    (@value $family:ident, all($value:expr)) => { $value };
    (@value $family:ident, family($c:expr, $g:expr, $b:expr)) => { $family.pick($c, $g, $b) };
    (@value $family:ident, derived($text:literal, $value:expr)) => { $value };
    (@text $family:ident, all($value:expr)) => { $value.to_string() };
    (@text $family:ident, family($c:expr, $g:expr, $b:expr)) => { $family.pick($c, $g, $b).to_string() };
    (@text $family:ident, derived($text:literal, $value:expr)) => { $text.to_string() };
    (@derived derived) => { true };
    (@derived $kind:ident) => { false };
}

hyperparameters! {
    /// Policy class.
    policy: PolicyKind = all(PolicyKind::Squashed);
    /// Mixture components K.
    components: usize = derived("1 for squashed/gaussian, 5 for sgm/gm",
        if policy.is_mixture() { 5 } else { 1 });
    /// Actor gradient estimator (DESIGN.md §4).
    estimator: Estimator = derived("rep for K = 1, halfrep otherwise",
        if components == 1 { Estimator::Rep } else { Estimator::HalfRep });
    /// Entropy scale: a number ≥ 0, or `auto` for automatic tuning (target entropy −A).
    alpha: Alpha = family(Alpha::Fixed(0.01), Alpha::Auto, Alpha::Fixed(0.01));
    /// Environment steps (one update per step after learning_starts).
    steps: usize = all(20_000);
    /// Seed of every random choice in the run.
    seed: u64 = all(0);
    /// Hidden width of the two-layer actor and critics.
    hidden: usize = family(64, 256, 16);
    /// Minibatch size.
    batch_size: usize = family(32, 256, 32);
    /// Replay buffer capacity.
    buffer_size: usize = family(100_000, 1_000_000, 5000);
    /// Polyak factor of the target critics.
    tau: f64 = family(0.01, 0.005, 0.01);
    /// Discount factor.
    gamma: f64 = all(0.99);
    /// Actor learning rate.
    actor_lr: f64 = family(1e-3, 3e-4, 1e-3);
    /// Critic learning rate.
    critic_lr: f64 = family(1e-3, 3e-4, 1e-3);
    /// Learning rate of log α when --alpha auto.
    alpha_lr: f64 = all(3e-4);
    /// Uniformly random actions for this many first steps.
    learning_starts: usize = family(1000, 10_000, 100);
    /// Actions sampled for the baseline of like and halfrep; 0: no baseline (b = 0).
    baseline_samples: usize = all(30);
    /// Gumbel-softmax temperature.
    gumbel_tau: f64 = all(1.0);
    /// Lower log-std clamp.
    log_std_min: f32 = all(-20.0);
    /// Upper log-std clamp.
    log_std_max: f32 = all(2.0);
    /// Steps between metrics.csv rows (and checkpoints, unless --checkpoint-every).
    log_every: usize = all(1000);
    /// Steps between checkpoints and policy.mxp writes, a multiple of log_every; 0: at every
    /// metrics row. A resumed run cuts metrics.csv back to its checkpoint and writes the
    /// same rows again.
    checkpoint_every: usize = all(0);
    /// Where the tensors live: cpu, or cuda (build with --features cuda).
    device: Device = all(Device::Cpu);
    /// CPU threads: population members in parallel, or a large layer's product split
    /// (MuJoCo size); results never depend on scheduling (and at the sizes tested are the
    /// bits of one thread). Runs inside a sweep take 1 unless its spec says otherwise.
    threads: usize = derived("2 on the CPU when hidden² × batch_size ≥ 2²⁰ (e.g. 256 wide, batch 256), else 1",
        if device == Device::Cpu { crate::nn::dense_op::default_threads(hidden, batch_size) } else { 1 });
    /// Seconds to wait for one reply of a gym:<ID> environment before stopping it (a
    /// population's shared worker waits this long per member).
    env_timeout: f64 = all(60.0);
}

/// Makes `train`'s `--help` show each hyperparameter's default: the one of `family` when
/// the command line names an environment, else every family's. Also lets numbers be
/// negative, so that `--alpha -1` gets the setting's own error rather than a usage error.
pub fn document_defaults(mut train: clap::Command, family: Option<Family>) -> clap::Command {
    for h in HYPERPARAMETERS {
        let default = match family {
            Some(f) => format!("default for {}: {}", f.label(), (h.default)(f)),
            None => {
                let texts: Vec<String> = Family::ALL.iter().map(|&f| (h.default)(f)).collect();
                if texts.iter().all(|t| *t == texts[0]) {
                    format!("default: {}", texts[0])
                } else {
                    let each: Vec<String> = Family::ALL
                        .iter()
                        .zip(&texts)
                        .map(|(f, t)| format!("{t} {}", f.label()))
                        .collect();
                    format!("default: {}", each.join(", "))
                }
            }
        };
        let help = format!("{} [{default}]", h.help.trim().trim_end_matches('.'));
        train = train.mut_arg(h.name, |arg| arg.help(help).allow_negative_numbers(true));
    }
    train
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

    /// Fills every unset value with its default and checks the combination.
    pub fn resolve(self) -> Result<Config> {
        let config = self.with_defaults()?;
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
                "--policy {} has one component; use sgm or gm for --components {}",
                self.policy,
                self.components
            );
        }
        if self.estimator == Estimator::Rep && self.components > 1 {
            bail!("the rep estimator needs a single component (K = 1); for mixtures use halfrep, gumbel, mrp or like");
        }
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
            ("log-every", self.log_every),
            ("threads", self.threads),
        ] {
            if value == 0 {
                bail!("--{name} must be at least 1");
            }
        }
        if !self.checkpoint_every.is_multiple_of(self.log_every) {
            bail!(
                "--checkpoint-every ({}) must be a multiple of --log-every ({}): checkpoints are taken with a metrics row",
                self.checkpoint_every,
                self.log_every
            );
        }
        if !self.env_kwargs.is_empty() && !matches!(self.env, EnvId::Gym(_)) {
            bail!(
                "--env-kwargs ({}) applies to gym:<ID> environments only, not {}",
                self.env_kwargs,
                self.env
            );
        }
        if !(self.env_timeout.is_finite() && self.env_timeout > 0.0) {
            bail!(
                "--env-timeout must be a positive number of seconds, got {}",
                self.env_timeout
            );
        }
        Ok(())
    }

    /// Steps between checkpoints: `checkpoint_every`, or `log_every` when that is 0.
    pub fn checkpoint_interval(&self) -> usize {
        match self.checkpoint_every {
            0 => self.log_every,
            every => every,
        }
    }

    /// How gym:<ID> environments of this run are started.
    pub fn gym_options(&self) -> crate::envs::GymOptions {
        crate::envs::GymOptions {
            timeout: std::time::Duration::from_secs_f64(self.env_timeout),
            kwargs: self.env_kwargs.clone(),
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

    /// Reads a saved `config.toml` (as [`Config::save`] wrote it). Every hyperparameter must
    /// be there: a run continues with exactly its own settings, never with defaults of a
    /// later version (only `env_timeout`, `threads` and `checkpoint_every`, which older
    /// files lack, may be missing: older versions had no other choice than their defaults —
    /// one thread, and a checkpoint at every metrics row).
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut args: TrainArgs =
            toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
        // Files without `threads` come from versions that always ran on one thread.
        args.threads = args.threads.or(Some(1));
        let missing: Vec<&str> = args
            .unset()
            .into_iter()
            .filter(|name| !matches!(*name, "env_timeout" | "checkpoint_every"))
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} lacks {}: a saved run's config.toml names every setting",
                path.display(),
                missing.join(", ")
            );
        }
        args.resolve()
            .with_context(|| format!("invalid {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(config: &Config) -> (PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("mixsac-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.toml", config.seed));
        config.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        (path, text)
    }

    fn resolved(env: &str, seed: u64) -> Config {
        TrainArgs {
            env: Some(env.parse().unwrap()),
            seed: Some(seed),
            ..TrainArgs::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn a_saved_config_loads_back_equal() {
        for (env, seed) in [
            ("pendulum", 1),
            ("gym:Hopper-v5", 2),
            ("random-bandit:4", 3),
        ] {
            let config = resolved(env, seed);
            let (path, _) = saved(&config);
            assert_eq!(Config::load(&path).unwrap(), config, "{env}");
        }
    }

    #[test]
    fn env_kwargs_are_saved_and_refused_for_our_own_environments() {
        let mut config = resolved("gym:Hopper-v5", 4);
        config.env_kwargs = r#"{"terminate_when_unhealthy": false, "render_mode": null}"#
            .parse()
            .unwrap();
        let (path, text) = saved(&config);
        assert!(text.contains("env_kwargs = "), "{text}");
        assert_eq!(Config::load(&path).unwrap(), config);
        assert!(!saved(&resolved("gym:Hopper-v5", 5))
            .1
            .contains("env_kwargs"));
        let err = TrainArgs {
            env: Some("pendulum".parse().unwrap()),
            env_kwargs: Some(r#"{"g": 9.81}"#.parse().unwrap()),
            ..TrainArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("applies to gym:<ID> environments only"),
            "{err}"
        );
    }

    #[test]
    fn older_config_files_load_and_incomplete_ones_are_refused() {
        let config = resolved("pendulum", 11);
        let (path, text) = saved(&config);
        // Older files: α as a string, no env_timeout, no threads, no checkpoint_every.
        let older: String = text
            .lines()
            .filter(|l| {
                !["env_timeout", "threads", "checkpoint_every"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .map(|l| match l.starts_with("alpha =") {
                true => "alpha = \"0.01\"\n".to_string(),
                false => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&path, older).unwrap();
        assert_eq!(Config::load(&path).unwrap(), config);
        // A missing hyperparameter is an error naming it, never a silent default.
        let without_tau: String = text
            .lines()
            .filter(|l| !l.starts_with("tau ="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, without_tau).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("lacks tau"), "{err}");
    }

    #[test]
    fn threads_default_to_two_where_products_are_split_and_older_files_to_one() {
        let sized = |env: &str, hidden: usize, batch_size: usize, device: Device| {
            TrainArgs {
                env: Some(env.parse().unwrap()),
                hidden: Some(hidden),
                batch_size: Some(batch_size),
                device: Some(device),
                ..TrainArgs::default()
            }
            .resolve()
            .unwrap()
        };
        assert_eq!(resolved("pendulum", 0).threads, 1);
        assert_eq!(resolved("gym:Hopper-v5", 0).threads, 2);
        assert_eq!(sized("pendulum", 256, 256, Device::Cpu).threads, 2);
        assert_eq!(sized("pendulum", 256, 8, Device::Cpu).threads, 1);
        // The threshold itself: 64 × 128 × 128 = 2²⁰ multiply-adds.
        assert_eq!(sized("pendulum", 128, 64, Device::Cpu).threads, 2);
        assert_eq!(sized("pendulum", 128, 63, Device::Cpu).threads, 1);
        assert_eq!(sized("gym:Hopper-v5", 256, 256, Device::Cuda).threads, 1);
        // A run saved before `threads` existed ran on one thread and resumes on one.
        let config = Config {
            seed: 12,
            ..sized("pendulum", 256, 256, Device::Cpu)
        };
        let (path, text) = saved(&config);
        let older: String = text
            .lines()
            .filter(|l| !l.starts_with("threads"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, older).unwrap();
        let loaded = Config::load(&path).unwrap();
        assert_eq!(loaded.threads, 1);
        assert_eq!(
            Config {
                threads: 2,
                ..loaded
            },
            config
        );
    }

    #[test]
    fn alpha_parses_numbers_and_auto_only() {
        assert_eq!("auto".parse(), Ok(Alpha::Auto));
        assert_eq!("0.5".parse(), Ok(Alpha::Fixed(0.5)));
        for bad in ["-0.5", "NaN", "inf", "often", ""] {
            assert!(bad.parse::<Alpha>().is_err(), "{bad}");
        }
        assert_eq!(Alpha::Fixed(0.01).to_string(), "0.01");
    }
}
