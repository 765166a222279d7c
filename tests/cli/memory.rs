//! Memory-bound means memory: the machine's last-level cache is recorded, a `memory` workload
//! without a working set spans four times it, one that fits in it is called cache-bound, and
//! one larger than the memory at hand is refused before anything runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::distributed::{Worker, on_workers};
use crate::{martelli, run_ok, text, write};

fn memory_config(dir: &Path, name: &str, working_set: Option<&str>) -> PathBuf {
    let ws = working_set.map_or(String::new(), |w| format!("working_set = \"{w}\"\n"));
    write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "tier = \"multi\"\n[workload]\nname = \"{name}\"\ntasks = 20\nkind = \"memory\"\n\
             iterations = 200\n{ws}[sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n"
        ),
    )
}

#[test]
fn a_default_working_set_spans_four_times_the_last_level_cache_and_a_small_one_is_cache_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (results, stdout, _out) = run_ok(&memory_config(dir.path(), "default", None), &[]);
    let used = results["config"]["workload"]["working_set"].as_u64().unwrap();
    match results["machine"]["llc_bytes"].as_u64() {
        Some(llc) => {
            assert!(used >= 4 * llc, "{used} bytes for a {llc}-byte cache");
            assert!(!stdout.contains("cache-bound"), "{stdout}");
        }
        None => assert!(stdout.contains("does not say how large"), "{stdout}"),
    }
    let (results, stdout, _out) = run_ok(&memory_config(dir.path(), "small", Some("64KiB")), &[]);
    assert_eq!(
        results["config"]["workload"]["working_set"], "64KiB",
        "as the file says"
    );
    if let Some(llc) = results["machine"]["llc_bytes"].as_u64() {
        assert!(llc > 64 << 10);
        assert!(
            stdout.contains("small: its working set (64 KiB) fits in the") && stdout.contains("cache-bound"),
            "{stdout}"
        );
    }
}

/// A memory control group of `limit` bytes, removed when dropped (cgroup v1's memory
/// controller, where this process's group is); `None` where there is none or we may not.
struct MemoryGroup(PathBuf);

impl MemoryGroup {
    fn create(limit: u64) -> Option<MemoryGroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))?;
        let dir = Path::new("/sys/fs/cgroup/memory")
            .join(path.trim_start_matches('/'))
            .join(format!("martelli-test-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let group = MemoryGroup(dir);
        std::fs::write(group.0.join("memory.limit_in_bytes"), limit.to_string()).ok()?;
        Some(group)
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_working_set_above_the_memory_at_hand_exits_2_before_anything_runs() {
    let Some(group) = MemoryGroup::create(256 << 20) else {
        eprintln!("skipped: no cgroup v1 memory controller to make a 256 MiB group in (needs root)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = memory_config(dir.path(), "big", Some("512MiB"));
    let out = dir.path().join("out");
    // The run starts inside the 256 MiB group: its 512 MiB working set cannot be had there.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec {} run {} --out {}",
            group.0.display(),
            env!("CARGO_BIN_EXE_martelli"),
            config.display(),
            out.display()
        ))
        .env("MARTELLI_CALIBRATION", "")
        .output()
        .unwrap();
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    for words in ["workload.working_set", "512 MiB is more than the", "available"] {
        assert!(stderr.contains(words), "{stderr:?} lacks {words:?}");
    }
    assert!(!out.join("results.json").exists(), "nothing ran");
}

#[test]
fn a_worker_refuses_a_working_set_above_its_memory_and_the_point_names_it() {
    let Some(group) = MemoryGroup::create(256 << 20) else {
        eprintln!("skipped: no cgroup v1 memory controller to make a 256 MiB group in (needs root)");
        return;
    };
    let mut worker = Worker::start_in_group(&group.0.join("cgroup.procs"), &["--threads", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let config = on_workers(
        dir.path(),
        "tasks = 4\nkind = \"memory\"\niterations = 10\nworking_set = \"512MiB\"",
        "2",
        &[&worker],
        "",
    );
    let o = martelli(&[
        "run",
        config.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    for words in [
        worker.address.as_str(),
        "512 MiB is more than the",
        "available here",
    ] {
        assert!(stderr.contains(words), "{stderr:?} lacks {words:?}");
    }
    assert!(worker.is_running(), "the worker serves on");
    drop(worker);
}
