//! `mixsac sweep`: a grid of independent training runs (environments × methods × α ×
//! learning rates × seeds) on N worker threads, one run per thread, resumable, with one tidy
//! results table. Optionally a second phase re-runs the best (α, learning rate) of every
//! (environment, method) by area under the learning curve with fresh seeds, as in the
//! paper's protocol.
//!
//! Layout of a sweep directory ([`SweepDir`]):
//! - `spec.toml`: the spec it runs (a resumed sweep must be given the same spec);
//! - `runs/<id>/`: one `mixsac train` directory per run, plus `summary.json` once finished;
//! - `results.csv`: one row per run ([`ResultRow`]), rewritten whenever a run finishes.
//!
//! A killed sweep continues where it stopped: finished runs (with `summary.json`) are
//! skipped, runs with a checkpoint continue from it exactly, others start again. A run whose
//! checkpoint is damaged (its files do not match its manifest) fails, naming the file; it
//! starts afresh once its directory is removed.

use crate::config::{Alpha, Config, Estimator, PolicyKind, TrainArgs};
use crate::envs::EnvId;
use crate::experiments::results::{self, ResultRow};
use crate::experiments::sweep_dir::SweepDir;
use crate::run::checkpoint::CheckpointError;
use crate::run::metrics;
use crate::run::run_dir::RunDir;
use crate::run::train::{self, Mode, TrainEvent};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
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
        Ok(())
    }

    /// The learning-rate settings of the grid.
    fn rate_settings(&self) -> Vec<Rates> {
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
        let mut ids = Vec::new();
        for env in &self.envs {
            ids.extend(EnvId::parse_range(env)?);
        }
        Ok(ids)
    }

    /// How many runs [`Spec::grid`] makes, without resolving them.
    pub fn grid_size(&self) -> Result<usize> {
        Ok(self.env_ids()?.len()
            * self.methods.len()
            * self.alphas.len().max(1)
            * self.rate_settings().len()
            * self.seeds.len())
    }

    /// Every run of the grid (phase "grid"), each config resolved and checked.
    pub fn grid(&self) -> Result<Vec<Run>> {
        let alphas: Vec<Option<Alpha>> = if self.alphas.is_empty() {
            vec![None]
        } else {
            self.alphas.iter().copied().map(Some).collect()
        };
        let lrs = self.rate_settings();
        let mut runs = Vec::new();
        for env in self.env_ids()? {
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
        .over(self.train.clone());
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

/// Runs (or continues) the sweep of `spec` in `dir` on `jobs` threads. `progress` is told
/// about every run that finishes: (done, total, line).
pub fn run_sweep(
    spec: &Spec,
    spec_text: &str,
    dir: &Path,
    jobs: usize,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<(Run, Outcome)>> {
    // Every run's config is checked before anything is written.
    let grid = spec.grid()?;
    let dir = &SweepDir::new(dir);
    std::fs::create_dir_all(dir.runs())
        .with_context(|| format!("cannot create {}", dir.root.display()))?;
    let saved = dir.spec();
    match std::fs::read_to_string(&saved) {
        Ok(old) if old != spec_text => bail!(
            "{} holds a sweep of another spec ({}); use another --out, or the same spec to continue it",
            dir.root.display(),
            saved.display()
        ),
        Ok(_) => {}
        Err(_) => std::fs::write(&saved, spec_text)?,
    }
    let mut results = run_all(&grid, &[], dir, jobs, grid.len(), &mut progress)?;
    if let Some(rerun) = &spec.rerun_best {
        let mut reruns = Vec::new();
        for run in best_settings(&results, spec.select_by) {
            let (alpha, lr) = (run.alpha, run.rates);
            for &seed in &rerun.seeds {
                reruns.push(spec.run("best", &run.env, &run.method_spec, Some(alpha), lr, seed)?);
            }
        }
        let total = grid.len() + reruns.len();
        let more = run_all(&reruns, &results, dir, jobs, total, &mut progress)?;
        results.extend(more);
    }
    write_results(dir, &results)?;
    Ok(results)
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

/// Runs what is not finished yet; returns every run with its outcome, in grid order.
/// `results.csv` is rewritten (with `earlier` first) whenever a run finishes.
fn run_all(
    runs: &[Run],
    earlier: &[(Run, Outcome)],
    dir: &SweepDir,
    jobs: usize,
    total: usize,
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
    crate::experiments::workers::for_each(
        &pending,
        jobs,
        |&i| execute(&runs[i], &dir.run(&runs[i].id)),
        |k, (outcome, warnings)| {
            done += 1;
            let i = pending[k];
            let run = &runs[i];
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
            let mut table = earlier.to_vec();
            table.extend(finished_runs(runs, &outcomes));
            // A table that cannot be written now is written again after the next run.
            let _ = write_results(dir, &table);
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
    let (final_return, auc) = curve_summary(&dir.metrics());
    let outcome = Outcome {
        status,
        final_return,
        auc,
        episodes: episodes(&dir.metrics()),
        seconds: start.elapsed().as_secs_f64(),
    };
    if let Ok(json) = serde_json::to_string_pretty(&outcome) {
        let _ = std::fs::create_dir_all(&dir.root);
        let _ = std::fs::write(dir.summary(), json);
    }
    (outcome, warnings)
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

fn write_results(dir: &SweepDir, results: &[(Run, Outcome)]) -> Result<()> {
    let rows: Vec<ResultRow> = results.iter().map(|(r, o)| ResultRow::new(r, o)).collect();
    results::write(&dir.results(), &rows)
}
