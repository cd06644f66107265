//! An optimization suite: `optimize` on a config with a `[sweep]` table
//! (typically over `model.source`) optimises each cell on its own — every
//! model gets its own best prompt, its own splits' numbers and its own
//! held-out test — and stores a group of `kind = "optimization"` whose
//! table compares the cells before and after
//! ([`crate::results::report::optimization::suite_text`]).

use std::path::Path;

use super::{OptimizeConfig, Optimized, optimize};
use crate::experiment::plan::Paths;
use crate::experiment::progress::Progress;
use crate::experiment::sweep::Sweep;
use crate::results::records::{Group, GroupKind, GroupMember};
use crate::results::store::{self, Store};

pub struct Suite {
    pub group: Group,
    pub cells: Vec<(Vec<String>, Optimized)>,
}

/// Expands the sweep, checks every cell, then optimises each in turn
/// (each resumable on its own) and stores the group.
pub async fn run(
    path: &Path,
    text: &str,
    paths: &Paths,
    store: &Store,
    new: bool,
    progress: &mut dyn Progress,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Suite> {
    let sweep = Sweep::expand(path, text, "optimize", OptimizeConfig::parse)?;
    let mut cells = Vec::new();
    for cell in &sweep.cells {
        say(format!("cell {}", cell.labels.join(", ")));
        let done = optimize(&cell.config, paths, store, new, progress, say).await?;
        cells.push((cell.labels.clone(), done));
    }
    let created_at = store::now();
    let stamp: String = created_at.chars().filter(char::is_ascii_digit).collect();
    let group = Group {
        id: format!("{}-s{}-{}", sweep.name, &sweep.sha256[..6], &stamp[8..]),
        name: sweep.name.clone(),
        kind: GroupKind::Optimization,
        config_path: path.display().to_string(),
        config_text: text.to_string(),
        config_sha256: sweep.sha256.clone(),
        created_at,
        axes: sweep.axes.clone(),
        members: cells
            .iter()
            .map(|(labels, o)| GroupMember {
                labels: labels.clone(),
                experiment_id: None,
                training_run: None,
                optimization: Some(o.run.id.clone()),
            })
            .collect(),
    };
    store.put_group(&group)?;
    Ok(Suite { group, cells })
}
