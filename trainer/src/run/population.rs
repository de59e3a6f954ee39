//! A population's directory: the members' run directories side by side, and the list of
//! them that `--resume` reads.
//!
//! ```text
//! <out>/population.toml    members = ["seed-1", "seed-2", …], in member order
//! <out>/<member>/          an ordinary run directory (run_dir) per member
//! ```
//!
//! A member is named after the settings that tell it from the others (`seed-3`,
//! `seed-3_alpha-0.1_actor-lr-0.001`), so the directory reads as the grid it is.

use crate::config::{Alpha, Config};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The settings members may differ in, as lists whose product is the population (an empty
/// list keeps the base config's value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberGrid {
    pub seeds: Vec<u64>,
    pub alphas: Vec<Alpha>,
    pub actor_lrs: Vec<f64>,
    pub critic_lrs: Vec<f64>,
}

impl MemberGrid {
    /// Whether any list is given (else the run is a solo run).
    pub fn is_population(&self) -> bool {
        !(self.seeds.is_empty()
            && self.alphas.is_empty()
            && self.actor_lrs.is_empty()
            && self.critic_lrs.is_empty())
    }

    /// One (name, config) per combination, seeds varying slowest.
    pub fn members(&self, base: &Config) -> Result<Vec<(String, Config)>> {
        let or = |list: &[f64], value: f64| {
            if list.is_empty() {
                vec![value]
            } else {
                list.to_vec()
            }
        };
        let seeds = if self.seeds.is_empty() {
            vec![base.seed]
        } else {
            self.seeds.clone()
        };
        let alphas = if self.alphas.is_empty() {
            vec![base.alpha]
        } else {
            self.alphas.clone()
        };
        let (actor_lrs, critic_lrs) = (
            or(&self.actor_lrs, base.actor_lr),
            or(&self.critic_lrs, base.critic_lr),
        );
        let mut members = Vec::new();
        for &seed in &seeds {
            for &alpha in &alphas {
                for &actor_lr in &actor_lrs {
                    for &critic_lr in &critic_lrs {
                        let mut parts = vec![format!("seed-{seed}")];
                        if !self.alphas.is_empty() {
                            parts.push(format!("alpha-{alpha}"));
                        }
                        if !self.actor_lrs.is_empty() {
                            parts.push(format!("actor-lr-{actor_lr}"));
                        }
                        if !self.critic_lrs.is_empty() {
                            parts.push(format!("critic-lr-{critic_lr}"));
                        }
                        let config = Config {
                            seed,
                            alpha,
                            actor_lr,
                            critic_lr,
                            ..base.clone()
                        };
                        members.push((parts.join("_"), config));
                    }
                }
            }
        }
        let mut names: Vec<&String> = members.iter().map(|(n, _)| n).collect();
        names.sort();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!(
                "two population members would both be {} (a value is listed twice)",
                pair[0]
            );
        }
        Ok(members)
    }
}

/// The list of members a population directory holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MemberList {
    members: Vec<String>,
}

/// A population's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulationDir {
    pub root: PathBuf,
}

impl PopulationDir {
    pub fn new(root: impl Into<PathBuf>) -> PopulationDir {
        PopulationDir { root: root.into() }
    }

    /// `population.toml`, whose presence makes a directory a population's.
    pub fn list(&self) -> PathBuf {
        self.root.join("population.toml")
    }

    /// Whether `dir` holds a population (rather than one run).
    pub fn holds_population(dir: &Path) -> bool {
        PopulationDir::new(dir).list().exists()
    }

    /// Member `name`'s run directory.
    pub fn member(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Records the members (before any of them starts, so `--resume` finds them all). A
    /// directory whose population never reached a first checkpoint (its start failed, or it
    /// was stopped before its first log step) is started afresh; one with a checkpoint is
    /// refused.
    pub fn write(&self, names: &[String]) -> Result<()> {
        if self.list().exists() {
            let members = self.members()?;
            let started = members
                .iter()
                .any(|m| crate::run::run_dir::RunDir::new(m).has_checkpoint());
            if started {
                bail!(
                    "{} already holds a population; use --resume to continue it, or another --out",
                    self.root.display()
                );
            }
            for member in members {
                let _ = std::fs::remove_dir_all(member);
            }
        }
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let list = MemberList {
            members: names.to_vec(),
        };
        std::fs::write(self.list(), toml::to_string(&list)?)
            .with_context(|| format!("cannot write {}", self.list().display()))
    }

    /// The members' run directories, in member order.
    pub fn members(&self) -> Result<Vec<PathBuf>> {
        let text = std::fs::read_to_string(self.list())
            .with_context(|| format!("cannot read {}", self.list().display()))?;
        let list: MemberList = toml::from_str(&text)
            .with_context(|| format!("{} is not a population list", self.list().display()))?;
        if list.members.is_empty() {
            bail!("{} lists no members", self.list().display());
        }
        for name in &list.members {
            let bad = name.is_empty() || name.contains(['/', '\\']) || name == "." || name == "..";
            if bad {
                bail!(
                    "{} lists a member named {name:?}, which is no directory name",
                    self.list().display()
                );
            }
        }
        Ok(list.members.iter().map(|n| self.member(n)).collect())
    }
}
