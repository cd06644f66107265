//! Training runs in the store: the run record, one row per optimizer step
//! and one per validation pass, keyed (run id, step) so a step that runs
//! again after a resume replaces its row instead of adding one. Each step
//! is committed with the run record in one transaction: `kill -9` loses
//! only the step in flight.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{StoreError, db_err, decode, encode, readable};
use crate::results::training::{EvalRow, StepRow, TrainingRun};

const TRAINING_RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("training_runs");
const TRAINING_STEPS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("training_steps");
const TRAINING_EVALS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("training_evals");

/// Creates the tables (at open, so readers never meet a missing one).
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(TRAINING_RUNS)?;
    txn.open_table(TRAINING_STEPS)?;
    txn.open_table(TRAINING_EVALS)?;
    Ok(())
}

fn row_key(run_id: &str, step: u64) -> String {
    format!("{run_id}#{step}")
}

impl super::Store {
    /// Inserts or replaces a training run's record.
    pub fn put_training_run(&self, run: &TrainingRun) -> Result<(), StoreError> {
        let bytes = encode("training_runs", &run.id, run)?;
        self.write(|txn| {
            txn.open_table(TRAINING_RUNS)?
                .insert(run.id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    /// Commits one step's row and the run record (its progress) together.
    pub fn record_training_step(&self, run: &TrainingRun, row: &StepRow) -> Result<(), StoreError> {
        let record = encode("training_runs", &run.id, run)?;
        let bytes = encode("training_steps", &row_key(&run.id, row.step), row)?;
        self.write(|txn| {
            txn.open_table(TRAINING_STEPS)?
                .insert((run.id.as_str(), row.step), bytes.as_slice())?;
            txn.open_table(TRAINING_RUNS)?
                .insert(run.id.as_str(), record.as_slice())?;
            Ok(())
        })
    }

    /// Commits one validation pass and the run record together.
    pub fn record_training_eval(&self, run: &TrainingRun, row: &EvalRow) -> Result<(), StoreError> {
        let record = encode("training_runs", &run.id, run)?;
        let bytes = encode("training_evals", &row_key(&run.id, row.step), row)?;
        self.write(|txn| {
            txn.open_table(TRAINING_EVALS)?
                .insert((run.id.as_str(), row.step), bytes.as_slice())?;
            txn.open_table(TRAINING_RUNS)?
                .insert(run.id.as_str(), record.as_slice())?;
            Ok(())
        })
    }

    /// Drops the step and validation rows after `step` (a resume from the
    /// checkpoint at `step` runs them again; rows of the abandoned attempt
    /// must not outlive it).
    pub fn forget_training_after(&self, run_id: &str, step: u64) -> Result<(), StoreError> {
        self.write(|txn| {
            for table in [TRAINING_STEPS, TRAINING_EVALS] {
                let mut t = txn.open_table(table)?;
                t.retain_in((run_id, step + 1)..=(run_id, u64::MAX), |_, _| false)?;
            }
            Ok(())
        })
    }

    pub fn training_run(&self, id: &str) -> Result<Option<TrainingRun>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(TRAINING_RUNS)
                .map_err(|e| db_err(&self.path, e))?;
            match t.get(id).map_err(|e| db_err(&self.path, e))? {
                Some(v) => decode("training_runs", v.value()).map(Some),
                None => Ok(None),
            }
        })
    }

    /// All training runs, oldest first.
    pub fn training_runs(&self) -> Result<Vec<TrainingRun>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(TRAINING_RUNS)
                .map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| db_err(&self.path, e))? {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                out.extend(readable::<TrainingRun>(
                    "training_runs",
                    k.value(),
                    v.value(),
                ));
            }
            out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    /// A training run by id or unique id prefix; None when nothing matches.
    pub fn find_training_run(&self, id_or_prefix: &str) -> Result<Option<TrainingRun>, StoreError> {
        if let Some(run) = self.training_run(id_or_prefix)? {
            return Ok(Some(run));
        }
        super::by_id_or_prefix(self.training_runs()?, id_or_prefix, |r| &r.id)
    }

    /// A run's step rows in step order.
    pub fn training_steps(&self, run_id: &str) -> Result<Vec<StepRow>, StoreError> {
        self.training_rows(TRAINING_STEPS, "training_steps", run_id)
    }

    /// A run's validation passes in step order.
    pub fn training_evals(&self, run_id: &str) -> Result<Vec<EvalRow>, StoreError> {
        self.training_rows(TRAINING_EVALS, "training_evals", run_id)
    }

    fn training_rows<T: for<'de> Deserialize<'de> + Serialize>(
        &self,
        table: TableDefinition<(&str, u64), &[u8]>,
        name: &'static str,
        run_id: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(table).map_err(|e| db_err(&self.path, e))?;
            let range = t
                .range((run_id, 0u64)..=(run_id, u64::MAX))
                .map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in range {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                let (id, step) = k.value();
                out.extend(readable::<T>(name, &row_key(id, step), v.value()));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use crate::results::training::*;

    fn sample_run(id: &str) -> TrainingRun {
        TrainingRun {
            id: id.into(),
            method: "dpo".into(),
            status: TrainStatus::Running,
            error: None,
            config_path: "t.toml".into(),
            config_text: "[train]\n".into(),
            config_sha256: "c".into(),
            model: "m".into(),
            model_sha256: "m".into(),
            data_path: "d.jsonl".into(),
            data_sha256: "d".into(),
            hyperparameters: serde_json::json!({"beta": 0.1}),
            train_pairs: 6,
            validation_pairs: 2,
            skipped_empty: 0,
            truncated: TruncatedCounts::default(),
            total_steps: 4,
            steps_done: 0,
            created_at: super::super::now(),
            updated_at: super::super::now(),
            finished_at: None,
            seconds: 0.0,
            peak_rss_bytes: None,
            output: "out".into(),
            attempts: vec![],
            final_validation: None,
            host_version: "0".into(),
        }
    }

    fn step(step: u64, loss: f64) -> StepRow {
        StepRow {
            step,
            metrics: [("loss".to_string(), loss)].into(),
            tokens_per_second: 1.0,
            tokens: 10,
            pairs: 2,
            seconds: 10.0,
        }
    }

    #[test]
    fn a_rerun_step_replaces_its_row_and_a_resume_forgets_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.redb")).unwrap();
        let mut run = sample_run("abc123");
        s.put_training_run(&run).unwrap();
        for i in 1..=3 {
            run.steps_done = i;
            s.record_training_step(&run, &step(i, 0.7)).unwrap();
        }
        s.record_training_eval(
            &run,
            &EvalRow {
                step: 3,
                metrics: [("loss".to_string(), 0.69)].into(),
            },
        )
        .unwrap();
        // Resumed from the checkpoint at step 2: step 3 runs again.
        s.forget_training_after("abc123", 2).unwrap();
        assert_eq!(s.training_steps("abc123").unwrap().len(), 2);
        assert!(s.training_evals("abc123").unwrap().is_empty());
        s.record_training_step(&run, &step(3, 0.6)).unwrap();
        s.record_training_step(&run, &step(3, 0.5)).unwrap();
        let steps = s.training_steps("abc123").unwrap();
        assert_eq!(
            steps.iter().map(|r| r.step).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(steps[2].metrics["loss"], 0.5);
        assert_eq!(s.training_run("abc123").unwrap().unwrap().steps_done, 3);

        s.put_training_run(&sample_run("abd000")).unwrap();
        assert_eq!(s.find_training_run("abc").unwrap().unwrap().id, "abc123");
        assert!(s.find_training_run("ab").is_err(), "ambiguous");
        assert!(s.find_training_run("zz").unwrap().is_none());
        assert_eq!(s.training_runs().unwrap().len(), 2);
        assert!(s.training_steps("abd000").unwrap().is_empty());
    }
}
