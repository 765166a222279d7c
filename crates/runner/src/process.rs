//! `model = "processes"`: a pool of N worker processes of this same binary (`martelli
//! pool-worker`), each fed over its own pair of pipes, as a process pool is. Not the gRPC
//! tier: no network, no protocol buffers, one local pipe per process.
//!
//! Each run starts its processes (their start is part of the model's cost, as a `with Pool(N)`
//! block pays it), sends each one the workload, then tasks: every task and its payload
//! serialized into a frame, written to a process's stdin; the digest and the latency come back
//! on its stdout. Each process computes on the shipped payload, so the serialization costs
//! twice (written here, read there) what the threads never pay. Under `gil = true` this
//! process serializes under its own emulated lock (as pickling holds the interpreter's) and
//! every worker process has a lock of its own, so workers never contend for one.
//!
//! Frames are little-endian. Handshake: magic, version, GIL switch interval in ns (0: none),
//! length and JSON of the workload. Task: id, iterations, I/O wait ns, payload length (u64
//! each), payload bytes. Result: digest, latency ns. The pool ends a process by closing its
//! stdin; the process exits 0.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use martelli_config::{Dispatch, Tier};
use martelli_results::Sample;
use martelli_workload::{Executor, Task, Workload, fill_payload};

use crate::gil::Gil;
use crate::record::{Recorder, timed_run};
use crate::{Job, PreparedPoint, RunError};

/// The hidden subcommand that makes this binary a pool worker (`src/cli.rs`).
const POOL_WORKER_COMMAND: &str = "pool-worker";

const MAGIC: &[u8; 8] = b"MRTLPOOL";
const VERSION: u32 = 1;
/// Tasks sent to a process ahead of its results: one computing, one waiting in the pipe.
const DEPTH: usize = 2;
/// The largest workload description a worker accepts (a workload is a few hundred bytes).
const MAX_HEADER: u32 = 1 << 20;

/// N worker processes started for each run.
pub(crate) struct ProcessPoint {
    pub(crate) program: PathBuf,
    pub(crate) processes: usize,
    pub(crate) gil: Option<Duration>,
    pub(crate) dispatch: Dispatch,
}

fn failed(what: impl std::fmt::Display) -> RunError {
    RunError::Process(what.to_string())
}

/// One running worker process and its pipes.
struct Worker {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(program: &Path, header: &[u8], cores: usize) -> Result<Worker, RunError> {
        let mut child = Command::new(program)
            .arg(POOL_WORKER_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| RunError::Setup {
                tier: Tier::Multi,
                cores,
                reason: format!("cannot start a worker process {}: {e}", program.display()),
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(failed("a worker process has no pipes"));
        };
        let mut stdin = BufWriter::new(stdin);
        stdin
            .write_all(header)
            .map_err(|e| failed(format!("cannot send the workload to a worker process: {e}")))?;
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// Feeds this process tasks from the shared counter until none is left, `DEPTH` ahead of
    /// its results, passing each result on; then ends the process and checks how it ended.
    fn drive(
        mut self,
        job: &Job<'_>,
        next: &AtomicU64,
        gil: Option<&Gil>,
        lane: u32,
        done: mpsc::Sender<(u32, u64, u64)>,
    ) -> Result<(), RunError> {
        let workload = job.workload;
        let (mut frame, mut payload) = (Vec::new(), Vec::new());
        let mut in_flight = 0;
        loop {
            while in_flight < DEPTH {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= workload.tasks {
                    break;
                }
                let task = workload.task(id);
                // Serializing is interpreter work: under a GIL it holds this process's lock.
                Gil::holding(gil, || {
                    fill_payload(workload.seed, &task, &mut payload);
                    encode_task(&task, &payload, &mut frame);
                });
                self.stdin
                    .write_all(&frame)
                    .and_then(|()| self.stdin.flush())
                    .map_err(|e| self.lost(format!("cannot send it a task: {e}")))?;
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            let mut result = [0u8; 16];
            self.stdout
                .read_exact(&mut result)
                .map_err(|e| self.lost(format!("no result came back: {e}")))?;
            in_flight -= 1;
            let digest = u64::from_le_bytes(result[..8].try_into().unwrap_or_default());
            let latency = u64::from_le_bytes(result[8..].try_into().unwrap_or_default());
            if done.send((lane, digest, latency)).is_err() {
                break;
            }
        }
        // Closing stdin ends the worker; it must exit cleanly.
        let Worker { mut child, stdin, .. } = self;
        drop(stdin);
        let status = child
            .wait()
            .map_err(|e| failed(format!("cannot wait for a worker process: {e}")))?;
        if !status.success() {
            return Err(failed(format!("a worker process ended with {status}")));
        }
        Ok(())
    }

    /// The error for a process that stopped answering; it is killed and reaped.
    fn lost(&mut self, what: String) -> RunError {
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        failed(format!(
            "worker process {} failed ({status}): {what}",
            self.child.id()
        ))
    }
}

impl PreparedPoint for ProcessPoint {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let header = encode_header(job.workload, self.gil)?;
        let gil = self.gil.map(Gil::new);
        let gather = self.dispatch == Dispatch::Futures;
        timed_run(job, |start| {
            let mut recorder = Recorder::new(start);
            let next = AtomicU64::new(0);
            let workers = (0..self.processes)
                .map(|_| Worker::start(&self.program, &header, self.processes))
                .collect::<Result<Vec<_>, _>>()?;
            let (done_tx, done_rx) = mpsc::channel();
            let outcomes = std::thread::scope(|scope| {
                let drivers: Vec<_> = workers
                    .into_iter()
                    .enumerate()
                    .map(|(lane, worker)| {
                        let (next, gil, done_tx) = (&next, gil.as_ref(), done_tx.clone());
                        scope.spawn(move || worker.drive(job, next, gil, lane as u32, done_tx))
                    })
                    .collect();
                drop(done_tx);
                // Results reach this thread as the processes send them.
                for (lane, digest, latency) in done_rx {
                    recorder.record_remote(lane, digest, latency);
                }
                drivers
                    .into_iter()
                    .map(|d| d.join().unwrap_or_else(|_| Err(failed("a pool thread panicked"))))
                    .collect::<Vec<_>>()
            });
            outcomes.into_iter().collect::<Result<Vec<()>, _>>()?;
            if gather {
                // Futures gathered: every result reaches the caller at the end.
                recorder.gathered();
            }
            Ok(recorder)
        })
    }
}

fn encode_header(workload: &Workload, gil: Option<Duration>) -> Result<Vec<u8>, RunError> {
    let json =
        serde_json::to_vec(workload).map_err(|e| failed(format!("cannot serialize the workload: {e}")))?;
    let mut header = Vec::with_capacity(24 + json.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(gil.map_or(0, |d| d.as_nanos() as u64)).to_le_bytes());
    header.extend_from_slice(&(json.len() as u32).to_le_bytes());
    header.extend_from_slice(&json);
    Ok(header)
}

fn encode_task(task: &Task, payload: &[u8], frame: &mut Vec<u8>) {
    frame.clear();
    for field in [task.id, task.iterations, task.io_wait_ns, payload.len() as u64] {
        frame.extend_from_slice(&field.to_le_bytes());
    }
    frame.extend_from_slice(payload);
}

fn bad_input(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    input.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The worker's side (`martelli pool-worker`): reads the workload, then runs each task it is
/// sent on the payload it is sent, and writes back its digest and latency, until its input
/// closes. Anything malformed is an error (the pool reports the process as failed).
pub fn serve_pool_worker(input: impl Read, output: impl Write) -> io::Result<()> {
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    let mut version = [0u8; 4];
    input.read_exact(&mut version)?;
    if &magic != MAGIC || u32::from_le_bytes(version) != VERSION {
        return Err(bad_input(
            "not a martelli process pool on the other end (this command is started by `martelli run`)",
        ));
    }
    let gil_ns = read_u64(&mut input)?;
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(bad_input(format!("a workload of {len} bytes is too large")));
    }
    let mut json = vec![0u8; len as usize];
    input.read_exact(&mut json)?;
    let workload: Workload =
        serde_json::from_slice(&json).map_err(|e| bad_input(format!("bad workload: {e}")))?;
    let executor = Executor::new(&workload);
    // This process's own lock: nothing else here contends for it.
    let gil = (gil_ns > 0).then(|| Gil::new(Duration::from_nanos(gil_ns)));
    let mut payload = Vec::new();
    loop {
        let id = match read_u64(&mut input) {
            Ok(id) => id,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return output.flush(),
            Err(e) => return Err(e),
        };
        let iterations = read_u64(&mut input)?;
        let io_wait_ns = read_u64(&mut input)?;
        let payload_bytes = read_u64(&mut input)?;
        if !workload.payload_fits(payload_bytes) {
            return Err(bad_input(format!(
                "task {id} has {payload_bytes} payload bytes, the workload {}",
                workload.payload_bytes
            )));
        }
        payload.resize(payload_bytes as usize, 0);
        input.read_exact(&mut payload)?;
        let task = Task {
            id,
            iterations,
            io_wait_ns,
            payload_bytes,
        };
        let started = Instant::now();
        let digest = Gil::holding(gil.as_ref(), || executor.compute_on(&task, &payload));
        if io_wait_ns > 0 {
            std::thread::sleep(task.io_wait());
        }
        let latency = started.elapsed().as_nanos() as u64;
        output.write_all(&digest.to_le_bytes())?;
        output.write_all(&latency.to_le_bytes())?;
        output.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use martelli_workload::{Kind, Scratch, SizeDistribution};

    /// The worker's side against frames written by the pool's encoder, in memory: every
    /// digest equals the one computed here, and the worker ends when its input does.
    #[test]
    fn a_worker_computes_the_digests_of_the_tasks_it_is_sent() {
        let workload = Workload {
            name: "t".into(),
            seed: 9,
            tasks: 20,
            kind: Kind::Mixed,
            iterations: 500,
            io_wait_ns: 1000,
            distribution: SizeDistribution::Uniform { spread: 0.5 },
            serial_fraction: 0.0,
            serial_basis_tasks: 20,
            payload_bytes: 300,
            working_set: 0,
            access: martelli_workload::Access::Random,
        };
        let mut input = encode_header(&workload, Some(Duration::from_millis(5))).unwrap();
        let (mut frame, mut payload) = (Vec::new(), Vec::new());
        for task in workload.tasks() {
            fill_payload(workload.seed, &task, &mut payload);
            encode_task(&task, &payload, &mut frame);
            input.extend_from_slice(&frame);
        }
        let mut output = Vec::new();
        serve_pool_worker(&input[..], &mut output).unwrap();
        assert_eq!(output.len(), 16 * workload.tasks as usize);
        let executor = Executor::new(&workload);
        for (task, result) in workload.tasks().zip(output.chunks(16)) {
            let digest = u64::from_le_bytes(result[..8].try_into().unwrap());
            assert_eq!(digest, executor.compute(&task, &mut Scratch::default()));
        }
    }

    #[test]
    fn a_worker_refuses_what_is_not_a_pool() {
        let err = serve_pool_worker(&b"GET / HTTP/1.1\r\n\r\n"[..], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("not a martelli process pool"), "{err}");
        let workload = Workload {
            name: "t".into(),
            seed: 1,
            tasks: 1,
            kind: Kind::Cpu,
            iterations: 10,
            io_wait_ns: 0,
            distribution: SizeDistribution::Fixed,
            serial_fraction: 0.0,
            serial_basis_tasks: 1,
            payload_bytes: 8,
            working_set: 0,
            access: martelli_workload::Access::Random,
        };
        let mut input = encode_header(&workload, None).unwrap();
        let task = Task {
            payload_bytes: 4,
            ..workload.task(0)
        };
        let mut frame = Vec::new();
        encode_task(&task, &[1, 2, 3, 4], &mut frame);
        input.extend_from_slice(&frame);
        let err = serve_pool_worker(&input[..], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("4 payload bytes"), "{err}");
    }
}
