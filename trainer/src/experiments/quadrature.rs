//! Gauss–Legendre quadrature, shared by the stationary study ([`super::stationary`]) and the
//! exact gradient of the estimator-variance study ([`super::grad_variance::exact`]).

/// Gauss–Legendre nodes and weights on [−1, 1], by Newton's method on the Legendre
/// recurrence.
pub(crate) fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut nodes = vec![(0.0, 0.0); n];
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            // p1 = P_n(x), p2 = P_{n−1}(x)
            let (mut p1, mut p2) = (1.0, 0.0);
            for j in 1..=n {
                let p3 = p2;
                p2 = p1;
                p1 = ((2 * j - 1) as f64 * x * p2 - (j - 1) as f64 * p3) / j as f64;
            }
            derivative = n as f64 * (x * p1 - p2) / (x * x - 1.0);
            let step = p1 / derivative;
            x -= step;
            if step.abs() <= 1e-15 {
                break;
            }
        }
        let weight = 2.0 / ((1.0 - x * x) * derivative * derivative);
        nodes[i] = (-x, weight);
        nodes[n - 1 - i] = (x, weight);
    }
    nodes
}
