//! The METG chart: each tier's efficiency against task size (log scale) at the sweep's largest
//! core count, the 50% line, and where each tier crosses it. The legend sits below the plot,
//! so it never covers a curve.

use plotters::coord::Shift;
use plotters::prelude::*;

use martelli_results::{METG_EFFICIENCY, Metg, Results, human_seconds};

use crate::SIZE;
use crate::chart::PALETTE;

/// Whether any run has METG curves to draw.
pub(crate) fn has_metg(runs: &[Results]) -> bool {
    runs.iter().any(|r| !r.metg.is_empty())
}

/// The METG chart of some runs, as a [`crate::Picture`].
pub(crate) struct MetgChart<'a>(pub(crate) &'a [Results]);

impl crate::Picture for MetgChart<'_> {
    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let runs = self.0;
        let all: Vec<&Metg> = runs.iter().flat_map(|r| &r.metg).collect();
        let sizes: Vec<f64> = all
            .iter()
            .flat_map(|m| m.curve.iter().map(|p| p.task_s))
            .collect();
        let (lo, hi) = sizes
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        if !lo.is_finite() || hi <= 0.0 {
            return Err("no METG curve to draw".into());
        }
        let top = all
            .iter()
            .flat_map(|m| m.curve.iter().map(|p| p.efficiency))
            .fold(1.0f64, f64::max)
            * 1.1;
        // The plot above, the legend in a band of its own below it.
        let (plot, legend) = root.split_vertically(SIZE.1 - 120);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                "efficiency against task size (METG: the smallest task at 50%)",
                ("sans-serif", 34),
            )
            .margin(24)
            .x_label_area_size(70)
            .y_label_area_size(90)
            .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("task size")
            .y_desc("efficiency (useful work / cores x wall)")
            .x_label_formatter(&|s| human_seconds(*s))
            .y_label_formatter(&|e| format!("{:.0}%", e * 100.0))
            .label_style(("sans-serif", 22))
            .axis_desc_style(("sans-serif", 24))
            .draw()
            .map_err(err)?;
        let half = ShapeStyle::from(&BLACK.mix(0.6)).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                [(lo / 2.0, METG_EFFICIENCY), (hi * 2.0, METG_EFFICIENCY)],
                12,
                8,
                half,
            ))
            .map_err(err)?;
        let mut entries = Vec::new();
        for (i, m) in all.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let style = ShapeStyle::from(&colour).stroke_width(3);
            let line: Vec<(f64, f64)> = m.curve.iter().map(|p| (p.task_s, p.efficiency)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), style))
                .map_err(err)?;
            chart
                .draw_series(line.iter().map(|&(x, y)| Circle::new((x, y), 7, style.filled())))
                .map_err(err)?;
            // A crossing measured, not one below the smallest size.
            if let (Some(s), false) = (m.metg_s, m.below_range) {
                chart
                    .draw_series([TriangleMarker::new((s, METG_EFFICIENCY), 14, style.filled())])
                    .map_err(err)?;
            }
            let metg = match (m.metg_s, m.below_range) {
                (Some(s), false) => format!("METG {}", human_seconds(s)),
                (Some(s), true) => format!("METG at most {}", human_seconds(s)),
                (None, _) => "never 50%".into(),
            };
            let cores = if m.cores == 1 {
                "1 core".to_string()
            } else {
                format!("{} cores", m.cores)
            };
            entries.push((format!("{} at {cores}: {metg}", m.tier), colour));
        }
        // The legend: a row of swatches and labels under the plot.
        let width = (SIZE.0 as i32 - 120) / entries.len().max(1) as i32;
        for (i, (label, colour)) in entries.iter().enumerate() {
            let x = 60 + i as i32 * width;
            legend
                .draw(&PathElement::new(
                    [(x, 50), (x + 40, 50)],
                    ShapeStyle::from(colour).stroke_width(4),
                ))
                .map_err(err)?;
            legend
                .draw(&Text::new(label.clone(), (x + 50, 38), ("sans-serif", 22)))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A plotting error, as the picture's error.
fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
