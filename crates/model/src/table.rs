//! Measurements from a CSV file, as `martelli fit` reads them: a `cores` column and a
//! `throughput` (or `tasks_per_s`, or `wall_s`) column, quoted fields as RFC 4180 has them
//! (martelli's own results.csv quotes a series label that holds a comma). A file with a
//! `series` or a `tier` column holds several curves, grouped as martelli's charts group them
//! ([`series_curves`]), each fitted on its own.

use crate::{Observation, Tier};

/// One curve of a file: its label (empty for a file without grouping columns), its points and
/// the line each came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// `series`, `tier` and `predicted` of the curve's rows, where the file has those columns.
    pub label: Vec<(String, String)>,
    /// The points, in file order.
    pub points: Vec<Observation>,
    /// The 1-based line of each point.
    pub lines: Vec<usize>,
}

impl Curve {
    /// The label in words, e.g. `series "a, b", tier multi, predicted false`.
    pub fn describe(&self) -> String {
        self.label
            .iter()
            .map(|(column, value)| {
                if value.contains([',', ' ']) {
                    format!("{column} {value:?}")
                } else {
                    format!("{column} {value}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A line of the file that cannot be read: its 1-based number (1 is the header) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {message}")]
pub struct TableError {
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What [`series_curves`] needs to know of a point of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint<'a> {
    /// The tier that measured it (`single` for the 1-core baseline).
    pub tier: &'a str,
    /// Its core count.
    pub cores: f64,
    /// Whether the simulator predicted it.
    pub predicted: bool,
}

/// The curves of one series' points, as (tier, indices of the points): for each tier beyond
/// one core, the series' 1-core baseline (tier `single`) and then that tier's points; a series
/// measured on the single tier only is one curve of its own, and so is a series of predictions
/// (tier `simulated`, in core order, across the tiers it crosses). The one grouping that the
/// fits, the charts and `martelli fit` share.
pub fn series_curves<'a>(points: &[CurvePoint<'a>]) -> Vec<(&'a str, Vec<usize>)> {
    if !points.is_empty() && points.iter().all(|p| p.predicted) {
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| points[a].cores.total_cmp(&points[b].cores));
        return vec![("simulated", order)];
    }
    let baseline: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].tier == Tier::Single.name())
        .collect();
    let mut tiers: Vec<&'a str> = Vec::new();
    for p in points {
        if p.tier != Tier::Single.name() && !tiers.contains(&p.tier) {
            tiers.push(p.tier);
        }
    }
    if tiers.is_empty() {
        return vec![(Tier::Single.name(), baseline)];
    }
    tiers
        .into_iter()
        .map(|tier| {
            let own = (0..points.len()).filter(|&i| points[i].tier == tier);
            (tier, baseline.iter().copied().chain(own).collect())
        })
        .collect()
}

/// One data row of a file, before it is put on its curves.
struct Row {
    series: String,
    tier: String,
    predicted: bool,
    point: Observation,
    line: usize,
}

/// The columns of a file that matter, found in its header.
struct Layout {
    /// The header's line.
    line: usize,
    /// Every column, lower case.
    columns: Vec<String>,
    cores: usize,
    /// The value column, and whether it is a wall time (throughput is its inverse).
    value: (usize, bool),
    series: Option<usize>,
    tier: Option<usize>,
    predicted: Option<usize>,
    /// `(column, wanted value)` of each filter.
    filters: Vec<(usize, String)>,
}

fn fail(line: usize, message: String) -> TableError {
    TableError { line, message }
}

impl Layout {
    /// The layout of `header` (at `line`), with `filters` located; fails naming what is missing.
    fn of(header: &csv::StringRecord, line: usize, filters: &[(&str, &str)]) -> Result<Layout, TableError> {
        let columns: Vec<String> = header.iter().map(str::to_lowercase).collect();
        let find = |wanted: &str| columns.iter().position(|c| c == wanted);
        let cores = find("cores").ok_or_else(|| {
            fail(
                line,
                format!(
                    "no `cores` column in the header {:?}: expected e.g. `cores,throughput`",
                    columns.join(",")
                ),
            )
        })?;
        let value = match (find("throughput"), find("tasks_per_s"), find("wall_s")) {
            (Some(c), _, _) | (None, Some(c), _) => (c, false),
            (None, None, Some(c)) => (c, true),
            _ => {
                return Err(fail(
                    line,
                    format!(
                        "no `throughput` (or `tasks_per_s`, or `wall_s`) column in the header {:?}",
                        columns.join(",")
                    ),
                ));
            }
        };
        let filters = filters
            .iter()
            .map(|&(column, wanted)| {
                find(column).map(|c| (c, wanted.to_string())).ok_or_else(|| {
                    fail(
                        line,
                        format!("--{column} given but the header has no `{column}` column"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Layout {
            line,
            cores,
            value,
            series: find("series"),
            tier: find("tier"),
            predicted: find("predicted"),
            filters,
            columns,
        })
    }

    /// The row of `record` (at `line`), `None` when a filter leaves it out. The tier filter
    /// picks curves, each with its series' 1-core baseline: [`Layout::keeps`].
    fn row(&self, record: &csv::StringRecord, line: usize) -> Result<Option<Row>, TableError> {
        if record.len() != self.columns.len() {
            return Err(fail(
                line,
                format!(
                    "{} cells where the header has {}",
                    record.len(),
                    self.columns.len()
                ),
            ));
        }
        if self
            .filters
            .iter()
            .any(|(c, wanted)| self.columns[*c] != "tier" && &record[*c] != wanted)
        {
            return Ok(None);
        }
        let number = |c: usize| -> Result<f64, TableError> {
            record[c]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    fail(
                        line,
                        format!("column `{}`: {:?} is not a number", self.columns[c], &record[c]),
                    )
                })
        };
        let cores = number(self.cores)?;
        let (column, inverse) = self.value;
        let v = number(column)?;
        let throughput = if inverse {
            if v <= 0.0 {
                return Err(fail(line, format!("column `wall_s`: {v} is not a positive time")));
            }
            1.0 / v
        } else {
            v
        };
        Ok(Some(Row {
            series: self.series.map_or_else(String::new, |c| record[c].to_string()),
            tier: self
                .tier
                .map_or_else(|| "curve".to_string(), |c| record[c].to_string()),
            predicted: self.predicted.is_some_and(|c| &record[c] == "true"),
            point: Observation { cores, throughput },
            line,
        }))
    }

    /// Whether the curve of `tier` passes the tier filter, if any.
    fn keeps(&self, tier: &str) -> bool {
        !self
            .filters
            .iter()
            .any(|(c, wanted)| Some(*c) == self.tier && wanted != tier)
    }
}

/// Reads the curves of `text`; only rows whose columns equal `filters` (`(column, value)`)
/// count. Fails naming the line and the column of the first thing it cannot read.
pub fn read_curves(text: &str, filters: &[(&str, &str)]) -> Result<Vec<Curve>, TableError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => {
                return Err(fail(
                    1,
                    "the file is empty: expected a header such as `cores,throughput`".into(),
                ));
            }
            Some(Err(e)) => return Err(fail(line_of(&e), e.to_string())),
            Some(Ok(r)) if r.iter().all(str::is_empty) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let layout = Layout::of(
        &header,
        header.position().map_or(1, |p| p.line() as usize),
        filters,
    )?;
    let mut rows: Vec<Row> = Vec::new();
    for record in records {
        let record = record.map_err(|e| fail(line_of(&e), e.to_string()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line() as usize);
        rows.extend(layout.row(&record, line)?);
    }
    let curves = group(&rows, &layout);
    if curves.is_empty() {
        return Err(fail(
            layout.line,
            if filters.is_empty() {
                "no data rows".into()
            } else {
                "no data rows match the filters".into()
            },
        ));
    }
    Ok(curves)
}

/// The rows as curves: series in the order they first appear, each split by [`series_curves`].
fn group(rows: &[Row], layout: &Layout) -> Vec<Curve> {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        if !names.contains(&row.series.as_str()) {
            names.push(&row.series);
        }
    }
    let mut curves = Vec::new();
    for name in names {
        let of_series: Vec<&Row> = rows.iter().filter(|r| r.series == name).collect();
        let shape: Vec<CurvePoint> = of_series
            .iter()
            .map(|r| CurvePoint {
                tier: &r.tier,
                cores: r.point.cores,
                predicted: r.predicted,
            })
            .collect();
        for (tier, indices) in series_curves(&shape) {
            if !layout.keeps(tier) {
                continue;
            }
            let mut label = Vec::new();
            if layout.series.is_some() {
                label.push(("series".to_string(), name.to_string()));
            }
            if layout.tier.is_some() {
                label.push(("tier".to_string(), tier.to_string()));
            }
            curves.push(Curve {
                label,
                points: indices.iter().map(|&i| of_series[i].point).collect(),
                lines: indices.iter().map(|&i| of_series[i].line).collect(),
            });
        }
    }
    curves
}

/// The line a CSV error is at (1 where it does not say).
fn line_of(e: &csv::Error) -> usize {
    e.position().map_or(1, |p| p.line() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_labels_and_several_curves_are_read_as_a_csv_reader_does() {
        let text = r#"series,tier,cores,wall_s,predicted
"threads, no GIL",single,1,2.0,false
"threads, no GIL",multi,2,1.0,false
"say ""hi""",single,1,4.0,false
"threads, no GIL",distributed,2,1.5,false
"threads, no GIL",multi,4,0.5,false
x (predicted),multi,4,0.5,true
x (predicted),single,1,2.0,true
"#;
        let curves = read_curves(text, &[]).unwrap();
        let described: Vec<String> = curves.iter().map(Curve::describe).collect();
        assert_eq!(
            described,
            vec![
                r#"series "threads, no GIL", tier multi"#,
                r#"series "threads, no GIL", tier distributed"#,
                r#"series "say \"hi\"", tier single"#,
                r#"series "x (predicted)", tier simulated"#,
            ],
            "the charts' curves: each tier after the series' 1-core baseline"
        );
        assert_eq!(curves[0].lines, vec![2, 3, 6]);
        assert_eq!(curves[0].points[1].throughput, 1.0);
        assert_eq!(curves[1].lines, vec![2, 5]);
        assert_eq!(curves[3].lines, vec![8, 7], "a simulated curve in core order");
        let only = read_curves(text, &[("tier", "distributed")]).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(
            only[0].lines,
            vec![2, 5],
            "a tier's curve keeps its series' baseline"
        );
        let e = read_curves("cores,throughput\n1,2\n2,x\n", &[]).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(read_curves("", &[]).unwrap_err().message.contains("empty"));
        let open_quote = read_curves("cores,throughput\n\"1,2\n", &[]).unwrap_err();
        assert_eq!(open_quote.line, 2, "{open_quote}");
    }
}
