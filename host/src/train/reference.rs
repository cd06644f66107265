//! Reference log-probabilities (adapter off) computed once per
//! (base model, tokenised pair) and kept in redb, so a second run on the
//! same data (another beta, another loss) does no reference forward.

use std::path::Path;

use anyhow::Context;
use forge_train::{Model, PreferencePair, RefLogps, Trainer};
use redb::{Database, ReadableDatabase, TableDefinition};
use sha2::{Digest, Sha256};

const REFERENCE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("reference_logps");

pub struct ReferenceCache {
    db: Database,
}

/// sha256 of the model's sha256 and the pair's ids.
fn key(model_sha256: &str, pair: &PreferencePair) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(model_sha256.as_bytes());
    for part in [&pair.prompt, &pair.chosen, &pair.rejected] {
        h.update((part.len() as u64).to_le_bytes());
        for id in part {
            h.update(id.to_le_bytes());
        }
    }
    h.finalize().into()
}

impl ReferenceCache {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db = Database::create(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Self { db })
    }

    fn get(&self, k: &[u8; 32]) -> anyhow::Result<Option<RefLogps>> {
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(REFERENCE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(&k[..])?.and_then(|v| {
            let b = v.value();
            (b.len() == 16).then(|| RefLogps {
                chosen: f64::from_le_bytes(b[..8].try_into().unwrap()),
                rejected: f64::from_le_bytes(b[8..].try_into().unwrap()),
            })
        }))
    }

    /// The reference log-probs of every pair; the missing ones are computed
    /// (one pair per forward, so a value never depends on what it was
    /// batched with) and stored. Returns them and how many were computed.
    pub fn fill(
        &self,
        model: &Model,
        model_sha256: &str,
        pairs: &[PreferencePair],
        mut on_computed: impl FnMut(usize, usize),
    ) -> anyhow::Result<(Vec<RefLogps>, usize)> {
        let keys: Vec<[u8; 32]> = pairs.iter().map(|p| key(model_sha256, p)).collect();
        let mut out = Vec::with_capacity(pairs.len());
        let mut missing = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match self.get(k)? {
                Some(r) => out.push(Some(r)),
                None => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        for (done, &i) in missing.iter().enumerate() {
            let r = Trainer::reference_logps(model, std::slice::from_ref(&pairs[i]))?[0];
            let tx = self.db.begin_write()?;
            {
                let mut table = tx.open_table(REFERENCE)?;
                let mut v = r.chosen.to_le_bytes().to_vec();
                v.extend_from_slice(&r.rejected.to_le_bytes());
                table.insert(&keys[i][..], &v[..])?;
            }
            tx.commit()?;
            out[i] = Some(r);
            on_computed(done + 1, missing.len());
        }
        Ok((
            out.into_iter().map(|r| r.expect("filled")).collect(),
            missing.len(),
        ))
    }
}
