//! The 2-8 core tier: a rayon pool of exactly N threads, built fresh for each sweep point
//! (never the global pool, whose size is the machine's and whose threads other code shares).

use martelli_config::Tier;
use martelli_results::Sample;
use rayon::prelude::*;

use crate::record::{Recorder, timed_run};
use crate::{Job, PreparedPoint, RunError, Runner};

/// Spreads tasks over a pool of N threads with rayon's work stealing.
#[derive(Clone, Copy, Debug, Default)]
pub struct MultiRunner;

/// A pool of exactly N threads, reused by every repeat of one point.
struct MultiPoint {
    pool: rayon::ThreadPool,
}

impl Runner for MultiRunner {
    fn tier(&self) -> Tier {
        Tier::Multi
    }

    fn prepare(&self, cores: usize) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|i| format!("martelli-multi-{i}"))
            .build()
            .map_err(|e| RunError::Setup {
                tier: Tier::Multi,
                cores,
                reason: e.to_string(),
            })?;
        Ok(Box::new(MultiPoint { pool }))
    }
}

impl PreparedPoint for MultiPoint {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let workload = job.workload;
        timed_run(job, |start| {
            // Task ids are split across threads; each thread regenerates its tasks from their
            // ids, so no task list is ever materialised.
            let merged = self.pool.install(|| {
                (0..workload.tasks)
                    .into_par_iter()
                    .fold(
                        || Recorder::new(start),
                        |mut recorder, id| {
                            recorder.run_blocking(job.executor, &workload.task(id));
                            recorder
                        },
                    )
                    .reduce_with(Recorder::merge)
            });
            Ok(merged.unwrap_or_else(|| Recorder::new(start)))
        })
    }
}
