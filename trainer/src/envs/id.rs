//! Environment names, parsed once: [`EnvId`] is the only place that knows how a name is
//! spelled, which family of defaults it belongs to (DESIGN.md §5) and whether it is a bandit.

use super::{Bandit, EnvError};
use std::fmt;

/// Prefix of Gymnasium environment names (`gym:<ID>`).
const GYM_PREFIX: &str = "gym:";
/// Prefix of seeded random bandits (`random-bandit:<seed>`).
const RANDOM_BANDIT_PREFIX: &str = "random-bandit:";

/// An environment `--env` accepts. Ordered by name (as sweeps have always listed them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnvId {
    Pendulum,
    ShapedPendulum,
    Acrobot,
    ShapedAcrobot,
    MountainCar,
    ShapedMountainCar,
    BimodalBandit,
    /// `random-bandit:<seed>`: the seed fully determines the bandit.
    RandomBandit(u64),
    /// `gym:<ID>`: a Gymnasium environment, stepped by a Python worker.
    Gym(String),
}

/// Which defaults of DESIGN.md §5 apply to an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    ClassicControl,
    /// `gym:<ID>` environments (MuJoCo, DeepMind Control, users' own): MuJoCo-size defaults.
    Gym,
    /// One-step bandits whose critic is the true reward.
    Bandit,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::ClassicControl, Family::Gym, Family::Bandit];

    /// This family's value among the three.
    pub fn pick<T>(self, classic_control: T, gym: T, bandit: T) -> T {
        match self {
            Family::ClassicControl => classic_control,
            Family::Gym => gym,
            Family::Bandit => bandit,
        }
    }

    /// How help texts name the family.
    pub fn label(self) -> &'static str {
        match self {
            Family::ClassicControl => "classic control",
            Family::Gym => "gym:<ID>",
            Family::Bandit => "bandits",
        }
    }
}

/// The environments without a parameter.
const FIXED: [EnvId; 7] = [
    EnvId::Pendulum,
    EnvId::ShapedPendulum,
    EnvId::Acrobot,
    EnvId::ShapedAcrobot,
    EnvId::MountainCar,
    EnvId::ShapedMountainCar,
    EnvId::BimodalBandit,
];

impl EnvId {
    /// One of each of our own environments (random bandit 0 stands for every seed), in the
    /// order `mixsac envs` lists them.
    pub fn builtin() -> impl Iterator<Item = EnvId> {
        FIXED.into_iter().chain([EnvId::RandomBandit(0)])
    }

    /// The name of an environment without a parameter.
    fn fixed_name(&self) -> Option<&'static str> {
        Some(match self {
            EnvId::Pendulum => "pendulum",
            EnvId::ShapedPendulum => "shaped-pendulum",
            EnvId::Acrobot => "acrobot",
            EnvId::ShapedAcrobot => "shaped-acrobot",
            EnvId::MountainCar => "mountaincar",
            EnvId::ShapedMountainCar => "shaped-mountaincar",
            EnvId::BimodalBandit => "bimodal-bandit",
            EnvId::RandomBandit(_) | EnvId::Gym(_) => return None,
        })
    }

    /// How `mixsac envs` names it: `random-bandit:<seed>` for every random bandit.
    pub fn listed_name(&self) -> String {
        match self {
            EnvId::RandomBandit(_) => format!("{RANDOM_BANDIT_PREFIX}<seed>"),
            other => other.to_string(),
        }
    }

    pub fn family(&self) -> Family {
        match self {
            EnvId::BimodalBandit | EnvId::RandomBandit(_) => Family::Bandit,
            EnvId::Gym(_) => Family::Gym,
            _ => Family::ClassicControl,
        }
    }

    pub fn is_bandit(&self) -> bool {
        self.family() == Family::Bandit
    }

    /// A bandit's reward function (its critic is the true reward); `None` for the others.
    pub fn bandit(&self) -> Option<Bandit> {
        match self {
            EnvId::BimodalBandit => Some(Bandit::bimodal()),
            EnvId::RandomBandit(seed) => Some(Bandit::random(*seed)),
            _ => None,
        }
    }

    /// The group a report aggregates it in: every random bandit is a replicate of one group,
    /// `random-bandits` (as in the paper's aggregate over bandits); the others stand alone.
    pub fn report_group(&self) -> String {
        match self {
            EnvId::RandomBandit(_) => "random-bandits".into(),
            other => other.to_string(),
        }
    }

    /// A name or a range of random bandits: `random-bandit:A..B` is seeds A to B − 1.
    pub fn parse_range(text: &str) -> Result<Vec<EnvId>, EnvError> {
        let range = text
            .strip_prefix(RANDOM_BANDIT_PREFIX)
            .and_then(|r| r.split_once(".."));
        match range {
            Some((a, b)) => {
                let bad = || EnvError::BadRange(text.to_string());
                let (a, b): (u64, u64) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                Ok((a..b).map(EnvId::RandomBandit).collect())
            }
            None => Ok(vec![text.parse()?]),
        }
    }
}

impl std::str::FromStr for EnvId {
    type Err = EnvError;

    /// Parses a name without making the environment (no Python worker is started).
    fn from_str(name: &str) -> Result<EnvId, EnvError> {
        if let Some(id) = FIXED.iter().find(|id| id.fixed_name() == Some(name)) {
            return Ok(id.clone());
        }
        if let Some(id) = name.strip_prefix(GYM_PREFIX) {
            if !id.trim().is_empty() {
                return Ok(EnvId::Gym(id.to_string()));
            }
        }
        if let Some(seed) = name
            .strip_prefix(RANDOM_BANDIT_PREFIX)
            .and_then(|s| s.parse().ok())
        {
            return Ok(EnvId::RandomBandit(seed));
        }
        Err(EnvError::Unknown(name.to_string()))
    }
}

impl fmt::Display for EnvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvId::RandomBandit(seed) => write!(f, "{RANDOM_BANDIT_PREFIX}{seed}"),
            EnvId::Gym(id) => write!(f, "{GYM_PREFIX}{id}"),
            fixed => f.write_str(fixed.fixed_name().unwrap_or_default()),
        }
    }
}

impl Ord for EnvId {
    fn cmp(&self, other: &EnvId) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for EnvId {
    fn partial_cmp(&self, other: &EnvId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for EnvId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EnvId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EnvId, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}
