//! What this machine offers a `memory` workload's working set: its last-level cache and the
//! memory it has available, read from the OS (Linux sysfs and procfs). Every reader degrades
//! to `None` ("unknown"), never fails.

use std::path::Path;

/// A CPU cache, as the OS describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cache {
    /// 1 for L1, 2 for L2, 3 for L3...
    pub level: u32,
    /// Size, bytes.
    pub bytes: u64,
}

impl Cache {
    /// "the 32 MiB L3".
    pub fn describe(&self) -> String {
        format!("the {} L{}", human_bytes(self.bytes), self.level)
    }
}

/// The last-level cache of CPU 0 (the largest level its caches list), if the OS says.
pub fn last_level_cache() -> Option<Cache> {
    last_level_cache_in(Path::new("/sys/devices/system/cpu/cpu0/cache"))
}

/// The last-level cache described under `dir` (sysfs's `indexN/{level,type,size}` layout).
pub fn last_level_cache_in(dir: &Path) -> Option<Cache> {
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|entry| {
            let path = entry.path();
            if read(&path.join("type"))?.trim() == "Instruction" {
                return None;
            }
            let level = read(&path.join("level"))?.trim().parse().ok()?;
            let bytes = parse_cache_size(read(&path.join("size"))?.trim())?;
            Some(Cache { level, bytes })
        })
        .max_by_key(|c| (c.level, c.bytes))
}

/// A sysfs cache size: "32768K", "1M", "512" (bytes).
fn parse_cache_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale).filter(|&b| b > 0)
}

/// Memory this process can have without swapping, bytes: what the OS says is available
/// (`MemAvailable`), or less when the process's control group (a container's, a Slurm job's)
/// has a memory limit: the limit less what the group uses, its reclaimable file cache aside.
pub fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let machine = kib.checked_mul(1024)?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    Some(match cgroup_room(&cgroups, Path::new("/sys/fs/cgroup")) {
        Some(room) => machine.min(room),
        None => machine,
    })
}

/// Room left under the memory limit of the control group `proc_cgroup` (the text of
/// `/proc/self/cgroup`) names, under the cgroup file system at `root`: v1's `memory`
/// controller or v2's unified hierarchy. `None` when there is no limit or it cannot be read.
pub fn cgroup_room(proc_cgroup: &str, root: &Path) -> Option<u64> {
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).ok();
    let number = |text: Option<String>| text?.trim().parse::<u64>().ok();
    let stat = |dir: &Path, key: &str| {
        read(dir.join("memory.stat"))?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
        })
    };
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            let dir = root.join("memory").join(path);
            let limit = number(read(dir.join("memory.limit_in_bytes")))?;
            if limit >= 1 << 62 {
                return None;
            }
            let used = number(read(dir.join("memory.usage_in_bytes")))?;
            let cache = stat(&dir, "total_inactive_file").unwrap_or(0);
            return Some(limit.saturating_sub(used.saturating_sub(cache)));
        }
        if controllers.is_empty() {
            let dir = root.join(path);
            let Some(limit) = number(read(dir.join("memory.max"))) else {
                continue;
            };
            let used = number(read(dir.join("memory.current")))?;
            let cache = stat(&dir, "inactive_file").unwrap_or(0);
            return Some(limit.saturating_sub(used.saturating_sub(cache)));
        }
    }
    None
}

/// Bytes as "32 MiB", "1.5 GiB", "4 KiB", "100 bytes".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_level_is_the_highest_data_or_unified_cache() {
        let dir = tempfile::tempdir().unwrap();
        for (i, level, kind, size) in [
            (0, "1", "Data", "32K"),
            (1, "1", "Instruction", "64K"),
            (2, "2", "Unified", "1024K"),
            (3, "3", "Unified", "32768K"),
        ] {
            let index = dir.path().join(format!("index{i}"));
            std::fs::create_dir(&index).unwrap();
            std::fs::write(index.join("level"), format!("{level}\n")).unwrap();
            std::fs::write(index.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(index.join("size"), format!("{size}\n")).unwrap();
        }
        let llc = last_level_cache_in(dir.path()).unwrap();
        assert_eq!(
            llc,
            Cache {
                level: 3,
                bytes: 32 << 20
            }
        );
        assert_eq!(llc.describe(), "the 32 MiB L3");
        assert_eq!(
            last_level_cache_in(&dir.path().join("none")),
            None,
            "unknown, no error"
        );
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("12x"), None);
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
    }

    #[test]
    fn a_control_groups_memory_limit_bounds_what_is_available() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("memory/job");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "1073741824\n").unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "536870912\n").unwrap();
        std::fs::write(v1.join("memory.stat"), "cache 1\ntotal_inactive_file 268435456\n").unwrap();
        assert_eq!(
            cgroup_room("4:memory:/job\n0::/\n", root.path()),
            Some(768 << 20),
            "1 GiB less 512 MiB used, 256 MiB of it reclaimable cache"
        );
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroup_room("4:memory:/job\n", root.path()), None, "no limit");
        let v2 = root.path().join("slice");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.max"), "2147483648\n").unwrap();
        std::fs::write(v2.join("memory.current"), "1073741824\n").unwrap();
        assert_eq!(cgroup_room("0::/slice\n", root.path()), Some(1 << 30));
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        assert_eq!(
            cgroup_room("0::/slice\n", root.path()),
            None,
            "v2 without a limit"
        );
        assert!(available_memory_bytes().is_some_and(|b| b > 0));
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
