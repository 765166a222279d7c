//! The progress bar of `martelli run`: drawn on a terminal, silent in pipes and CI logs.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use martelli_config::Tier;
use martelli_results::Point;
use martelli_runner::{Calibration, Observer};

/// Shows sweep progress with indicatif, or nothing when `visible` is false.
pub struct Progress {
    bar: ProgressBar,
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
        Progress { bar }
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

    fn point_started(&mut self, series: &str, tier: Tier, cores: usize, _runs: u32) {
        self.bar
            .set_message(format!("{series}: {tier} on {}", plural_cores(cores)));
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
