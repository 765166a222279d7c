//! Facts about the machine a run happened on, so that results from two machines are never
//! confused. Read from the OS once per run; every field degrades to "unknown", never fails.

use serde::{Deserialize, Serialize};

/// The machine that produced a set of results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Logical cores the OS offers this process.
    pub logical_cores: usize,
    /// CPU model name, e.g. "AMD EPYC 7B13".
    pub cpu_model: String,
    /// Operating system, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    /// Kernel release, e.g. "6.1.0-18-amd64".
    pub kernel: String,
    /// CPU architecture, e.g. "x86_64".
    pub arch: String,
    /// Size of the last-level cache, bytes (`null`: the OS did not say).
    #[serde(default)]
    pub llc_bytes: Option<u64>,
    /// Level of that cache (3 for an L3), when known.
    #[serde(default)]
    pub llc_level: Option<u32>,
}

impl Machine {
    /// Reads the facts of the machine this process runs on.
    pub fn current() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once(':')?;
                matches!(key.trim(), "model name" | "Model" | "cpu model").then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let or_unknown = |s: String| {
            if s.trim().is_empty() {
                "unknown".into()
            } else {
                s.trim().to_string()
            }
        };
        let llc = martelli_config::host::last_level_cache();
        Machine {
            hostname: or_unknown(read("/proc/sys/kernel/hostname")),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            os,
            kernel: or_unknown(read("/proc/sys/kernel/osrelease")),
            arch: std::env::consts::ARCH.to_string(),
            llc_bytes: llc.map(|c| c.bytes),
            llc_level: llc.map(|c| c.level),
        }
    }
}
