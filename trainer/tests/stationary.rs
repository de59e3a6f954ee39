//! The stationary-point study's machinery (not the science): quadrature, the exact
//! objective, the projected quasi-Newton maximiser against closed-form optima, the
//! divergence and bimodality judgements, and the command's files.

mod common;
use trainer::envs::Bandit;
use trainer::stationary::{
    maximise, modes, study, Family, GaussianExpectation, Objective, Settings, LOG_STD_BOUNDS,
};

/// r(a) = −(a − m)²: E_N(μ,σ)[r] = −((μ − m)² + σ²). With J = E[r] + α H, the optimal
/// Gaussian is μ* = m, σ* = √(α/2), and J* = −α/2 + α(½ ln(2πe) + ln σ*).
struct Quadratic {
    m: f64,
}

impl GaussianExpectation for Quadratic {
    fn gaussian_expectation(&self, mean: f64, std: f64) -> f64 {
        -((mean - self.m).powi(2) + std * std)
    }
}

fn gaussian_entropy(std: f64) -> f64 {
    0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln() + std.ln()
}

#[test]
fn entropy_is_exact_for_a_gaussian_and_matches_brute_force_for_a_mixture() {
    let reward = Quadratic { m: 0.0 };
    let g = Objective::new(Family::Gaussian, 1.0, &reward);
    for (mu, log_std) in [(0.0, 0.0), (1.3, -2.5), (-4.0, 2.0)] {
        let h = g.entropy(&[mu, log_std]);
        assert!(
            (h - gaussian_entropy(f64::exp(log_std))).abs() < 1e-12,
            "{h}"
        );
    }
    // Mixture: −∫ π log π by the trapezoid rule on a fine grid.
    let m = Objective::new(Family::Mixture, 1.0, &reward);
    for theta in [
        [-1.0, 1.0, -1.0, -0.5, 0.3],
        [0.0, 0.2, -2.0, 0.5, 0.7],
        [-1.0, 1.0, -1.2, -1.2, 0.5],
    ] {
        let components = Family::Mixture.components(&theta);
        let density = |a: f64| -> f64 {
            components
                .iter()
                .map(|&(w, mu, s)| {
                    w * (-0.5 * ((a - mu) / s).powi(2)).exp()
                        / (s * (2.0 * std::f64::consts::PI).sqrt())
                })
                .sum()
        };
        let (lo, hi, n) = (-15.0, 15.0, 600_000);
        let step = (hi - lo) / n as f64;
        let brute: f64 = (0..=n)
            .map(|i| {
                let p = density(lo + i as f64 * step);
                let f = if p > 0.0 { -p * p.ln() } else { 0.0 };
                if i == 0 || i == n {
                    0.5 * f
                } else {
                    f
                }
            })
            .sum::<f64>()
            * step;
        let h = m.entropy(&theta);
        assert!(
            (h - brute).abs() < 1e-7,
            "theta {theta:?}: quadrature {h}, brute force {brute}"
        );
    }
}

#[test]
fn bandit_expectation_matches_numerical_integration() {
    let bandit = Bandit::bimodal();
    for (mu, std) in [(0.0, 1.0), (-1.0, 0.2), (2.0, 3.0)] {
        let (lo, hi, n) = (mu - 12.0 * std, mu + 12.0 * std, 200_000);
        let step = (hi - lo) / n as f64;
        // The closed form is for the unclipped reward: integrate c Σ N(a; m_i, s_i) itself.
        let unclipped = |a: f64| -> f64 {
            let scale = bandit.reward(0.999)
                / bandit
                    .components()
                    .map(|(m, s)| pdf(0.999, m, s))
                    .sum::<f64>();
            scale * bandit.components().map(|(m, s)| pdf(a, m, s)).sum::<f64>()
        };
        let numeric: f64 = (0..=n)
            .map(|i| {
                let a = lo + i as f64 * step;
                let f = pdf(a, mu, std) * unclipped(a);
                if i == 0 || i == n {
                    0.5 * f
                } else {
                    f
                }
            })
            .sum::<f64>()
            * step;
        let exact = bandit.gaussian_expectation(mu, std);
        assert!(
            (exact - numeric).abs() < 1e-9,
            "{mu} {std}: {exact} vs {numeric}"
        );
    }
}

fn pdf(a: f64, m: f64, s: f64) -> f64 {
    (-0.5 * ((a - m) / s).powi(2)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
}

#[test]
fn the_maximiser_recovers_the_closed_form_optimal_gaussian() {
    for (alpha, m) in [(0.1, 0.7), (0.5, -1.5), (2.0, 0.0)] {
        let reward = Quadratic { m };
        let runs = study(Family::Gaussian, alpha, &reward, 20, 11);
        let sigma = (alpha / 2.0_f64).sqrt();
        let best = -alpha / 2.0 + alpha * gaussian_entropy(sigma);
        for run in &runs {
            assert!(run.stationary, "{run:?}");
            let (mu, log_std) = (run.outcome.theta[0], run.outcome.theta[1]);
            assert!(
                (mu - m).abs() < 1e-4,
                "alpha {alpha}: mean {mu}, expected {m}"
            );
            assert!(
                (log_std.exp() - sigma).abs() < 1e-4,
                "alpha {alpha}: std {}, expected {sigma}",
                log_std.exp()
            );
            assert!(
                (run.outcome.value - best).abs() < 1e-8,
                "{} vs {best}",
                run.outcome.value
            );
        }
    }
}

#[test]
fn the_maximiser_stops_at_active_bounds_and_flags_divergence() {
    // f(x, y) = x − (y − 0.3)² on [0, 1]²: the optimum (1, 0.3) has x at its bound.
    let out = maximise(
        |t| t[0] - (t[1] - 0.3).powi(2),
        &[(0.0, 1.0), (0.0, 1.0)],
        &[0.2, 0.9],
        &Settings::default(),
    );
    assert!(out.converged);
    assert_eq!(out.theta[0], 1.0);
    assert!((out.theta[1] - 0.3).abs() < 1e-5, "{out:?}");

    // A flat reward: J = α H grows without bound in σ, so every run diverges to the bound.
    struct Flat;
    impl GaussianExpectation for Flat {
        fn gaussian_expectation(&self, _: f64, _: f64) -> f64 {
            0.0
        }
    }
    for run in study(Family::Gaussian, 0.3, &Flat, 10, 2) {
        assert!(!run.stationary, "{run:?}");
        assert!(run.outcome.theta[1] >= LOG_STD_BOUNDS.1 - 1e-9, "{run:?}");
    }
}

#[test]
fn modes_are_counted_from_the_density() {
    assert_eq!(modes(&[(0.5, -1.0, 0.3), (0.5, 1.0, 0.3)]), 2);
    // Close components merge into one mode (separation < 2σ for equal weights).
    assert_eq!(modes(&[(0.5, -0.2, 0.3), (0.5, 0.2, 0.3)]), 1);
    // A negligible component does not count.
    assert_eq!(modes(&[(0.9995, -1.0, 0.3), (0.0005, 1.0, 0.3)]), 1);
    assert_eq!(modes(&[(1.0, 0.0, 1.0)]), 1);
}

#[test]
fn the_command_writes_the_table_and_the_figure() {
    let dir = common::temp_dir("stationary");
    let run = |jobs: &str, dir: &std::path::Path| {
        let dir_arg = dir.to_str().unwrap();
        common::mixsac_ok(&[
            "stationary",
            "--starts",
            "4",
            "--alphas",
            "0.1,0.4",
            "--jobs",
            jobs,
            "--out",
            dir_arg,
        ]);
        std::fs::read_to_string(dir.join("stationary.csv")).unwrap()
    };
    let csv = run("2", &dir);
    assert_eq!(
        csv,
        run("1", &dir.join("one-job")),
        "results depend on --jobs"
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("policy,alpha,starts,stationary_points"));
    assert!(lines[1].starts_with("gaussian,0.1,4,"));
    assert!(lines[4].starts_with("mixture,0.4,4,"));
    for ext in ["png", "svg"] {
        let bytes = std::fs::read(dir.join(format!("stationary.{ext}"))).unwrap();
        assert!(
            bytes.len() > 10_000,
            "stationary.{ext} has only {} bytes",
            bytes.len()
        );
    }
    let png = std::fs::read(dir.join("stationary.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(dir.join("stationary.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("entropy scale"));

    let bad = common::mixsac(&[
        "stationary",
        "--starts",
        "0",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--starts must be at least 1"));
}
