//! Reading a replay file (`kind = "replay"`, `from = "PATH"`): one task per record, in file
//! order, as CSV with a header or as Chrome trace-event JSON, told apart by their first
//! character. Streamed: a record at a time into a compact table (24 bytes a task), the file
//! hashed as it goes past; never held whole in memory.
//!
//! - **CSV**: a header naming `compute_us` (required), `wait_us` and `payload_bytes`
//!   (optional; an empty field is 0); any other column is ignored.
//! - **Chrome trace events** (`{"traceEvents": [...]}` or a bare array, as `martelli run
//!   --trace`, Perfetto and `chrome://tracing` write them): every complete event (`"ph":
//!   "X"`) is a task whose `dur` (microseconds) is its compute time; an event whose category
//!   (`cat`, comma-separated) holds `wait`, `io` or `sleep`, or whose name starts with `wait`
//!   or `sleep` (any case), is a task that waits for its `dur` instead. Events of category
//!   `phase` (martelli's own: a task in transit between the coordinator and a worker) are no
//!   tasks. Other events (metadata, instants, begin/end pairs) are skipped. With `pid = N`,
//!   only process N's events count (a martelli trace gives each traced point its own).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use martelli_workload::{Fnv1a, Replay, ReplayTask};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The most records a replay file may hold.
pub const MAX_RECORDS: usize = 10_000_000;
/// The longest compute or wait one record may ask for, microseconds (an hour).
const MAX_US: f64 = 3.6e9;
/// The largest payload one record may carry, bytes.
const MAX_PAYLOAD: u64 = 1 << 30;

/// Reads `path` (shown as `shown` in errors) into a replay: of a trace, only the events of
/// process `pid` when one is given. Errors name the file, the line (CSV) or the event's index
/// (JSON, from 0) and the field.
pub(crate) fn read(path: &Path, shown: &str, pid: Option<u64>) -> Result<Replay, String> {
    let file = File::open(path).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    // A device or a pipe (/dev/zero, /dev/stdin) could stream forever: files only.
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !regular {
        return Err(format!("{shown}: not a regular file"));
    }
    let mut reader = BufReader::with_capacity(
        1 << 16,
        Hashing {
            inner: file,
            hash: Fnv1a::default(),
        },
    );
    let first = first_character(&mut reader).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    let tasks = match first {
        None => return Err(format!("{shown}: the file is empty")),
        Some(b'{' | b'[') => trace(&mut reader, shown, pid)?,
        Some(_) if pid.is_some() => {
            return Err(format!(
                "{shown}: a CSV has no processes: `pid` chooses one process's events of a trace"
            ));
        }
        Some(_) => csv(&mut reader, shown)?,
    };
    // Hash what the parser did not need to read (trailing bytes), so the hash is the file's.
    io::copy(&mut reader, &mut io::sink()).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    if tasks.is_empty() {
        return Err(match pid {
            Some(pid) => format!("{shown}: no complete events of process {pid} (`pid`) in it"),
            None => format!("{shown}: no tasks in it"),
        });
    }
    // The process chosen is part of the workload: the same file, another process, another hash.
    let mut hasher = reader.get_ref().hash;
    if let Some(pid) = pid {
        hasher.update(format!("\0pid={pid}").as_bytes());
    }
    let hash = hasher.finish();
    Ok(Replay::new(shown.to_string(), hash, tasks))
}

/// A reader that hashes every byte read through it.
struct Hashing<R> {
    inner: R,
    hash: Fnv1a,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The first byte that is not white space (left unread), or `None` for a blank file.
fn first_character(reader: &mut impl BufRead) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(&b) = buf.iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok(Some(b));
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// A duration in microseconds from a file, checked: a finite, non-negative number of at most
/// an hour, in nanoseconds.
fn microseconds(value: f64) -> Result<u64, String> {
    if !value.is_finite() {
        return Err(format!("{value} is not a duration"));
    }
    if value < 0.0 {
        return Err(format!("{value} is negative"));
    }
    if value > MAX_US {
        return Err(format!("{value} us is more than an hour"));
    }
    Ok((value * 1e3).round() as u64)
}

fn too_many(shown: &str, at: &str) -> String {
    format!("{shown}: {at}: more than {MAX_RECORDS} records (the most a replay takes)")
}

fn csv(reader: impl Read, shown: &str) -> Result<Vec<ReplayTask>, String> {
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| format!("{shown}: line 1: {e}"))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let compute = column("compute_us").ok_or_else(|| {
        let names: Vec<&str> = headers.iter().collect();
        format!(
            "{shown}: line 1: no `compute_us` column: a replay CSV's header names compute_us \
             (and optionally wait_us, payload_bytes); this one has {}",
            names.join(", ")
        )
    })?;
    let (wait, payload) = (column("wait_us"), column("payload_bytes"));
    let mut tasks = Vec::new();
    let mut record = ::csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(format!("{shown}: {e}")),
        }
        let line = record.position().map_or(0, |p| p.line());
        if tasks.len() == MAX_RECORDS {
            return Err(too_many(shown, &format!("line {line}")));
        }
        let at = |field: &str, why: String| format!("{shown}: line {line}: {field}: {why}");
        let number = |index: usize, field: &str, required: bool| -> Result<Option<f64>, String> {
            let text = record.get(index).unwrap_or("");
            if text.is_empty() {
                return if required {
                    Err(at(field, "empty".into()))
                } else {
                    Ok(None)
                };
            }
            text.parse::<f64>()
                .map(Some)
                .map_err(|_| at(field, format!("{text:?} is not a number")))
        };
        let compute_ns = microseconds(number(compute, "compute_us", true)?.unwrap_or(0.0))
            .map_err(|why| at("compute_us", why))?;
        let wait_ns = match wait {
            Some(i) => {
                microseconds(number(i, "wait_us", false)?.unwrap_or(0.0)).map_err(|why| at("wait_us", why))?
            }
            None => 0,
        };
        let payload_bytes = match payload {
            Some(i) => {
                let text = record.get(i).unwrap_or("");
                let bytes = if text.is_empty() {
                    0
                } else {
                    text.parse::<u64>().map_err(|_| {
                        at(
                            "payload_bytes",
                            format!("{text:?} is not a whole number of bytes"),
                        )
                    })?
                };
                if bytes > MAX_PAYLOAD {
                    return Err(at("payload_bytes", format!("{bytes} is more than 1GiB")));
                }
                bytes as u32
            }
            None => 0,
        };
        tasks.push(ReplayTask {
            compute_ns,
            wait_ns,
            payload_bytes,
        });
    }
    Ok(tasks)
}

fn trace(reader: impl Read, shown: &str, pid: Option<u64>) -> Result<Vec<ReplayTask>, String> {
    let mut tasks = Vec::new();
    let mut found = false;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let outcome = Document {
        events: Events {
            tasks: &mut tasks,
            pid,
        },
        found: &mut found,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    outcome.map_err(|e| format!("{shown}: {e}"))?;
    if !found {
        return Err(format!(
            "{shown}: not a trace: no `traceEvents` array (a Chrome trace-event file is \
             {{\"traceEvents\": [...]}} or a bare array of events)"
        ));
    }
    Ok(tasks)
}

/// The whole JSON document: a bare array of events, or an object with `traceEvents`.
struct Document<'a> {
    events: Events<'a>,
    found: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Chrome trace: {\"traceEvents\": [...]} or an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        *self.found = true;
        self.events.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Document { events, found } = self;
        let mut events = Some(events);
        while let Some(key) = map.next_key::<String>()? {
            let seed = if key == "traceEvents" { events.take() } else { None };
            if let Some(seed) = seed {
                *found = true;
                map.next_value_seed(seed)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The array of events, read one at a time into `tasks` (only process `pid`'s, if given).
struct Events<'a> {
    tasks: &'a mut Vec<ReplayTask>,
    pid: Option<u64>,
}

impl<'de> DeserializeSeed<'de> for Events<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

/// One trace event, as far as a replay reads it.
#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    ph: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cat: Option<String>,
    #[serde(default)]
    dur: Option<serde_json::Value>,
    #[serde(default)]
    pid: Option<serde_json::Value>,
}

impl<'de> Visitor<'de> for Events<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of trace events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let event: Event = match seq.next_element() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(e) => return Err(de::Error::custom(format!("event {index}: {e}"))),
            };
            let ours = match (self.pid, &event.pid) {
                (None, _) => true,
                (Some(pid), Some(serde_json::Value::Number(n))) => n.as_u64() == Some(pid),
                (Some(pid), Some(serde_json::Value::String(s))) => s.trim() == pid.to_string(),
                (Some(_), _) => false,
            };
            let task = if ours {
                task_of(&event).map_err(|why| de::Error::custom(format!("event {index}: {why}")))?
            } else {
                None
            };
            if let Some(task) = task {
                if self.tasks.len() == MAX_RECORDS {
                    return Err(de::Error::custom(format!(
                        "event {index}: more than {MAX_RECORDS} records (the most a replay takes)"
                    )));
                }
                self.tasks.push(task);
            }
            index += 1;
        }
    }
}

/// The task an event stands for, if it is one (see the module's rule).
fn task_of(event: &Event) -> Result<Option<ReplayTask>, String> {
    if event.ph.as_deref() != Some("X") {
        return Ok(None);
    }
    let categories: Vec<String> = event
        .cat
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if categories.iter().any(|c| c == "phase") {
        return Ok(None);
    }
    let dur = match &event.dur {
        None => return Err("dur: missing (a complete event needs its duration)".into()),
        Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(other) => return Err(format!("dur: {other} is not a number")),
    };
    let ns = microseconds(dur).map_err(|why| format!("dur: {why}"))?;
    let name = event.name.as_deref().unwrap_or("").to_ascii_lowercase();
    let waits = categories
        .iter()
        .any(|c| matches!(c.as_str(), "wait" | "io" | "sleep"))
        || name.starts_with("wait")
        || name.starts_with("sleep");
    Ok(Some(if waits {
        ReplayTask {
            compute_ns: 0,
            wait_ns: ns,
            payload_bytes: 0,
        }
    } else {
        ReplayTask {
            compute_ns: ns,
            wait_ns: 0,
            payload_bytes: 0,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<Replay, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks");
        std::fs::write(&path, text).unwrap();
        read(&path, "tasks", None)
    }

    #[test]
    fn csv_records_become_tasks_in_order_with_other_columns_ignored() {
        let r =
            read_text("id,compute_us,wait_us,payload_bytes,host\n0,100,0,16,a\n1,2.5,1000,,b\n2,0,50,8,c\n")
                .unwrap();
        let t = &r.tasks;
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[0],
            ReplayTask {
                compute_ns: 100_000,
                wait_ns: 0,
                payload_bytes: 16
            }
        );
        assert_eq!(
            t[1],
            ReplayTask {
                compute_ns: 2_500,
                wait_ns: 1_000_000,
                payload_bytes: 0
            }
        );
        assert_eq!(
            t[2],
            ReplayTask {
                compute_ns: 0,
                wait_ns: 50_000,
                payload_bytes: 8
            }
        );
        // The hash is the file's: the same bytes, the same hash; one byte more, another.
        assert_eq!(
            read_text("compute_us\n1\n").unwrap().hash,
            read_text("compute_us\n1\n").unwrap().hash
        );
        assert_ne!(
            read_text("compute_us\n1\n").unwrap().hash,
            read_text("compute_us\n1\n\n").unwrap().hash
        );
    }

    #[test]
    fn trace_events_become_tasks_and_waits_by_name_or_category() {
        let doc = r#"{"traceEvents": [
            {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "x"}},
            {"ph": "X", "name": "task 0", "cat": "task", "ts": 0, "dur": 120.5},
            {"ph": "X", "name": "in transit", "cat": "phase", "ts": 0, "dur": 9},
            {"ph": "X", "name": "query", "cat": "db,io", "ts": 1, "dur": 300},
            {"ph": "X", "name": "Wait for lock", "ts": 2, "dur": 7},
            {"ph": "i", "name": "mark", "ts": 3}
        ], "metadata": {"a": [1, 2]}}"#;
        let t = read_text(doc).unwrap().tasks;
        assert_eq!(
            *t,
            vec![
                ReplayTask {
                    compute_ns: 120_500,
                    wait_ns: 0,
                    payload_bytes: 0
                },
                ReplayTask {
                    compute_ns: 0,
                    wait_ns: 300_000,
                    payload_bytes: 0
                },
                ReplayTask {
                    compute_ns: 0,
                    wait_ns: 7_000,
                    payload_bytes: 0
                },
            ]
        );
        // Keys in any order (martelli writes `metadata` first), a second `traceEvents` ignored.
        let later = read_text(
            r#"{"metadata": {"x": 1}, "traceEvents": [{"ph": "X", "dur": 2}], "traceEvents": [{"ph": "X", "dur": 9}]}"#,
        )
        .unwrap();
        assert_eq!(
            later.tasks.iter().map(|t| t.compute_ns).collect::<Vec<_>>(),
            [2_000]
        );
        let bare = read_text(r#"[{"ph": "X", "name": "f", "ts": 0, "dur": 5}]"#).unwrap();
        assert_eq!(bare.tasks[0].compute_ns, 5_000);
    }

    #[test]
    fn pid_chooses_one_process_of_a_trace_and_is_part_of_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(
            &path,
            r#"{"traceEvents": [
                {"ph": "X", "pid": 1, "dur": 1}, {"ph": "X", "pid": 2, "dur": 2},
                {"ph": "X", "pid": "2", "dur": 3}, {"ph": "X", "dur": 4}
            ]}"#,
        )
        .unwrap();
        let all = read(&path, "t.json", None).unwrap();
        assert_eq!(all.records, 4);
        let two = read(&path, "t.json", Some(2)).unwrap();
        let computes: Vec<u64> = two.tasks.iter().map(|t| t.compute_ns).collect();
        assert_eq!(computes, [2_000, 3_000]);
        assert_ne!(two.hash, all.hash);
        assert_ne!(two.hash, read(&path, "t.json", Some(1)).unwrap().hash);
        let none = read(&path, "t.json", Some(7)).unwrap_err();
        assert_eq!(none, "t.json: no complete events of process 7 (`pid`) in it");
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "compute_us\n1\n").unwrap();
        assert!(
            read(&csv, "t.csv", Some(1))
                .unwrap_err()
                .contains("a CSV has no processes")
        );
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_the_position_and_the_field() {
        let cases = [
            ("", "tasks: the file is empty"),
            ("  \n\n", "tasks: the file is empty"),
            ("compute_us\n", "tasks: no tasks in it"),
            ("wait_us,host\n1,a\n", "tasks: line 1: no `compute_us` column"),
            (
                "compute_us,wait_us\n1,2\n-3,1\n",
                "tasks: line 3: compute_us: -3 is negative",
            ),
            (
                "compute_us\nabc\n",
                "tasks: line 2: compute_us: \"abc\" is not a number",
            ),
            ("compute_us\n1\n\"\"\n", "tasks: line 3: compute_us: empty"),
            (
                "compute_us,wait_us\n1,NaN\n",
                "tasks: line 2: wait_us: NaN is not a duration",
            ),
            (
                "compute_us,payload_bytes\n1,1.5\n",
                "tasks: line 2: payload_bytes: \"1.5\" is not a whole number",
            ),
            (
                "{\"hello\": \"world\"}",
                "tasks: not a trace: no `traceEvents` array",
            ),
            ("{\"traceEvents\": 3}", "tasks: invalid type: integer `3`"),
            (
                "[{\"ph\": \"X\", \"dur\": 1}, {\"ph\": \"X\", \"dur\": -2}]",
                "tasks: event 1: dur: -2 is negative",
            ),
            (
                "[{\"ph\": \"X\", \"dur\": \"long\"}]",
                "tasks: event 0: dur: \"long\" is not a number",
            ),
            (
                "[{\"ph\": \"X\", \"name\": \"t\"}]",
                "tasks: event 0: dur: missing",
            ),
            (
                "[{\"ph\": \"X\", \"dur\": 1}",
                "tasks: event 1: EOF while parsing a list",
            ),
            ("[{\"ph\": \"M\"}]", "tasks: no tasks in it"),
        ];
        for (text, expected) in cases {
            let err = read_text(text).expect_err(text);
            assert!(err.starts_with(expected), "{text:?}: {err}");
        }
        let missing = read(Path::new("/nonexistent/tasks.csv"), "tasks.csv", None).unwrap_err();
        assert!(missing.starts_with("tasks.csv: cannot read it"), "{missing}");
        let device = read(Path::new("/dev/zero"), "/dev/zero", None).unwrap_err();
        assert_eq!(device, "/dev/zero: not a regular file");
    }
}
