//! What the end-to-end test binaries share: running the real `martelli` binary as a user would,
//! and reading what it wrote.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub(crate) fn martelli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_martelli"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        // A calibration a developer keeps in output/ must not change what the tests see.
        .env("MARTELLI_CALIBRATION", "")
        .output()
        .expect("the martelli binary runs")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs a config into a fresh folder and returns the parsed results.json.
pub(crate) fn run_ok(config: &Path, extra: &[&str]) -> (Value, String, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        config.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = martelli(&args);
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).is_empty(),
        "nothing on stderr in a pipe: {}",
        text(&o.stderr)
    );
    let results = read_json(&out.path().join("results.json"));
    (results, text(&o.stdout), out)
}

/// Runs `martelli run CONFIG --out OUT EXTRA...`, expects exit code `code` and a message
/// containing every one of `words`, with no panic; returns stderr.
pub(crate) fn run_fails(config: &Path, out: &Path, extra: &[&str], code: i32, words: &[&str]) -> String {
    let mut args = vec!["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = martelli(&args);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "{args:?}: {stderr:?} lacks {word:?}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

pub(crate) fn checksums(results: &Value) -> Vec<String> {
    results["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["checksum"].as_str().unwrap().to_string())
        .collect()
}

/// Every point past one core carries a breakdown whose factors multiply to its efficiency
/// (within 5%); returns how many did.
pub(crate) fn breakdowns_multiply_to_efficiency(results: &Value) -> usize {
    let mut seen = 0;
    for p in results["points"].as_array().unwrap() {
        if p["cores"].as_u64().unwrap() <= 1 {
            assert!(p.get("breakdown").is_none(), "no breakdown at one core: {p}");
            continue;
        }
        let b = &p["breakdown"];
        let product = ["load_balance", "communication", "computation"]
            .iter()
            .map(|k| b[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {p}")))
            .product::<f64>();
        let efficiency = p["efficiency"].as_f64().unwrap();
        assert!(
            (product - efficiency).abs() <= 0.05 * efficiency,
            "the factors multiply to {product}, the efficiency is {efficiency}: {p}"
        );
        if let (Some(s), Some(t)) = (b["serialisation"].as_f64(), b["transfer"].as_f64()) {
            let c = b["communication"].as_f64().unwrap();
            assert!(
                (s * t - c).abs() <= 1e-6 * c.max(1.0),
                "serialisation x transfer: {p}"
            );
        }
        seen += 1;
    }
    seen
}

/// A child process the test owns (a worker, local or in a network namespace): its stderr lines
/// are collected for waiting on, and it is resumed (if stopped), killed and reaped when the
/// guard is dropped, whatever the test's outcome.
pub(crate) struct Process {
    child: std::process::Child,
    log: std::sync::mpsc::Receiver<String>,
}

impl Process {
    /// Spawns `command` with its stderr piped into the log (`RUST_LOG=info`, no inherited token).
    pub(crate) fn spawn(command: &mut Command) -> Process {
        use std::io::{BufRead, BufReader};
        let mut child = command
            .env("RUST_LOG", "info")
            .env_remove("MARTELLI_TOKEN")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the process starts");
        let (tx, log) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Process { child, log }
    }

    /// The first line the process prints on stdout (which must be piped).
    pub(crate) fn first_stdout_line(&mut self) -> String {
        use std::io::{BufRead, BufReader};
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("stdout reads");
        line.trim_end().to_string()
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits (a minute at most) until the process logs a line containing `words`; returns it.
    pub(crate) fn wait_for_log(&self, words: &str) -> String {
        self.wait_for_log_of(&[words])
    }

    /// Waits (a minute at most) until the process logs a line containing one of `words`.
    pub(crate) fn wait_for_log_of(&self, words: &[&str]) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = self.log.recv_timeout(std::time::Duration::from_millis(100))
                && words.iter().any(|w| line.contains(w))
            {
                return line;
            }
        }
        panic!("process {} never logged any of {words:?}", self.pid());
    }

    /// Whether a line logged so far (and not yet waited for) contains `words`.
    pub(crate) fn saw_log(&self, words: &str) -> bool {
        self.log.try_iter().any(|line| line.contains(words))
    }

    /// Sends `signal` (`-STOP`, `-KILL`, ...) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
