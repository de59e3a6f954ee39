//! Moments of many gradient draws, and how their mean compares with the exact gradient.

/// Running mean and sum of squared deviations of every coordinate (Welford's update, in
/// f64: stable however many draws).
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    draws: usize,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Moments {
    pub fn new(dim: usize) -> Moments {
        Moments {
            draws: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    pub fn add(&mut self, g: &[f64]) {
        self.draws += 1;
        let n = self.draws as f64;
        for ((mean, m2), &x) in self.mean.iter_mut().zip(&mut self.m2).zip(g) {
            let delta = x - *mean;
            *mean += delta / n;
            *m2 += delta * (x - *mean);
        }
    }

    pub fn draws(&self) -> usize {
        self.draws
    }

    /// ḡ, the mean draw.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// E‖g − E g‖², the trace of the covariance of one draw (unbiased estimate; NaN below
    /// two draws).
    pub fn total_variance(&self) -> f64 {
        if self.draws < 2 {
            return f64::NAN;
        }
        self.m2.iter().sum::<f64>() / (self.draws - 1) as f64
    }

    /// √(tr Cov / N): the root-mean-square of ‖ḡ − E g‖, the distance by which the mean of
    /// N draws misses the estimator's expectation from noise alone. A bias is resolved
    /// when the distance of ḡ from the gradient it estimates is several times this.
    pub fn mean_standard_error(&self) -> f64 {
        (self.total_variance() / self.draws as f64).sqrt()
    }

    /// The comparison of the mean draw with `exact`, the gradient it estimates (for the
    /// actor losses of `grad_variance`, −∇J: a loss's gradient estimates minus the gradient
    /// of the objective J).
    pub fn compare(&self, exact: &[f64]) -> Comparison {
        let dot = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
        let norm = dot(exact, exact).sqrt();
        let miss: Vec<f64> = self.mean.iter().zip(exact).map(|(m, e)| m - e).collect();
        Comparison {
            grad_norm: norm,
            relative_variance: self.total_variance() / (norm * norm),
            bias: dot(&miss, &miss).sqrt(),
            bias_se: self.mean_standard_error(),
            cosine: dot(&self.mean, exact) / (dot(&self.mean, &self.mean).sqrt() * norm),
        }
    }
}

/// What the table reports about an estimator against the exact gradient `e` it estimates
/// (−∇J for the actor losses; see [`Moments::compare`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// ‖e‖ = ‖∇J‖.
    pub grad_norm: f64,
    /// tr Cov / ‖e‖²: the variance of one draw in units of the squared signal.
    pub relative_variance: f64,
    /// ‖ḡ − e‖ (= ‖ḡ + ∇J‖ for a loss): the estimator's bias plus the noise of a mean of
    /// N draws.
    pub bias: f64,
    /// [`Moments::mean_standard_error`]: what `bias` is from noise alone.
    pub bias_se: f64,
    /// cos(ḡ, e) (= cos(ḡ, −∇J) for a loss): 1 when the mean points where it should.
    pub cosine: f64,
}
