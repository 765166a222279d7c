//! The coordinator: the distributed tier's [`Runner`]. It holds the worker connections for the
//! whole sweep, spreads each point's cores over the workers, and runs the serial phase itself.

use std::sync::Mutex;
use std::time::Instant;

use martelli_config::Tier;
use martelli_results::Sample;
use martelli_runner::{Job, PreparedPoint, RunError, Runner, timed_run};

use crate::connect::{ClientOptions, Connection, connect};
use crate::join::{JoinOptions, JoinServer};
use crate::local::LocalWorkers;
use crate::schedule::{OpenError, Opened};
use crate::{DistributedError, schedule};
use martelli_schedule::place;

/// Runs workloads on remote `martelli worker` processes.
pub struct DistributedRunner {
    /// Drives the gRPC streams; the sweep itself is synchronous.
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) connections: Vec<Connection>,
    /// Why each connection's worker is gone, if it is: a worker lost in a run, or that cannot
    /// open the next one, is dropped for the rest of the sweep.
    gone: Mutex<Vec<Option<String>>>,
    options: ClientOptions,
    /// Local workers this runner started (stopped when it is dropped), if any.
    _local: Option<LocalWorkers>,
    /// The server joining workers offered themselves to (it turns late ones away until the
    /// runner is dropped), if any.
    _joined: Option<JoinServer>,
}

impl DistributedRunner {
    /// Connects to every worker (in parallel) and shakes hands; fails naming the first
    /// address that cannot be reached or speaks another protocol version.
    pub fn connect(
        addresses: &[String],
        options: ClientOptions,
        local: Option<LocalWorkers>,
    ) -> Result<DistributedRunner, DistributedError> {
        let runtime = coordinator_runtime()?;
        let connections = runtime.block_on(async {
            let mut pending = tokio::task::JoinSet::new();
            for (i, address) in addresses.iter().enumerate() {
                let (address, options) = (address.clone(), options.clone());
                pending.spawn(async move { (i, connect(&address, &options).await) });
            }
            let mut connections: Vec<Option<Connection>> = vec![None; addresses.len()];
            let mut first_error = None;
            while let Some(joined) = pending.join_next().await {
                match joined {
                    Ok((i, Ok(c))) => connections[i] = Some(c),
                    Ok((i, Err(e))) => {
                        first_error.get_or_insert((i, e));
                    }
                    Err(e) => {
                        first_error.get_or_insert((usize::MAX, DistributedError::Run(e.to_string())));
                    }
                }
            }
            match first_error {
                Some((_, e)) => Err(e),
                None => Ok(connections.into_iter().flatten().collect::<Vec<_>>()),
            }
        })?;
        Ok(DistributedRunner::over(
            runtime,
            connections,
            options,
            local,
            None,
        ))
    }

    /// Listens on `listen` for workers started with `martelli worker --join`, dials each back
    /// as a listed worker is reached, and returns once `join.expect` of them answer;
    /// `progress` hears `(joined, expected)` as they come. Fails after `join.timeout`, naming
    /// how many came and from where.
    pub fn join(
        listen: std::net::SocketAddr,
        join: &JoinOptions,
        options: ClientOptions,
        progress: impl FnMut(usize, usize),
    ) -> Result<DistributedRunner, DistributedError> {
        let runtime = coordinator_runtime()?;
        let (server, connections) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| DistributedError::Join(format!("cannot listen on {listen}: {e}")))?;
            JoinServer::gather(listener, join, &options, progress).await
        })?;
        Ok(DistributedRunner::over(
            runtime,
            connections,
            options,
            None,
            Some(server),
        ))
    }

    /// The runner over `connections`, holding the local workers or the join server it owns.
    fn over(
        runtime: tokio::runtime::Runtime,
        connections: Vec<Connection>,
        options: ClientOptions,
        local: Option<LocalWorkers>,
        joined: Option<JoinServer>,
    ) -> DistributedRunner {
        DistributedRunner {
            runtime,
            gone: Mutex::new(vec![None; connections.len()]),
            connections,
            options,
            _local: local,
            _joined: joined,
        }
    }

    /// Threads of each connected worker, in config order.
    pub fn worker_threads(&self) -> Vec<usize> {
        self.connections.iter().map(|c| c.threads).collect()
    }

    /// Threads of each worker still in the sweep (0 for one that is gone), in config order.
    fn live_threads(&self) -> Vec<usize> {
        let gone = self.gone.lock().expect("gone lock");
        self.connections
            .iter()
            .zip(gone.iter())
            .map(|(c, gone)| if gone.is_some() { 0 } else { c.threads })
            .collect()
    }

    /// Drops worker `index` for the rest of the sweep, saying why once.
    fn drop_worker(&self, index: usize, why: &str) {
        let mut gone = self.gone.lock().expect("gone lock");
        if gone[index].is_none() {
            tracing::warn!(
                "worker {} is dropped for the rest of the sweep: {why}",
                self.connections[index].address
            );
            gone[index] = Some(why.to_string());
        }
    }

    /// Which workers run how many threads of a point of `cores` cores, over the workers still
    /// in the sweep (connection index, threads); fails naming the point when they no longer
    /// have the threads.
    fn assign(&self, cores: usize) -> Result<Vec<(usize, usize)>, RunError> {
        let live = self.live_threads();
        let allocation = place(&live, cores).ok_or_else(|| {
            let gone = self.gone.lock().expect("gone lock");
            let dropped: Vec<String> = self
                .connections
                .iter()
                .zip(gone.iter())
                .filter_map(|(c, why)| why.as_ref().map(|why| format!("{} ({why})", c.address)))
                .collect();
            let left = live.iter().sum::<usize>();
            RunError::Setup {
                tier: Tier::Distributed,
                cores,
                reason: if dropped.is_empty() {
                    format!("the workers have {left} threads in all")
                } else {
                    format!(
                        "the point needs {cores} threads and the workers left have {left}, since \
                         the sweep dropped {}",
                        dropped.join(", ")
                    )
                },
            }
        })?;
        Ok(allocation
            .into_iter()
            .enumerate()
            .filter(|(_, threads)| *threads > 0)
            .collect())
    }
}

impl Runner for DistributedRunner {
    fn tier(&self) -> Tier {
        Tier::Distributed
    }

    fn on_this_machine(&self) -> bool {
        self.connections.iter().all(|c| {
            let host = c.address.rsplit_once(':').map_or(c.address.as_str(), |(h, _)| h);
            host == "localhost" || host.starts_with("127.") || host == "[::1]"
        })
    }

    fn max_cores(&self) -> Option<usize> {
        Some(self.connections.iter().map(|c| c.threads).sum())
    }

    fn prepare(&self, cores: usize) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        self.assign(cores)?;
        Ok(Box::new(DistributedPoint { runner: self, cores }))
    }
}

/// One point: its cores, spread over the workers still in the sweep at each run.
struct DistributedPoint<'a> {
    runner: &'a DistributedRunner,
    cores: usize,
}

impl DistributedPoint<'_> {
    /// Opens the run's streams on the workers still in the sweep; a worker that is gone is
    /// dropped and the point spread again over the others, while they have the threads.
    fn open(&self, workload: &martelli_workload::Workload) -> Result<Vec<(usize, Opened)>, RunError> {
        let runner = self.runner;
        let options = &runner.options;
        loop {
            let assignment = runner.assign(self.cores)?;
            let outcomes = runner.runtime.block_on(futures_join(
                assignment
                    .iter()
                    .map(|&(i, threads)| schedule::open(&runner.connections[i], threads, workload, options))
                    .collect(),
            ));
            let mut streams = Vec::with_capacity(outcomes.len());
            let mut dropped = false;
            for (&(i, _), outcome) in assignment.iter().zip(outcomes) {
                match outcome {
                    Ok(stream) => streams.push((i, stream)),
                    Err(OpenError::Gone(e)) => {
                        runner.drop_worker(i, &e.to_string());
                        dropped = true;
                    }
                    Err(OpenError::Refused(e)) => return Err(RunError::Distributed(e.to_string())),
                }
            }
            if !dropped {
                return Ok(streams);
            }
        }
    }
}

impl PreparedPoint for DistributedPoint<'_> {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let runner = self.runner;
        let failed = |e: DistributedError| RunError::Distributed(e.to_string());
        // Opening the streams (and the workers building their buffers) is set-up, not run time.
        let (workers, streams): (Vec<usize>, Vec<Opened>) = self.open(job.workload)?.into_iter().unzip();
        let mut wire = None;
        let mut sample = timed_run(job, |start: Instant| {
            let end = runner
                .runtime
                .block_on(schedule::run(
                    streams,
                    job.workload,
                    start,
                    runner.options.timeout,
                ))
                .map_err(failed)?;
            for lost in end.lost {
                runner.drop_worker(workers[lost], "lost during a run");
            }
            wire = Some(end.stats);
            Ok(end.recorder)
        })?;
        sample.distributed = wire;
        Ok(sample)
    }
}

/// The coordinator's runtime: one thread drives every stream; the sweep itself is synchronous.
fn coordinator_runtime() -> Result<tokio::runtime::Runtime, DistributedError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("martelli-coordinator")
        .enable_all()
        .build()
        .map_err(|e| DistributedError::Run(format!("cannot start the coordinator's runtime: {e}")))
}

/// Awaits futures concurrently, keeping their order.
async fn futures_join<T>(futures: Vec<impl std::future::Future<Output = T>>) -> Vec<T> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<T>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|r| r.expect("every future completed"))
        .collect()
}
