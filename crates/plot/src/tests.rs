//! Charts drawn from a small real-shaped results set, decoded and inspected.

use martelli_results::Results;

use crate::{Format, Metric, SIZE, draw_all};

/// A results file as `martelli run` writes it, with a multi curve and fits.
fn results(name: &str, slowdown: f64) -> Results {
    let point = |tier: &str, cores: usize, wall: f64| {
        serde_json::json!({
            "series": name, "tier": tier, "cores": cores, "tasks": 100, "iterations": 1000, "repeats": 3,
            "wall_s": wall, "wall_s_min": wall * 0.95, "wall_s_max": wall * 1.05, "wall_s_repeats": [wall],
            "tasks_per_s": 100.0 / wall, "speedup": 1.0 / wall, "efficiency": 1.0 / wall / cores as f64,
            "latency_us": {"p50": 900.0, "p95": 1200.0, "p99": 1500.0}, "mean_task_us": 950.0,
            "first_result_s": 0.001, "cpu_s": wall, "tasks_completed": 100, "checksum": "00000000000000aa"
        })
    };
    let walls = [1.0, 0.52, 0.28, 0.2].map(|w: f64| w * slowdown);
    let mut run: Results = serde_json::from_value(serde_json::json!({
        "schema_version": 1, "martelli_version": "0", "started_at": "2026-11-25T00:00:00Z",
        "config_file": format!("configs/{name}.toml"), "config": {}, "scaling": "strong", "warnings": [],
        "machine": {"hostname": "h", "logical_cores": 8, "cpu_model": "test CPU", "os": "os", "kernel": "k", "arch": "x86_64"},
        "series": [{"label": name, "task_cost_s": null, "workload": {
            "name": name, "seed": 1, "tasks": 100, "kind": "cpu", "iterations": 1000, "io_wait_ns": 0,
            "distribution": "fixed", "serial_fraction": 0.0, "serial_basis_tasks": 100, "payload_bytes": 0, "working_set": 0}}],
        "points": [point("single", 1, walls[0]), point("multi", 2, walls[1]), point("multi", 4, walls[2]), point("multi", 8, walls[3])]
    }))
    .unwrap();
    run.fill_fits(false);
    run
}

fn decode(path: &std::path::Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

fn has_colour(img: &image::RgbImage, rgb: [u8; 3]) -> bool {
    img.pixels().any(|p| p.0 == rgb)
}

#[test]
fn every_chart_is_a_full_size_png_with_bands_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    let run = results("demo", 1.0);
    assert!(
        run.fits[0].usl.is_some(),
        "the fixture has enough points for a fit"
    );
    let written = draw_all(std::slice::from_ref(&run), dir.path(), Format::Png).unwrap();
    assert_eq!(written.len(), Metric::ALL.len());
    for path in &written {
        let img = decode(path);
        assert_eq!(img.dimensions(), SIZE, "{}", path.display());
        let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(
            colours.len() > 50,
            "{}: not blank ({} colours)",
            path.display(),
            colours.len()
        );
        assert!(
            has_colour(&img, [225, 236, 252]),
            "{}: the 1-core band",
            path.display()
        );
        assert!(
            has_colour(&img, [226, 244, 226]),
            "{}: the 2-8 band",
            path.display()
        );
        assert!(
            has_colour(&img, [253, 236, 222]),
            "{}: the 9+ band",
            path.display()
        );
        assert!(
            has_colour(&img, [31, 119, 180]),
            "{}: the curve's colour",
            path.display()
        );
    }
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial")
        })
        .count();
    assert_eq!(leftovers, 0, "no partial files");
}

#[test]
fn overlaid_runs_get_their_own_colour_and_legend_entry() {
    let dir = tempfile::tempdir().unwrap();
    let runs = [results("first", 1.0), results("second", 2.0)];
    let labels: Vec<String> = crate::chart::curve_labels(&runs);
    assert_eq!(labels, ["first: multi", "second: multi"]);
    let written = draw_all(&runs, dir.path(), Format::Png).unwrap();
    let img = decode(&written[0]);
    assert!(
        has_colour(&img, [31, 119, 180]) && has_colour(&img, [255, 127, 14]),
        "two curve colours"
    );
}

#[test]
fn svg_charts_are_written_too() {
    let dir = tempfile::tempdir().unwrap();
    let written = draw_all(&[results("demo", 1.0)], dir.path(), Format::Svg).unwrap();
    let svg = std::fs::read_to_string(&written[0]).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("speed-up"),
        "{}",
        &svg[..100.min(svg.len())]
    );
}

#[test]
fn the_legend_sits_beside_the_plot_and_covers_none_of_it() {
    use plotters::prelude::*;
    let run = results("demo", 1.0);
    let (w, h) = SIZE;
    for metric in Metric::ALL {
        let draw = |legend: bool| {
            let mut buffer = vec![0u8; (w * h * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
                crate::chart::render_with(metric, std::slice::from_ref(&run), &root, legend).unwrap();
                root.present().unwrap();
            }
            buffer
        };
        let (with, without) = (draw(true), draw(false));
        let plot_width = (w - crate::chart::LEGEND_WIDTH) as usize;
        let mut legend_pixels = 0;
        for y in 0..h as usize {
            for x in 0..w as usize {
                let at = (y * w as usize + x) * 3;
                let same = with[at..at + 3] == without[at..at + 3];
                if x < plot_width {
                    assert!(same, "{metric:?}: the legend changed the plot at ({x}, {y})");
                } else if !same {
                    legend_pixels += 1;
                }
            }
        }
        assert!(
            legend_pixels > 500,
            "{metric:?}: the legend is drawn ({legend_pixels} pixels)"
        );
    }
}
