//! Scaling plots: speed-up, efficiency, throughput and latency per core count, across the
//! Martelli bands (1 core | 2–8 cores | 9+ cores), for one run or several overlaid.
//!
//! Text is drawn with a font shipped in this crate (DejaVu Sans, see `fonts/`), registered with
//! plotters' `ab_glyph` backend, so a machine with no system fonts draws the same picture.
//! Files are written under a temporary name and renamed, so no partial chart is ever left.
#![deny(missing_docs)]

mod chart;
mod heatmap;
mod metg;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Once;

use martelli_results::{Results, Staged};

pub use chart::Metric;
pub use report::{escape, report_html};

/// Image format of the charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// PNG bitmaps, 1600×1000.
    Png,
    /// SVG vector drawings.
    Svg,
}

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw.
    #[error("no measured points to plot")]
    Empty,
    /// The drawing backend failed.
    #[error("cannot draw {path}: {reason}")]
    Draw {
        /// The chart's file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Chart size in pixels: readable at the default size.
pub const SIZE: (u32, u32) = (1600, 1000);

/// A picture plotters can draw on any backend: a chart, the METG chart, the heat map.
pub(crate) trait Picture {
    /// Its size in pixels.
    fn size(&self) -> (u32, u32) {
        SIZE
    }

    /// Draws it on `root`.
    fn render<DB: plotters::prelude::DrawingBackend>(
        &self,
        root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// `picture` on a white `root`.
fn paint<DB: plotters::prelude::DrawingBackend>(
    picture: &impl Picture,
    root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&plotters::prelude::WHITE).map_err(|e| e.to_string())?;
    picture.render(root)
}

/// Draws `picture` into the file `path`, as a PNG or an SVG.
pub(crate) fn draw_file(picture: &impl Picture, path: &Path, format: Format) -> Result<(), String> {
    use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, picture.size()).into_drawing_area();
            paint(picture, &root)?;
            root.present().map_err(|e| e.to_string())
        }
        Format::Svg => {
            let root = SVGBackend::new(path, picture.size()).into_drawing_area();
            paint(picture, &root)?;
            root.present().map_err(|e| e.to_string())
        }
    }
}

/// `picture` as an SVG document, in memory (for the HTML report).
pub(crate) fn svg_document(picture: &impl Picture) -> Result<String, String> {
    use plotters::prelude::{IntoDrawingArea, SVGBackend};
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, picture.size()).into_drawing_area();
        paint(picture, &root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

static FONT: Once = Once::new();

/// Registers the shipped font as "sans-serif" (once per process).
fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../fonts/DejaVuSans.ttf");
        // The font is compiled in and known to parse; a failure would be a build defect.
        let _ = plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes);
        let _ = plotters::style::register_font("sans-serif", plotters::style::FontStyle::Bold, bytes);
    });
}

/// Draws the four charts (speedup, efficiency, throughput, latency) of `runs` into `dir`, the
/// METG chart when the runs' series differ in task size, and the breakdown's heat map when
/// points past one core have one. Several runs are overlaid, each
/// with its own colours and legend entries. The charts replace the previous ones together,
/// once all are drawn.
pub fn draw_all(runs: &[Results], dir: &Path, format: Format) -> Result<Vec<PathBuf>, PlotError> {
    let mut staged = Staged::new(dir).map_err(write_failed)?;
    stage_charts(runs, &mut staged, format)?;
    staged.commit().map_err(write_failed)
}

/// A write that failed, as a drawing error.
fn write_failed(e: martelli_results::WriteError) -> PlotError {
    PlotError::Draw {
        path: e.path,
        reason: e.source.to_string(),
    }
}

/// Draws the charts of `runs` (as [`draw_all`]) into `staged`, to be put in place with the
/// other files of the output.
pub fn stage_charts(runs: &[Results], staged: &mut Staged, format: Format) -> Result<(), PlotError> {
    register_font();
    if runs.iter().all(|r| r.points.is_empty()) {
        return Err(PlotError::Empty);
    }
    for metric in Metric::ALL {
        let (partial, path) = staged.file(&format!("{}.{}", metric.file_stem(), format.extension()));
        chart::draw(metric, runs, &partial, format).map_err(|reason| PlotError::Draw { path, reason })?;
    }
    if metg::has_metg(runs) {
        let (partial, path) = staged.file(&format!("metg.{}", format.extension()));
        draw_file(&metg::MetgChart(runs), &partial, format)
            .map_err(|reason| PlotError::Draw { path, reason })?;
    }
    if heatmap::has_breakdown(runs) {
        let (partial, path) = staged.file(&format!("breakdown.{}", format.extension()));
        draw_file(&heatmap::HeatMap(runs), &partial, format)
            .map_err(|reason| PlotError::Draw { path, reason })?;
    }
    Ok(())
}

/// Stages `report.html` for `runs` in `staged`, with `comparison` when the runs were compared
/// and the `timeline` of one traced run.
pub fn stage_report(
    runs: &[Results],
    staged: &mut Staged,
    comparison: Option<&martelli_results::Comparison>,
    timeline: Option<&martelli_results::trace::TracedRun>,
) -> Result<(), PlotError> {
    let page = report_html(runs, comparison, timeline)?;
    staged
        .write("report.html", page.as_bytes())
        .map_err(write_failed)?;
    Ok(())
}

#[cfg(test)]
mod tests;
