//! Finding where a config field sits in the source text, for error messages.
//!
//! Validation works on typed values and reports a field path such as `sweep.cores[0]`; this
//! module maps that path back to a byte span (and so a line and column) of the TOML source.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A dotted field path such as `workload.tasks` or `sweep.cores[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// Parses a dotted path with optional `[i]` indices.
    pub fn parse(path: &str) -> FieldPath {
        let mut segments = Vec::new();
        for part in path.split('.') {
            let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
            segments.push(Segment::Key(key.to_string()));
            while let Some((index, tail)) = rest.split_once(']') {
                if let Ok(i) = index.parse() {
                    segments.push(Segment::Index(i));
                }
                rest = tail.trim_start_matches('[');
            }
        }
        FieldPath(segments)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The span of the deepest part of `path` present in `source`: the value itself when it is
/// there, else the nearest enclosing table (a missing key is reported at its section).
pub fn span_of(source: &str, path: &FieldPath) -> Option<Range<usize>> {
    let root = DeTable::parse(source).ok()?;
    let mut best = None;
    let mut table = Some(root.get_ref());
    let mut value: Option<&DeValue> = None;
    for segment in &path.0 {
        let next = match (segment, table, value) {
            (Segment::Key(k), Some(t), _) => t.iter().find(|(key, _)| key.get_ref() == k).map(|(_, v)| v),
            (Segment::Index(i), _, Some(DeValue::Array(items))) => items.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        best = Some(next.span());
        value = Some(next.get_ref());
        table = match next.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    best
}

/// One-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "tier = \"multi\"\n[workload]\ntasks = 0\n[sweep]\ncores = [1, 0]\n";

    fn at(path: &str) -> Option<(usize, usize)> {
        span_of(DOC, &FieldPath::parse(path)).map(|s| line_col(DOC, s.start))
    }

    #[test]
    fn finds_values_keys_and_array_items() {
        assert_eq!(at("tier"), Some((1, 8)));
        assert_eq!(at("workload.tasks"), Some((3, 9)));
        assert_eq!(at("sweep.cores[1]"), Some((5, 13)));
    }

    #[test]
    fn falls_back_to_the_enclosing_section() {
        assert_eq!(at("workload.task_cost").map(|(l, _)| l), Some(2));
        assert_eq!(at("output.dir"), None);
    }

    #[test]
    fn paths_round_trip() {
        for p in ["workload.tasks", "sweep.cores[3]", "sweep.vary.task_cost[0]"] {
            assert_eq!(FieldPath::parse(p).to_string(), p);
        }
    }
}
