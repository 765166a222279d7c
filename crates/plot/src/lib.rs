//! Scaling plots: speed-up, efficiency, throughput and latency per core count, across the
//! Martelli bands (1 core | 2–8 cores | 9+ cores), for one run or several overlaid.
//!
//! Text is drawn with a font shipped in this crate (DejaVu Sans, see `fonts/`), registered with
//! plotters' `ab_glyph` backend, so a machine with no system fonts draws the same picture.
//! Files are written under a temporary name and renamed, so no partial chart is ever left.
#![deny(missing_docs)]

mod chart;
mod metg;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Once;

use martelli_results::Results;

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

/// Draws the four charts (speedup, efficiency, throughput, latency) of `runs` into `dir`, and
/// the METG chart when the runs' series differ in task size. Several runs are overlaid, each
/// with its own colours and legend entries.
pub fn draw_all(runs: &[Results], dir: &Path, format: Format) -> Result<Vec<PathBuf>, PlotError> {
    register_font();
    if runs.iter().all(|r| r.points.is_empty()) {
        return Err(PlotError::Empty);
    }
    let fail = |path: &Path, e: std::io::Error| PlotError::Draw {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let mut written = Vec::new();
    for metric in Metric::ALL {
        let path = dir.join(format!("{}.{}", metric.file_stem(), format.extension()));
        // Draw under a temporary name with the right extension (the encoder goes by it).
        let partial = dir.join(format!(".{}.partial.{}", metric.file_stem(), format.extension()));
        let drawn = chart::draw(metric, runs, &partial, format);
        if let Err(reason) = drawn {
            let _ = std::fs::remove_file(&partial);
            return Err(PlotError::Draw { path, reason });
        }
        std::fs::rename(&partial, &path).map_err(|e| fail(&path, e))?;
        written.push(path);
    }
    if metg::has_metg(runs) {
        let path = dir.join(format!("metg.{}", format.extension()));
        let partial = dir.join(format!(".metg.partial.{}", format.extension()));
        if let Err(reason) = metg::draw(runs, &partial, format) {
            let _ = std::fs::remove_file(&partial);
            return Err(PlotError::Draw { path, reason });
        }
        std::fs::rename(&partial, &path).map_err(|e| fail(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `report.html` for `runs` into `dir` (under a temporary name, then renamed), with
/// `comparison` when the runs were compared and the `timeline` of one traced run.
pub fn write_report(
    runs: &[Results],
    dir: &Path,
    comparison: Option<&martelli_results::Comparison>,
    timeline: Option<&martelli_results::trace::TracedRun>,
) -> Result<PathBuf, PlotError> {
    let page = report_html(runs, comparison, timeline)?;
    let path = dir.join("report.html");
    let partial = dir.join(".report.html.partial");
    let fail = |e: std::io::Error| PlotError::Draw {
        path: path.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    std::fs::write(&partial, page).map_err(fail)?;
    std::fs::rename(&partial, &path).map_err(fail)?;
    Ok(path)
}

#[cfg(test)]
mod tests;
