//! The efficiency breakdown as a heat map, as POP reports draw it: for each curve, core counts
//! across and the factors down (efficiency, load balance, communication, its serialisation and
//! transfer parts where known, computation), each cell its value on green above 0.8, amber
//! above 0.6, red below.

use plotters::coord::Shift;
use plotters::prelude::*;

use martelli_results::{Breakdown, FACTORS, Point, Results, band, factor_title};

use crate::SIZE;

/// Most curves drawn (one panel each); the rest are in results.json and the report's table.
const MOST_PANELS: usize = 6;

/// One curve's points with a breakdown, in core order.
struct Panel<'a> {
    title: String,
    points: Vec<(&'a Point, Breakdown)>,
}

fn panels(runs: &[Results]) -> Vec<Panel<'_>> {
    let mut out: Vec<Panel<'_>> = Vec::new();
    for run in runs {
        for p in &run.points {
            let Some(b) = p.breakdown else { continue };
            // A prediction is one curve across the tiers it crosses, as in the charts.
            let title = if p.predicted {
                p.series.clone()
            } else {
                format!("{} / {}", p.series, p.tier.name())
            };
            match out.iter_mut().find(|c| c.title == title) {
                Some(c) => c.points.push((p, b)),
                None => out.push(Panel {
                    title,
                    points: vec![(p, b)],
                }),
            }
        }
    }
    for c in &mut out {
        c.points.sort_by_key(|(p, _)| p.cores);
    }
    out
}

/// Whether any run has a point with a breakdown to draw.
pub(crate) fn has_breakdown(runs: &[Results]) -> bool {
    runs.iter()
        .any(|r| r.points.iter().any(|p| p.breakdown.is_some()))
}

/// The rows of a panel: efficiency, then each factor some point of it has.
fn rows(panel: &Panel<'_>) -> Vec<&'static str> {
    let mut rows = vec!["efficiency"];
    rows.extend(
        FACTORS
            .iter()
            .copied()
            .filter(|f| panel.points.iter().any(|(_, b)| b.factor(f).is_some())),
    );
    rows
}

/// Height of a row at its largest, pixels.
const ROW: i32 = 50;
/// Room above the first panel and below the last, pixels.
const TOP: i32 = 70;
const BOTTOM: i32 = 50;

/// The picture's size: [`SIZE`]'s width, and as tall as its rows need (at most [`SIZE`]'s).
fn size(runs: &[Results]) -> (u32, u32) {
    let all = panels(runs);
    let lines: usize = all.iter().take(MOST_PANELS).map(|p| rows(p).len() + 2).sum();
    let wanted = TOP + BOTTOM + lines as i32 * ROW;
    (SIZE.0, (wanted as u32).clamp(300, SIZE.1))
}

fn colour(value: f64) -> RGBColor {
    match band(value) {
        "good" => RGBColor(92, 184, 92),
        "fair" => RGBColor(240, 173, 78),
        _ => RGBColor(217, 83, 79),
    }
}

/// The heat map of some runs, as a [`crate::Picture`], as tall as its rows need.
pub(crate) struct HeatMap<'a>(pub(crate) &'a [Results]);

impl crate::Picture for HeatMap<'_> {
    fn size(&self) -> (u32, u32) {
        size(self.0)
    }

    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let all = panels(self.0);
        if all.is_empty() {
            return Err("no point with a breakdown to draw".into());
        }
        let shown = &all[..all.len().min(MOST_PANELS)];
        root.draw(&Text::new(
            "where the efficiency goes: efficiency = load balance x communication x computation",
            (40, 18),
            ("sans-serif", 30),
        ))
        .map_err(err)?;
        // Each panel: a title line, a header of core counts, then a row per factor.
        let lines: usize = shown.iter().map(|p| rows(p).len() + 2).sum();
        let (_, height) = root.dim_in_pixel();
        let top = TOP;
        let footer = if all.len() > shown.len() { 40 } else { 0 };
        let row_h = ((height as i32 - top - BOTTOM - footer) / lines.max(1) as i32).clamp(18, ROW);
        let label_w = 260;
        let mut y = top;
        let font = |size: i32| ("sans-serif", size.clamp(12, 26));
        for panel in shown {
            root.draw(&Text::new(
                panel.title.clone(),
                (40, y + row_h / 4),
                font(row_h * 2 / 3),
            ))
            .map_err(err)?;
            y += row_h;
            let columns = panel.points.len() as i32;
            let cell_w = ((SIZE.0 as i32 - label_w - 60) / columns.max(1)).min(200);
            for (i, (p, _)) in panel.points.iter().enumerate() {
                let x = label_w + i as i32 * cell_w;
                root.draw(&Text::new(
                    p.cores.to_string(),
                    (x + 8, y + row_h / 4),
                    font(row_h / 2),
                ))
                .map_err(err)?;
            }
            y += row_h;
            for row in rows(panel) {
                root.draw(&Text::new(
                    if row == "efficiency" {
                        "efficiency"
                    } else {
                        factor_title(row)
                    },
                    (60, y + row_h / 4),
                    font(row_h / 2),
                ))
                .map_err(err)?;
                for (i, (p, b)) in panel.points.iter().enumerate() {
                    let value = if row == "efficiency" {
                        Some(p.efficiency)
                    } else {
                        b.factor(row)
                    };
                    let Some(value) = value else { continue };
                    let x = label_w + i as i32 * cell_w;
                    root.draw(&Rectangle::new(
                        [(x, y), (x + cell_w - 4, y + row_h - 4)],
                        colour(value).filled(),
                    ))
                    .map_err(err)?;
                    root.draw(&Text::new(
                        format!("{value:.2}"),
                        (x + 10, y + row_h / 5),
                        font(row_h / 2),
                    ))
                    .map_err(err)?;
                }
                y += row_h;
            }
        }
        if all.len() > shown.len() {
            root.draw(&Text::new(
                format!(
                    "{} more curves: see the breakdown table in report.html or results.json",
                    all.len() - shown.len()
                ),
                (40, height as i32 - BOTTOM - footer / 2),
                ("sans-serif", 22),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// A plotting error, as the picture's error.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
