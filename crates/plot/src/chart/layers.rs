//! The layers of a metric chart, drawn in order: the tier bands behind, the ideal line, each
//! curve with its spread, the fitted laws, the legend.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::*;

/// A chart being drawn: its plotting area, its frame, and the legend entries its layers add.
pub(super) struct Canvas<'c, 'a, DB: DrawingBackend> {
    pub(super) chart: &'c mut Chart<'a, DB>,
    pub(super) frame: &'c Frame,
    pub(super) entries: Vec<Entry>,
}

/// A plotting error, as the chart's error.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl<DB: DrawingBackend> Canvas<'_, '_, DB>
where
    DB::ErrorType: 'static,
{
    /// The Martelli bands, the oversubscribed region, and where measurement ends.
    pub(super) fn backdrop(&mut self, runs: &[Results]) -> Result<(), String> {
        let Canvas { chart, frame: f, .. } = self;
        let (x, x_end, x_range, y_range, metric, max_cores) = (
            f.x,
            f.x_end,
            f.x_range.clone(),
            f.y_range.clone(),
            f.metric,
            f.max_cores,
        );
        // The three Martelli bands, shaded and labelled.
        for (lo, hi, fill, text) in BANDS {
            let (l, h) = (
                x.to(lo.max(if x.log { 0.7 } else { 0.5 })),
                x.to(hi.min(x_end + 0.5)).min(x_range.end),
            );
            if l >= h {
                continue;
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(l, y_range.start), (h, y_range.end)],
                    fill.filled(),
                )))
                .map_err(err)?;
            let top = y_range.end - (y_range.end - y_range.start) * 0.02;
            chart
                .draw_series(std::iter::once(Text::new(
                    text.to_string(),
                    (l + (h - l) * 0.03, top),
                    ("sans-serif", 24).into_font().color(&RGBColor(90, 90, 90)),
                )))
                .map_err(err)?;
        }
        // Past this machine's logical cores, measured compute cannot speed up: shaded and said.
        let over: Vec<&Results> = runs
            .iter()
            .filter(|r| r.points.iter().any(|p| p.oversubscribed))
            .collect();
        if let Some(r) = over.first() {
            let from = r.machine.logical_cores as f64 + if x.log { 0.0 } else { 0.5 };
            let (l, h) = (x.to(from), x_range.end);
            if l < h {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(l, y_range.start), (h, y_range.end)],
                        RGBColor(120, 120, 120).mix(0.12).filled(),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!(
                            "oversubscribed: past this machine's {} cores",
                            r.machine.logical_cores
                        ),
                        // Under the band labels, where speed-up and throughput leave room; near
                        // the bottom for latency, whose time to first result runs along the top.
                        (
                            l + (h - l) * 0.02,
                            if metric == Metric::Latency {
                                y_range.start + (y_range.end - y_range.start) * 0.12
                            } else {
                                y_range.end - (y_range.end - y_range.start) * 0.06
                            },
                        ),
                        ("sans-serif", 22).into_font().color(&RGBColor(80, 80, 80)),
                    )))
                    .map_err(err)?;
            }
        }
        // Where measurement ends and extrapolation begins.
        let edge = x.to(max_cores);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(edge, y_range.start), (edge, y_range.end)],
                RGBColor(150, 150, 150).stroke_width(1),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                "measured | extrapolated".to_string(),
                (edge, y_range.start + (y_range.end - y_range.start) * 0.03),
                ("sans-serif", 20).into_font().color(&RGBColor(110, 110, 110)),
            )))
            .map_err(err)?;

        Ok(())
    }

    /// The ideal line, where the metric has one.
    pub(super) fn ideal(&mut self) -> Result<(), String> {
        let Canvas {
            chart,
            frame: f,
            entries,
        } = self;
        let (x, y, grid, x_range, y_range, metric) =
            (f.x, f.y, &f.grid, f.x_range.clone(), f.y_range.clone(), f.metric);
        match metric {
            Metric::Speedup => {
                let ideal: Vec<(f64, f64)> = grid
                    .iter()
                    .map(|&n| (x.to(n), y.to(n)))
                    .filter(|&(_, v)| v <= y_range.end)
                    .collect();
                chart
                    .draw_series(LineSeries::new(ideal.clone(), BLACK.stroke_width(2)))
                    .map_err(err)?;
                entries.push(Entry {
                    label: "ideal (speed-up = cores)".into(),
                    style: BLACK.stroke_width(2),
                    dashed: false,
                });
            }
            Metric::Efficiency => {
                let ideal = vec![(x_range.start, 1.0), (x_range.end, 1.0)];
                chart
                    .draw_series(LineSeries::new(ideal, BLACK.stroke_width(2)))
                    .map_err(err)?;
                entries.push(Entry {
                    label: "ideal (efficiency 1)".into(),
                    style: BLACK.stroke_width(2),
                    dashed: false,
                });
            }
            _ => {}
        }

        Ok(())
    }

    /// A curve's lines (three for latency), error bars and points.
    pub(super) fn curve(&mut self, c: &Curve<'_>) -> Result<(), String> {
        let Canvas {
            chart,
            frame: f,
            entries,
        } = self;
        let (x, y, metric) = (f.x, f.y, f.metric);
        let color = c.color;
        let line_names: &[&str] = if metric == Metric::Latency {
            &["p50", "p99", "first result"]
        } else {
            &[""]
        };
        for (k, line_name) in line_names.iter().enumerate() {
            let pts: Vec<(f64, f64, f64, f64, bool)> = c
                .points
                .iter()
                .map(|p| {
                    let (v, lo, hi) = value(metric, p)[k];
                    (x.to(p.cores as f64), y.to(v), y.to(lo), y.to(hi), p.predicted)
                })
                .filter(|t| t.1.is_finite())
                .collect();
            let width = if k == 0 { 3 } else { 2 };
            let label = if line_name.is_empty() {
                c.label.clone()
            } else {
                format!("{} {line_name}", c.label)
            };
            let style = if k == 2 {
                color.mix(0.6).stroke_width(width)
            } else {
                color.stroke_width(width)
            };
            let line = pts.iter().map(|t| (t.0, t.1));
            // p99 dashed, so the three latency lines of one curve read apart; a predicted
            // curve dashed throughout (long dashes), so prediction never passes for measurement.
            let series = if c.predicted && k != 1 {
                chart
                    .draw_series(DashedLineSeries::new(line, 18, 8, style))
                    .map_err(err)?
            } else if k == 1 {
                chart
                    .draw_series(DashedLineSeries::new(line, 10, 6, style))
                    .map_err(err)?
            } else {
                chart.draw_series(LineSeries::new(line, style)).map_err(err)?
            };
            let _ = series;
            // The swatch shows the line as drawn: solid, dashed (p99), or light (first
            // result), so the legend tells the three latency lines of one curve apart.
            entries.push(Entry {
                label,
                style,
                dashed: k == 1 || c.predicted,
            });
            // Measured points filled, predicted ones hollow; min-max error bars over the repeats.
            chart
                .draw_series(
                    pts.iter()
                        .map(|t| ErrorBar::new_vertical(t.0, t.2, t.1, t.3, color.stroke_width(2), 12)),
                )
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|t| {
                    let style = if t.4 {
                        color.stroke_width(2)
                    } else {
                        color.filled()
                    };
                    Circle::new((t.0, t.1), 7, style)
                }))
                .map_err(err)?;
        }
        Ok(())
    }

    /// A curve's fitted laws: the USL's band, then each fit, faint past the measured range.
    pub(super) fn fits(&mut self, c: &Curve<'_>) -> Result<(), String> {
        let Canvas {
            chart,
            frame: f,
            entries,
        } = self;
        let (x, y, grid, y_range, metric, x_end) = (f.x, f.y, &f.grid, f.y_range.clone(), f.metric, f.x_end);
        let color = c.color;
        let measured_end = c.points.iter().map(|p| p.cores).max().unwrap_or(1) as f64;
        let reach = fit_reach(c, x_end);
        // The USL fit's band: σ and κ each one standard error either way (speed-up falls as
        // either grows), over the fit's reach.
        if let Some(fit) = c.usl.filter(|f| f.sigma_se.is_some() || f.kappa_se.is_some())
            && metric != Metric::Latency
        {
            let (ds, dk) = (fit.sigma_se.unwrap_or(0.0), fit.kappa_se.unwrap_or(0.0));
            let at = |sigma: f64, kappa: f64, n: f64| {
                let f = UslFit {
                    sigma: sigma.max(0.0),
                    kappa: kappa.max(0.0),
                    ..fit
                };
                fitted(metric, &f, n)
            };
            let ns: Vec<f64> = grid.iter().copied().filter(|&n| n <= reach).collect();
            let clamp = |v: f64| y.to(v).clamp(y_range.start, y_range.end);
            let upper: Vec<(f64, f64)> = ns
                .iter()
                .filter_map(|&n| Some((x.to(n), clamp(at(fit.sigma - ds, fit.kappa - dk, n)?))))
                .collect();
            let lower: Vec<(f64, f64)> = ns
                .iter()
                .rev()
                .filter_map(|&n| Some((x.to(n), clamp(at(fit.sigma + ds, fit.kappa + dk, n)?))))
                .collect();
            if upper.len() > 1 && lower.len() > 1 {
                let outline: Vec<(f64, f64)> = upper.into_iter().chain(lower).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.12).filled())))
                    .map_err(err)?;
            }
        }
        for (fit, name, dash) in [(c.usl, "USL", 12u32), (c.amdahl, "Amdahl", 5u32)] {
            let Some(fit) = fit else { continue };
            let Some(line) = grid
                .iter()
                .filter(|&&n| n <= reach)
                .map(|&n| fitted(metric, &fit, n).map(|v| (n, x.to(n), y.to(v))))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let inside = |p: &&(f64, f64, f64)| p.2 <= y_range.end && p.2 >= y_range.start;
            // Over the measured range in the curve's colour; beyond it (at most to twice the
            // largest core count measured) fainter: extrapolation, and it looks it.
            let measured: Vec<(f64, f64)> = line
                .iter()
                .filter(inside)
                .filter(|p| p.0 <= measured_end)
                .map(|p| (p.1, p.2))
                .collect();
            let beyond: Vec<(f64, f64)> = line
                .iter()
                .filter(inside)
                .filter(|p| p.0 >= measured_end)
                .map(|p| (p.1, p.2))
                .collect();
            let style = color.mix(0.8).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(measured, dash, dash, style))
                .map_err(err)?;
            chart
                .draw_series(DashedLineSeries::new(
                    beyond,
                    dash,
                    dash,
                    color.mix(0.35).stroke_width(2),
                ))
                .map_err(err)?;
            let label = match name {
                "USL" => format!("   USL fit σ {:.3}, κ {:.4} (±1 s.e.)", fit.sigma, fit.kappa),
                _ => format!("   Amdahl fit σ {:.3}", fit.sigma),
            };
            entries.push(Entry {
                label,
                style,
                dashed: true,
            });
        }
        Ok(())
    }
}

/// How far a curve's fits are drawn: twice its largest measured core count, within the chart.
pub(super) fn fit_reach(c: &Curve<'_>, x_end: f64) -> f64 {
    let measured = c.points.iter().map(|p| p.cores).max().unwrap_or(1) as f64;
    (2.0 * measured).min(x_end)
}

/// The legend, in its own column: a swatch drawn as the line is (solid or dashed), a label.
pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let row = 30;
    for (i, e) in entries.iter().enumerate() {
        let y = 90 + i as i32 * row;
        let segments: &[(i32, i32)] = if e.dashed {
            &[(0, 7), (11, 18), (22, 29)]
        } else {
            &[(0, 30)]
        };
        for &(a, b) in segments {
            area.draw(&PathElement::new(vec![(10 + a, y), (10 + b, y)], e.style))
                .map_err(err)?;
        }
        area.draw(&Text::new(e.label.clone(), (48, y - 9), ("sans-serif", 17)))
            .map_err(err)?;
    }
    Ok(())
}
