//! The figure of `mixsac grad-variance`: per setting (numbered in table order) and
//! estimator, the relative variance and the distance of the mean from ∇J in noise units,
//! both on log scales. Rows without an exact gradient are in the table only.

use super::cases::Case;
use super::Row;
use crate::experiments::plot::{save, Panel, Series};
use std::path::{Path, PathBuf};

/// Writes `stem.png` and `stem.svg`.
pub fn draw(rows: &[Row], stem: &Path) -> anyhow::Result<Vec<PathBuf>> {
    // Settings (setting, point) numbered 1, 2, … in the order of the table.
    let mut settings: Vec<(&str, &str)> = Vec::new();
    for row in rows {
        let key = (row.setting.as_str(), row.point.as_str());
        if !settings.contains(&key) {
            settings.push(key);
        }
    }
    let number = |row: &Row| {
        let key = (row.setting.as_str(), row.point.as_str());
        settings.iter().position(|s| *s == key).unwrap_or(0) + 1
    };
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
    let panels = [
        Panel {
            title: "Gradient variance at fixed parameters".into(),
            x_label: "setting (numbered as in the table)".into(),
            y_label: "log10 of total variance / |∇J|²".into(),
            series: series(&|r| r.exact.map(|c| c.relative_variance.log10())),
            x_range,
            y_range: None,
            legend_below: false,
        },
        Panel {
            title: "Distance of the mean from ∇J".into(),
            x_label: "setting (numbered as in the table)".into(),
            y_label: "log10 of |mean − ∇J| / its noise level".into(),
            series: series(&|r| r.exact.map(|c| (c.bias / c.bias_se).log10())),
            x_range,
            y_range: None,
            legend_below: false,
        },
    ];
    save(stem, &panels, 620, 440)
}
