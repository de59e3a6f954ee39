//! The rows of `grad-variance.csv`: one estimator at one subject, and how they are written.

use super::cases::Case;
use super::moments::Comparison;
use anyhow::{Context, Result};
use std::path::Path;

/// One row of `grad-variance.csv`: one estimator at one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub setting: String,
    pub point: String,
    pub alpha: f64,
    pub case: Case,
    pub components: usize,
    /// The policy's pre-squash standard deviation, Σ_k w_k σ_k averaged over the states.
    pub policy_std: f64,
    pub draws: usize,
    pub batch: usize,
    /// E‖g − E g‖² of one draw (a mean over the batch of states).
    pub total_variance: f64,
    /// Against the exact gradient (the draws, gradients of a loss, against −∇J); None where
    /// the action is not one-dimensional.
    pub exact: Option<Comparison>,
    /// ‖∇J − ∇J′‖ between the quadrature rule and its refinement (∇J′ is the one compared).
    pub quadrature_error: Option<f64>,
}

/// Header of `grad-variance.csv`.
pub const CSV_HEADER: [&str; 15] = [
    "setting",
    "point",
    "alpha",
    "estimator",
    "components",
    "policy_std",
    "draws",
    "batch",
    "grad_norm",
    "total_variance",
    "relative_variance",
    "bias",
    "bias_se",
    "cosine",
    "quadrature_error",
];

/// What the bias columns say where there is no exact gradient to compare with.
pub const NO_EXACT: &str = "no exact gradient";

impl Row {
    /// The row's fields under [`CSV_HEADER`].
    pub fn record(&self) -> Vec<String> {
        let num = |x: f64| format!("{x:.6e}");
        let mut fields = vec![
            self.setting.clone(),
            self.point.clone(),
            self.alpha.to_string(),
            self.case.name().to_string(),
            self.components.to_string(),
            format!("{:.4}", self.policy_std),
            self.draws.to_string(),
            self.batch.to_string(),
        ];
        let exact = self.exact.as_ref();
        fields.push(exact.map_or(String::new(), |c| num(c.grad_norm)));
        fields.push(num(self.total_variance));
        fields.push(exact.map_or(String::new(), |c| num(c.relative_variance)));
        fields.push(exact.map_or(NO_EXACT.into(), |c| num(c.bias)));
        fields.push(exact.map_or(NO_EXACT.into(), |c| num(c.bias_se)));
        fields.push(exact.map_or(String::new(), |c| format!("{:.6}", c.cosine)));
        fields.push(self.quadrature_error.map_or(String::new(), num));
        fields
    }
}

pub(super) fn write_csv(rows: &[Row], path: &Path) -> Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    writer.write_record(CSV_HEADER)?;
    for row in rows {
        writer.write_record(row.record())?;
    }
    writer
        .flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
