//! `mixsac plot`: figures of a finished (or running) sweep — learning curves with 95 %
//! bootstrap confidence bands, sensitivity to α, and every run's curve.
//!
//! Runs are grouped by environment; `random-bandit:<seed>` environments form one group
//! ("random-bandits"), each bandit a replicate, as in the paper's aggregate over bandits.

use crate::experiments::plot::{self, Panel, Series};
use crate::experiments::results::{self, ResultRow};
use crate::experiments::sweep::{learning_curve, Selection, Spec};
use crate::experiments::sweep_dir::SweepDir;
use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bootstrap resamples per confidence interval.
pub const RESAMPLES: usize = 2000;

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
    let sweep = SweepDir::new(sweep);
    let rows: Vec<ResultRow> = results::read(&sweep.results())?
        .into_iter()
        .filter(|r| r.status == "ok")
        .collect();
    if rows.is_empty() {
        bail!("{} has no finished runs to plot yet", sweep.root.display());
    }
    // The sweep's own selection rule (AUC unless its spec says otherwise).
    let by = Spec::read(&sweep.spec()).map_or(Selection::Auc, |s| s.select_by);
    let methods = sorted_unique(rows.iter().map(|r| r.method.clone()));
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
    let mut figures_out = Figures::default();
    for group in sorted_unique(rows.iter().map(|r| r.env.report_group())) {
        let in_group: Vec<&ResultRow> = rows
            .iter()
            .filter(|r| r.env.report_group() == group)
            .collect();
        let figures = group_figures(&sweep, &group, &in_group, &methods, by, &mut rng);
        for Figure {
            name,
            why_empty,
            panel,
        } in figures
        {
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

fn sorted_unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items.dedup();
    items
}

/// A figure to draw: its file name (without extension), why it would be empty, its panel.
struct Figure {
    name: String,
    why_empty: &'static str,
    panel: Panel,
}

/// The three figures of an environment group: [`learning_figure`], [`alpha_figure`] and
/// [`runs_figure`]. Their series are made method by method in one pass, so the bootstrap
/// draws from `rng` come in the same order as they always have.
fn group_figures(
    sweep: &SweepDir,
    group: &str,
    rows: &[&ResultRow],
    methods: &[String],
    by: Selection,
    rng: &mut impl Rng,
) -> [Figure; 3] {
    // α grids spanning decades (the paper's 10^y) are drawn on a log10 axis.
    let (lo, hi) = rows
        .iter()
        .filter_map(|r| r.alpha.parse::<f64>().ok())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), a| {
            (lo.min(a), hi.max(a))
        });
    let log_alpha = lo > 0.0 && hi / lo >= 100.0;
    let mut learning = Vec::new();
    let mut per_alpha = Vec::new();
    let mut every_run = Vec::new();
    for (colour, method) in methods.iter().enumerate() {
        let of_method: Vec<&ResultRow> = rows
            .iter()
            .copied()
            .filter(|r| &r.method == method)
            .collect();
        if of_method.is_empty() {
            continue;
        }
        let method = MethodRuns {
            name: method,
            colour,
            rows: &of_method,
        };
        learning.push(best_curve(sweep, &method, by, rng));
        per_alpha.extend(alpha_curve(&method, by, log_alpha, rng));
        every_run.extend(run_curves(sweep, &method));
    }
    let file = group.replace([':', '/'], "_");
    let y_return = if rows.iter().any(|r| r.env.is_bandit()) {
        "reward per episode (max 1)"
    } else {
        "episode return"
    };
    [
        learning_figure(group, &file, y_return, learning),
        alpha_figure(group, &file, y_return, log_alpha, per_alpha),
        runs_figure(group, &file, y_return, every_run),
    ]
}

/// One method's finished runs within a group, and its colour in every figure.
struct MethodRuns<'a> {
    name: &'a str,
    colour: usize,
    rows: &'a [&'a ResultRow],
}

const X_STEPS: &str = "environment steps";

/// Learning curves of each method's best setting, mean and band over its runs.
fn learning_figure(group: &str, file: &str, y_return: &str, series: Vec<Series>) -> Figure {
    let title = format!("{group}: best setting per method, mean and 95 % bootstrap CI");
    curves_figure(format!("learning-{file}"), title, y_return, series)
}

/// Return against environment steps, legend below: the learning and every-run figures.
fn curves_figure(name: String, title: String, y_return: &str, series: Vec<Series>) -> Figure {
    Figure {
        name,
        why_empty: "no finished run has a learning curve",
        panel: Panel {
            title,
            x_label: X_STEPS.into(),
            y_label: y_return.into(),
            series,
            legend_below: true,
            ..Panel::default()
        },
    }
}

/// A method's line of [`learning_figure`]: the mean curve of its best setting (its reruns if
/// there are any, else the grid's best by the selection rule).
fn best_curve(sweep: &SweepDir, method: &MethodRuns, by: Selection, rng: &mut impl Rng) -> Series {
    let reruns: Vec<&ResultRow> = method
        .rows
        .iter()
        .copied()
        .filter(|r| r.phase == "best")
        .collect();
    let best_runs = if reruns.is_empty() {
        let grid: Vec<&ResultRow> = method
            .rows
            .iter()
            .copied()
            .filter(|r| r.phase == "grid")
            .collect();
        best_setting(&grid, by)
    } else {
        reruns
    };
    let curves: Vec<Vec<(f64, f64)>> = best_runs.iter().map(|r| curve_of(sweep, r)).collect();
    let (points, band) = mean_curve(&curves, rng);
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
    Series {
        label: format!("{}{setting}", method.name),
        points,
        band,
        colour: Some(method.colour),
        ..Series::default()
    }
}

/// Final return against α, each α with its best learning rates.
fn alpha_figure(
    group: &str,
    file: &str,
    y_return: &str,
    log_alpha: bool,
    series: Vec<Series>,
) -> Figure {
    Figure {
        name: format!("alpha-{file}"),
        why_empty: "no grid run with a numeric α has a final return",
        panel: Panel {
            title: format!("{group}: final return vs α (best learning rate per α)"),
            x_label: if log_alpha {
                "entropy scale α (log10)".into()
            } else {
                "entropy scale α".into()
            },
            y_label: format!("{y_return}, last tenth of training"),
            series,
            legend_below: true,
            ..Panel::default()
        },
    }
}

/// A method's line of [`alpha_figure`]: per numeric α of the grid, the final returns of the
/// best learning rates by the selection rule, mean and band. `None` without such an α.
fn alpha_curve(
    method: &MethodRuns,
    by: Selection,
    log_alpha: bool,
    rng: &mut impl Rng,
) -> Option<Series> {
    let mut alphas: Vec<f64> = method
        .rows
        .iter()
        .filter(|r| r.phase == "grid")
        .filter_map(|r| r.alpha.parse::<f64>().ok())
        .collect();
    alphas.sort_by(f64::total_cmp);
    alphas.dedup();
    let mut points = Vec::new();
    let mut band = Vec::new();
    for alpha in alphas {
        let at: Vec<&ResultRow> = method
            .rows
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
        let (lo, hi) = bootstrap_ci(&finals, rng);
        let x = if log_alpha { alpha.log10() } else { alpha };
        points.push((x, mean(&finals)));
        band.push((x, lo, hi));
    }
    (!points.is_empty()).then(|| Series {
        label: method.name.to_string(),
        points,
        band,
        markers: true,
        colour: Some(method.colour),
        ..Series::default()
    })
}

/// Every run of the grid, thin.
fn runs_figure(group: &str, file: &str, y_return: &str, series: Vec<Series>) -> Figure {
    let title = format!("{group}: every run of the grid");
    curves_figure(format!("runs-{file}"), title, y_return, series)
}

/// A method's lines of [`runs_figure`]: each grid run's curve, labelled once per method.
fn run_curves(sweep: &SweepDir, method: &MethodRuns) -> Vec<Series> {
    method
        .rows
        .iter()
        .filter(|r| r.phase == "grid")
        .enumerate()
        .map(|(i, row)| Series {
            label: if i == 0 {
                method.name.to_string()
            } else {
                String::new()
            },
            points: curve_of(sweep, row),
            colour: Some(method.colour),
            thin: true,
            ..Series::default()
        })
        .collect()
}

/// The learning curve of a row's run.
fn curve_of(sweep: &SweepDir, row: &ResultRow) -> Vec<(f64, f64)> {
    learning_curve(&sweep.run(&row.run).metrics())
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
