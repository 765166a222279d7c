//! The summary table printed at the end of a run.

use std::fmt::Write;

use crate::schema::{Results, WireStats};

/// Formats seconds with a unit that keeps three significant digits readable: "2.10ms".
pub fn human_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else if s >= 1e-3 {
        format!("{:.2}ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.1}us", s * 1e6)
    } else {
        format!("{:.0}ns", s * 1e9)
    }
}

/// Formats a memory size given in MiB.
fn mebibytes(mib: f64) -> String {
    if mib >= 1024.0 {
        format!("{:.2}GiB", mib / 1024.0)
    } else {
        format!("{mib:.1}MiB")
    }
}

/// Renders the points of `results` as an aligned text table, followed by the warnings.
pub fn render_table(results: &Results) -> String {
    let many_series = results.series.len() > 1;
    let mut header = vec![
        "tier",
        "cores",
        "wall",
        "spread",
        "speed-up",
        "efficiency",
        "tasks/s",
        "p50",
        "p99",
        "first result",
        "peak RSS",
        "checksum",
    ];
    if many_series {
        header.insert(0, "series");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for p in &results.points {
        let mut row = vec![
            p.tier.to_string(),
            p.cores.to_string(),
            human_seconds(p.wall_s),
            if p.predicted {
                "predicted".into()
            } else {
                format!("±{:.1}%", p.spread() * 100.0)
            },
            format!("{:.2}x", p.speedup),
            format!("{:.0}%", p.efficiency * 100.0),
            format!("{:.0}", p.tasks_per_s),
            human_seconds(p.latency_us.p50 / 1e6),
            human_seconds(p.latency_us.p99 / 1e6),
            human_seconds(p.first_result_s),
            p.peak_rss_mib.map_or_else(|| "-".into(), mebibytes),
            if p.predicted {
                "-".into()
            } else {
                p.checksum.clone()
            },
        ];
        if many_series {
            row.insert(0, p.series.clone());
        }
        rows.push(row);
    }
    let mut out = aligned(&header, &rows, &["series", "tier", "checksum"]);
    for p in results.points.iter().filter(|p| !p.predicted) {
        if let Some(w) = &p.distributed {
            let said = distributed_notes(w, p.tasks * p.repeats.max(1) as u64);
            if !said.is_empty() {
                let _ = writeln!(out, "{} at {} cores: {}", p.tier, p.cores, said.join(", "));
            }
        }
    }
    for w in &results.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if !results.verdict.is_empty() {
        let _ = writeln!(out, "verdict: {}", results.verdict);
    }
    if let Some(line) = crate::metg_line(&results.metg) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// `header` and `rows` as aligned text lines: the `left` columns aligned left, numbers right.
fn aligned(header: &[&str], rows: &[Vec<String>], left: &[&str]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if left.contains(&header[i]) {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// A factor at or above this loses too little to name as a point's limit.
pub const NOTHING_LOST: f64 = 0.95;

/// The efficiency breakdown of every point past one core, as an aligned text table: the
/// factors multiply to the efficiency; "-" where a factor is not known (serialisation and
/// transfer are the distributed tier's, and need the simulator).
pub fn render_breakdown(results: &Results) -> String {
    let mut header = vec!["tier", "cores", "efficiency"];
    header.extend(crate::FACTORS.iter().map(|f| crate::factor_title(f)));
    header.push("limited by");
    let many_series = results.series.len() > 1;
    if many_series {
        header.insert(0, "series");
    }
    let mut rows = Vec::new();
    for p in &results.points {
        let Some(b) = p.breakdown else { continue };
        let mut row = vec![
            format!("{}{}", p.tier, if p.predicted { " (predicted)" } else { "" }),
            p.cores.to_string(),
            format!("{:.2}", p.efficiency),
        ];
        row.extend(
            crate::FACTORS
                .iter()
                .map(|f| b.factor(f).map_or_else(|| "-".into(), |v| format!("{v:.2}"))),
        );
        let (factor, value) = b.limiting();
        row.push(if value < NOTHING_LOST {
            crate::factor_title(factor).to_string()
        } else {
            "-".into()
        });
        if many_series {
            row.insert(0, p.series.clone());
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return "breakdown: no point past one core with a time inside tasks\n".into();
    }
    let mut out = String::from(
        "where the efficiency goes (efficiency = load balance x communication x computation; \
         communication = serialisation x transfer):\n",
    );
    out.push_str(&aligned(&header, &rows, &["series", "tier", "limited by"]));
    out
}

/// Share of a distributed point's tasks at which its workers' threads finding no task queued
/// is worth a line under the table.
const STARVED_NOTE: f64 = 0.10;

/// What a distributed point's wire figures say that the table does not, over `tasks` run
/// (every repeat's): re-issued and re-sent tasks, dropped results, threads that waited for
/// their refills.
fn distributed_notes(w: &WireStats, tasks: u64) -> Vec<String> {
    let mut said = Vec::new();
    if w.reissued_tasks > 0 {
        said.push(format!(
            "{} tasks re-issued to idle workers at the end",
            w.reissued_tasks
        ));
    }
    if w.lost_workers > 0 {
        said.push(format!(
            "{} re-sent after {} lost worker(s)",
            w.retried_tasks, w.lost_workers
        ));
    }
    // Late or duplicate results come of re-issued or re-sent tasks.
    if (w.reissued_tasks > 0 || w.lost_workers > 0) && w.dropped_results > 0 {
        said.push(format!(
            "{} late or duplicate results dropped (the first result wins)",
            w.dropped_results
        ));
    }
    let starved = w.starved_takes as f64 / tasks.max(1) as f64;
    if starved >= STARVED_NOTE {
        said.push(format!(
            "the workers' threads found no task queued for {:.0}% of tasks (their refills came late: \
             `starved_takes`)",
            starved * 100.0
        ));
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distributed_point_notes_re_issues_losses_and_threads_that_waited_for_refills() {
        let quiet = WireStats {
            starved_takes: 9,
            ..WireStats::default()
        };
        assert!(distributed_notes(&quiet, 100).is_empty(), "9% is no news");
        let busy = WireStats {
            reissued_tasks: 3,
            starved_takes: 26,
            ..WireStats::default()
        };
        assert_eq!(
            distributed_notes(&busy, 100),
            [
                "3 tasks re-issued to idle workers at the end",
                "the workers' threads found no task queued for 26% of tasks (their refills came \
                 late: `starved_takes`)"
            ]
        );
        let lossy = WireStats {
            lost_workers: 1,
            retried_tasks: 5,
            dropped_results: 2,
            ..WireStats::default()
        };
        assert_eq!(distributed_notes(&lossy, 100).len(), 2);
        let dropped_alone = WireStats {
            dropped_results: 2,
            ..WireStats::default()
        };
        assert!(distributed_notes(&dropped_alone, 100).is_empty());
    }
}
