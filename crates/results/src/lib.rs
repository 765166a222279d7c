//! The results schema (a public interface: extend it, never break it), the statistics that turn
//! repeated runs into one point, and the writers: `results.json`, `results.csv` and the summary
//! table. Every tier's measurements flow through this one crate, so no tier has its own copy
//! of the measuring or reporting code.
#![deny(missing_docs)]

mod breakdown;
mod compare;
mod evidence;
mod machine;
mod metg;
mod schema;
pub mod stats;
mod table;
mod tier;
pub mod trace;
mod write;

pub use breakdown::{Breakdown, FACTORS, Useful, band, factor_title};
pub use compare::{Change, CompareError, Comparison, PointChange, compare, render_comparison};
pub use evidence::{BAND_HINT, BUSY_SHARE, SimulatedCluster, predicted_label};
pub use machine::Machine;
pub use metg::{METG_EFFICIENCY, Metg, MetgPoint, metg_line};
pub use schema::{
    CurveFit, Latency, Point, Results, RunTrace, SCHEMA_VERSION, Sample, SeriesInfo, WireStats, utc_now,
};
pub use table::{NOTHING_LOST, human_seconds, render_breakdown, render_table};
pub use tier::{CurveTier, Tier};
pub use write::{Staged, WriteError, stage_results, write_atomic};
