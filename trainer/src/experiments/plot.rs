//! Figures as PNG and SVG through plotters: rows of panels, each with line series and
//! optional shaded bands (confidence intervals). Text is drawn with the DejaVu Sans font
//! shipped in `trainer/assets/` (registered with plotters' ab_glyph backend), so figures look
//! the same on every machine and no system fonts are needed.

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";

/// Colours of successive series (colour-blind-safe Okabe–Ito palette).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// One line, with an optional band (x, low, high) drawn under it.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    /// Draw markers at the points (for sparse x values such as α).
    pub markers: bool,
    /// Palette index (default: the series' position), to keep a colour per method across panels.
    pub colour: Option<usize>,
    /// A thin, translucent line (for many overlaid runs).
    pub thin: bool,
    /// Markers only, no line joining them (points at unrelated x, such as numbered settings).
    pub markers_only: bool,
}

/// One chart of a figure.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    /// Axis labels, with units.
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Fixed x and y ranges; otherwise the data's, padded.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Put the legend in the lower right corner instead of the upper right.
    pub legend_below: bool,
}

/// Tick labels without float noise: at most 3 decimals, trailing zeros dropped.
fn tick(v: &f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to be valid; registration cannot fail on it.
        let _ = plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT);
    });
}

/// Writes `stem.png` and `stem.svg` with the panels side by side; returns both paths.
pub fn save(stem: &Path, panels: &[Panel], panel_width: u32, height: u32) -> Result<Vec<PathBuf>> {
    register_font();
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let size = (panel_width * panels.len().max(1) as u32, height);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw(&root, panels).with_context(|| format!("cannot draw {}", png.display()))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        draw(&root, panels).with_context(|| format!("cannot draw {}", svg.display()))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", svg.display()))?;
    }
    Ok(vec![png, svg])
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("{e:?}");
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(&areas) {
        let (x0, x1, y0, y1) = extent(panel);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, (FONT_NAME, 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(62)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .label_style((FONT_NAME, 13))
            .axis_desc_style((FONT_NAME, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(err)?;
        for (i, series) in panel.series.iter().enumerate() {
            let colour = PALETTE[series.colour.unwrap_or(i) % PALETTE.len()];
            if !series.band.is_empty() {
                let mut outline: Vec<(f64, f64)> =
                    series.band.iter().map(|&(x, lo, _)| (x, lo)).collect();
                outline.extend(series.band.iter().rev().map(|&(x, _, hi)| (x, hi)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        colour.mix(0.2).filled(),
                    )))
                    .map_err(err)?;
            }
            let style = if series.thin {
                colour.mix(0.45).stroke_width(1)
            } else {
                colour.stroke_width(2)
            };
            if !series.markers_only {
                let line = chart
                    .draw_series(LineSeries::new(series.points.clone(), style))
                    .map_err(err)?;
                if !series.label.is_empty() {
                    line.label(series.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
                }
            }
            if series.markers || series.markers_only {
                let dots = chart
                    .draw_series(
                        series
                            .points
                            .iter()
                            .map(|&p| Circle::new(p, 3, colour.filled())),
                    )
                    .map_err(err)?;
                if series.markers_only && !series.label.is_empty() {
                    dots.label(series.label.clone())
                        .legend(move |(x, y)| Circle::new((x + 9, y), 3, colour.filled()));
                }
            }
        }
        if panel.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .label_font((FONT_NAME, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(if panel.legend_below {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .draw()
                .map_err(err)?;
        }
    }
    Ok(())
}

/// The axes' ranges: the data's (lines and bands), padded by 5 %; the y range may be fixed.
fn extent(panel: &Panel) -> (f64, f64, f64, f64) {
    let xs = panel.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.0)
            .chain(s.band.iter().map(|b| b.0))
    });
    let ys = panel.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.1)
            .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
    });
    let range = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi {
            (0.0, 1.0)
        } else if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        }
    };
    let (x0, x1) = panel.x_range.unwrap_or_else(|| range(&mut xs.into_iter()));
    let (y0, y1) = panel.y_range.unwrap_or_else(|| range(&mut ys.into_iter()));
    (x0, x1, y0, y1)
}
