//! Durable storage in redb: experiments, their runs (one per example),
//! summaries and sweep groups; training runs with their step and
//! validation rows ([`training`]). Each finished run (each training step)
//! is committed in its own transaction, so a killed process loses at most
//! the examples (the step) in flight.
//!
//! Values are JSON so a record can grow fields without a migration and can be
//! read by `forge-host export` as is.
//!
//! One process writes (`run`, `train`, ...) while any number read
//! ([`Store::open_read_only`]: `forge-host view`): the file is opened in
//! redb's `SingleWriter` mode, so a reader sees each commit as it lands and
//! never blocks the writer.

use std::path::{Path, PathBuf};

use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition,
};
use serde::{Deserialize, Serialize};

pub use super::records::*;

mod optimization;
mod training;

const EXPERIMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("experiments");
const RUNS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("runs");
const SUMMARIES: TableDefinition<&str, &[u8]> = TableDefinition::new("summaries");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store {0} is open in another forge-host process; wait for it or use --home")]
    InUse(PathBuf),
    #[error("store {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("no store at {0} yet (run an experiment first, or pass --home)")]
    Missing(PathBuf),
    #[error("the store {0} is open read-only")]
    ReadOnly(PathBuf),
    #[error("no experiment matches {0:?} (see `forge-host list`)")]
    NotFound(String),
    #[error("{0:?} matches several experiments: {1}")]
    Ambiguous(String, String),
    #[error("experiment {id}: illegal status change {from:?} -> {to:?}")]
    IllegalTransition {
        id: String,
        from: Status,
        to: Status,
    },
    #[error("corrupt record in {table}: {message}")]
    Corrupt {
        table: &'static str,
        message: String,
    },
    #[error("refusing to store {table} record {key}: it would not read back ({message})")]
    Unreadable {
        table: &'static str,
        key: String,
        message: String,
    },
}

pub struct Store {
    db: Db,
    path: PathBuf,
}

/// The writer's handle, or a reader's beside it.
enum Db {
    Writer(Database),
    Reader(ReadOnlyDatabase),
}

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| db_err(path, e))?;
        }
        let db = builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.into()),
            other => db_err(path, other),
        })?;
        let store = Self {
            db: Db::Writer(db),
            path: path.into(),
        };
        // Create the tables so readers never meet a missing one.
        store.write(|txn| {
            txn.open_table(EXPERIMENTS)?;
            txn.open_table(RUNS)?;
            txn.open_table(SUMMARIES)?;
            txn.open_table(GROUPS)?;
            training::create_tables(txn)?;
            optimization::create_tables(txn)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// A reader beside whichever process writes: every read transaction
    /// sees the writer's last commit. Writing through it is an error.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.into()));
        }
        let db = builder().open_read_only(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.into()),
            other => db_err(path, other),
        })?;
        Ok(Self {
            db: Db::Reader(db),
            path: path.into(),
        })
    }

    /// For commands that only read (`list`, `show`, `compare`, `export`,
    /// `report`): the writer's handle when the store is free, else a
    /// reader beside the process that writes it (a running experiment).
    pub fn open_to_read(path: &Path) -> Result<Self, StoreError> {
        match Self::open(path) {
            Err(StoreError::InUse(_)) => Self::open_read_only(path),
            other => other,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<R>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R, redb::Error>,
    ) -> Result<R, StoreError> {
        let Db::Writer(db) = &self.db else {
            return Err(StoreError::ReadOnly(self.path.clone()));
        };
        let txn = db.begin_write().map_err(|e| db_err(&self.path, e))?;
        let out = f(&txn).map_err(|e| db_err(&self.path, e))?;
        txn.commit().map_err(|e| db_err(&self.path, e))?;
        Ok(out)
    }

    fn read<R>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = match &self.db {
            Db::Writer(db) => db.begin_read(),
            Db::Reader(db) => db.begin_read(),
        }
        .map_err(|e| db_err(&self.path, e))?;
        f(&txn)
    }

    /// Inserts or replaces an experiment record.
    pub fn put_experiment(&self, exp: &Experiment) -> Result<(), StoreError> {
        let bytes = encode("experiments", &exp.id, exp)?;
        self.write(|txn| {
            txn.open_table(EXPERIMENTS)?
                .insert(exp.id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    pub fn experiment(&self, id: &str) -> Result<Experiment, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(EXPERIMENTS)
                .map_err(|e| db_err(&self.path, e))?;
            let v = t
                .get(id)
                .map_err(|e| db_err(&self.path, e))?
                .ok_or_else(|| StoreError::NotFound(id.into()))?;
            decode("experiments", v.value())
        })
    }

    /// Finds an experiment by id or unique id prefix.
    pub fn find(&self, id_or_prefix: &str) -> Result<Experiment, StoreError> {
        by_id_or_prefix(self.experiments()?, id_or_prefix, |e| &e.id)?
            .ok_or_else(|| StoreError::NotFound(id_or_prefix.into()))
    }

    /// All experiments, oldest first.
    pub fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(EXPERIMENTS)
                .map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| db_err(&self.path, e))? {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                out.extend(readable::<Experiment>("experiments", k.value(), v.value()));
            }
            out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    /// Moves an experiment along its life cycle; refuses any other move.
    pub fn set_status(
        &self,
        id: &str,
        to: Status,
        error: Option<String>,
    ) -> Result<Experiment, StoreError> {
        let mut exp = self.experiment(id)?;
        if !exp.status.can_become(to) {
            return Err(StoreError::IllegalTransition {
                id: id.into(),
                from: exp.status,
                to,
            });
        }
        let now = now();
        match to {
            Status::Running => exp.started_at = Some(now),
            Status::Completed | Status::Failed => exp.finished_at = Some(now),
            Status::Pending => {}
        }
        exp.status = to;
        if error.is_some() {
            exp.error = error;
        }
        self.put_experiment(&exp)?;
        Ok(exp)
    }

    /// The unfinished experiment with this plan, if any (to resume it).
    pub fn resumable(&self, plan_sha256: &str) -> Result<Option<Experiment>, StoreError> {
        Ok(self.experiments()?.into_iter().rev().find(|e| {
            e.plan_sha256 == plan_sha256 && matches!(e.status, Status::Pending | Status::Running)
        }))
    }

    /// The newest experiment that completed this exact plan (a command that
    /// builds on experiments reuses it instead of running the plan again).
    pub fn completed(&self, plan_sha256: &str) -> Result<Option<Experiment>, StoreError> {
        Ok(self
            .experiments()?
            .into_iter()
            .rev()
            .find(|e| e.plan_sha256 == plan_sha256 && e.status == Status::Completed))
    }

    /// Commits one run durably.
    pub fn put_run(&self, experiment_id: &str, run: &RunRecord) -> Result<(), StoreError> {
        let bytes = encode("runs", &run_key(experiment_id, run.index), run)?;
        self.write(|txn| {
            txn.open_table(RUNS)?
                .insert((experiment_id, run.index), bytes.as_slice())?;
            Ok(())
        })
    }

    /// The runs of an experiment, in example order.
    pub fn runs(&self, experiment_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        self.all_runs(experiment_id)
    }

    /// Calls `f` on each run of an experiment in example order, one decoded
    /// at a time (export of 100,000 runs does not hold them all); stops
    /// early when `f` returns false.
    pub fn for_each_run(
        &self,
        experiment_id: &str,
        f: impl FnMut(RunRecord) -> bool,
    ) -> Result<(), StoreError> {
        self.each_run(experiment_id, f)
    }

    /// The one walk over an experiment's runs, decoded as `T` (the whole
    /// record or a projection); an unreadable row is reported and skipped.
    fn each_run<T: for<'de> Deserialize<'de>>(
        &self,
        experiment_id: &str,
        mut f: impl FnMut(T) -> bool,
    ) -> Result<(), StoreError> {
        self.read(|txn| {
            let t = txn.open_table(RUNS).map_err(|e| db_err(&self.path, e))?;
            let range = t
                .range((experiment_id, 0u32)..=(experiment_id, u32::MAX))
                .map_err(|e| db_err(&self.path, e))?;
            for row in range {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                let (id, index) = k.value();
                if let Some(run) = readable("runs", &run_key(id, index), v.value())
                    && !f(run)
                {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The first `limit` runs (what `show` prints), and how many there are.
    pub fn runs_head(
        &self,
        experiment_id: &str,
        limit: usize,
    ) -> Result<(Vec<RunRecord>, usize), StoreError> {
        let mut head = Vec::new();
        if limit == 0 {
            return Ok((head, self.run_count(experiment_id)?));
        }
        self.for_each_run(experiment_id, |r| {
            head.push(r);
            head.len() < limit
        })?;
        Ok((head, self.run_count(experiment_id)?))
    }

    /// The runs whose example index is in `[from, from + limit)`: one page
    /// of a large experiment, read without touching the others.
    pub fn runs_window(
        &self,
        experiment_id: &str,
        from: u32,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let end = from.saturating_add(u32::try_from(limit).unwrap_or(u32::MAX));
        if end == from {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let t = txn.open_table(RUNS).map_err(|e| db_err(&self.path, e))?;
            let range = t
                .range((experiment_id, from)..(experiment_id, end))
                .map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in range {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                let (id, index) = k.value();
                out.extend(readable("runs", &run_key(id, index), v.value()));
            }
            Ok(out)
        })
    }

    pub fn run_count(&self, experiment_id: &str) -> Result<usize, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(RUNS).map_err(|e| db_err(&self.path, e))?;
            let range = t
                .range((experiment_id, 0u32)..=(experiment_id, u32::MAX))
                .map_err(|e| db_err(&self.path, e))?;
            Ok(range.count())
        })
    }

    /// The scores, latency and counts of every run, without their texts.
    pub fn run_scores(&self, experiment_id: &str) -> Result<Vec<RunScores>, StoreError> {
        self.all_runs(experiment_id)
    }

    fn all_runs<T: for<'de> Deserialize<'de>>(
        &self,
        experiment_id: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each_run(experiment_id, |r| {
            out.push(r);
            true
        })?;
        Ok(out)
    }

    /// Writes many runs in one transaction (rescore copies a whole experiment).
    pub fn put_runs(&self, experiment_id: &str, runs: &[RunRecord]) -> Result<(), StoreError> {
        let encoded = runs
            .iter()
            .map(|run| encode("runs", &run_key(experiment_id, run.index), run))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(|txn| {
            let mut t = txn.open_table(RUNS)?;
            for (run, bytes) in runs.iter().zip(&encoded) {
                t.insert((experiment_id, run.index), bytes.as_slice())?;
            }
            Ok(())
        })
    }

    pub fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        let bytes = encode("groups", &group.id, group)?;
        self.write(|txn| {
            txn.open_table(GROUPS)?
                .insert(group.id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    /// All sweep groups, oldest first.
    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(GROUPS).map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| db_err(&self.path, e))? {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                out.extend(readable::<Group>("groups", k.value(), v.value()));
            }
            out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    /// A group by id or unique id prefix; None when nothing matches.
    pub fn find_group(&self, id_or_prefix: &str) -> Result<Option<Group>, StoreError> {
        by_id_or_prefix(self.groups()?, id_or_prefix, |g| &g.id)
    }

    pub fn put_summary(
        &self,
        experiment_id: &str,
        summary: &crate::results::stats::Summary,
    ) -> Result<(), StoreError> {
        let bytes = encode("summaries", experiment_id, summary)?;
        self.write(|txn| {
            txn.open_table(SUMMARIES)?
                .insert(experiment_id, bytes.as_slice())?;
            Ok(())
        })
    }

    pub fn summary(
        &self,
        experiment_id: &str,
    ) -> Result<Option<crate::results::stats::Summary>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(SUMMARIES)
                .map_err(|e| db_err(&self.path, e))?;
            match t.get(experiment_id).map_err(|e| db_err(&self.path, e))? {
                Some(v) => Ok(readable("summaries", experiment_id, v.value())),
                None => Ok(None),
            }
        })
    }
}

/// A record's bytes, refused when they would not read back: serde_json
/// writes a NaN as `null`, which no f64 field accepts, and one such record
/// used to make a whole experiment unreadable.
fn encode<T: Serialize + for<'de> Deserialize<'de>>(
    table: &'static str,
    key: &str,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    let unreadable = |e: serde_json::Error| StoreError::Unreadable {
        table,
        key: key.into(),
        message: e.to_string(),
    };
    let bytes = serde_json::to_vec(value).map_err(unreadable)?;
    serde_json::from_slice::<T>(&bytes).map_err(unreadable)?;
    Ok(bytes)
}

/// A record read in a listing; an unreadable one (written by an older
/// build, or damaged) is reported with its key and skipped, so the rest of
/// the experiment, and `list`, stay readable.
fn readable<T: for<'de> Deserialize<'de>>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Option<T> {
    match decode(table, bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("skipping unreadable record {table}/{key}: {e}");
            None
        }
    }
}

fn run_key(experiment_id: &str, index: u32) -> String {
    format!("{experiment_id}#{index}")
}

fn decode<T: for<'de> Deserialize<'de>>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

/// The item whose id is `id_or_prefix`, else the one whose id starts with
/// it; several such is an error listing them (experiments, groups and
/// training runs resolve ids alike).
pub(crate) fn by_id_or_prefix<T>(
    all: Vec<T>,
    id_or_prefix: &str,
    id: impl Fn(&T) -> &str,
) -> Result<Option<T>, StoreError> {
    let mut hits: Vec<T> = Vec::new();
    for item in all {
        if id(&item) == id_or_prefix {
            return Ok(Some(item));
        }
        if id(&item).starts_with(id_or_prefix) {
            hits.push(item);
        }
    }
    match hits.len() {
        0 | 1 => Ok(hits.pop()),
        _ => Err(StoreError::Ambiguous(
            id_or_prefix.into(),
            hits.iter().map(&id).collect::<Vec<_>>().join(", "),
        )),
    }
}

fn db_err(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db {
        path: path.into(),
        message: e.into().to_string(),
    }
}

/// RFC 3339 UTC timestamp.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format timestamp")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::ModelInfo;
    use std::collections::BTreeMap;

    #[test]
    fn status_moves_only_forward() {
        use Status::*;
        let all = [Pending, Running, Completed, Failed];
        let allowed: Vec<_> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![(Pending, Running), (Running, Completed), (Running, Failed)]
        );
    }

    pub(crate) fn sample_experiment(id: &str) -> Experiment {
        Experiment {
            id: id.into(),
            name: "t".into(),
            status: Status::Pending,
            config_path: "c.toml".into(),
            config_text: String::new(),
            config_sha256: "c".into(),
            plan_sha256: "p".into(),
            created_at: now(),
            started_at: None,
            finished_at: None,
            host_version: "0".into(),
            host_sha256: "h".into(),
            wasmtime_version: "0".into(),
            model: ModelInfo {
                source: "m".into(),
                path: "m".into(),
                sha256: "m".into(),
                architecture: "llama".into(),
                context_length: 1,
                weights: "q8_0".into(),
                adapter: None,
                threads: 1,
                backend: crate::engine::BackendKind::CandleCpu,
                load_ms: 0.0,
            },
            plugins: vec![],
            dataset_path: "d".into(),
            dataset_sha256: "d".into(),
            example_ids: vec![],
            score_names: vec![],
            error: None,
            rescored_from: None,
            judged: None,
        }
    }

    fn run(index: u32) -> RunRecord {
        RunRecord {
            index,
            example_id: format!("ex{index}"),
            question: "q".into(),
            references: vec!["a".into()],
            answer: Some("a".into()),
            trace: vec![],
            contexts: vec![],
            calls: vec![],
            logs: vec![],
            scores: BTreeMap::from([("f1".into(), 1.0)]),
            metric_errors: BTreeMap::new(),
            error: None,
            latency_ms: 1.0,
            prompt_tokens: 1,
            completion_tokens: 1,
            finished_at: now(),
        }
    }

    #[test]
    fn runs_survive_reopening_and_stay_per_experiment() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            s.put_experiment(&sample_experiment("a-1")).unwrap();
            s.put_experiment(&sample_experiment("a-2")).unwrap();
            s.put_run("a-1", &run(3)).unwrap();
            s.put_run("a-1", &run(1)).unwrap();
            s.put_run("a-2", &run(0)).unwrap();
            s.put_run("a-1", &run(1)).unwrap(); // same key: replaced, not duplicated
            assert!(matches!(Store::open(&path), Err(StoreError::InUse(_))));
            // A reader beside the writer sees its commits and cannot write.
            let r = Store::open_to_read(&path).unwrap();
            assert_eq!(r.runs("a-1").unwrap().len(), 2);
            s.put_run("a-2", &run(5)).unwrap();
            assert_eq!(r.runs("a-2").unwrap().len(), 2);
            assert!(matches!(
                r.put_run("a-2", &run(6)),
                Err(StoreError::ReadOnly(_))
            ));
        }
        let s = Store::open(&path).unwrap();
        let runs = s.runs("a-1").unwrap();
        assert_eq!(runs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(
            s.runs("a-2")
                .unwrap()
                .iter()
                .map(|r| r.index)
                .collect::<Vec<_>>(),
            vec![0, 5]
        );
        assert!(matches!(s.find("a-"), Err(StoreError::Ambiguous(..))));
        assert_eq!(s.find("a-2").unwrap().id, "a-2");
        assert!(matches!(s.find("zz"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn set_status_is_persisted_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.redb")).unwrap();
        s.put_experiment(&sample_experiment("e")).unwrap();
        assert!(matches!(
            s.set_status("e", Status::Completed, None),
            Err(StoreError::IllegalTransition { .. })
        ));
        assert_eq!(s.resumable("p").unwrap().unwrap().id, "e");
        s.set_status("e", Status::Running, None).unwrap();
        let e = s
            .set_status("e", Status::Failed, Some("boom".into()))
            .unwrap();
        assert_eq!(
            (e.status, e.error.as_deref()),
            (Status::Failed, Some("boom"))
        );
        assert!(s.set_status("e", Status::Running, None).is_err());
        assert!(s.resumable("p").unwrap().is_none());
        assert!(s.experiment("e").unwrap().finished_at.is_some());
    }

    #[test]
    fn a_record_that_would_not_read_back_is_refused_and_nothing_else_is_lost() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.redb")).unwrap();
        s.put_experiment(&sample_experiment("e")).unwrap();
        s.put_run("e", &run(0)).unwrap();
        let mut poisoned = run(1);
        poisoned.scores.insert("f1".into(), f64::NAN);
        let err = s.put_run("e", &poisoned).unwrap_err().to_string();
        assert!(
            err.contains("runs record e#1") && err.contains("would not read back"),
            "{err}"
        );
        assert_eq!(s.runs("e").unwrap().len(), 1, "the good run stays readable");
    }

    #[test]
    fn an_unreadable_record_is_skipped_and_the_rest_stays_readable() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.redb");
        let s = Store::open(&path).unwrap();
        s.put_experiment(&sample_experiment("e")).unwrap();
        s.put_experiment(&sample_experiment("f")).unwrap();
        for i in 0..3 {
            s.put_run("e", &run(i)).unwrap();
        }
        // What an older build wrote for a NaN score, and a damaged record.
        let nan_run = serde_json::to_string(&run(1))
            .unwrap()
            .replace("\"f1\":1.0", "\"f1\":null");
        assert!(nan_run.contains("null"), "{nan_run}");
        s.write(|txn| {
            txn.open_table(RUNS)?
                .insert(("e", 1u32), nan_run.as_bytes())?;
            txn.open_table(EXPERIMENTS)?
                .insert("f", b"{not json".as_slice())?;
            txn.open_table(SUMMARIES)?
                .insert("e", b"{\"mean\":null}".as_slice())?;
            Ok(())
        })
        .unwrap();
        let indices = |runs: Vec<RunRecord>| runs.iter().map(|r| r.index).collect::<Vec<_>>();
        assert_eq!(indices(s.runs("e").unwrap()), vec![0, 2]);
        assert_eq!(s.run_scores("e").unwrap().len(), 2);
        let mut seen = vec![];
        s.for_each_run("e", |r| {
            seen.push(r.index);
            true
        })
        .unwrap();
        assert_eq!(seen, vec![0, 2]);
        // `list` still lists the readable experiments.
        let ids: Vec<String> = s.experiments().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec!["e".to_string()]);
        assert!(s.summary("e").unwrap().is_none());
    }
}
