//! One chart: curves of one metric against cores, over the three Martelli bands.

use std::path::Path;

use martelli_model::UslFit;
use martelli_results::{CurveTier, Point, Results};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Format, SIZE};

mod layers;

use layers::{Canvas, draw_legend, fit_reach};

/// What a chart shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Speed-up over one core, with the ideal line and the fitted laws.
    Speedup,
    /// Parallel efficiency (speed-up / cores), on a linear axis.
    Efficiency,
    /// Tasks per second.
    Throughput,
    /// p50 and p99 task latency and time to the first result.
    Latency,
}

impl Metric {
    /// Every chart, in the order they are written.
    pub const ALL: [Metric; 4] = [
        Metric::Speedup,
        Metric::Efficiency,
        Metric::Throughput,
        Metric::Latency,
    ];

    /// File name without extension.
    pub fn file_stem(self) -> &'static str {
        match self {
            Metric::Speedup => "speedup",
            Metric::Efficiency => "efficiency",
            Metric::Throughput => "throughput",
            Metric::Latency => "latency",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::Speedup => "speed-up",
            Metric::Efficiency => "parallel efficiency",
            Metric::Throughput => "throughput",
            Metric::Latency => "task latency and time to first result",
        }
    }

    fn y_label(self) -> &'static str {
        match self {
            Metric::Speedup => "speed-up (x one core)",
            Metric::Efficiency => "efficiency (speed-up / cores)",
            Metric::Throughput => "throughput (tasks / s)",
            Metric::Latency => "latency (ms, log scale)",
        }
    }
}

/// Colours of the curves (Tableau 10), one per curve, in order.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// The three Martelli bands: range of cores, fill, label.
const BANDS: [(f64, f64, RGBColor, &str); 3] = [
    (0.5, 1.5, RGBColor(225, 236, 252), "1 core"),
    (1.5, 8.5, RGBColor(226, 244, 226), "2–8 cores"),
    (
        8.5,
        f64::INFINITY,
        RGBColor(253, 236, 222),
        "9+ cores: distributed",
    ),
];

/// A series on one tier (with its 1-core baseline), from one results file.
struct Curve<'a> {
    label: String,
    color: RGBColor,
    points: Vec<&'a Point>,
    usl: Option<UslFit>,
    amdahl: Option<UslFit>,
    /// Every point predicted (a simulation): drawn dashed, with hollow points.
    predicted: bool,
}

/// The legend label of every curve of `runs`, in drawing order.
#[cfg(test)]
pub(crate) fn curve_labels(runs: &[Results]) -> Vec<String> {
    curves(runs).into_iter().map(|c| c.label).collect()
}

fn curves(runs: &[Results]) -> Vec<Curve<'_>> {
    let mut out = Vec::new();
    for run in runs {
        let run_name = Path::new(&run.config_file)
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        for series in &run.series {
            for curve in run.curves(&series.label) {
                let tier = curve.tier;
                // A law through two points fits them exactly and says nothing: draw fits of
                // three core counts or more.
                let fit = run
                    .fits
                    .iter()
                    .find(|f| f.series == series.label && f.tier == tier)
                    .filter(|f| f.core_counts >= 3);
                // A simulated curve crosses tiers: its series label ("... (predicted)") says it.
                let mut label = if tier == CurveTier::Simulated {
                    series.label.clone()
                } else if run.series.len() > 1 {
                    format!("{} / {tier}", series.label)
                } else {
                    tier.to_string()
                };
                if runs.len() > 1 {
                    label = format!("{run_name}: {label}");
                }
                let predicted = curve.points.iter().all(|p| p.predicted);
                out.push(Curve {
                    label,
                    color: PALETTE[out.len() % PALETTE.len()],
                    points: curve.points,
                    usl: fit.and_then(|f| f.usl),
                    // A simulated curve gets its USL fit only: one law is enough to read its
                    // trend, and the legend stays short.
                    amdahl: fit.and_then(|f| f.amdahl).filter(|_| !predicted),
                    predicted,
                });
            }
        }
    }
    out
}

/// A linear or log axis, drawn in linear space with the labels transformed back.
#[derive(Clone, Copy)]
struct Axis {
    log: bool,
    base: f64,
}

impl Axis {
    fn to(self, v: f64) -> f64 {
        if self.log { v.max(1e-12).log(self.base) } else { v }
    }

    fn label(self, v: f64) -> String {
        let real = if self.log { self.base.powf(v) } else { v };
        if self.log && (real - real.round()).abs() < 1e-6 * real.max(1.0) {
            format!("{real:.0}")
        } else if self.log {
            // Two significant digits: 0.63, 2.5, 16, 250.
            let digits = (1 - real.abs().log10().floor() as i32).max(0) as usize;
            format!("{real:.digits$}")
        } else if real >= 100.0 || (real - real.round()).abs() < 1e-9 {
            format!("{real:.0}")
        } else {
            format!("{real:.2}")
        }
    }
}

/// One metric's chart of some runs, as a [`crate::Picture`].
struct MetricChart<'a> {
    metric: Metric,
    runs: &'a [Results],
}

impl crate::Picture for MetricChart<'_> {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        render(self.metric, self.runs, root)
    }
}

/// Draws `metric` for `runs` into `path`.
pub(crate) fn draw(metric: Metric, runs: &[Results], path: &Path, format: Format) -> Result<(), String> {
    crate::draw_file(&MetricChart { metric, runs }, path, format)
}

/// Draws `metric` for `runs` as an SVG document, in memory (for the HTML report).
pub(crate) fn svg_string(metric: Metric, runs: &[Results]) -> Result<String, String> {
    crate::svg_document(&MetricChart { metric, runs })
}

/// The value of `metric` at a point, with its min–max range over the repeats.
fn value(metric: Metric, p: &Point) -> Vec<(f64, f64, f64)> {
    // Wall-time spread carries over to every wall-derived figure.
    let (slow, fast) = if p.wall_s > 0.0 {
        (
            p.wall_s / p.wall_s_max.max(1e-12),
            p.wall_s / p.wall_s_min.max(1e-12),
        )
    } else {
        (1.0, 1.0)
    };
    match metric {
        Metric::Speedup => vec![(p.speedup, p.speedup * slow, p.speedup * fast)],
        Metric::Efficiency => vec![(p.efficiency, p.efficiency * slow, p.efficiency * fast)],
        Metric::Throughput => vec![(p.tasks_per_s, p.tasks_per_s * slow, p.tasks_per_s * fast)],
        Metric::Latency => {
            let ms = |us: f64| us / 1e3;
            let first = p.first_result_s * 1e3;
            vec![
                (ms(p.latency_us.p50), ms(p.latency_us.p50), ms(p.latency_us.p50)),
                (ms(p.latency_us.p99), ms(p.latency_us.p99), ms(p.latency_us.p99)),
                (first, first, first),
            ]
        }
    }
}

/// A fitted law's value of `metric` at `n` cores (speed-up, efficiency, throughput).
fn fitted(metric: Metric, fit: &UslFit, n: f64) -> Option<f64> {
    match metric {
        Metric::Speedup => Some(fit.speedup(n)),
        Metric::Efficiency => Some(fit.speedup(n) / n),
        Metric::Throughput => Some(fit.throughput(n)),
        Metric::Latency => None,
    }
}

fn render<DB: DrawingBackend>(
    metric: Metric,
    runs: &[Results],
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    render_with(metric, runs, root, true)
}

/// Width of the legend column right of the plot: the legend never covers the data.
pub(crate) const LEGEND_WIDTH: u32 = 380;

/// One line of the legend: its label and how its line is drawn.
struct Entry {
    label: String,
    style: ShapeStyle,
    dashed: bool,
}

/// Draws the chart; the legend (when `legend`) in a column of its own right of the plot.
pub(crate) fn render_with<DB: DrawingBackend>(
    metric: Metric,
    runs: &[Results],
    full: &DrawingArea<DB, Shift>,
    legend: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    full.fill(&WHITE).map_err(|e| err(&e))?;
    let curves = curves(runs);
    let f = frame(metric, &curves);
    // The title over the whole width; below it the plot, and the legend in a column of its own.
    let area = full
        .titled(&title(metric, runs), ("sans-serif", 36))
        .map_err(|e| err(&e))?;
    let (plot_area, legend_area) = area.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin(24)
        .x_label_area_size(70)
        .y_label_area_size(110)
        .build_cartesian_2d(f.x_range.clone(), f.y_range.clone())
        .map_err(|e| err(&e))?;
    let (x, y) = (f.x, f.y);
    chart
        .configure_mesh()
        .x_desc(if x.log { "cores (log2 scale)" } else { "cores" })
        .y_desc(metric.y_label())
        .axis_desc_style(("sans-serif", 26))
        .label_style(("sans-serif", 22))
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;
    let mut canvas = Canvas {
        chart: &mut chart,
        frame: &f,
        entries: Vec::new(),
    };
    canvas.backdrop(runs)?;
    canvas.ideal()?;
    for c in &curves {
        canvas.curve(c)?;
        canvas.fits(c)?;
    }
    if legend {
        draw_legend(&legend_area, &canvas.entries)?;
    }
    Ok(())
}

/// The plot's coordinates, in the axes' (possibly log) space.
type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// What every step of a chart needs: the axes, their ranges, the grid fits are drawn on.
struct Frame {
    metric: Metric,
    x: Axis,
    y: Axis,
    /// The largest core count of any curve.
    max_cores: f64,
    /// The last core count the x axis shows.
    x_end: f64,
    x_range: std::ops::Range<f64>,
    y_range: std::ops::Range<f64>,
    /// Core counts from 1 to `x_end` that lines are drawn through.
    grid: Vec<f64>,
}

/// The axes and ranges of a chart of `metric` over `curves`.
fn frame(metric: Metric, curves: &[Curve<'_>]) -> Frame {
    let max_cores = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.cores))
        .max()
        .unwrap_or(1) as f64;
    let x = Axis {
        log: max_cores > 16.0,
        base: 2.0,
    };
    // Log-log when the sweep spans more than 16x: ideal speed-up is then a straight line.
    let y = Axis {
        log: metric == Metric::Latency || (x.log && matches!(metric, Metric::Speedup | Metric::Throughput)),
        base: if metric == Metric::Latency { 10.0 } else { 2.0 },
    };
    // Past the last measured core count the fitted curves are extrapolation.
    let x_end = if x.log {
        (2.0 * max_cores).max(32.0)
    } else {
        (2.0 * max_cores).clamp(16.0, 16.0f64.max(max_cores + 2.0))
    };
    let x_range = x.to(if x.log { 0.7 } else { 0.5 })..x.to(x_end + if x.log { 0.0 } else { 0.5 });
    let grid: Vec<f64> = (0..=200)
        .map(|i| 1.0 + (x_end - 1.0) * i as f64 / 200.0)
        .collect();
    let mut y_values: Vec<f64> = curves
        .iter()
        .flat_map(|c| {
            c.points
                .iter()
                .flat_map(|p| value(metric, p))
                .flat_map(|(v, lo, hi)| [v, lo, hi])
        })
        .collect();
    for c in curves {
        let reach = fit_reach(c, x_end);
        for fit in c.usl.iter().chain(&c.amdahl) {
            y_values.extend(
                grid.iter()
                    .filter(|&&n| n <= reach)
                    .filter_map(|&n| fitted(metric, fit, n)),
            );
        }
    }
    y_values.retain(|v| v.is_finite() && *v > 0.0);
    let y_max = y_values
        .iter()
        .copied()
        .fold(if metric == Metric::Speedup { 2.0 } else { 0.0 }, f64::max);
    let y_min = y_values.iter().copied().fold(f64::INFINITY, f64::min);
    let y_range = if y.log {
        y.to(y_min * 0.5)..y.to(y_max * 2.0)
    } else if metric == Metric::Efficiency {
        0.0..y_max.max(1.0) * 1.15
    } else {
        0.0..y_max * 1.15
    };
    Frame {
        metric,
        x,
        y,
        max_cores,
        x_end,
        x_range,
        y_range,
        grid,
    }
}

/// The chart's title: the workload and the machine, or how many runs are overlaid.
fn title(metric: Metric, runs: &[Results]) -> String {
    let first = &runs[0];
    let name = first
        .series
        .first()
        .map_or("workload", |s| s.workload.name.as_str());
    let kind = first.series.first().map_or("", |s| s.workload.kind.name());
    if runs.len() > 1 {
        let same_machine = runs.iter().all(|r| r.machine == first.machine);
        let machine = if same_machine {
            format!(
                "{}, {} logical cores",
                first.machine.cpu_model, first.machine.logical_cores
            )
        } else {
            "several machines".to_string()
        };
        format!("{}: {} runs overlaid on {machine}", metric.title(), runs.len())
    } else {
        format!(
            "{name} ({kind}): {} on {}, {} logical cores",
            metric.title(),
            first.machine.cpu_model,
            first.machine.logical_cores
        )
    }
}
