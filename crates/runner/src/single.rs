//! The 1-core tier: one thread, a plain loop over the tasks, no pool. It is also the baseline
//! of every speed-up, so it must add nothing to the work but the shared measuring.

use martelli_config::Tier;
use martelli_results::Sample;

use crate::record::{Recorder, timed_run};
use crate::{Job, PreparedPoint, RunError, Runner};

/// Runs every task in order on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleRunner;

impl Runner for SingleRunner {
    fn tier(&self) -> Tier {
        Tier::Single
    }

    fn prepare(&self, cores: usize) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        if cores != 1 {
            return Err(RunError::Setup {
                tier: Tier::Single,
                cores,
                reason: "the single tier runs on exactly one core".into(),
            });
        }
        Ok(Box::new(SingleRunner))
    }
}

impl PreparedPoint for SingleRunner {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        timed_run(job, |start| {
            let mut recorder = Recorder::new(start);
            for task in job.workload.tasks() {
                recorder.run_blocking(job.executor, &task);
            }
            Ok(recorder)
        })
    }
}
