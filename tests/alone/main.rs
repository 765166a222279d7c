//! End-to-end tests that need the machine's cores to themselves: whether a run had its cores is
//! what they check. Each holds one lock, so they run one at a time, and cargo runs test binaries
//! one after another, so no other test competes with them.

#[path = "../common/mod.rs"]
mod common;

use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use common::{breakdowns_multiply_to_efficiency, run_ok, write};

static MACHINE: Mutex<()> = Mutex::new(());

/// The machine to this test alone (a failed test does not keep it).
fn alone() -> MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Processes that each keep a core busy, killed when dropped.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(n: usize) -> Hogs {
        Hogs(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_serial_phase_is_not_a_busy_machine_and_a_competing_process_is() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "half.toml",
        "tier = \"multi\"\n[workload]\nname = \"half-serial\"\ntasks = 200\nkind = \"cpu\"\n\
         task_cost = \"1ms\"\nserial_fraction = 0.5\n[sweep]\ncores = [1, 2]\nrepeats = 3\nwarmup = 0\n",
    );
    let busy = |results: &Value| {
        results["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("the machine is busy"))
    };
    // Half the work is serial: 2 cores keep ~1.33 busy by design, which is no busy machine. A
    // shared machine can be busy for a moment (and the warning is then right): three runs in a
    // row all called busy mean the warning blames the workload.
    let mut attempts = 0;
    let (results, stdout, _out) = loop {
        attempts += 1;
        let (results, stdout, out) = run_ok(&config, &["--breakdown"]);
        if !busy(&results) || attempts == 3 {
            break (results, stdout, out);
        }
    };
    assert!(!busy(&results), "{stdout}");
    assert_eq!(breakdowns_multiply_to_efficiency(&results), 1);
    let two = &results["points"][1];
    let b = &two["breakdown"];
    assert!(
        b["communication"].as_f64() < b["load_balance"].as_f64(),
        "the serial phase is communication: {two}"
    );
    assert!(stdout.contains("where the efficiency goes"), "{stdout}");
    let verdict = results["verdict"].as_str().unwrap();
    assert!(verdict.contains("lost to the serial phase"), "{verdict}");
    // Three processes that compute all the time take the cores from the run: that is a busy
    // machine, and the warning says so.
    let _hogs = Hogs::start(3);
    let (results, stdout, _out) = run_ok(&config, &[]);
    assert!(busy(&results), "{stdout}");
}
