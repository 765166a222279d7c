//! The progress bar of `martelli run`: drawn on a terminal, silent in pipes and CI logs.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use martelli_config::Tier;
use martelli_results::trace::TracedRun;
use martelli_results::{Point, RunTrace};
use martelli_runner::{Calibration, Observer};

/// Shows sweep progress with indicatif, or nothing when `visible` is false; collects the task
/// timeline of each point's first measured run when tracing.
pub struct Progress {
    bar: ProgressBar,
    /// The traced runs so far (`--trace`), or `None`.
    pub trace: Option<TraceLog>,
}

/// The traced runs of a sweep, on one clock, within a budget of spans.
pub struct TraceLog {
    /// The sweep's start: every run is placed after it.
    pub origin: std::time::Instant,
    /// The runs, in the order they ran.
    pub runs: Vec<TracedRun>,
    /// Spans still allowed; the rest are counted as dropped.
    pub budget: usize,
}

/// Most spans a trace file holds (~100 B each in the file).
pub const TRACE_BUDGET: usize = 2_000_000;

impl TraceLog {
    /// An empty log starting now.
    pub fn new() -> TraceLog {
        TraceLog {
            origin: std::time::Instant::now(),
            runs: Vec::new(),
            budget: TRACE_BUDGET,
        }
    }
}

impl Progress {
    /// A bar over `runs` runs (warm-ups included).
    pub fn new(runs: u64, visible: bool) -> Progress {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(runs), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}")
                .expect("the template is valid"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress { bar, trace: None }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Progress {
    fn calibrated(&mut self, series: &str, c: &Calibration) {
        self.bar.println(format!(
            "{series}: task_cost calibrated to {} iterations ({:.2} ns/iteration)",
            c.iterations, c.ns_per_iteration
        ));
    }

    fn filling(&mut self, series: &str, filled: u64, total: u64) {
        let human = martelli_config::host::human_bytes;
        self.bar.set_message(format!(
            "{series}: filling the working set, {} of {}",
            human(filled),
            human(total)
        ));
        self.bar.tick();
    }

    fn point_started(&mut self, series: &str, tier: Tier, cores: usize, _runs: u32) {
        self.bar
            .set_message(format!("{series}: {tier} on {}", plural_cores(cores)));
    }

    fn wants_trace(&self) -> bool {
        self.trace.is_some()
    }

    fn traced(&mut self, series: &str, tier: Tier, cores: usize, trace: RunTrace) {
        let Some(log) = &mut self.trace else { return };
        let mut spans = trace.spans;
        let mut dropped = trace.dropped;
        if spans.len() > log.budget {
            dropped += (spans.len() - log.budget) as u64;
            spans.sort_by_key(|s| s.end_ns);
            spans.truncate(log.budget);
        }
        log.budget -= spans.len();
        log.runs.push(TracedRun {
            label: format!("{series} / {tier} / {}", plural_cores(cores)),
            offset_ns: trace.start.saturating_duration_since(log.origin).as_nanos() as u64,
            spans,
            dropped,
        });
    }

    fn run_finished(&mut self) {
        self.bar.inc(1);
    }

    fn point_finished(&mut self, p: &Point) {
        self.bar.println(format!(
            "{}: {} on {}: {:.4}s median, checksum {}",
            p.series,
            p.tier,
            plural_cores(p.cores),
            p.wall_s,
            p.checksum
        ));
    }
}

/// "1 core", "2 cores".
fn plural_cores(n: usize) -> String {
    if n == 1 {
        "1 core".into()
    } else {
        format!("{n} cores")
    }
}
