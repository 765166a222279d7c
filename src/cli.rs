//! The command line: subcommands and flags, with the help text users read first.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// martelli: define a workload once, run it on 1 core, 2-8 cores or 9+ cores, and see how it
/// scales.
///
/// Alex Martelli's model sorts concurrency into three tiers: one core (one thread, one
/// process), 2-8 cores (threads or processes on one machine) and 9+ cores (distributed). A
/// TOML config describes a workload (cpu, memory, io or mixed tasks) and a sweep of core
/// counts; martelli runs it on each tier, checks that every tier computed the same checksum,
/// and reports speed-up, efficiency, throughput and latency.
#[derive(Debug, Parser)]
#[command(name = "martelli", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a config's sweep and write results.json, results.csv and four charts.
    ///
    /// Prints a summary table (tier, cores, wall time, speed-up, efficiency, checksum). Shows a
    /// progress bar when stdout is a terminal. Exit code 0 on success, 1 when the run failed
    /// (e.g. tiers disagreed on the checksum), 2 for a bad config or bad flags.
    Run(RunArgs),
    /// Check configs without running them: parse, validate, and show what would run.
    Validate(ValidateArgs),
    /// Redraw the charts from saved results, overlaying several runs.
    ///
    /// Writes speedup, efficiency, throughput and latency charts; each results file gets its
    /// own colours and legend entries.
    Plot(PlotArgs),
    /// Compare a run against a baseline, point by point, beyond the noise of their repeats.
    ///
    /// For every (series, tier, cores) in both results files: the change in wall time and
    /// throughput, and "faster" or "slower" only when the two runs' repeats do not overlap and
    /// the change exceeds their spread, else "no change". Exits 1 when a point is slower than
    /// --threshold (for CI pipelines), 2 when the runs ran different workloads.
    Compare(CompareArgs),
    /// Fit scaling laws (USL, Amdahl) to measurements from a CSV file.
    ///
    /// The CSV needs a header with `cores` and `throughput` (or `tasks_per_s`, or `wall_s`,
    /// from which throughput is 1 / wall_s), one row per measurement, as the USL tools take
    /// (martelli's own results.csv works too). Prints σ, κ, λ, R², the core count where
    /// throughput peaks and the largest speed-up; --json prints one JSON object instead.
    Fit(FitArgs),
    /// Measure what this machine's tasks, thread pool and loopback network cost, for the
    /// simulator.
    ///
    /// Runs the real kernels, the single and multi tiers and a spawned local worker for a few
    /// seconds each, then writes a TOML file (default output/calibration.toml) that
    /// `martelli simulate --calibration` reads. Edit it to ask "what if": e.g. latency_us x 10.
    Calibrate(CalibrateArgs),
    /// Predict scaling past this machine: a calibrated discrete-event model of the three tiers.
    ///
    /// Measures the config's sweep as `run` does (unless --predict-only), predicts every core
    /// count of --cores on a simulated cluster (the config's [cluster] section, else nodes of 8
    /// cores with this machine's calibrated costs), and writes both into one results.json and
    /// one set of charts: predicted points hollow. --validate instead measures what this
    /// machine can (1 and 2 cores of the multi tier, 2 spawned workers of the distributed
    /// tier), predicts the same points, and prints predicted against measured with the error.
    Simulate(SimulateArgs),
    /// Serve as a worker of the distributed tier: run the tasks coordinators send.
    ///
    /// Prints `listening on ADDR` once it accepts connections, serves run after run, and stops
    /// cleanly on SIGINT or SIGTERM. The token comes from --token-file or MARTELLI_TOKEN.
    Worker(WorkerArgs),
    /// A worker process of `model = "processes"`, started by `martelli run` with pipes on its
    /// stdin and stdout; not for use by hand.
    #[command(name = "pool-worker", hide = true)]
    PoolWorker,
}

/// `martelli calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Where to write the calibration file.
    #[arg(long, default_value = "output/calibration.toml")]
    pub out: PathBuf,
    /// Times to measure everything; each figure is the median across the rounds, and the
    /// file says how far it moved (a figure that moves more than 10% is warned about).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
}

/// `martelli simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The config file (with --validate, one or more).
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
    /// A calibration file from `martelli calibrate` (default: calibrate now, ~10 s).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Core counts to predict, comma-separated, e.g. 1,2,4,8,16,32,64 (default: the config's,
    /// plus every power of two up to the [cluster]'s total cores, or to 256).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub cores: Option<Vec<u64>>,
    /// Predict only: skip measuring the config's sweep.
    #[arg(long, conflicts_with = "validate")]
    pub predict_only: bool,
    /// Measure what this machine can, predict the same points, print both with the error.
    #[arg(long)]
    pub validate: bool,
    /// With --validate: print a JSON list (tier, cores, measured_speedup, predicted_speedup,
    /// error, ...) instead of the table.
    #[arg(long, requires = "validate")]
    pub json: bool,
    #[command(flatten)]
    pub sweep: SweepOutput,
    /// Write the task timeline of each measured point's first run to FILE (Chrome
    /// trace-event JSON); predicted points have none.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["validate", "predict_only"])]
    pub trace: Option<PathBuf>,
    /// Also print where each point's efficiency goes: load balance x communication x
    /// computation (always in report.html and results.json).
    #[arg(long, conflicts_with = "validate")]
    pub breakdown: bool,
}

/// `martelli compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline's results.json.
    pub baseline: PathBuf,
    /// The new run's results.json.
    pub new: PathBuf,
    /// How much slower a point may be before the exit code is 1, e.g. 5% or 0.05.
    #[arg(long, default_value = "5%", value_parser = parse_fraction)]
    pub threshold: f64,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw both runs overlaid into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Format of the overlay charts.
    #[arg(long, value_enum, default_value = "png")]
    pub format: FormatArg,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{text:?} is not a fraction: expected e.g. 5% or 0.05"))?;
    if (0.0..10.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0% and 1000%".into())
    }
}

/// `martelli plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// results.json files written by `martelli run`.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Folder for the charts (default: the first results file's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Image format.
    #[arg(long, value_enum, default_value = "png")]
    pub format: FormatArg,
}

/// A chart format named on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// PNG, 1600x1000.
    Png,
    /// SVG.
    Svg,
}

impl From<FormatArg> for martelli_plot::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Png => Self::Png,
            FormatArg::Svg => Self::Svg,
        }
    }
}

/// `martelli fit`.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// The CSV file of measurements.
    pub data: PathBuf,
    /// Print one JSON object (sigma, kappa, lambda, r2, peak_cores, max_speedup, intervals).
    #[arg(long)]
    pub json: bool,
    /// Only rows whose `series` column has this value (for martelli's results.csv).
    #[arg(long)]
    pub series: Option<String>,
    /// Only rows whose `tier` column has this value (for martelli's results.csv).
    #[arg(long)]
    pub tier: Option<String>,
    /// What the fit minimises: `relative` errors (default: every point weighs the same, as
    /// timing noise that is a share of the figure does) or `absolute` ones (large throughputs
    /// weigh more, as in codahale/usl and R's usl package, whose figures it reproduces).
    #[arg(long, value_enum, default_value_t = FitLoss::Relative)]
    pub loss: FitLoss,
}

/// What `martelli fit` minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FitLoss {
    /// Squared relative errors.
    Relative,
    /// Squared absolute errors.
    Absolute,
}

/// `martelli worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Address to listen on, e.g. 0.0.0.0:7070 (port 0: any free port; with --join the
    /// default is 0.0.0.0:0).
    #[arg(long, required_unless_present = "join")]
    pub listen: Option<std::net::SocketAddr>,
    /// Offer this worker to the coordinator listening at HOST:PORT (its `listen`), and again
    /// every few seconds, so that it joins whichever coordinator listens there next.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub join: Option<String>,
    /// Host the coordinator should dial this worker back at (default: the address its
    /// offer comes from).
    #[arg(long, requires = "join")]
    pub advertise: Option<String>,
    /// CA certificate (PEM) to verify a TLS coordinator with when joining.
    #[arg(long, requires = "join")]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify in the coordinator's certificate (default: the --join host).
    #[arg(long, requires = "tls_ca")]
    pub tls_domain: Option<String>,
    /// Threads to run tasks on (default: every logical core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// File holding the shared token every call must carry (else MARTELLI_TOKEN, if set).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// TLS certificate (PEM); serve over TLS with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest message accepted or sent, e.g. 16MiB.
    #[arg(long, default_value_t = martelli_schedule::DEFAULT_MAX_MESSAGE_BYTES as u64, value_parser = parse_size)]
    pub max_message: u64,
    /// Runs served at once; more are refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_runs: u32,
    /// Working set (the buffer `memory` tasks read) all runs together may hold, e.g. 8GiB
    /// (default: half of this machine's memory).
    #[arg(long, value_parser = martelli_config::units::parse_size)]
    pub max_working_set: Option<u64>,
    /// Tasks one run may have queued (received, not started).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued_tasks: u64,
    /// Payload bytes one run may have queued, e.g. 1GiB.
    #[arg(long, default_value = "1GiB", value_parser = martelli_config::units::parse_size)]
    pub max_queued_bytes: u64,
    /// Results one run may have finished that its coordinator has not read; past them the run
    /// ends.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_unread_results: u64,
    /// How long a new connection may stay silent before it is closed, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub handshake_timeout: std::time::Duration,
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let d = martelli_config::units::parse_duration(text)?;
    if d.is_zero() {
        Err("must be longer than 0".into())
    } else {
        Ok(d)
    }
}

fn parse_host_port(text: &str) -> Result<String, String> {
    match text
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()))
    {
        Some((host, Ok(port))) if !host.is_empty() && port > 0 => Ok(text.to_string()),
        _ => Err("expected HOST:PORT, e.g. 10.0.0.1:7000 or coordinator:7000".into()),
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let bytes = martelli_config::units::parse_size(text)?;
    if (4096..=1 << 30).contains(&bytes) {
        Ok(bytes)
    } else {
        Err("must be between 4KiB and 1GiB".into())
    }
}

/// `martelli run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (TOML), e.g. configs/quickstart.toml.
    pub config: PathBuf,
    /// Run this tier instead of the config's.
    #[arg(long, value_enum)]
    pub tier: Option<martelli_config::Tier>,
    /// Core counts to sweep, comma-separated, e.g. 1,2,4 (1 is always measured).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub cores: Option<Vec<u64>>,
    #[command(flatten)]
    pub sweep: SweepOutput,
    /// Write the task timeline of each point's first measured run to FILE, as Chrome
    /// trace-event JSON (open it in Perfetto, ui.perfetto.dev, or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Also print where each point's efficiency goes: load balance x communication x
    /// computation (always in report.html and results.json).
    #[arg(long)]
    pub breakdown: bool,
    /// Wait for workers that join at this address (`martelli worker --join HOST:PORT`)
    /// instead of the config's [distributed] workers, e.g. 0.0.0.0:7000.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// How many joining workers to wait for (with --listen or the config's `listen`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub expect_workers: Option<u32>,
}

/// What `run` and `simulate` share: how many repeats, and where and how the results go.
#[derive(Debug, clap::Args)]
pub struct SweepOutput {
    /// Measured repeats per point.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeats: Option<u32>,
    /// Folder for results.json, results.csv, the charts and report.html (default: the
    /// config's [output] dir, else output/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Format of the charts written next to the results.
    #[arg(long, value_enum, default_value = "png")]
    pub format: FormatArg,
}

/// `martelli validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Config files to check.
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
}
