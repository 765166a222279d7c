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

/// The files of one output, written under temporary names in their folder and put in place
/// together by [`Staged::commit`] once every one of them is written: a run whose chart or
/// report fails (a full disk) replaces none of the previous run's files. What is not committed
/// is removed when this is dropped.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    /// (temporary, final) paths, in the order staged.
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    /// Output into `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Staged, WriteError> {
        std::fs::create_dir_all(dir).map_err(|source| WriteError {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            files: Vec::new(),
        })
    }

    /// The folder the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stages the file `name` (`speedup.png`): returns the temporary path to write it at, which
    /// keeps the extension (encoders go by it), and the path it will have.
    pub fn file(&mut self, name: &str) -> (PathBuf, PathBuf) {
        let (stem, extension) = name.rsplit_once('.').unwrap_or((name, "tmp"));
        let partial = self.dir.join(format!(".{stem}.partial.{extension}"));
        let path = self.dir.join(name);
        self.files.push((partial.clone(), path.clone()));
        (partial, path)
    }

    /// Stages the file `name` with `bytes` in it, flushed to the disk.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, WriteError> {
        let (partial, path) = self.file(name);
        let fail = |source| WriteError {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&partial).map_err(fail)?;
        file.write_all(bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(path)
    }

    /// Puts every staged file in place (renames within one folder); returns their paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, WriteError> {
        let files = std::mem::take(&mut self.files);
        let mut written = Vec::with_capacity(files.len());
        for (i, (partial, path)) in files.iter().enumerate() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o644));
            }
            if let Err(source) = std::fs::rename(partial, path) {
                for (rest, _) in &files[i..] {
                    let _ = std::fs::remove_file(rest);
                }
                return Err(WriteError {
                    path: path.clone(),
                    source,
                });
            }
            written.push(path.clone());
        }
        Ok(written)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (partial, _) in &self.files {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// Stages `results.json` and `results.csv`.
pub fn stage_results(staged: &mut Staged, results: &Results) -> Result<(), WriteError> {
    let mut json = serde_json::to_vec_pretty(results).map_err(|e| WriteError {
        path: staged.dir().join("results.json"),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    staged.write("results.json", &json)?;
    staged.write("results.csv", to_csv(results).as_bytes())?;
    Ok(())
}

/// The points as CSV, one row per point, latency flattened into three columns.
pub(crate) fn to_csv(results: &Results) -> String {
    let mut out = String::from(
        "series,tier,cores,tasks,iterations,repeats,wall_s,wall_s_min,wall_s_max,tasks_per_s,speedup,efficiency,\
         latency_p50_us,latency_p95_us,latency_p99_us,mean_task_us,first_result_s,cpu_s,tasks_completed,checksum,predicted,peak_rss_mib,\
         workers,bytes_sent,bytes_received,rpc_batches,retried_tasks,lost_workers,dropped_results,reissued_tasks\n",
    );
    for p in &results.points {
        let series = if p.series.contains([',', '"', '\n']) {
            format!("\"{}\"", p.series.replace('"', "\"\""))
        } else {
            p.series.clone()
        };
        let wire = p.distributed.map_or_else(
            || ",,,,,,,".to_string(),
            |w| {
                format!(
                    "{},{},{},{},{},{},{},{}",
                    w.workers,
                    w.bytes_sent,
                    w.bytes_received,
                    w.rpc_batches,
                    w.retried_tasks,
                    w.lost_workers,
                    w.dropped_results,
                    w.reissued_tasks
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

    #[test]
    fn staged_files_appear_together_on_commit_and_vanish_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "old").unwrap();
        let mut staged = Staged::new(dir.path()).unwrap();
        staged.write("a.json", b"new").unwrap();
        let (partial, _) = staged.file("b.png");
        std::fs::write(&partial, b"png").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a.json")).unwrap(),
            b"old",
            "nothing replaced yet"
        );
        drop(staged);
        assert_eq!(std::fs::read(dir.path().join("a.json")).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporaries left"
        );

        let mut staged = Staged::new(dir.path()).unwrap();
        staged.write("a.json", b"new").unwrap();
        staged.write("b.csv", b"csv").unwrap();
        let written = staged.commit().unwrap();
        assert_eq!(written, vec![dir.path().join("a.json"), dir.path().join("b.csv")]);
        assert_eq!(std::fs::read(dir.path().join("a.json")).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
