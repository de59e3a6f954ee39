//! `mixsac sweep`: a grid of independent training runs (environments × methods × α ×
//! learning rates × seeds) on N worker threads, one run per thread, resumable, with one tidy
//! results table. Optionally a second phase re-runs the best (α, learning rate) of every
//! (environment, method) by area under the learning curve with fresh seeds, as in the
//! paper's protocol.
//!
//! Layout of a sweep directory ([`SweepDir`]):
//! - `spec.toml`: the spec it runs (a resumed sweep must be given the same spec);
//! - `runs/<id>/`: one `mixsac train` directory per run, plus `summary.json` once finished;
//! - `results.csv`: one row per finished run ([`crate::ResultRow`]), derived from the
//!   runs' summaries ([`collect`]); a lone sweep also rewrites it whenever a run finishes.
//!
//! A killed sweep continues where it stopped: finished runs (with `summary.json`) are
//! skipped, runs with a checkpoint continue from it exactly, others start again. A run whose
//! checkpoint is damaged (its files do not match its manifest) fails, naming the file; it
//! starts afresh once its directory is removed.
//!
//! A sweep can be cut into shards ([`Shard`], `--shard I/N`) that run at once on several
//! machines sharing the directory, e.g. as a Slurm job array (`experiments::slurm`): each
//! phase's runs are split by expected cost, the grid first, then (once every grid run has
//! finished) the reruns ([`Phase`]).

use crate::config::{Alpha, Config, Estimator, PolicyKind, TrainArgs};
use crate::envs::EnvId;
use crate::experiments::collect::{self, Collected};
use crate::experiments::shard::Shard;
use crate::experiments::shared_files::{write_atomically, FileLock};
use crate::experiments::sweep_dir::SweepDir;
use crate::run::checkpoint::CheckpointError;
use crate::run::metrics;
use crate::run::run_dir::RunDir;
use crate::run::train::{self, Mode, TrainEvent};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A policy and estimator to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub policy: PolicyKind,
    pub estimator: Estimator,
    /// Components K [default: 5 for mixtures, 1 otherwise].
    pub components: Option<usize>,
}

/// The score that picks the best (α, learning rates) setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// Area under the learning curve (mean return over training).
    #[default]
    Auc,
    /// Mean return over the last tenth of training.
    Final,
}

impl Selection {
    pub fn score(self, auc: f64, final_return: f64) -> f64 {
        match self {
            Selection::Auc => auc,
            Selection::Final => final_return,
        }
    }
}

/// Learning rates of one run; `None` leaves the family default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub actor: Option<f64>,
    pub critic: Option<f64>,
}

pub(crate) fn rate_text(rate: Option<f64>) -> String {
    rate.map_or("default".into(), |r| r.to_string())
}

/// The second phase: the best setting of each (environment, method) again, more seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerunBest {
    /// Seeds of the reruns (fresh ones, distinct from the grid's).
    pub seeds: Vec<u64>,
}

/// A sweep spec file (`experiments/**/*.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// What the sweep is for (printed, not used).
    #[serde(default)]
    pub description: String,
    /// Environment names; `random-bandit:A..B` expands to seeds A to B − 1.
    pub envs: Vec<String>,
    pub methods: Vec<Method>,
    /// α values [default: the environment family's default].
    #[serde(default)]
    pub alphas: Vec<Alpha>,
    /// Learning rates, each applied to the actor and the critic [default: the family's].
    #[serde(default)]
    pub learning_rates: Vec<f64>,
    /// Step sizes added to `learning_rates` for some environments only, keyed by their name
    /// in `envs` (`shaped-acrobot = [0.03]`): widens the grid where its best setting lay at an
    /// edge without running the new values everywhere.
    #[serde(default)]
    pub extra_learning_rates: BTreeMap<String, Vec<f64>>,
    /// Or: critic learning rates, crossed with `actor_lr_ratios` (actor = κ · critic), as
    /// in the paper's classic-control sweep.
    #[serde(default)]
    pub critic_lrs: Vec<f64>,
    #[serde(default)]
    pub actor_lr_ratios: Vec<f64>,
    /// Or: actor learning rates alone (bandits, whose critic is the true reward).
    #[serde(default)]
    pub actor_lrs: Vec<f64>,
    pub seeds: Vec<u64>,
    /// How the best setting is chosen [default: auc].
    #[serde(default)]
    pub select_by: Selection,
    /// Any `mixsac train` keys shared by every run (steps, hidden, log_every, ...).
    #[serde(default)]
    pub train: TrainArgs,
    pub rerun_best: Option<RerunBest>,
}

/// One run of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Directory name under `runs/`, made of the run's coordinates.
    pub id: String,
    pub phase: &'static str,
    pub env: EnvId,
    /// `<estimator>-<policy>-k<K>`.
    pub method: String,
    pub method_spec: Method,
    pub alpha: Alpha,
    pub rates: Rates,
    pub seed: u64,
    pub config: Config,
}

impl Run {
    /// The expected cost of training the run, the unit by which shards are balanced:
    /// environment steps (each with one update). Runs of one sweep share their network
    /// sizes, so steps are what differs; a population trained together would cost the
    /// sum of its members.
    pub fn cost(&self) -> u64 {
        self.config.steps as u64
    }
}

/// What a finished run left in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// "ok", or the error that stopped the run.
    pub status: String,
    /// Mean episode return over the last tenth of the metrics rows (NaN if none).
    pub final_return: f64,
    /// Mean episode return over all metrics rows: the area under the learning curve per step.
    pub auc: f64,
    pub episodes: usize,
    pub seconds: f64,
}

impl Spec {
    pub fn read(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep spec {}", path.display()))?;
        let spec: Spec = toml::from_str(&text)
            .with_context(|| format!("invalid sweep spec {}", path.display()))?;
        spec.check()?;
        Ok(spec)
    }

    fn check(&self) -> Result<()> {
        for (name, empty) in [
            ("envs", self.envs.is_empty()),
            ("methods", self.methods.is_empty()),
            ("seeds", self.seeds.is_empty()),
        ] {
            if empty {
                bail!("the sweep spec needs at least one entry in `{name}`");
            }
        }
        if self.train.env.is_some() || self.train.policy.is_some() || self.train.estimator.is_some()
        {
            bail!("set env, policy and estimator through `envs` and `methods`, not [train]");
        }
        let kinds = [
            !self.learning_rates.is_empty(),
            !self.critic_lrs.is_empty(),
            !self.actor_lrs.is_empty(),
        ];
        if kinds.iter().filter(|&&k| k).count() > 1 {
            bail!("give one of `learning_rates`, `critic_lrs` (with `actor_lr_ratios`) and `actor_lrs`");
        }
        if !self.actor_lr_ratios.is_empty() && self.critic_lrs.is_empty() {
            bail!("`actor_lr_ratios` needs `critic_lrs`");
        }
        if !self.extra_learning_rates.is_empty() && self.learning_rates.is_empty() {
            bail!("`extra_learning_rates` adds to `learning_rates`, which the spec does not set");
        }
        for (env, extra) in &self.extra_learning_rates {
            if !self.envs.contains(env) {
                bail!("`extra_learning_rates` names `{env}`, which is not one of `envs`");
            }
            if let Some(r) = extra.iter().find(|r| self.learning_rates.contains(r)) {
                bail!("`extra_learning_rates` gives {r} for `{env}`, already in `learning_rates`");
            }
        }
        Ok(())
    }

    /// The learning-rate settings of the grid for the environment written `env` in `envs`:
    /// the spec's, then its `extra_learning_rates`.
    fn rate_settings(&self, env: &str) -> Vec<Rates> {
        let mut settings = self.common_rate_settings();
        let same = |&r: &f64| Rates {
            actor: Some(r),
            critic: Some(r),
        };
        if let Some(extra) = self.extra_learning_rates.get(env) {
            settings.extend(extra.iter().map(same));
        }
        settings
    }

    /// The learning-rate settings every environment of the grid gets.
    fn common_rate_settings(&self) -> Vec<Rates> {
        let same = |r: f64| Rates {
            actor: Some(r),
            critic: Some(r),
        };
        if !self.learning_rates.is_empty() {
            self.learning_rates.iter().map(|&r| same(r)).collect()
        } else if !self.critic_lrs.is_empty() {
            let ratios = if self.actor_lr_ratios.is_empty() {
                vec![1.0]
            } else {
                self.actor_lr_ratios.clone()
            };
            self.critic_lrs
                .iter()
                .flat_map(|&q| {
                    ratios.iter().map(move |&k| Rates {
                        actor: Some(k * q),
                        critic: Some(q),
                    })
                })
                .collect()
        } else if !self.actor_lrs.is_empty() {
            self.actor_lrs
                .iter()
                .map(|&a| Rates {
                    actor: Some(a),
                    critic: None,
                })
                .collect()
        } else {
            vec![Rates {
                actor: None,
                critic: None,
            }]
        }
    }

    /// The environments, with `random-bandit:A..B` ranges expanded.
    fn env_ids(&self) -> Result<Vec<EnvId>> {
        Ok(self
            .named_env_ids()?
            .into_iter()
            .map(|(_, id)| id)
            .collect())
    }

    /// The environments, each with the entry of `envs` it comes from.
    fn named_env_ids(&self) -> Result<Vec<(&str, EnvId)>> {
        let mut ids = Vec::new();
        for env in &self.envs {
            ids.extend(
                EnvId::parse_range(env)?
                    .into_iter()
                    .map(|id| (env.as_str(), id)),
            );
        }
        Ok(ids)
    }

    /// How many runs [`Spec::grid`] makes, without resolving them.
    pub fn grid_size(&self) -> Result<usize> {
        let mut size = 0;
        for env in &self.envs {
            size += EnvId::parse_range(env)?.len() * self.rate_settings(env).len();
        }
        Ok(size * self.methods.len() * self.alphas.len().max(1) * self.seeds.len())
    }

    /// Every run of the grid (phase "grid"), each config resolved and checked.
    pub fn grid(&self) -> Result<Vec<Run>> {
        let alphas: Vec<Option<Alpha>> = if self.alphas.is_empty() {
            vec![None]
        } else {
            self.alphas.iter().copied().map(Some).collect()
        };
        let mut runs = Vec::new();
        for (name, env) in self.named_env_ids()? {
            let lrs = self.rate_settings(name);
            for method in &self.methods {
                for alpha in &alphas {
                    for lr in &lrs {
                        for &seed in &self.seeds {
                            runs.push(self.run("grid", &env, method, *alpha, *lr, seed)?);
                        }
                    }
                }
            }
        }
        Ok(runs)
    }

    /// The reruns of the best setting of every (environment, method), by the grid's results
    /// (phase "best"; none without `rerun_best`).
    pub fn reruns(&self, grid_results: &[(Run, Outcome)]) -> Result<Vec<Run>> {
        let Some(rerun) = &self.rerun_best else {
            return Ok(Vec::new());
        };
        let mut reruns = Vec::new();
        for run in best_settings(grid_results, self.select_by) {
            for &seed in &rerun.seeds {
                let (env, method) = (&run.env, &run.method_spec);
                reruns.push(self.run("best", env, method, Some(run.alpha), run.rates, seed)?);
            }
        }
        Ok(reruns)
    }

    /// How many reruns there will be at most (one setting of each environment and method,
    /// unless all its grid runs fail), known before the grid has run.
    pub fn reruns_upper_bound(&self) -> Result<usize> {
        Ok(self.rerun_best.as_ref().map_or(0, |r| r.seeds.len())
            * self.env_ids()?.len()
            * self.methods.len())
    }

    fn run(
        &self,
        phase: &'static str,
        env: &EnvId,
        method: &Method,
        alpha: Option<Alpha>,
        rates: Rates,
        seed: u64,
    ) -> Result<Run> {
        let args = TrainArgs {
            env: Some(env.clone()),
            policy: Some(method.policy),
            components: method.components,
            estimator: Some(method.estimator),
            alpha,
            actor_lr: rates.actor,
            critic_lr: rates.critic,
            seed: Some(seed),
            ..TrainArgs::default()
        }
        .over(self.train.clone())
        // One thread per run: a sweep's parallelism is its runs (--jobs), and a run's
        // numbers must not depend on how many runs share the machine.
        .over(TrainArgs {
            threads: Some(1),
            ..TrainArgs::default()
        });
        let config = args
            .resolve()
            .with_context(|| format!("run {env} / {} / {}", method.policy, method.estimator))?;
        let method_name = format!(
            "{}-{}-k{}",
            config.estimator, method.policy, config.components
        );
        let id = format!(
            "{phase}__{}__{method_name}__alpha-{}__lr-a{}-c{}__seed-{seed}",
            env.to_string().replace([':', '/'], "_"),
            config.alpha,
            rate_text(rates.actor),
            rate_text(rates.critic)
        );
        Ok(Run {
            id,
            phase,
            env: env.clone(),
            method: method_name,
            method_spec: method.clone(),
            alpha: config.alpha,
            rates,
            seed,
            config,
        })
    }
}

/// Which phases of a sweep an invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// The grid, then the reruns of the best settings.
    All,
    /// The grid only.
    Grid,
    /// The reruns of the best settings only; every grid run must have finished.
    Best,
}

/// How one invocation of a sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// Runs (or populations) trained at once, one thread each.
    pub jobs: usize,
    /// Most runs trained together as one population ([`crate::train::train_population`]):
    /// runs that differ only in seed, α and learning rates are packed, never more than
    /// this many, and into at least `jobs` populations where there are enough runs. A
    /// member computes exactly its solo run, so results do not depend on it.
    pub population: usize,
    /// The part of each phase's runs this invocation trains.
    pub shard: Shard,
    pub phase: Phase,
}

/// What one invocation did: its own runs with their outcomes, and the state of the whole
/// sweep as written to results.csv.
#[derive(Debug, Clone)]
pub struct SweepReport {
    pub mine: Vec<(Run, Outcome)>,
    pub collected: Collected,
}

/// Runs (or continues) the runs of `spec` that `options` select in `dir`, then derives
/// results.csv from every run's summary ([`collect`]). `progress` is told about every run
/// that finishes: (done, total, line).
///
/// Shards of one sweep may run at once, on several machines sharing `dir`: each trains only
/// its own runs (no run directory has two writers), spec.toml is checked and written under
/// the directory's lock, and results.csv is derived under that lock from the summaries on
/// disk, so whoever finishes last writes the complete table.
pub fn run_sweep(
    spec: &Spec,
    spec_text: &str,
    dir: &Path,
    options: SweepOptions,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<SweepReport> {
    // Every run's config is checked before anything is written.
    let grid = spec.grid()?;
    let dir = &SweepDir::new(dir);
    dir.claim(spec_text)?;
    let shard = options.shard;
    // Alone in the directory, this process keeps results.csv current after every run.
    let keep_table = shard.count() == 1;
    let mut mine = Vec::new();
    let mut grid_results = Vec::new();
    if options.phase != Phase::Best {
        let runs = shard_of(&grid, shard);
        let total = runs.len();
        grid_results = run_all(&runs, &[], dir, options, total, keep_table, &mut progress)?;
        mine.extend(grid_results.iter().cloned());
    }
    if options.phase != Phase::Grid && spec.rerun_best.is_some() {
        if !keep_table || options.phase == Phase::Best {
            grid_results = finished(&grid, dir);
        }
        let missing = grid.len() - grid_results.len();
        if missing > 0 {
            bail!(
                "the reruns of the best settings need the whole grid, but {missing} of its {} runs \
                 have not finished in {}: run every grid shard first (--phase grid), then the \
                 reruns (--phase best)",
                grid.len(),
                dir.root.display()
            );
        }
        let runs = shard_of(&spec.reruns(&grid_results)?, shard);
        let earlier = if keep_table {
            grid_results.clone()
        } else {
            Vec::new()
        };
        let total = earlier.len() + runs.len();
        let more = run_all(
            &runs,
            &earlier,
            dir,
            options,
            total,
            keep_table,
            &mut progress,
        )?;
        mine.extend(more);
    }
    let collected = collect::collect(spec, dir)?;
    Ok(SweepReport { mine, collected })
}

/// The runs of `runs` in part `shard`, balanced by [`Run::cost`].
fn shard_of(runs: &[Run], shard: Shard) -> Vec<Run> {
    let costs: Vec<u64> = runs.iter().map(Run::cost).collect();
    shard
        .select(&costs)
        .into_iter()
        .map(|i| runs[i].clone())
        .collect()
}

/// Every run of `runs` that has a summary in `dir`, with its outcome, in order.
pub(crate) fn finished(runs: &[Run], dir: &SweepDir) -> Vec<(Run, Outcome)> {
    runs.iter()
        .filter_map(|r| read_outcome(&dir.run(&r.id)).map(|o| (r.clone(), o)))
        .collect()
}

/// The key whose items have the highest mean finite score: how both the reruns and the
/// figures pick "the best setting". `None` when no item has a finite score.
pub fn best_by_mean<T, K: Ord + Clone>(
    items: &[T],
    key: impl Fn(&T) -> K,
    score: impl Fn(&T) -> f64,
) -> Option<K> {
    let mut scores: std::collections::BTreeMap<K, Vec<f64>> = Default::default();
    for item in items {
        let s = score(item);
        if s.is_finite() {
            scores.entry(key(item)).or_default().push(s);
        }
    }
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    scores
        .into_iter()
        .max_by(|a, b| mean(&a.1).total_cmp(&mean(&b.1)))
        .map(|(k, _)| k)
}

/// The (α, learning rates) with the best mean score over seeds, per (environment, method):
/// a run of that group with that setting.
fn best_settings(results: &[(Run, Outcome)], by: Selection) -> Vec<Run> {
    let mut groups: std::collections::BTreeMap<(EnvId, String), Vec<&(Run, Outcome)>> =
        Default::default();
    for result in results
        .iter()
        .filter(|(r, o)| r.phase == "grid" && o.status == "ok")
    {
        let (run, _) = result;
        groups
            .entry((run.env.clone(), run.method.clone()))
            .or_default()
            .push(result);
    }
    let setting = |r: &Run| {
        (
            r.alpha.to_string(),
            rate_text(r.rates.actor),
            rate_text(r.rates.critic),
        )
    };
    groups
        .into_values()
        .filter_map(|group| {
            let best = best_by_mean(
                &group,
                |(r, _)| setting(r),
                |(_, o)| by.score(o.auc, o.final_return),
            )?;
            group
                .iter()
                .find(|(r, _)| setting(r) == best)
                .map(|(r, _)| r.clone())
        })
        .collect()
}

/// Runs what is not finished yet; returns every run with its outcome, in grid order. With
/// `keep_table`, `results.csv` is rewritten (with `earlier` first) whenever a run finishes.
fn run_all(
    runs: &[Run],
    earlier: &[(Run, Outcome)],
    dir: &SweepDir,
    options: SweepOptions,
    total: usize,
    keep_table: bool,
    progress: &mut impl FnMut(usize, usize, &str),
) -> Result<Vec<(Run, Outcome)>> {
    let offset = earlier.len();
    let mut outcomes: Vec<Option<Outcome>> =
        runs.iter().map(|r| read_outcome(&dir.run(&r.id))).collect();
    let pending: Vec<usize> = (0..runs.len()).filter(|&i| outcomes[i].is_none()).collect();
    let mut done = offset + runs.len() - pending.len();
    if done > offset {
        progress(
            done,
            total,
            &format!("{} runs already finished, skipped", done - offset),
        );
    }
    let units = populations(runs, &pending, options.population, options.jobs);
    crate::experiments::workers::for_each(
        &units,
        options.jobs,
        |unit| execute_claimed(runs, unit, dir),
        |k, results| {
            for (i, result) in units[k].iter().copied().zip(results) {
                let run = &runs[i];
                let (outcome, warnings) = match result {
                    Claimed::Trained(outcome, warnings) => (outcome, warnings),
                    Claimed::Finished(outcome) => (outcome, Vec::new()),
                    Claimed::Elsewhere => {
                        let line = format!("{}: another process is training it; skipped", run.id);
                        progress(done, total, &line);
                        continue;
                    }
                };
                done += 1;
                for warning in warnings {
                    progress(done, total, &format!("{}: {warning}", run.id));
                }
                progress(
                    done,
                    total,
                    &format!(
                        "{}: {} (final return {:.3}, AUC {:.3}, {:.0} s)",
                        run.id, outcome.status, outcome.final_return, outcome.auc, outcome.seconds
                    ),
                );
                outcomes[i] = Some(outcome);
                if keep_table {
                    let mut table = earlier.to_vec();
                    table.extend(finished_runs(runs, &outcomes));
                    // A table that cannot be written now is written again after the next run.
                    let _ = dir
                        .lock()
                        .and_then(|_lock| collect::write_results(dir, &table));
                }
            }
        },
    );
    Ok(finished_runs(runs, &outcomes))
}

fn finished_runs(runs: &[Run], outcomes: &[Option<Outcome>]) -> Vec<(Run, Outcome)> {
    runs.iter()
        .zip(outcomes)
        .filter_map(|(r, o)| o.clone().map(|o| (r.clone(), o)))
        .collect()
}

fn read_outcome(run_dir: &RunDir) -> Option<Outcome> {
    let text = std::fs::read_to_string(run_dir.summary()).ok()?;
    serde_json::from_str(&text).ok()
}

/// The pending runs (indices into `runs`) packed into populations: runs that may share one
/// ([`train::population_key`]) in grid order, at most `size` per population, and small
/// enough that there are at least `jobs` populations where the runs allow.
fn populations(runs: &[Run], pending: &[usize], size: usize, jobs: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<(Config, Vec<usize>)> = Vec::new();
    for &i in pending {
        let key = train::population_key(&runs[i].config);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let total = pending.len().max(1);
    let per_job = total.div_ceil(jobs.max(1));
    let chunk = size.clamp(1, per_job.max(1));
    groups
        .into_iter()
        .flat_map(|(_, members)| {
            members
                .chunks(chunk)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What became of a run this process was given.
enum Claimed {
    /// Trained here (to the end, or to its failure).
    Trained(Outcome, Vec<String>),
    /// Finished by another process meanwhile.
    Finished(Outcome),
    /// Another process holds its lock: it is training the run now.
    Elsewhere,
}

/// Trains the runs of `unit` that no other process is training: each run's lock
/// (`locks/<id>.lock`, held until the population ends) is taken first, and a run finished
/// meanwhile is not trained again.
fn execute_claimed(runs: &[Run], unit: &[usize], dir: &SweepDir) -> Vec<Claimed> {
    let mut claimed = Vec::new();
    let mut locks = Vec::new();
    let mut results: Vec<Option<Claimed>> = Vec::new();
    for &i in unit {
        match FileLock::try_acquire(&dir.run_lock(&runs[i].id)) {
            Ok(None) => results.push(Some(Claimed::Elsewhere)),
            // A lock file that cannot even be opened is no reason to leave the run undone.
            Err(_) => {
                claimed.push(i);
                results.push(None);
            }
            Ok(Some(lock)) => match read_outcome(&dir.run(&runs[i].id)) {
                Some(outcome) => results.push(Some(Claimed::Finished(outcome))),
                None => {
                    claimed.push(i);
                    locks.push(lock);
                    results.push(None);
                }
            },
        }
    }
    let mut trained = execute_population(runs, &claimed, dir).into_iter();
    drop(locks);
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| match trained.next() {
                Some((outcome, warnings)) => Claimed::Trained(outcome, warnings),
                None => Claimed::Elsewhere,
            })
        })
        .collect()
}

/// Trains the runs `unit` (indices into `runs`) as one population and writes each one's
/// `summary.json`; returns their outcomes in order. A population of one, one whose members'
/// checkpoints disagree (some started, some not), or one that cannot start (a damaged
/// checkpoint) trains its runs one by one, so each run's outcome is its own.
fn execute_population(runs: &[Run], unit: &[usize], dir: &SweepDir) -> Vec<(Outcome, Vec<String>)> {
    let one_by_one = || {
        unit.iter()
            .map(|&i| execute(&runs[i], &dir.run(&runs[i].id)))
            .collect()
    };
    if unit.len() < 2 {
        return one_by_one();
    }
    let run_dirs: Vec<RunDir> = unit.iter().map(|&i| dir.run(&runs[i].id)).collect();
    let started = run_dirs.iter().filter(|d| d.has_checkpoint()).count();
    let mode = match started {
        0 => Mode::Fresh,
        n if n == run_dirs.len() => Mode::Resume,
        _ => return one_by_one(),
    };
    if mode == Mode::Fresh {
        // Started but killed before a first checkpoint: start again.
        for d in &run_dirs {
            let _ = std::fs::remove_dir_all(&d.root);
        }
    }
    let start = std::time::Instant::now();
    let configs: Vec<Config> = unit.iter().map(|&i| runs[i].config.clone()).collect();
    let paths: Vec<&Path> = run_dirs.iter().map(|d| d.root.as_path()).collect();
    let mut warnings = Vec::new();
    let result = train::train_population(&configs, &paths, mode, |event| {
        if let TrainEvent::UnverifiedCheckpoint { .. } = event {
            warnings.push(event.to_string());
        }
    });
    let members = match result {
        Ok(members) => members,
        Err(e) => {
            // Said, not hidden: the runs then train one by one, each with its own outcome.
            let note = format!(
                "a population of {} runs could not train together ({e:#}); training them one by one",
                unit.len()
            );
            let mut results: Vec<(Outcome, Vec<String>)> = one_by_one();
            if let Some((_, first)) = results.first_mut() {
                first.insert(0, note);
            }
            return results;
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    members
        .into_iter()
        .zip(&run_dirs)
        .map(|(member, run_dir)| {
            let status = match member {
                Ok(_) => "ok".to_string(),
                Err(reason) => format!("failed: {reason}").replace(['\n', ','], " "),
            };
            (summarise(run_dir, status, seconds), warnings.clone())
        })
        .collect()
}

/// Trains one run to the end (continuing from its checkpoint if it has one) and writes its
/// `summary.json`. Errors of the run are its outcome, not the sweep's; a damaged checkpoint
/// fails the run (its directory left as it was) with the way to start it afresh. Returns the
/// outcome and the warnings to show (a checkpoint that could not be checked).
fn execute(run: &Run, dir: &RunDir) -> (Outcome, Vec<String>) {
    let start = std::time::Instant::now();
    let mut warnings = Vec::new();
    let result = (|| -> Result<()> {
        let mode = if dir.has_checkpoint() {
            Mode::Resume
        } else {
            // Started but killed before its first checkpoint: start again.
            let _ = std::fs::remove_dir_all(&dir.root);
            Mode::Fresh
        };
        train::train(&run.config, &dir.root, mode, |event| {
            if let TrainEvent::UnverifiedCheckpoint { .. } = event {
                warnings.push(event.to_string());
            }
        })
        .map_err(|e| match e.downcast_ref::<CheckpointError>() {
            Some(CheckpointError::Damaged { .. }) => anyhow!(
                "{e}: remove {} and run the sweep again (it then starts this run afresh)",
                dir.root.display()
            ),
            _ => e,
        })?;
        Ok(())
    })();
    let status = match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("failed: {e:#}").replace(['\n', ','], " "),
    };
    (
        summarise(dir, status, start.elapsed().as_secs_f64()),
        warnings,
    )
}

/// The outcome of the run in `dir` that ended with `status`, also written to its
/// `summary.json`.
fn summarise(dir: &RunDir, status: String, seconds: f64) -> Outcome {
    let (final_return, auc) = curve_summary(&dir.metrics());
    let outcome = Outcome {
        status,
        final_return,
        auc,
        episodes: episodes(&dir.metrics()),
        seconds,
    };
    if let Ok(json) = serde_json::to_string_pretty(&outcome) {
        let _ = std::fs::create_dir_all(&dir.root);
        // Whole or absent: a run killed while writing it is resumed, not misread.
        let _ = write_atomically(&dir.summary(), json.as_bytes());
    }
    outcome
}

/// (step, episode_return) of every metrics row with a finite return.
pub fn learning_curve(metrics: &Path) -> Vec<(f64, f64)> {
    metrics::read(metrics)
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.episode_return.is_finite())
        .map(|row| (row.step as f64, row.episode_return))
        .collect()
}

/// Episodes finished by the last metrics row (0 without rows).
fn episodes(metrics: &Path) -> usize {
    metrics::read(metrics)
        .ok()
        .and_then(|rows| rows.last().map(|row| row.episode))
        .unwrap_or(0)
}

/// (final return, AUC): the mean return of the last tenth of the rows, and of all rows.
fn curve_summary(metrics: &Path) -> (f64, f64) {
    let curve = learning_curve(metrics);
    if curve.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = |rows: &[(f64, f64)]| rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
    let tail = curve.len().div_ceil(10);
    (mean(&curve[curve.len() - tail..]), mean(&curve))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_runs_take_one_thread_unless_the_spec_says_otherwise() {
        let spec = |train: &str| -> Spec {
            let text = format!(
                "envs = [\"gym:Hopper-v5\"]\nseeds = [0]\n\
                 [[methods]]\npolicy = \"squashed\"\nestimator = \"rep\"\n[train]\n{train}"
            );
            let spec: Spec = toml::from_str(&text).unwrap();
            spec.check().unwrap();
            spec
        };
        // Alone, a 256-wide Hopper run would default to 2 threads.
        let grid = spec("").grid().unwrap();
        assert_eq!((grid[0].config.hidden, grid[0].config.threads), (256, 1));
        assert_eq!(spec("threads = 2").grid().unwrap()[0].config.threads, 2);
    }

    #[test]
    fn extra_learning_rates_widen_the_grid_of_their_environment_only() {
        let spec = |extra: &str| -> Result<Spec> {
            let text = format!(
                "envs = [\"pendulum\", \"acrobot\"]\nseeds = [0, 1]\nalphas = [0.1]\n\
                 learning_rates = [0.001, 0.003]\n{extra}\n\
                 [[methods]]\npolicy = \"squashed\"\nestimator = \"rep\"\n"
            );
            let spec: Spec = toml::from_str(&text)?;
            spec.check()?;
            Ok(spec)
        };
        let widened = spec("extra_learning_rates = { acrobot = [0.01] }").unwrap();
        let grid = widened.grid().unwrap();
        assert_eq!(grid.len(), 2 * 2 + 3 * 2);
        assert_eq!(widened.grid_size().unwrap(), grid.len());
        let step_sizes = |env: EnvId| -> Vec<f64> {
            let mut lrs: Vec<f64> = grid
                .iter()
                .filter(|r| r.env == env)
                .filter_map(|r| r.rates.actor)
                .collect();
            lrs.dedup();
            lrs
        };
        assert_eq!(step_sizes(EnvId::Pendulum), [0.001, 0.003]);
        assert_eq!(step_sizes(EnvId::Acrobot), [0.001, 0.003, 0.01]);
        // The runs both grids share keep their names, so a widened sweep reuses them.
        let narrow = spec("").unwrap().grid().unwrap();
        assert!(narrow.iter().all(|r| grid.iter().any(|w| w.id == r.id)));
        for (extra, says) in [
            (
                "extra_learning_rates = { hopper = [0.01] }",
                "not one of `envs`",
            ),
            ("extra_learning_rates = { acrobot = [0.003] }", "already in"),
        ] {
            let error = format!("{:#}", spec(extra).unwrap_err());
            assert!(error.contains(says), "{extra}: {error}");
        }
        let text = "envs = [\"acrobot\"]\nseeds = [0]\nactor_lrs = [0.01]\n\
                    extra_learning_rates = { acrobot = [0.1] }\n\
                    [[methods]]\npolicy = \"squashed\"\nestimator = \"rep\"\n";
        let spec: Spec = toml::from_str(text).unwrap();
        assert!(format!("{:#}", spec.check().unwrap_err()).contains("does not set"));
    }
}
