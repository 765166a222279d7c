//! Task timelines: the spans a traced run records, and their export as Chrome trace-event
//! JSON (loads in Perfetto and `chrome://tracing`). Pure: spans in, a JSON document out.
//!
//! Each traced run becomes processes of its own: the run's threads (or, on the distributed
//! tier, the coordinator), and one process per worker. Spans whose thread is not known (tasks
//! that ran in another process or in flight on an event loop) are laid on the fewest tracks
//! that keep each track's slices apart, which is how many ran at once.

use serde_json::{Value, json};

/// Where a span ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// A thread of the measuring process, numbered in the run.
    Thread(u32),
    /// Somewhere the recorder cannot tell apart (a pool process, an event loop's task).
    Unknown,
    /// A thread of a distributed worker: the worker's index in the run, the thread's in the
    /// worker's run. The span's start and end are on the worker's clock.
    Worker {
        /// The worker.
        worker: u32,
        /// Its thread.
        thread: u32,
    },
}

/// One task's time, in nanoseconds since its run started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceSpan {
    /// The task's id, when the recorder knew it.
    pub id: Option<u64>,
    /// Where it ran.
    pub lane: Lane,
    /// Start (for a worker's task: on the worker's clock, since it began the run).
    pub start_ns: u64,
    /// End (likewise).
    pub end_ns: u64,
    /// For a worker's task: when the coordinator sent it.
    pub sent_ns: Option<u64>,
    /// For a worker's task: when its result reached the coordinator.
    pub arrived_ns: Option<u64>,
}

/// The spans of one traced run, and where it sits in the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct TracedRun {
    /// "series / tier / N cores".
    pub label: String,
    /// When the run started, nanoseconds since the trace's origin.
    pub offset_ns: u64,
    /// Its spans.
    pub spans: Vec<TraceSpan>,
    /// Spans left out by the cap.
    pub dropped: u64,
}

/// The Chrome trace-event document of `runs`; `metadata` goes into its `metadata` object.
pub fn chrome_trace(runs: &[TracedRun], metadata: Value) -> Value {
    let mut events = Vec::new();
    let mut pid = 0u32;
    for run in runs {
        pid += 1;
        let local = pid;
        let distributed = run.spans.iter().any(|s| matches!(s.lane, Lane::Worker { .. }));
        let name = if distributed {
            format!("{} / coordinator", run.label)
        } else {
            run.label.clone()
        };
        events.push(process_name(local, &name));
        // The run's own threads, then what ran elsewhere on the fewest tracks.
        let mut threads: Vec<u32> = run
            .spans
            .iter()
            .filter_map(|s| match s.lane {
                Lane::Thread(t) => Some(t),
                _ => None,
            })
            .collect();
        threads.sort_unstable();
        threads.dedup();
        for (tid, &t) in threads.iter().enumerate() {
            events.push(thread_name(local, tid as u32, &format!("thread {t}")));
            let spans: Vec<&TraceSpan> = run.spans.iter().filter(|s| s.lane == Lane::Thread(t)).collect();
            push_track(&mut events, local, tid as u32, run.offset_ns, &spans);
        }
        let unknown: Vec<&TraceSpan> = run.spans.iter().filter(|s| s.lane == Lane::Unknown).collect();
        for (k, track) in tracks(unknown).into_iter().enumerate() {
            let tid = (threads.len() + k) as u32;
            events.push(thread_name(local, tid, &format!("in flight {k}")));
            push_track(&mut events, local, tid, run.offset_ns, &track);
        }
        let mut workers: Vec<u32> = run
            .spans
            .iter()
            .filter_map(|s| match s.lane {
                Lane::Worker { worker, .. } => Some(worker),
                _ => None,
            })
            .collect();
        workers.sort_unstable();
        workers.dedup();
        for w in workers {
            pid += 1;
            events.push(process_name(pid, &format!("{} / worker {w}", run.label)));
            let spans: Vec<&TraceSpan> = run
                .spans
                .iter()
                .filter(|s| matches!(s.lane, Lane::Worker { worker, .. } if worker == w))
                .collect();
            worker_tracks(&mut events, pid, run.offset_ns, &spans);
        }
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": metadata,
    })
}

fn process_name(pid: u32, name: &str) -> Value {
    json!({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
}

fn thread_name(pid: u32, tid: u32, name: &str) -> Value {
    json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
}

/// Lays spans on the fewest tracks where no two overlap (first track free at each start).
fn tracks(mut spans: Vec<&TraceSpan>) -> Vec<Vec<&TraceSpan>> {
    spans.sort_by_key(|s| (s.start_ns, s.end_ns));
    let mut tracks: Vec<Vec<&TraceSpan>> = Vec::new();
    for s in spans {
        match tracks
            .iter_mut()
            .find(|t| t.last().is_some_and(|last| last.end_ns <= s.start_ns))
        {
            Some(track) => track.push(s),
            None => tracks.push(vec![s]),
        }
    }
    tracks
}

/// A stretch of a task between the coordinator and a worker's thread: start, end, what, id.
type Phase = (u64, u64, &'static str, Option<u64>);

/// One worker's process: a track per thread with its tasks, placed on the coordinator's clock
/// (the worker's clock shifted by the smallest gap seen between a task's end and its result's
/// arrival, so that no result arrives before its task ends); then the phases between the
/// coordinator and the thread, on as few "in transit" tracks as keep them apart.
fn worker_tracks(events: &mut Vec<Value>, pid: u32, offset_ns: u64, spans: &[&TraceSpan]) {
    let shift = spans
        .iter()
        .filter_map(|s| Some(s.arrived_ns? as i128 - s.end_ns as i128))
        .min()
        .unwrap_or(0);
    let on_coordinator = |ns: u64| (ns as i128 + shift).max(0) as u64;
    let mut threads: Vec<u32> = spans
        .iter()
        .filter_map(|s| match s.lane {
            Lane::Worker { thread, .. } => Some(thread),
            _ => None,
        })
        .collect();
    threads.sort_unstable();
    threads.dedup();
    let mut phases: Vec<Phase> = Vec::new();
    for (tid, &t) in threads.iter().enumerate() {
        events.push(thread_name(pid, tid as u32, &format!("thread {t}")));
        let shifted: Vec<TraceSpan> = spans
            .iter()
            .filter(|s| matches!(s.lane, Lane::Worker { thread, .. } if thread == t))
            .map(|s| TraceSpan {
                start_ns: on_coordinator(s.start_ns),
                end_ns: on_coordinator(s.end_ns),
                sent_ns: None,
                ..**s
            })
            .collect();
        for s in spans
            .iter()
            .filter(|s| matches!(s.lane, Lane::Worker { thread, .. } if thread == t))
        {
            let (start, end) = (on_coordinator(s.start_ns), on_coordinator(s.end_ns));
            if let Some(sent) = s.sent_ns.filter(|&sent| sent < start) {
                phases.push((sent, start, "to the worker, queued there", s.id));
            }
            if let Some(arrived) = s.arrived_ns.filter(|&a| a > end) {
                phases.push((end, arrived, "result on its way back", s.id));
            }
        }
        let refs: Vec<&TraceSpan> = shifted.iter().collect();
        push_track(events, pid, tid as u32, offset_ns, &refs);
    }
    // The phases, packed onto tracks after the threads'.
    phases.sort_by_key(|p| (p.0, p.1));
    let mut lanes: Vec<u64> = Vec::new();
    let mut placed: Vec<(usize, Phase)> = Vec::new();
    for p in phases {
        let lane = match lanes.iter().position(|&end| end <= p.0) {
            Some(l) => l,
            None => {
                lanes.push(0);
                lanes.len() - 1
            }
        };
        lanes[lane] = p.1;
        placed.push((lane, p));
    }
    let first = threads.len() as u32;
    for lane in 0..lanes.len() {
        events.push(thread_name(
            pid,
            first + lane as u32,
            &format!("in transit {lane}"),
        ));
    }
    let us = |ns: u64| (offset_ns + ns) as f64 / 1e3;
    for (lane, (start, end, name, id)) in placed {
        let args = id.map_or_else(|| json!({}), |id| json!({"id": id}));
        events.push(
            json!({"ph": "X", "name": name, "cat": "phase", "pid": pid, "tid": first + lane as u32,
            "ts": us(start), "dur": (end - start) as f64 / 1e3, "args": args}),
        );
    }
}

/// One track's slices, in time order, one per task.
fn push_track(events: &mut Vec<Value>, pid: u32, tid: u32, offset_ns: u64, spans: &[&TraceSpan]) {
    let mut spans = spans.to_vec();
    spans.sort_by_key(|s| (s.start_ns, s.end_ns));
    let us = |ns: u64| (offset_ns + ns) as f64 / 1e3;
    for s in spans {
        let name = s.id.map_or_else(|| "task".to_string(), |id| format!("task {id}"));
        let args = s.id.map_or_else(|| json!({}), |id| json!({"id": id}));
        events.push(
            json!({"ph": "X", "name": name, "cat": "task", "pid": pid, "tid": tid,
            "ts": us(s.start_ns), "dur": s.end_ns.saturating_sub(s.start_ns) as f64 / 1e3, "args": args}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(lane: Lane, start_ns: u64, end_ns: u64) -> TraceSpan {
        TraceSpan {
            id: None,
            lane,
            start_ns,
            end_ns,
            sent_ns: None,
            arrived_ns: None,
        }
    }

    #[test]
    fn unknown_lanes_take_the_fewest_tracks_that_keep_slices_apart() {
        let spans = [
            span(Lane::Unknown, 0, 10),
            span(Lane::Unknown, 5, 15),
            span(Lane::Unknown, 10, 20),
            span(Lane::Unknown, 16, 30),
        ];
        let refs: Vec<&TraceSpan> = spans.iter().collect();
        let t = tracks(refs);
        assert_eq!(t.len(), 2, "two at a time at most");
        for track in &t {
            assert!(track.windows(2).all(|w| w[0].end_ns <= w[1].start_ns));
        }
    }

    #[test]
    fn a_workers_task_sits_on_its_thread_on_the_coordinators_clock_with_its_phases_beside() {
        // The worker's clock runs 1000 ns behind: its task ran 40..100 there, was sent at 1010
        // and arrived at 1120 on the coordinator's. The smallest gap end -> arrival is 1020.
        let lane = Lane::Worker { worker: 0, thread: 3 };
        let mut s = span(lane, 40, 100);
        s.id = Some(7);
        s.sent_ns = Some(1010);
        s.arrived_ns = Some(1120);
        let run = TracedRun {
            label: "x / distributed / 2 cores".into(),
            offset_ns: 0,
            spans: vec![s],
            dropped: 0,
        };
        let doc = chrome_trace(&[run], json!({}));
        let slices: Vec<&Value> = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X")
            .collect();
        let task = slices.iter().find(|e| e["cat"] == "task").unwrap();
        assert_eq!(task["name"], "task 7");
        assert_eq!(task["ts"], 1.06, "40 + 1020 ns");
        assert_eq!(task["dur"], 0.06);
        let phases: Vec<&&Value> = slices.iter().filter(|e| e["cat"] == "phase").collect();
        assert_eq!(
            phases.len(),
            1,
            "sent at 1010, started at 1060: one phase before; none after"
        );
        assert_eq!(phases[0]["name"], "to the worker, queued there");
    }
}
