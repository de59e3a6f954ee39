//! The stationary-point study of the bimodal bandit (paper §3.3, App. C): maximise the
//! exact objective J(θ) = E_π[r(a)] + α H(π) over a Gaussian and over a two-component
//! Gaussian mixture on the real line, from many random starts, and record which runs end
//! at a stationary point, how good the best one is, and how many are bimodal.
//!
//! No sampling anywhere: E_π[r] is a sum of Gaussian expectations (closed form for the
//! bandit's sum-of-Gaussians reward), and H(π) = −∫ π log π is integrated by composite
//! Gauss–Legendre quadrature on panels placed around every component (accurate to ~1e-10
//! even for a narrow component inside a wide one; `tests/stationary.rs` checks it against a
//! brute-force integral).
//!
//! The optimiser is a documented projected method standing in for L-BFGS-B: limited-memory
//! BFGS directions on the variables not held at a bound, a projected backtracking (Armijo)
//! line search, central-difference gradients, and SciPy's default stopping rules (projected
//! gradient ≤ 1e-5, or relative decrease of the objective ≤ 2.2e-9).

use rand::{Rng, SeedableRng};

/// α values of the paper's study.
pub const ALPHAS: [f64; 15] = [
    0.05, 0.1, 0.2, 0.22, 0.24, 0.26, 0.28, 0.3, 0.325, 0.35, 0.375, 0.4, 0.45, 0.5, 0.6,
];
/// Bounds of every log-std: the upper one is where "the std diverges" is detected.
pub const LOG_STD_BOUNDS: (f64, f64) = (-7.0, 3.0);
/// Means are unbounded: a bound on them would create spurious "stationary" points there.
pub const MEAN_BOUNDS: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);
/// A stopped run is a stationary point only if its projected gradient is at most this (the
/// relative-decrease rule can also stop a run that creeps along a flat, diverging ridge).
pub const STATIONARY_GRADIENT: f64 = 1e-3;
/// A run whose log-std (of a component with weight above [`NEGLIGIBLE_WEIGHT`]) ends within
/// this distance of the upper bound has diverged, not converged.
pub const DIVERGENCE_MARGIN: f64 = 1e-3;
/// Components lighter than this do not count for divergence or bimodality.
pub const NEGLIGIBLE_WEIGHT: f64 = 1e-3;

/// Which policy family is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// θ = (μ, log σ).
    Gaussian,
    /// θ = (μ₁, μ₂, log σ₁, log σ₂, w), w the weight of component 1.
    Mixture,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Gaussian => "gaussian",
            Family::Mixture => "mixture",
        }
    }

    /// Lower and upper bound of each parameter.
    fn bounds(self) -> Vec<(f64, f64)> {
        match self {
            Family::Gaussian => vec![MEAN_BOUNDS, LOG_STD_BOUNDS],
            Family::Mixture => vec![
                MEAN_BOUNDS,
                MEAN_BOUNDS,
                LOG_STD_BOUNDS,
                LOG_STD_BOUNDS,
                (0.0, 1.0),
            ],
        }
    }

    /// The paper's random start: means U[−2, 2], log-stds U[−3, 0], weight U[0, 1].
    fn random_start(self, rng: &mut impl Rng) -> Vec<f64> {
        let mut mean = || rng.random_range(-2.0..=2.0);
        let means = match self {
            Family::Gaussian => vec![mean()],
            Family::Mixture => vec![mean(), mean()],
        };
        let mut theta = means;
        for _ in 0..theta.len() {
            theta.push(rng.random_range(-3.0..=0.0));
        }
        if self == Family::Mixture {
            theta.push(rng.random_range(0.0..=1.0));
        }
        theta
    }

    /// (weight, mean, std) of each component.
    pub fn components(self, theta: &[f64]) -> Vec<(f64, f64, f64)> {
        match self {
            Family::Gaussian => vec![(1.0, theta[0], theta[1].exp())],
            Family::Mixture => vec![
                (theta[4], theta[0], theta[2].exp()),
                (1.0 - theta[4], theta[1], theta[3].exp()),
            ],
        }
    }
}

/// The reward of the study: anything whose expectation under a Gaussian is known.
pub trait GaussianExpectation {
    /// E[r(a)] for a ~ N(mean, std²).
    fn gaussian_expectation(&self, mean: f64, std: f64) -> f64;
}

impl GaussianExpectation for crate::envs::Bandit {
    fn gaussian_expectation(&self, mean: f64, std: f64) -> f64 {
        crate::envs::Bandit::gaussian_expectation(self, mean, std)
    }
}

/// Offsets (in stds) from each component's mean where the entropy integral is split: the
/// panels are fine where that component's density changes fast, and ±12σ bounds the range
/// (the mass beyond it is below 1e-32).
const BREAKPOINTS: [f64; 17] = [
    -12.0, -8.0, -6.0, -4.5, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 12.0,
];
/// Gauss–Legendre points per panel.
const PANEL_NODES: usize = 12;

/// The exact objective of one policy family for one α.
pub struct Objective<'a, R: GaussianExpectation> {
    pub family: Family,
    pub alpha: f64,
    reward: &'a R,
    /// Gauss–Legendre rule of each panel.
    nodes: Vec<(f64, f64)>,
}

impl<'a, R: GaussianExpectation> Objective<'a, R> {
    pub fn new(family: Family, alpha: f64, reward: &'a R) -> Self {
        Objective {
            family,
            alpha,
            reward,
            nodes: super::quadrature::gauss_legendre(PANEL_NODES),
        }
    }

    /// log π(a) of the policy θ.
    fn log_density(components: &[(f64, f64, f64)], a: f64) -> f64 {
        let terms: Vec<f64> = components
            .iter()
            .filter(|(w, _, _)| *w > 0.0)
            .map(|&(w, m, s)| {
                let z = (a - m) / s;
                w.ln() - 0.5 * z * z - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    }

    /// H(π) = −∫ π(a) log π(a) da by composite Gauss–Legendre quadrature, the line split at
    /// [`BREAKPOINTS`] around every component (so a narrow component inside a wide one is
    /// resolved by its own panels).
    pub fn entropy(&self, theta: &[f64]) -> f64 {
        let components: Vec<(f64, f64, f64)> = self
            .family
            .components(theta)
            .into_iter()
            .filter(|(w, _, _)| *w > 0.0)
            .collect();
        let mut cuts: Vec<f64> = components
            .iter()
            .flat_map(|&(_, m, s)| BREAKPOINTS.iter().map(move |t| m + t * s))
            .collect();
        cuts.sort_by(f64::total_cmp);
        let mut h = 0.0;
        for pair in cuts.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b <= a {
                continue;
            }
            let (half, mid) = ((b - a) / 2.0, (a + b) / 2.0);
            for &(x, g) in &self.nodes {
                let log_p = Self::log_density(&components, mid + half * x);
                h -= half * g * log_p.exp() * log_p;
            }
        }
        h
    }

    /// E_π[r(a)].
    pub fn expected_reward(&self, theta: &[f64]) -> f64 {
        self.family
            .components(theta)
            .iter()
            .map(|&(w, m, s)| w * self.reward.gaussian_expectation(m, s))
            .sum()
    }

    /// J(θ) = E_π[r] + α H(π).
    pub fn value(&self, theta: &[f64]) -> f64 {
        self.expected_reward(theta) + self.alpha * self.entropy(theta)
    }
}

/// How a maximisation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub theta: Vec<f64>,
    pub value: f64,
    /// The stopping rule was met (not the iteration limit).
    pub converged: bool,
    pub iterations: usize,
    /// Largest entry of the projected gradient of J at the end.
    pub projected_gradient: f64,
}

/// Settings of the projected quasi-Newton maximiser.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_iterations: usize,
    /// Stop when the projected gradient's largest entry is at most this.
    pub gradient_tolerance: f64,
    /// Stop when the objective improves by at most this fraction (of max(1, |J|)).
    pub relative_tolerance: f64,
    /// Curvature pairs kept.
    pub memory: usize,
}

impl Default for Settings {
    /// SciPy's L-BFGS-B defaults.
    fn default() -> Self {
        Settings {
            max_iterations: 15_000,
            gradient_tolerance: 1e-5,
            relative_tolerance: 2.220_446_049_250_313e-9,
            memory: 10,
        }
    }
}

/// Maximises `f` over the box `bounds` from `start` (projected into the box).
pub fn maximise(
    f: impl Fn(&[f64]) -> f64,
    bounds: &[(f64, f64)],
    start: &[f64],
    settings: &Settings,
) -> Outcome {
    let n = start.len();
    let project = |x: &mut [f64]| {
        for (v, &(lo, hi)) in x.iter_mut().zip(bounds) {
            *v = v.clamp(lo, hi);
        }
    };
    let finish =
        |x: Vec<f64>, value: f64, grad: &[f64], converged: bool, iterations: usize| Outcome {
            projected_gradient: projected_gradient_norm(&x, grad, bounds),
            theta: x,
            value: -value,
            converged,
            iterations,
        };
    // Minimise g = −f.
    let g = |x: &[f64]| -f(x);
    let gradient = |x: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| {
                let h = 1e-6 * x[i].abs().max(1.0);
                let (lo, hi) = bounds[i];
                let (mut up, mut down) = (x.to_vec(), x.to_vec());
                up[i] = (x[i] + h).min(hi);
                down[i] = (x[i] - h).max(lo);
                (g(&up) - g(&down)) / (up[i] - down[i])
            })
            .collect()
    };
    let mut x = start.to_vec();
    project(&mut x);
    let mut value = g(&x);
    let mut grad = gradient(&x);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>)> =
        std::collections::VecDeque::new();
    for iteration in 0..settings.max_iterations {
        // Variables at a bound whose gradient pushes outward are held.
        let free: Vec<bool> = (0..n)
            .map(|i| {
                let (lo, hi) = bounds[i];
                !((x[i] <= lo && grad[i] > 0.0) || (x[i] >= hi && grad[i] < 0.0))
            })
            .collect();
        let projected_gradient = projected_gradient_norm(&x, &grad, bounds);
        if projected_gradient <= settings.gradient_tolerance {
            return finish(x, value, &grad, true, iteration);
        }
        let mut direction = two_loop(&grad, &free, &history);
        let slope: f64 = direction.iter().zip(&grad).map(|(d, g)| d * g).sum();
        if slope >= 0.0 {
            // Not a descent direction: steepest descent on the free variables.
            history.clear();
            direction = (0..n)
                .map(|i| if free[i] { -grad[i] } else { 0.0 })
                .collect();
        }
        let mut step = 1.0;
        let mut next = x.clone();
        let mut next_value = value;
        let mut accepted = false;
        for _ in 0..40 {
            for i in 0..n {
                next[i] = x[i] + step * direction[i];
            }
            project(&mut next);
            next_value = g(&next);
            let decrease: f64 = (0..n).map(|i| grad[i] * (next[i] - x[i])).sum();
            if next_value <= value + 1e-4 * decrease {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            // No decrease along a descent direction: as good as these gradients allow.
            return finish(x, value, &grad, true, iteration);
        }
        let next_grad = gradient(&next);
        let s: Vec<f64> = (0..n).map(|i| next[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| next_grad[i] - grad[i]).collect();
        if s.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() > 1e-12 {
            history.push_back((s, y));
            if history.len() > settings.memory {
                history.pop_front();
            }
        }
        let improvement = value - next_value;
        x = next;
        grad = next_grad;
        value = next_value;
        if improvement <= settings.relative_tolerance * value.abs().max(1.0) {
            return finish(x, value, &grad, true, iteration + 1);
        }
    }
    finish(x, value, &grad, false, settings.max_iterations)
}

/// max_i |clamp(x_i − g_i) − x_i|: zero exactly at a first-order stationary point of the box.
fn projected_gradient_norm(x: &[f64], grad: &[f64], bounds: &[(f64, f64)]) -> f64 {
    x.iter()
        .zip(grad)
        .zip(bounds)
        .map(|((&x, &g), &(lo, hi))| ((x - g).clamp(lo, hi) - x).abs())
        .fold(0.0, f64::max)
}

/// −H∇ on the free variables by the L-BFGS two-loop recursion (held variables get 0).
fn two_loop(
    grad: &[f64],
    free: &[bool],
    history: &std::collections::VecDeque<(Vec<f64>, Vec<f64>)>,
) -> Vec<f64> {
    let mask = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .zip(free)
            .map(|(&x, &f)| if f { x } else { 0.0 })
            .collect()
    };
    let dot = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    let mut q = mask(grad);
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y) in history.iter().rev() {
        let (s, y) = (mask(s), mask(y));
        let sy = dot(&s, &y);
        if sy <= 1e-12 {
            alphas.push(0.0);
            continue;
        }
        let a = dot(&s, &q) / sy;
        for (qi, yi) in q.iter_mut().zip(&y) {
            *qi -= a * yi;
        }
        alphas.push(a);
    }
    if let Some((s, y)) = history.back() {
        let (s, y) = (mask(s), mask(y));
        let (sy, yy) = (dot(&s, &y), dot(&y, &y));
        if sy > 1e-12 && yy > 0.0 {
            q.iter_mut().for_each(|v| *v *= sy / yy);
        }
    }
    for ((s, y), a) in history.iter().zip(alphas.iter().rev()) {
        let (s, y) = (mask(s), mask(y));
        let sy = dot(&s, &y);
        if sy <= 1e-12 {
            continue;
        }
        let b = dot(&y, &q) / sy;
        for (qi, si) in q.iter_mut().zip(&s) {
            *qi += (a - b) * si;
        }
    }
    mask(&q).into_iter().map(|v| -v).collect()
}

/// Number of local maxima of the policy's density (on a grid fine enough for its narrowest
/// component), counting only components heavier than [`NEGLIGIBLE_WEIGHT`].
pub fn modes(components: &[(f64, f64, f64)]) -> usize {
    let live: Vec<(f64, f64, f64)> = components
        .iter()
        .copied()
        .filter(|(w, _, _)| *w > NEGLIGIBLE_WEIGHT)
        .collect();
    let lo = live
        .iter()
        .map(|(_, m, s)| m - 4.0 * s)
        .fold(f64::INFINITY, f64::min);
    let hi = live
        .iter()
        .map(|(_, m, s)| m + 4.0 * s)
        .fold(f64::NEG_INFINITY, f64::max);
    let narrowest = live
        .iter()
        .map(|(_, _, s)| *s)
        .fold(f64::INFINITY, f64::min);
    let steps = (((hi - lo) / (narrowest / 50.0)).ceil() as usize).clamp(100, 2_000_000);
    let density = |a: f64| -> f64 {
        live.iter()
            .map(|&(w, m, s)| {
                let z = (a - m) / s;
                w * (-0.5 * z * z).exp() / s
            })
            .sum()
    };
    let mut count = 0;
    let (mut before, mut here) = (density(lo), density(lo + (hi - lo) / steps as f64));
    for i in 2..=steps {
        let after = density(lo + (hi - lo) * i as f64 / steps as f64);
        if here > before && here >= after {
            count += 1;
        }
        (before, here) = (here, after);
    }
    count
}

/// One maximisation from a random start, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub outcome: Outcome,
    pub expected_reward: f64,
    /// Converged, projected gradient ≤ [`STATIONARY_GRADIENT`], and no (non-negligible)
    /// std within [`DIVERGENCE_MARGIN`] of its upper bound.
    pub stationary: bool,
    pub modes: usize,
}

/// Every run of one family at one α: `starts` random starts from `seed`.
pub fn study<R: GaussianExpectation>(
    family: Family,
    alpha: f64,
    reward: &R,
    starts: usize,
    seed: u64,
) -> Vec<Run> {
    let objective = Objective::new(family, alpha, reward);
    let bounds = family.bounds();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let settings = Settings::default();
    (0..starts)
        .map(|_| {
            let start = family.random_start(&mut rng);
            let outcome = maximise(|t| objective.value(t), &bounds, &start, &settings);
            let components = family.components(&outcome.theta);
            let diverged = components.iter().any(|&(w, _, s)| {
                w > NEGLIGIBLE_WEIGHT && s.ln() >= LOG_STD_BOUNDS.1 - DIVERGENCE_MARGIN
            });
            Run {
                expected_reward: objective.expected_reward(&outcome.theta),
                stationary: outcome.converged
                    && outcome.projected_gradient <= STATIONARY_GRADIENT
                    && !diverged,
                modes: modes(&components),
                outcome,
            }
        })
        .collect()
}

/// The per-(α, family) summary written to the CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub family: Family,
    pub alpha: f64,
    pub starts: usize,
    pub stationary: usize,
    /// The best stationary point (highest J), if any.
    pub best: Option<Run>,
    /// Share of stationary points whose density has two modes (NaN without any).
    pub bimodal_fraction: f64,
}

pub fn summarise(family: Family, alpha: f64, runs: &[Run]) -> Summary {
    let stationary: Vec<&Run> = runs.iter().filter(|r| r.stationary).collect();
    let best = stationary
        .iter()
        .max_by(|a, b| a.outcome.value.total_cmp(&b.outcome.value))
        .map(|r| (*r).clone());
    let bimodal = stationary.iter().filter(|r| r.modes >= 2).count();
    Summary {
        family,
        alpha,
        starts: runs.len(),
        stationary: stationary.len(),
        best,
        bimodal_fraction: if stationary.is_empty() {
            f64::NAN
        } else {
            bimodal as f64 / stationary.len() as f64
        },
    }
}

/// CSV header of [`Summary::csv_row`].
pub const CSV_HEADER: &str = "policy,alpha,starts,stationary_points,best_objective,best_expected_reward,best_mean1,best_mean2,best_std1,best_std2,best_weight1,bimodal_fraction";

impl Summary {
    pub fn csv_row(&self) -> String {
        let best = self.best.as_ref().map(|r| {
            let c = self.family.components(&r.outcome.theta);
            let get = |i: usize, f: fn(&(f64, f64, f64)) -> f64| {
                c.get(i).map_or(String::new(), |x| format!("{:.6}", f(x)))
            };
            format!(
                "{:.6},{:.6},{},{},{},{},{}",
                r.outcome.value,
                r.expected_reward,
                get(0, |x| x.1),
                get(1, |x| x.1),
                get(0, |x| x.2),
                get(1, |x| x.2),
                get(0, |x| x.0),
            )
        });
        format!(
            "{},{},{},{},{},{}",
            self.family.name(),
            self.alpha,
            self.starts,
            self.stationary,
            best.unwrap_or_else(|| ",,,,,,".into()),
            if self.bimodal_fraction.is_nan() {
                String::new()
            } else {
                format!("{:.3}", self.bimodal_fraction)
            }
        )
    }
}

/// Runs the whole study (both families, every α) on `jobs` threads and writes
/// `dir/stationary.csv` and the three-panel figure `dir/stationary.{png,svg}`; `progress`
/// gets one line per α as it finishes. The results do not depend on `jobs`.
pub fn run_study(
    alphas: &[f64],
    starts: usize,
    seed: u64,
    jobs: usize,
    dir: &std::path::Path,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Vec<Summary>> {
    use anyhow::Context;
    let reward = crate::envs::Bandit::bimodal();
    let mut rows: Vec<Option<[Summary; 2]>> = vec![None; alphas.len()];
    let mut done = 0;
    crate::experiments::workers::for_each(
        alphas,
        jobs,
        |&alpha| {
            [Family::Gaussian, Family::Mixture].map(|family| {
                // Each (α, family) has its own stream: any subset of α reproduces its rows.
                let stream = seed ^ alpha.to_bits().rotate_left(17) ^ family as u64;
                summarise(
                    family,
                    alpha,
                    &study(family, alpha, &reward, starts, stream),
                )
            })
        },
        |i, [g, m]| {
            done += 1;
            progress(&format!(
                "[{done}/{}] alpha {}: stationary points gaussian {}/{starts}, mixture {}/{starts} ({} bimodal)",
                alphas.len(),
                alphas[i],
                g.stationary,
                m.stationary,
                if m.bimodal_fraction.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.0} %", 100.0 * m.bimodal_fraction)
                }
            ));
            rows[i] = Some([g, m]);
        },
    );
    let summaries: Vec<Summary> = rows.into_iter().flatten().flatten().collect();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut csv = format!("{CSV_HEADER}\n");
    for s in &summaries {
        csv.push_str(&s.csv_row());
        csv.push('\n');
    }
    let path = dir.join("stationary.csv");
    std::fs::write(&path, csv).with_context(|| format!("cannot write {}", path.display()))?;
    figure(&summaries, starts, &dir.join("stationary"))?;
    Ok(summaries)
}

/// The three panels of the paper's Figure 1: stationary points found, expected reward of
/// the best one, and the share of the mixture's stationary points that are bimodal.
pub fn figure(
    summaries: &[Summary],
    starts: usize,
    stem: &std::path::Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use crate::experiments::plot::{Panel, Series};
    let series = |family: Family, y: &dyn Fn(&Summary) -> f64| Series {
        label: match family {
            Family::Gaussian => "Gaussian".into(),
            Family::Mixture => "2-component mixture".into(),
        },
        points: summaries
            .iter()
            .filter(|s| s.family == family)
            .map(|s| (s.alpha, y(s)))
            .filter(|p| p.1.is_finite())
            .collect(),
        markers: true,
        colour: Some(family as usize),
        ..Series::default()
    };
    let (lo, hi) = summaries
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.alpha), hi.max(s.alpha))
        });
    let pad = 0.05 * (hi - lo).max(0.1);
    let x_range = Some((lo - pad, hi + pad));
    let found = |s: &Summary| s.stationary as f64;
    let reward = |s: &Summary| s.best.as_ref().map_or(f64::NAN, |r| r.expected_reward);
    let bimodal = |s: &Summary| 100.0 * s.bimodal_fraction;
    let panels = [
        Panel {
            title: format!("Stationary points found (of {starts} starts)"),
            x_label: "entropy scale α".into(),
            y_label: "runs ending at a stationary point".into(),
            series: vec![
                series(Family::Gaussian, &found),
                series(Family::Mixture, &found),
            ],
            x_range,
            y_range: Some((0.0, starts as f64 * 1.05)),
            legend_below: false,
        },
        Panel {
            title: "Best stationary point".into(),
            x_label: "entropy scale α".into(),
            y_label: "expected reward E[r(a)] (max 1)".into(),
            series: vec![
                series(Family::Gaussian, &reward),
                series(Family::Mixture, &reward),
            ],
            x_range,
            y_range: Some((0.0, 1.05)),
            legend_below: true,
        },
        Panel {
            title: "Bimodal stationary points (mixture)".into(),
            x_label: "entropy scale α".into(),
            y_label: "share of stationary points (%)".into(),
            series: vec![series(Family::Mixture, &bimodal)],
            x_range,
            y_range: Some((0.0, 105.0)),
            legend_below: true,
        },
    ];
    crate::experiments::plot::save(stem, &panels, 460, 380)
}
