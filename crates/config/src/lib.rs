//! martelli's config: the TOML file a user writes, validated once into a typed [`Config`].
//!
//! Nothing downstream re-checks strings: the tier is an enum, durations are [`Duration`]s, the
//! varied parameter has become one resolved [`Series`] per value. Every error names the file,
//! the line and column (or the field), and what was expected. This crate reads the config file
//! and nothing else.
#![deny(missing_docs)]

pub mod host;
mod locate;
mod raw;
mod replay;
pub mod units;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use martelli_workload::Workload;

pub use locate::FieldPath;
pub use replay::MAX_RECORDS as MAX_REPLAY_RECORDS;
pub use validate::{WORKING_SET_PER_LLC, default_working_set, normalise_cores};

pub use martelli_model::Tier;

/// How the problem size relates to the core count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// Fixed total work; more cores should finish it sooner (Amdahl's view).
    Strong,
    /// Work grows with the core count; more cores should keep the time flat (Gustafson's view).
    Weak,
}

/// The sweep of core counts and the repetition policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// Core counts to measure, ascending, without duplicates, always starting with 1.
    pub cores: Vec<usize>,
    /// Measured runs per point.
    pub repeats: u32,
    /// Unmeasured runs per point before the measured ones.
    pub warmup: u32,
    /// Strong or weak scaling.
    pub scaling: Scaling,
}

/// One curve of the sweep: the workload with the varied parameter set to one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// `"task_cost=10us"` when a parameter is varied, else the workload's name.
    pub label: String,
    /// The workload. When `task_cost` is set, `iterations` is 0 until calibration fills it in.
    pub workload: Workload,
    /// The per-task cost to calibrate into iterations, when the config gave a duration.
    pub task_cost: Option<Duration>,
    /// How the multi tier runs this series (`[executor]`, or the varied executor key).
    pub executor: ExecutorOptions,
}

/// A validated config, ready to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The tier, or `None` for `auto`: every tier that can run here, one after another.
    pub tier: Option<Tier>,
    /// The core counts and repetition policy.
    pub sweep: Sweep,
    /// One series per value of the varied parameter (one series when nothing is varied).
    pub series: Vec<Series>,
    /// Where results are written.
    pub output_dir: PathBuf,
    /// How to reach the distributed tier's workers, when the config has a `[distributed]`
    /// section.
    pub distributed: Option<Distributed>,
    /// The simulated cluster, when the config has a `[cluster]` section.
    pub cluster: Option<ClusterSpec>,
    /// The config as run: the file's TOML with command-line overrides applied. Stored in the
    /// results so that a run can be repeated exactly.
    pub document: toml::Table,
}

/// Where the distributed tier's workers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerSource {
    /// Workers already running, as `host:port` addresses.
    Listed(Vec<String>),
    /// Local `martelli worker` processes the coordinator starts on 127.0.0.1 and stops.
    Spawn {
        /// How many worker processes.
        workers: u32,
        /// Threads per worker (`None`: the machine's logical cores).
        threads: Option<u32>,
    },
    /// Workers that join: the coordinator listens on `listen` and starts the sweep once
    /// `expect` workers started with `martelli worker --join` have offered themselves and
    /// answered its dial-back.
    Join {
        /// Address the coordinator listens on for joining workers, e.g. `0.0.0.0:7000`.
        listen: std::net::SocketAddr,
        /// Workers the sweep waits for.
        expect: u32,
        /// How long to wait for them before failing.
        timeout: Duration,
    },
}

/// How long a coordinator waits for joining workers unless `join_timeout` says otherwise.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The `[distributed]` section, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Distributed {
    /// The workers.
    pub workers: WorkerSource,
    /// How often workers send heartbeats.
    pub heartbeat: Duration,
    /// Silence after which a worker is declared lost (always above `heartbeat`).
    pub timeout: Duration,
    /// File holding the shared token, if any (else the `MARTELLI_TOKEN` variable, if set).
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to verify TLS workers with; `None` for plain HTTP/2.
    pub tls_ca: Option<PathBuf>,
    /// Server name to verify in the workers' certificates (default: the address's host).
    pub tls_domain: Option<String>,
    /// Largest gRPC message sent or accepted, in bytes.
    pub max_message_bytes: u64,
    /// Certificate and key (PEM files) the coordinator serves joining workers with over TLS
    /// (with `listen` only); `None` for plain HTTP/2.
    pub tls_identity: Option<(PathBuf, PathBuf)>,
    /// How the coordinator feeds the workers (`policy`: guided, credit or pull).
    pub policy: martelli_schedule::Policy,
}

impl Distributed {
    /// A `[distributed]` section with every default and `workers` as its source.
    pub fn with_workers(workers: WorkerSource) -> Distributed {
        Distributed {
            workers,
            heartbeat: DEFAULT_HEARTBEAT,
            timeout: DEFAULT_TIMEOUT,
            token_file: None,
            tls_ca: None,
            tls_domain: None,
            max_message_bytes: martelli_schedule::DEFAULT_MAX_MESSAGE_BYTES as u64,
            tls_identity: None,
            policy: martelli_schedule::Policy::default(),
        }
    }
}

/// How often workers send heartbeats unless `heartbeat` says otherwise.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which a worker is lost unless `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `[cluster]` section: the cluster `martelli simulate` models. Every field is optional;
/// what is left out comes from the calibration of this machine (overheads, network) or from
/// the simulator's defaults (nodes, cores per node).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterSpec {
    /// Machines, each running one worker.
    pub nodes: Option<u32>,
    /// Cores (worker threads) per machine.
    pub cores_per_node: Option<u32>,
    /// One-way network latency between a node and the coordinator.
    pub latency: Option<Duration>,
    /// Bandwidth of each link (and of the coordinator's own), bytes per second.
    pub bandwidth: Option<f64>,
    /// Coordinator CPU time per task sent.
    pub dispatch_overhead: Option<Duration>,
    /// Coordinator CPU time per result received.
    pub result_overhead: Option<Duration>,
    /// Worker time per task beyond its work (decoding, handing to a thread, the result).
    pub worker_overhead: Option<Duration>,
    /// How fast the coordinator generates and encodes payload bytes, bytes per second.
    pub serialization: Option<f64>,
    /// Most tasks per message.
    pub batch_size: Option<u32>,
    /// Tasks kept in flight per worker thread (default: the distributed runner's own rule).
    pub in_flight: Option<u32>,
    /// Slow-down of a `memory` task per other busy core of its node (0.1: 10% per core).
    pub memory_contention: Option<f64>,
    /// Cores of the one machine every node and the coordinator share, when they all run on
    /// one machine (as `spawn_local` workers do): their CPU demands then add up on those cores.
    pub colocated_cores: Option<u32>,
}

/// How the multi tier hands tasks to its threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dispatch {
    /// Submit every task and gather the results (a rayon pool's work stealing): the lecture
    /// notes' futures.
    #[default]
    Futures,
    /// N long-lived worker threads pull from one bounded shared queue and push results to a
    /// result queue that the main thread drains until every task is in: the notes' daemon
    /// workers and barrier.
    Queue,
}

/// What the multi tier's workers are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// Threads of this process.
    #[default]
    Threads,
    /// N worker processes of this binary, fed over pipes: each task and its payload are
    /// serialized to a process and its result comes back (a process pool). Each process has
    /// its own interpreter lock under `gil = true`.
    Processes,
    /// A tokio runtime of N worker threads (one, on the single tier: an event loop): I/O waits
    /// are awaited, so `concurrency` tasks can be in flight at once, far more than the threads.
    Async,
}

impl Model {
    /// The lower-case name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Processes => "processes",
            Model::Async => "async",
        }
    }
}

/// The `[executor]` section: the lecture's concurrency models as options of the multi tier.
/// The single tier is their 1-core baseline, a plain loop, but for the two models that hold
/// many waits on one core: an event loop on one thread (`model = "async"`) and a thread per
/// task in flight (`model = "threads"` with `concurrency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Futures or a queue.
    pub dispatch: Dispatch,
    /// Threads, processes or async.
    pub model: Model,
    /// An emulated global interpreter lock and its switch interval, when `gil = true`.
    pub gil: Option<Duration>,
    /// Tasks in flight at once under `model = "async"`; on the single tier under threads, a
    /// thread per task in flight (1: the plain loop).
    pub concurrency: u32,
}

/// Tasks in flight at once under `model = "async"` when the config does not say.
pub const DEFAULT_CONCURRENCY: u32 = 1000;

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            dispatch: Dispatch::default(),
            model: Model::default(),
            gil: None,
            concurrency: 1,
        }
    }
}

/// Command-line overrides of config values.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--tier`.
    pub tier: Option<Tier>,
    /// `--cores 1,2,4`.
    pub cores: Option<Vec<usize>>,
    /// `--repeats N`.
    pub repeats: Option<u32>,
    /// `--out DIR`.
    pub out: Option<PathBuf>,
    /// `--listen ADDR`: wait for workers that join at ADDR instead of the config's workers.
    pub listen: Option<std::net::SocketAddr>,
    /// `--expect-workers N`: how many joining workers to wait for.
    pub expect_workers: Option<u32>,
}

/// Why a config cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file was read but is not a valid config.
    Invalid(Box<Invalid>),
}

/// A located config error: file, line and column when known, field path when known.
#[derive(Debug)]
pub struct Invalid {
    /// The config file.
    pub file: PathBuf,
    /// One-based line and column of the offending text, when it can be found.
    pub position: Option<(usize, usize)>,
    /// The field the error is about, e.g. `sweep.cores[0]`.
    pub field: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
    /// The offending source line with a caret under the column.
    pub snippet: Option<String>,
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid(_) => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                // The OS's reason is the source: printed once, by whoever prints the chain.
                let _ = source;
                write!(f, "cannot read config file {}", path.display())
            }
            ConfigError::Invalid(e) => {
                write!(f, "{}", e.file.display())?;
                if let Some((line, col)) = e.position {
                    write!(f, ":{line}:{col}")?;
                }
                write!(f, ": ")?;
                if let Some(field) = &e.field {
                    write!(f, "{field}: ")?;
                }
                write!(f, "{}", e.message)?;
                if let Some(snippet) = &e.snippet {
                    write!(f, "\n{snippet}")?;
                }
                Ok(())
            }
        }
    }
}

impl ConfigError {
    /// Builds a located error from a field path and a message.
    fn at_field(file: &Path, source: &str, field: &FieldPath, message: String) -> ConfigError {
        let span = locate::span_of(source, field);
        let mut error = ConfigError::at_span(file, source, span, message);
        if let ConfigError::Invalid(e) = &mut error {
            e.field = Some(field.to_string());
        }
        error
    }

    /// Builds a located error from a byte span of the source.
    fn at_span(
        file: &Path,
        source: &str,
        span: Option<std::ops::Range<usize>>,
        message: String,
    ) -> ConfigError {
        let position = span.as_ref().map(|s| locate::line_col(source, s.start));
        let snippet = position.map(|(line, col)| {
            let text = source.lines().nth(line - 1).unwrap_or("");
            let gutter = line.to_string().len();
            format!(
                "{:gutter$} |\n{line} | {text}\n{:gutter$} | {:>col$}",
                "", "", "^"
            )
        });
        ConfigError::Invalid(Box::new(Invalid {
            file: file.to_path_buf(),
            position,
            field: None,
            message,
            snippet,
        }))
    }
}

/// Reads and validates the config file at `path`, then applies `overrides`.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &source, overrides)
}

/// Reads another TOML file a person writes (a calibration file, say) into `T`, with errors
/// located as a config's are: file, line, column, snippet. Returns the value and the text, for
/// [`field_error`].
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value = toml::from_str(&source)
        .map_err(|e| ConfigError::at_span(path, &source, e.span(), e.message().trim_end().to_string()))?;
    Ok((value, source))
}

/// A located error about `field` (a dotted path such as `network.latency_us`) of the TOML text
/// `source` read from `file`.
pub fn field_error(file: &Path, source: &str, field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::at_field(file, source, &FieldPath::parse(field), message.into())
}

/// Validates config text (`path` is used for messages and the default output folder).
pub fn parse(path: &Path, source: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    if source.trim().is_empty() {
        return Err(ConfigError::at_span(
            path,
            source,
            None,
            "the file is empty: a config needs at least a [workload] section with `kind` and `tasks`".into(),
        ));
    }
    let mut raw: raw::RawConfig = toml::from_str(source)
        .map_err(|e| ConfigError::at_span(path, source, e.span(), e.message().trim_end().to_string()))?;
    // `--tier` is validated as if the file said it: the checks that depend on the tier (an
    // [executor] the distributed tier would drop, say) apply to the tier that will run.
    if let Some(tier) = overrides.tier {
        raw.tier = Some(raw::RawTier(Some(tier)));
    }
    // `--listen` supplies the section a distributed config without one needs (the rest of
    // the override is applied with the others, below).
    if let (Some(listen), None) = (overrides.listen, &raw.distributed) {
        raw.distributed = Some(raw::RawDistributed {
            listen: Some(listen.to_string()),
            expect_workers: Some(overrides.expect_workers.unwrap_or(1).into()),
            ..raw::RawDistributed::default()
        });
    }
    let document: toml::Table = toml::from_str(source)
        .map_err(|e| ConfigError::at_span(path, source, e.span(), e.message().trim_end().to_string()))?;
    let mut config = validate::validate(path, raw, document)
        .map_err(|(field, message)| ConfigError::at_field(path, source, &field, message))?;
    config.apply(overrides);
    Ok(config)
}

impl Config {
    /// Applies command-line overrides to the validated config and to the recorded document.
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(tier) = overrides.tier {
            self.tier = Some(tier);
            self.document
                .insert("tier".into(), toml::Value::String(tier.name().into()));
        }
        let sweep = self
            .document
            .entry("sweep")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(cores) = &overrides.cores {
            self.sweep.cores = validate::normalise_cores(cores.iter().copied());
            if let toml::Value::Table(t) = sweep {
                let list = cores.iter().map(|&c| toml::Value::Integer(c as i64)).collect();
                t.insert("cores".into(), toml::Value::Array(list));
            }
        }
        if let Some(repeats) = overrides.repeats {
            self.sweep.repeats = repeats;
            if let toml::Value::Table(t) = sweep {
                t.insert("repeats".into(), toml::Value::Integer(repeats.into()));
            }
        }
        if let Some(out) = &overrides.out {
            self.output_dir = out.clone();
        }
        self.apply_join(overrides);
    }

    /// `--listen` and `--expect-workers`: the distributed tier's workers join (a section with
    /// every default is added when the config has none).
    fn apply_join(&mut self, overrides: &Overrides) {
        let (listen, timeout, expect) = match self.distributed.as_ref().map(|d| &d.workers) {
            Some(WorkerSource::Join {
                listen,
                expect,
                timeout,
            }) => (
                overrides.listen.unwrap_or(*listen),
                *timeout,
                overrides.expect_workers.unwrap_or(*expect),
            ),
            _ => match overrides.listen {
                Some(listen) => (
                    listen,
                    DEFAULT_JOIN_TIMEOUT,
                    overrides.expect_workers.unwrap_or(1),
                ),
                None => return,
            },
        };
        let workers = WorkerSource::Join {
            listen,
            expect,
            timeout,
        };
        match &mut self.distributed {
            Some(d) => d.workers = workers,
            None => self.distributed = Some(Distributed::with_workers(workers)),
        }
        let section = self
            .document
            .entry("distributed")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = section {
            for key in ["workers", "spawn_local", "threads_per_worker"] {
                t.remove(key);
            }
            t.insert("listen".into(), toml::Value::String(listen.to_string()));
            t.insert("expect_workers".into(), toml::Value::Integer(expect.into()));
        }
    }
}

#[cfg(test)]
mod tests;
