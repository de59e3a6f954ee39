//! `mixsac plot`: figures of a finished (or running) sweep — learning curves with 95 %
//! bootstrap confidence bands, sensitivity to α, and every run's curve.
//!
//! Runs are grouped by environment; `random-bandit:<seed>` environments form one group
//! ("random-bandits"), each bandit a replicate, as in the paper's aggregate over bandits.

use crate::experiments::plot::{self, Panel, Series};
use crate::experiments::sweep::{Selection, Spec};
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bootstrap resamples per confidence interval.
pub const RESAMPLES: usize = 2000;

/// One row of `results.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub phase: String,
    pub env: String,
    pub method: String,
    pub alpha: String,
    pub actor_lr: String,
    pub critic_lr: String,
    pub seed: u64,
    pub status: String,
    pub final_return: f64,
    pub auc: f64,
    pub run: String,
}

impl ResultRow {
    /// The environment group: random bandits together, everything else by name.
    pub fn group(&self) -> String {
        if self.env.starts_with("random-bandit:") {
            "random-bandits".into()
        } else {
            self.env.clone()
        }
    }
}

pub fn read_results(sweep: &Path) -> Result<Vec<ResultRow>> {
    let path = sweep.join("results.csv");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is this a sweep directory?)",
            path.display()
        )
    })?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 14 {
            bail!(
                "{} line {}: expected 14 fields, got {}",
                path.display(),
                n + 1,
                f.len()
            );
        }
        let number = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        rows.push(ResultRow {
            phase: f[0].into(),
            env: f[1].into(),
            method: f[2].into(),
            alpha: f[3].into(),
            actor_lr: f[4].into(),
            critic_lr: f[5].into(),
            seed: f[6]
                .parse()
                .with_context(|| format!("{} line {}: seed", path.display(), n + 1))?,
            status: f[8].into(),
            final_return: number(f[9]),
            auc: number(f[10]),
            run: f[13].into(),
        });
    }
    Ok(rows)
}

/// The 95 % percentile-bootstrap interval of the mean of `values`.
pub fn bootstrap_ci(values: &[f64], rng: &mut impl Rng) -> (f64, f64) {
    let n = values.len();
    if n < 2 {
        let v = values.first().copied().unwrap_or(f64::NAN);
        return (v, v);
    }
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    (at(0.025), at(0.975))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// A line's points and its band's (x, low, high).
type LineAndBand = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

/// Mean curve and band over runs whose curves share their steps (rows missing in some runs
/// use the runs that have them).
fn mean_curve(curves: &[Vec<(f64, f64)>], rng: &mut impl Rng) -> LineAndBand {
    let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for curve in curves {
        for &(step, ret) in curve {
            by_step.entry(step as u64).or_default().push(ret);
        }
    }
    let mut line = Vec::new();
    let mut band = Vec::new();
    for (step, values) in by_step {
        let (lo, hi) = bootstrap_ci(&values, rng);
        line.push((step as f64, mean(&values)));
        band.push((step as f64, lo, hi));
    }
    (line, band)
}

/// Writes every figure of the sweep in `sweep` into `out`; returns the files written and the
/// figures left out for want of data.
pub fn plot_sweep(sweep: &Path, out: &Path) -> Result<Figures> {
    let rows: Vec<ResultRow> = read_results(sweep)?
        .into_iter()
        .filter(|r| r.status == "ok")
        .collect();
    if rows.is_empty() {
        bail!("{} has no finished runs to plot yet", sweep.display());
    }
    // The sweep's own selection rule (AUC unless its spec says otherwise).
    let by = Spec::read(&sweep.join("spec.toml")).map_or(Selection::Auc, |s| s.select_by);
    let methods: Vec<String> = {
        let mut m: Vec<String> = rows.iter().map(|r| r.method.clone()).collect();
        m.sort();
        m.dedup();
        m
    };
    let colour = |method: &str| methods.iter().position(|m| m == method);
    let curve_of = |row: &ResultRow| {
        crate::experiments::sweep::learning_curve(
            &sweep.join("runs").join(&row.run).join("metrics.csv"),
        )
    };
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
    let mut figures_out = Figures::default();
    let groups: Vec<String> = {
        let mut g: Vec<String> = rows.iter().map(ResultRow::group).collect();
        g.sort();
        g.dedup();
        g
    };
    for group in &groups {
        let in_group: Vec<&ResultRow> = rows.iter().filter(|r| &r.group() == group).collect();
        // α grids spanning decades (the paper's 10^y) are drawn on a log10 axis.
        let numeric: Vec<f64> = in_group
            .iter()
            .filter_map(|r| r.alpha.parse::<f64>().ok())
            .collect();
        let (lo, hi) = numeric
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), &a| {
                (lo.min(a), hi.max(a))
            });
        let log_alpha = lo > 0.0 && hi / lo >= 100.0;
        let file = group.replace([':', '/'], "_");

        // Learning curves of each method's best setting (its reruns if there are any).
        let mut learning = Vec::new();
        let mut per_alpha = Vec::new();
        let mut every_run = Vec::new();
        for method in &methods {
            let of_method: Vec<&ResultRow> = in_group
                .iter()
                .copied()
                .filter(|r| &r.method == method)
                .collect();
            if of_method.is_empty() {
                continue;
            }
            let best_runs: Vec<&ResultRow> = {
                let reruns: Vec<&ResultRow> = of_method
                    .iter()
                    .copied()
                    .filter(|r| r.phase == "best")
                    .collect();
                if reruns.is_empty() {
                    let grid: Vec<&ResultRow> = of_method
                        .iter()
                        .copied()
                        .filter(|r| r.phase == "grid")
                        .collect();
                    best_setting(&grid, by)
                } else {
                    reruns
                }
            };
            let curves: Vec<Vec<(f64, f64)>> = best_runs.iter().map(|r| curve_of(r)).collect();
            let (points, band) = mean_curve(&curves, &mut rng);
            let setting = best_runs
                .first()
                .map(|r| {
                    format!(
                        " (α {}, lr actor {} critic {}, {} runs)",
                        r.alpha,
                        r.actor_lr,
                        r.critic_lr,
                        best_runs.len()
                    )
                })
                .unwrap_or_default();
            learning.push(Series {
                label: format!("{method}{setting}"),
                points,
                band,
                colour: colour(method),
                ..Series::default()
            });

            // α-sensitivity: per numeric α, the best learning rates by the selection rule;
            // final returns.
            let mut alphas: Vec<f64> = of_method
                .iter()
                .filter(|r| r.phase == "grid")
                .filter_map(|r| r.alpha.parse::<f64>().ok())
                .collect();
            alphas.sort_by(f64::total_cmp);
            alphas.dedup();
            let mut points = Vec::new();
            let mut band = Vec::new();
            for alpha in alphas {
                let at: Vec<&ResultRow> = of_method
                    .iter()
                    .copied()
                    .filter(|r| r.phase == "grid" && r.alpha.parse::<f64>().ok() == Some(alpha))
                    .collect();
                let finals: Vec<f64> = best_setting(&at, by)
                    .iter()
                    .map(|r| r.final_return)
                    .filter(|v| v.is_finite())
                    .collect();
                if finals.is_empty() {
                    continue;
                }
                let (lo, hi) = bootstrap_ci(&finals, &mut rng);
                let x = if log_alpha { alpha.log10() } else { alpha };
                points.push((x, mean(&finals)));
                band.push((x, lo, hi));
            }
            if !points.is_empty() {
                per_alpha.push(Series {
                    label: method.clone(),
                    points,
                    band,
                    markers: true,
                    colour: colour(method),
                    thin: false,
                });
            }

            // Every grid run, thin, labelled once per method.
            for (i, row) in of_method.iter().filter(|r| r.phase == "grid").enumerate() {
                every_run.push(Series {
                    label: if i == 0 {
                        method.clone()
                    } else {
                        String::new()
                    },
                    points: curve_of(row),
                    colour: colour(method),
                    thin: true,
                    ..Series::default()
                });
            }
        }
        let x_steps = "environment steps".to_string();
        let y_return = if group.contains("bandit") {
            "reward per episode (max 1)"
        } else {
            "episode return"
        }
        .to_string();
        let figures = [
            (
                format!("learning-{file}"),
                "no finished run has a learning curve",
                Panel {
                    title: format!("{group}: best setting per method, mean and 95 % bootstrap CI"),
                    x_label: x_steps.clone(),
                    y_label: y_return.clone(),
                    series: learning,
                    legend_below: true,
                    ..Panel::default()
                },
            ),
            (
                format!("alpha-{file}"),
                "no grid run with a numeric α has a final return",
                Panel {
                    title: format!("{group}: final return vs α (best learning rate per α)"),
                    x_label: if log_alpha {
                        "entropy scale α (log10)".into()
                    } else {
                        "entropy scale α".into()
                    },
                    y_label: format!("{y_return}, last tenth of training"),
                    series: per_alpha,
                    legend_below: true,
                    ..Panel::default()
                },
            ),
            (
                format!("runs-{file}"),
                "no finished run has a learning curve",
                Panel {
                    title: format!("{group}: every run of the grid"),
                    x_label: x_steps,
                    y_label: y_return,
                    series: every_run,
                    legend_below: true,
                    ..Panel::default()
                },
            ),
        ];
        // (file name, why it would be empty, figure)
        for (name, why_empty, panel) in figures {
            if panel.series.iter().all(|s| s.points.is_empty()) {
                figures_out
                    .skipped
                    .push(format!("{name}: not drawn, {why_empty}"));
                continue;
            }
            figures_out
                .written
                .extend(plot::save(&out.join(name), &[panel], 900, 560)?);
        }
    }
    Ok(figures_out)
}

/// What [`plot_sweep`] did: the files it wrote and the figures it had nothing to draw for.
#[derive(Debug, Default)]
pub struct Figures {
    pub written: Vec<PathBuf>,
    pub skipped: Vec<String>,
}

/// The runs of the (α, learning rates) setting with the best mean score among `rows`
/// (the rule the sweep's reruns use: [`crate::experiments::sweep::best_by_mean`]).
fn best_setting<'a>(rows: &[&'a ResultRow], by: Selection) -> Vec<&'a ResultRow> {
    let key = |r: &ResultRow| (r.alpha.clone(), r.actor_lr.clone(), r.critic_lr.clone());
    let Some(best) = crate::experiments::sweep::best_by_mean(
        rows,
        |r| key(r),
        |r| by.score(r.auc, r.final_return),
    ) else {
        return Vec::new();
    };
    rows.iter().copied().filter(|r| key(r) == best).collect()
}
