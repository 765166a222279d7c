//! Writing results atomically: a temporary file in the target folder, renamed into place, so a
//! crash or a failed run never leaves a half-written file or destroys the previous results.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::schema::Results;

/// A results file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}")]
pub struct WriteError {
    /// The file (or folder) that could not be written.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    // A temporary file is private (0600); the results are not: readable as any file is.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(fail)?;
    }
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Writes `results.json` and `results.csv` into `dir`, each atomically. Returns their paths.
pub fn write_results(dir: &Path, results: &Results) -> Result<Vec<PathBuf>, WriteError> {
    let json_path = dir.join("results.json");
    let mut json = serde_json::to_vec_pretty(results).map_err(|e| WriteError {
        path: json_path.clone(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    write_atomic(&json_path, &json)?;
    let csv_path = dir.join("results.csv");
    write_atomic(&csv_path, to_csv(results).as_bytes())?;
    Ok(vec![json_path, csv_path])
}

/// The points as CSV, one row per point, latency flattened into three columns.
pub(crate) fn to_csv(results: &Results) -> String {
    let mut out = String::from(
        "series,tier,cores,tasks,iterations,repeats,wall_s,wall_s_min,wall_s_max,tasks_per_s,speedup,efficiency,\
         latency_p50_us,latency_p95_us,latency_p99_us,mean_task_us,first_result_s,cpu_s,tasks_completed,checksum,predicted,peak_rss_mib,\
         workers,bytes_sent,bytes_received,rpc_batches,retried_tasks,lost_workers,dropped_results\n",
    );
    for p in &results.points {
        let series = if p.series.contains([',', '"', '\n']) {
            format!("\"{}\"", p.series.replace('"', "\"\""))
        } else {
            p.series.clone()
        };
        let wire = p.distributed.map_or_else(
            || ",,,,,,".to_string(),
            |w| {
                format!(
                    "{},{},{},{},{},{},{}",
                    w.workers,
                    w.bytes_sent,
                    w.bytes_received,
                    w.rpc_batches,
                    w.retried_tasks,
                    w.lost_workers,
                    w.dropped_results
                )
            },
        );
        out.push_str(&format!(
            "{series},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{wire}\n",
            p.tier,
            p.cores,
            p.tasks,
            p.iterations,
            p.repeats,
            p.wall_s,
            p.wall_s_min,
            p.wall_s_max,
            p.tasks_per_s,
            p.speedup,
            p.efficiency,
            p.latency_us.p50,
            p.latency_us.p95,
            p.latency_us.p99,
            p.mean_task_us,
            p.first_result_s,
            p.cpu_s,
            p.tasks_completed,
            p.checksum,
            p.predicted,
            p.peak_rss_mib.map_or_else(String::new, |m| format!("{m:.1}")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/results.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "results are readable like any file, not private");
        }
    }
}
