//! `report.html`: one self-contained page per run (no network, no scripts, no build step):
//! the verdict first, then the summary table, the four charts as inline SVG, the fits with
//! their standard errors, the warnings, the config as run, the machine and the versions.
//! Every text from the results is escaped; nothing is fetched.

use std::fmt::Write as _;

use martelli_results::{Change, Comparison, Point, Results, human_seconds};

use crate::chart::{self, Metric};
use crate::{PlotError, register_font};

/// The page for `results` (several runs are overlaid in the charts; the first one's facts
/// head the page), with the comparison of the last run against the first when there is one.
pub fn report_html(
    runs: &[Results],
    comparison: Option<&Comparison>,
    timeline: Option<&martelli_results::trace::TracedRun>,
) -> Result<String, PlotError> {
    register_font();
    let first = runs.first().ok_or(PlotError::Empty)?;
    let mut page = String::with_capacity(1 << 20);
    let title = format!("martelli: {}", title_of(first));
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(page, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        page,
        "<p class=\"meta\">{} &middot; started {} &middot; martelli {} &middot; results schema {}</p>",
        escape(&first.config_file),
        escape(&first.started_at),
        escape(&first.martelli_version),
        first.schema_version
    );
    for run in runs {
        let _ = writeln!(
            page,
            "<section class=\"verdict\"><h2>Verdict</h2><p id=\"verdict\">{}</p></section>",
            escape(&run.verdict)
        );
    }
    if let Some(c) = comparison {
        page.push_str(&comparison_table(c));
    }
    page.push_str("<h2>Summary</h2>\n");
    for run in runs {
        page.push_str(&summary_table(run));
    }
    page.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    for metric in Metric::ALL {
        let svg = chart::svg_string(metric, runs).map_err(|reason| PlotError::Draw {
            path: format!("report.html ({})", metric.file_stem()).into(),
            reason,
        })?;
        let _ = writeln!(page, "<figure>{}</figure>", scalable(&svg));
    }
    page.push_str("</div>\n");
    if crate::metg::has_metg(runs) {
        page.push_str(
            "<h2>Task size: METG</h2>\n<p>The smallest task at which each tier keeps 50% efficiency \
             (useful work over what its cores could do in the wall time) at its largest core count.</p>\n",
        );
        for run in runs {
            if let Some(line) = martelli_results::metg_line(&run.metg) {
                let _ = writeln!(page, "<p id=\"metg\">{}</p>", escape(&line));
            }
        }
        let svg = crate::svg_document(&crate::metg::MetgChart(runs)).map_err(|reason| PlotError::Draw {
            path: "report.html (metg)".into(),
            reason,
        })?;
        let _ = writeln!(page, "<figure>{}</figure>", scalable(&svg));
    }
    page.push_str(&breakdown_section(runs)?);
    page.push_str("<h2>Fits</h2>\n");
    for run in runs {
        page.push_str(&fits_table(run));
    }
    let warnings: Vec<&String> = runs.iter().flat_map(|r| &r.warnings).collect();
    if !warnings.is_empty() {
        page.push_str("<h2>Warnings</h2>\n<ul class=\"warnings\">\n");
        for w in warnings {
            let _ = writeln!(page, "<li>{}</li>", escape(w));
        }
        page.push_str("</ul>\n");
    }
    page.push_str("<h2>Config as run</h2>\n");
    for run in runs {
        let config = serde_json::to_string_pretty(&run.config).unwrap_or_default();
        let _ = writeln!(
            page,
            "<p>{} (with the command line's overrides applied)</p>\n<pre>{}</pre>",
            escape(&run.config_file),
            escape(&config)
        );
    }
    page.push_str("<h2>Machine</h2>\n");
    for run in runs {
        let m = &run.machine;
        let _ = writeln!(
            page,
            "<p>{}: {} logical cores, {} ({}), {} {}</p>",
            escape(&m.hostname),
            m.logical_cores,
            escape(&m.cpu_model),
            escape(&m.arch),
            escape(&m.os),
            escape(&m.kernel)
        );
    }
    page.push_str("<h2>Timeline</h2>\n");
    match timeline {
        Some(run) => page.push_str(&timeline_svg(run)),
        None => page.push_str("<p>Run with <code>--trace FILE</code> for a task timeline (shown here for one point; the file holds every point's, for Perfetto).</p>\n"),
    }
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}\
.meta{color:#666}.verdict p{font-size:1.15em;background:#f3f7ff;border-left:4px solid #3a6ed8;padding:.6em 1em}\
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right}\
th:first-child,td:first-child{text-align:left}tr.predicted td{color:#777;font-style:italic}\
.charts figure{margin:0 0 1.2em 0}\
figure svg{width:100%;height:auto}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}\
.warnings li{color:#8a5300}\
.breakdown td.good{background:#5cb85c;color:#fff}.breakdown td.fair{background:#f0ad4e}\
.breakdown td.poor{background:#d9534f;color:#fff}.breakdown td.why{text-align:left;font-size:.9em}";

fn title_of(r: &Results) -> String {
    match r.series.as_slice() {
        [one] => one.workload.name.clone(),
        many => many
            .iter()
            .map(|s| s.label.clone())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Makes an SVG document scale with the page: a viewBox from its width and height.
fn scalable(svg: &str) -> String {
    let (w, h) = crate::SIZE;
    let body = svg.trim_start_matches(|c| c != '<');
    let body = body
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .unwrap_or(body)
        .trim_start();
    body.replacen("<svg ", &format!("<svg viewBox=\"0 0 {w} {h}\" "), 1)
}

/// "Where the efficiency goes": what the factors mean, the heat map and each run's table;
/// empty when no point has a breakdown.
fn breakdown_section(runs: &[Results]) -> Result<String, PlotError> {
    let mut section = String::new();
    if !crate::heatmap::has_breakdown(runs) {
        return Ok(section);
    }
    section.push_str(
        "<h2>Where the efficiency goes</h2>\n<p>Each point's efficiency is the product of its \
         <b>load balance</b> (mean time inside tasks over the lanes, over the busiest lane's), its \
         <b>communication</b> (the busiest lane's time inside tasks over the wall time: dispatch, \
         refills, the serial phase, the network; on the distributed tier split into <b>serialisation</b> \
         &times; <b>transfer</b>, transfer being what an ideal network would win back, from the \
         simulator) and its <b>computation</b> (the 1-core time over the time inside tasks per \
         core: tasks that got slower). Green above 0.8, amber above 0.6, red below.</p>\n",
    );
    let svg = crate::svg_document(&crate::heatmap::HeatMap(runs)).map_err(|reason| PlotError::Draw {
        path: "report.html (breakdown)".into(),
        reason,
    })?;
    let _ = writeln!(section, "<figure id=\"heatmap\">{}</figure>", scalable(&svg));
    for run in runs {
        section.push_str(&breakdown_table(run));
    }
    Ok(section)
}

/// The breakdown's figures, each cell in its band's colour.
fn breakdown_table(r: &Results) -> String {
    let mut t = String::from(
        "<table class=\"breakdown\" id=\"breakdown\"><tr><th>series</th><th>tier</th><th>cores</th>\
         <th>efficiency</th>",
    );
    for f in martelli_results::FACTORS {
        let _ = write!(t, "<th>{}</th>", martelli_results::factor_title(f));
    }
    t.push_str("<th>limited by</th></tr>\n");
    let cell = |v: Option<f64>| match v {
        Some(v) => format!("<td class=\"{}\">{v:.2}</td>", martelli_results::band(v)),
        None => "<td>-</td>".into(),
    };
    for p in &r.points {
        let Some(b) = p.breakdown else { continue };
        let _ = write!(
            t,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td>{}",
            if p.predicted { " class=\"predicted\"" } else { "" },
            escape(&p.series),
            escape(p.tier.name()),
            p.cores,
            cell(Some(p.efficiency))
        );
        for f in martelli_results::FACTORS {
            t.push_str(&cell(b.factor(f)));
        }
        let series = r.series.iter().find(|s| s.label == p.series);
        let why = if b.limiting().1 < martelli_results::NOTHING_LOST {
            series
                .and_then(|s| r.loss_words(p, s))
                .unwrap_or_else(|| martelli_results::factor_title(b.limiting().0).into())
        } else {
            "-".into()
        };
        let _ = writeln!(t, "<td class=\"why\">{}</td></tr>", escape(&why));
    }
    t.push_str("</table>\n");
    t
}

fn summary_table(r: &Results) -> String {
    let mut t = String::from(
        "<table class=\"summary\"><tr><th>series</th><th>tier</th><th>cores</th><th>wall</th><th>spread</th>\
         <th>speed-up</th><th>efficiency</th><th>tasks/s</th><th>p50</th><th>p99</th><th>first result</th>\
         <th>checksum</th></tr>\n",
    );
    for p in &r.points {
        let _ = writeln!(
            t,
            "<tr{}><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}x</td><td>{:.0}%</td>\
             <td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            if p.predicted { " class=\"predicted\"" } else { "" },
            escape(&p.series),
            escape(p.tier.name()),
            if p.oversubscribed { " (oversubscribed)" } else { "" },
            p.cores,
            human_seconds(p.wall_s),
            spread(p),
            p.speedup,
            p.efficiency * 100.0,
            p.tasks_per_s,
            human_seconds(p.latency_us.p50 / 1e6),
            human_seconds(p.latency_us.p99 / 1e6),
            human_seconds(p.first_result_s),
            escape(if p.predicted { "predicted" } else { &p.checksum }),
        );
    }
    t.push_str("</table>\n");
    t
}

fn spread(p: &Point) -> String {
    if p.predicted {
        return "-".into();
    }
    format!("&plusmn;{:.1}%", p.spread() * 100.0)
}

/// A value with its 95% interval (1.96 standard errors either way, none below 0), when the
/// fit has a standard error.
fn with_se(value: f64, se: Option<f64>) -> String {
    match se {
        Some(se) => format!(
            "{value:.4}<br><small>95%: {:.4}&ndash;{:.4}</small>",
            (value - 1.96 * se).max(0.0),
            value + 1.96 * se
        ),
        None => format!("{value:.4}"),
    }
}

fn fits_table(r: &Results) -> String {
    if r.fits.is_empty() {
        return "<p>No fits: a scaling law needs at least three core counts.</p>\n".into();
    }
    let mut t = String::from(
        "<table class=\"fits\"><tr><th>series</th><th>tier</th><th>core counts</th><th>USL &sigma;</th>\
         <th>USL &kappa;</th><th>R&sup2;</th><th>Amdahl &sigma;</th><th>peak</th><th>verdict</th></tr>\n",
    );
    for f in &r.fits {
        let usl = f.usl.as_ref();
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td style=\"text-align:left\">{}</td></tr>",
            escape(&f.series),
            escape(f.tier.name()),
            f.core_counts,
            if f.excluded_cores.is_empty() {
                String::new()
            } else {
                format!(" (left out: {:?}, oversubscribed)", f.excluded_cores)
            },
            usl.map_or("-".into(), |u| with_se(u.sigma, u.sigma_se)),
            usl.map_or("-".into(), |u| with_se(u.kappa, u.kappa_se)),
            usl.map_or("-".into(), |u| format!("{:.4}", u.r2)),
            f.amdahl
                .as_ref()
                .map_or("-".into(), |a| with_se(a.sigma, a.sigma_se)),
            match (f.peak_cores, f.max_speedup) {
                (Some(n), Some(s)) => format!("{s:.2}x at {n:.0} cores"),
                _ => "-".into(),
            },
            escape(&f.verdict),
        );
    }
    t.push_str("</table>\n");
    t
}

fn comparison_table(c: &Comparison) -> String {
    let mut t = format!(
        "<h2>Compared with the baseline</h2>\n<p>Faster or slower only beyond the noise of the repeats; \
         slower than {:.0}% fails.</p>\n<table class=\"compare\"><tr><th>series</th><th>tier</th><th>cores</th>\
         <th>baseline</th><th>new</th><th>wall</th><th>throughput</th><th>noise</th><th>verdict</th></tr>\n",
        c.threshold * 100.0
    );
    for p in &c.points {
        let verdict = match (p.change, p.regression) {
            (Change::Slower, true) => "<strong>slower, beyond the threshold</strong>",
            (Change::Slower, false) => "slower, within the threshold",
            (Change::Faster, _) => "faster",
            (Change::NoChange, _) => "no change",
        };
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+.1}%</td><td>{:+.1}%</td>\
             <td>{:.1}%</td><td>{verdict}</td></tr>",
            escape(&p.series),
            escape(p.tier.name()),
            p.cores,
            human_seconds(p.baseline_wall_s),
            human_seconds(p.new_wall_s),
            p.wall_change * 100.0,
            p.throughput_change * 100.0,
            p.noise * 100.0,
        );
    }
    t.push_str("</table>\n");
    t
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Most task slices the report's timeline draws (every k-th beyond that, said in its caption).
const TIMELINE_SLICES: usize = 4_000;
/// Most tracks it draws.
const TIMELINE_TRACKS: usize = 48;

/// A compact timeline of one traced run as inline SVG: a row per track (thread, worker
/// thread, in-transit lane), a bar per task.
pub fn timeline_svg(run: &martelli_results::trace::TracedRun) -> String {
    let doc = martelli_results::trace::chrome_trace(std::slice::from_ref(run), serde_json::json!({}));
    let events = doc["traceEvents"].as_array().cloned().unwrap_or_default();
    let name_of = |kind: &str, pid: &serde_json::Value, tid: Option<&serde_json::Value>| -> String {
        events
            .iter()
            .find(|e| e["name"] == kind && &e["pid"] == pid && tid.is_none_or(|t| &e["tid"] == t))
            .and_then(|e| e["args"]["name"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let slices: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    // The tracks that run tasks first (threads, workers' threads), then those in transit.
    let mut tracks: Vec<(serde_json::Value, serde_json::Value)> = Vec::new();
    for running in [true, false] {
        for e in slices.iter().filter(|e| (e["cat"] == "task") == running) {
            let key = (e["pid"].clone(), e["tid"].clone());
            if !tracks.contains(&key) {
                tracks.push(key);
            }
        }
    }
    let shown_tracks = tracks.len().min(TIMELINE_TRACKS);
    let (t0, t1) = slices.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), e| {
        let ts = e["ts"].as_f64().unwrap_or(0.0);
        (lo.min(ts), hi.max(ts + e["dur"].as_f64().unwrap_or(0.0)))
    });
    let (width, label_w, row) = (1200.0, 260.0, 16.0);
    let height = 30.0 + row * shown_tracks as f64;
    let span = (t1 - t0).max(1e-3);
    let x = |ts: f64| label_w + (ts - t0) / span * (width - label_w - 10.0);
    let step = slices.len().div_ceil(TIMELINE_SLICES).max(1);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    for (i, (pid, tid)) in tracks.iter().take(shown_tracks).enumerate() {
        let y = 20.0 + row * i as f64;
        let process = name_of("process_name", pid, None);
        let short = process.rsplit(" / ").next().unwrap_or("");
        let label = format!("{short} / {}", name_of("thread_name", pid, Some(tid)));
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + row * 0.7,
            escape(&label)
        );
    }
    for (k, e) in slices.iter().enumerate() {
        if k % step != 0 {
            continue;
        }
        let key = (e["pid"].clone(), e["tid"].clone());
        let Some(i) = tracks.iter().take(shown_tracks).position(|t| *t == key) else {
            continue;
        };
        let ts = e["ts"].as_f64().unwrap_or(0.0);
        let dur = e["dur"].as_f64().unwrap_or(0.0);
        let (x0, x1) = (x(ts), x(ts + dur));
        let fill = if e["cat"] == "task" { "#3a6ed8" } else { "#c9d3e6" };
        let _ = writeln!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{fill}\"><title>{}</title></rect>",
            20.0 + row * i as f64 + 2.0,
            (x1 - x0).max(0.6),
            row - 4.0,
            escape(e["name"].as_str().unwrap_or("task")),
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{label_w}\" y=\"13\">0</text><text x=\"{:.0}\" y=\"13\" text-anchor=\"end\">{}</text></svg>",
        width - 10.0,
        escape(&human_seconds(span / 1e6))
    );
    let mut caption = format!(
        "<p>{}: one bar per task{}; dark: running, light: between the coordinator and a worker's thread. {} of {} tracks shown.</p>",
        escape(&run.label),
        if step > 1 {
            format!(" (every {step}th of {} slices)", slices.len())
        } else {
            String::new()
        },
        shown_tracks,
        tracks.len()
    );
    caption.push_str(&svg);
    caption
}
