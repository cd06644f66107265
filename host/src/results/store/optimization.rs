//! Optimization runs in the store: the run record and one row per
//! candidate, keyed (run id, iteration, candidate) so a candidate decided
//! again after a resume replaces its row. A candidate's row is committed
//! with the run record in one transaction: `kill -9` loses only the
//! candidate in flight (whose experiments resume by their plan hash).

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{StoreError, db_err, decode, encode, readable};
use crate::results::optimization::{Candidate, OptimizationRun};

const OPTIMIZATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("optimizations");
const CANDIDATES: TableDefinition<(&str, u32, u32), &[u8]> =
    TableDefinition::new("optimization_candidates");

/// Creates the tables (at open, so readers never meet a missing one).
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(OPTIMIZATIONS)?;
    txn.open_table(CANDIDATES)?;
    Ok(())
}

fn row_key(run_id: &str, iteration: u32, candidate: u32) -> String {
    format!("{run_id}#{iteration}.{candidate}")
}

impl super::Store {
    /// Inserts or replaces an optimization run's record.
    pub fn put_optimization(&self, run: &OptimizationRun) -> Result<(), StoreError> {
        let bytes = encode("optimizations", &run.id, run)?;
        self.write(|txn| {
            txn.open_table(OPTIMIZATIONS)?
                .insert(run.id.as_str(), bytes.as_slice())?;
            Ok(())
        })
    }

    /// Commits candidate rows and the run record (its progress) together.
    pub fn record_candidates(
        &self,
        run: &OptimizationRun,
        rows: &[Candidate],
    ) -> Result<(), StoreError> {
        let record = encode("optimizations", &run.id, run)?;
        let mut encoded = Vec::new();
        for row in rows {
            let key = row_key(&run.id, row.iteration, row.candidate);
            encoded.push((
                row.iteration,
                row.candidate,
                encode("optimization_candidates", &key, row)?,
            ));
        }
        self.write(|txn| {
            let mut t = txn.open_table(CANDIDATES)?;
            for (iteration, candidate, bytes) in &encoded {
                t.insert((run.id.as_str(), *iteration, *candidate), bytes.as_slice())?;
            }
            txn.open_table(OPTIMIZATIONS)?
                .insert(run.id.as_str(), record.as_slice())?;
            Ok(())
        })
    }

    pub fn optimization(&self, id: &str) -> Result<Option<OptimizationRun>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(OPTIMIZATIONS)
                .map_err(|e| db_err(&self.path, e))?;
            match t.get(id).map_err(|e| db_err(&self.path, e))? {
                Some(v) => decode("optimizations", v.value()).map(Some),
                None => Ok(None),
            }
        })
    }

    /// All optimization runs, oldest first.
    pub fn optimizations(&self) -> Result<Vec<OptimizationRun>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(OPTIMIZATIONS)
                .map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in t.iter().map_err(|e| db_err(&self.path, e))? {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                out.extend(readable::<OptimizationRun>(
                    "optimizations",
                    k.value(),
                    v.value(),
                ));
            }
            out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(out)
        })
    }

    /// An optimization run by id or unique id prefix; None when nothing matches.
    pub fn find_optimization(
        &self,
        id_or_prefix: &str,
    ) -> Result<Option<OptimizationRun>, StoreError> {
        if let Some(run) = self.optimization(id_or_prefix)? {
            return Ok(Some(run));
        }
        super::by_id_or_prefix(self.optimizations()?, id_or_prefix, |r| &r.id)
    }

    /// A run's candidate rows in (iteration, candidate) order.
    pub fn candidates(&self, run_id: &str) -> Result<Vec<Candidate>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(CANDIDATES)
                .map_err(|e| db_err(&self.path, e))?;
            let range = t
                .range((run_id, 0u32, 0u32)..=(run_id, u32::MAX, u32::MAX))
                .map_err(|e| db_err(&self.path, e))?;
            let mut out = Vec::new();
            for row in range {
                let (k, v) = row.map_err(|e| db_err(&self.path, e))?;
                let (id, iteration, candidate) = k.value();
                out.extend(readable::<Candidate>(
                    "optimization_candidates",
                    &row_key(id, iteration, candidate),
                    v.value(),
                ));
            }
            Ok(out)
        })
    }
}
