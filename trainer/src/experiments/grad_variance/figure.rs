//! The figure of `mixsac grad-variance`: per setting (numbered in table order) and
//! estimator, the relative variance (log scale) and the distance of the mean loss gradient
//! from −∇J in noise units (linear scale, from 0). Rows without an exact gradient are in the
//! table only.

use super::cases::Case;
use super::Row;
use crate::experiments::plot::{save, Panel, Series};
use std::path::{Path, PathBuf};

/// Writes `stem.png` and `stem.svg`.
pub fn draw(rows: &[Row], stem: &Path) -> anyhow::Result<Vec<PathBuf>> {
    // Settings (setting, point, α) numbered 1, 2, … in the order of the table.
    let key = |row: &Row| (row.setting.clone(), row.point.clone(), row.alpha.to_bits());
    let mut settings = Vec::new();
    for row in rows {
        if !settings.contains(&key(row)) {
            settings.push(key(row));
        }
    }
    let number = |row: &Row| settings.iter().position(|s| *s == key(row)).unwrap_or(0) + 1;
    let series = |y: &dyn Fn(&Row) -> Option<f64>| -> Vec<Series> {
        Case::ALL
            .iter()
            .enumerate()
            .map(|(i, &case)| Series {
                label: case.name().to_string(),
                // Side by side within a setting, so that equal values stay visible.
                points: rows
                    .iter()
                    .filter(|r| r.case == case)
                    .filter_map(|r| {
                        let x = number(r) as f64 + 0.1 * (i as f64 - 2.5);
                        y(r).filter(|v| v.is_finite()).map(|v| (x, v))
                    })
                    .collect(),
                markers_only: true,
                colour: Some(i),
                ..Series::default()
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let x_range = Some((0.4, settings.len() as f64 + 0.6));
    let variance = series(&|r| r.exact.map(|c| c.relative_variance.log10()));
    let distance = series(&|r| r.exact.map(|c| c.bias / c.bias_se));
    let panels = [
        Panel {
            title: "Gradient variance at fixed parameters".into(),
            x_label: "setting (numbered as in the table)".into(),
            y_label: "log10 of total variance / |∇J|²".into(),
            y_range: Some(headroom(&variance, None)),
            series: variance,
            x_range,
            legend_below: false,
        },
        Panel {
            title: "Distance of the mean from −∇J".into(),
            x_label: "setting (numbered as in the table)".into(),
            y_label: "|mean + ∇J| / its noise level √(variance / draws)".into(),
            y_range: Some(headroom(&distance, Some(0.0))),
            series: distance,
            x_range,
            legend_below: false,
        },
    ];
    save(stem, &panels, 620, 440)
}

/// The data's y range (from `floor` if given) with 60 % more at the top for the legend.
fn headroom(series: &[Series], floor: Option<f64>) -> (f64, f64) {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    let lo = floor.unwrap_or(lo - 0.05 * (hi - lo).max(0.1));
    (lo, hi + 0.6 * (hi - lo).max(0.1))
}
