//! `forge-host view export <ids|group> --out DIR`: the viewer's pages as
//! plain files that open from `file://` (a PR, a paper's supplement): the
//! list of the chosen experiments, each experiment with every example, the
//! comparison of them all against the first, groups, training and
//! optimization runs, and the assets. No server, no live parts; tables
//! still sort in the browser.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::model::{ListQuery, SortKey};
use super::pages::{Links, Mode, Site};
use crate::results::records::Experiment;
use crate::results::store::{Store, StoreError};

/// What was written.
pub struct Exported {
    pub dir: PathBuf,
    pub pages: usize,
}

pub fn export(store_path: &Path, ids: &[String], out: &Path) -> anyhow::Result<Exported> {
    let store = Store::open_read_only(store_path)?;
    let mut experiments: Vec<Experiment> = Vec::new();
    let mut groups = Vec::new();
    let mut training = Vec::new();
    let mut optimizations = Vec::new();
    let add = |e: Experiment, list: &mut Vec<Experiment>| {
        if !list.iter().any(|x| x.id == e.id) {
            list.push(e);
        }
    };
    // The experiments named directly (not through a group).
    let mut chosen: Vec<String> = Vec::new();
    for id in ids {
        if let Ok(e) = store.experiment(id) {
            chosen.push(e.id.clone());
            add(e, &mut experiments);
        } else if let Some(g) = store.find_group(id)? {
            for m in &g.members {
                if let Some(eid) = &m.experiment_id {
                    add(store.experiment(eid)?, &mut experiments);
                }
                training.extend(m.training_run.clone());
                optimizations.extend(m.optimization.clone());
            }
            groups.push(g.id.clone());
        } else if let Some(t) = store.find_training_run(id)? {
            training.push(t.id);
        } else if let Some(o) = store.find_optimization(id)? {
            optimizations.push(o.id);
        } else {
            match store.find(id) {
                Ok(e) => {
                    chosen.push(e.id.clone());
                    add(e, &mut experiments)
                }
                Err(StoreError::NotFound(_)) => anyhow::bail!(
                    "nothing stored matches {id:?}: no experiment, sweep group, training run or optimization has that id or prefix (see `forge-host list`)"
                ),
                Err(e) => return Err(e.into()),
            }
        }
    }
    std::fs::create_dir_all(out.join("assets"))
        .with_context(|| format!("creating {}", out.display()))?;
    let site = Site::new(
        Mode::Export,
        store_path.display().to_string(),
        Some(crate::results::store::now()),
    );
    let links = Links(Mode::Export);
    let mut pages = 0usize;
    let mut write = |name: String, html: String| -> anyhow::Result<()> {
        let path = out.join(&name);
        std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
        pages += 1;
        Ok(())
    };
    for (name, _, body) in super::ASSETS {
        std::fs::write(out.join("assets").join(name), body)
            .with_context(|| format!("writing {}/assets/{name}", out.display()))?;
    }
    let query = ListQuery {
        sort: SortKey::Created,
        desc: false,
        limit: usize::MAX,
        ids: Some(experiments.iter().map(|e| e.id.clone()).collect()),
        ..Default::default()
    };
    for e in &experiments {
        let n = e.example_ids.len().max(store.run_count(&e.id)?);
        write(
            links.experiment(&e.id),
            site.experiment_page(&store, &e.id, 0, n.max(1), None)?,
        )?;
        let mut indices = Vec::new();
        store.for_each_run(&e.id, |r| {
            indices.push(r.index);
            true
        })?;
        for i in indices {
            write(
                links.example(&e.id, i),
                site.example_page(&store, &e.id, i, 0, usize::MAX)?,
            )?;
        }
    }
    // Comparisons: each group's cells (its page links there), and the
    // experiments chosen by id, all against the first.
    let mut comparisons: Vec<Vec<String>> = Vec::new();
    for g in &groups {
        write(links.group(g), site.group_page(&store, g)?)?;
        comparisons.push(super::model::group_view(&store, g)?.comparable());
    }
    let chosen_at = comparisons.len();
    comparisons.push(chosen);
    // The list page links to the comparison of the chosen experiments
    // when there is one.
    let mut chosen_compare = None;
    for (at, ids) in comparisons.into_iter().enumerate() {
        if ids.len() < 2 {
            continue;
        }
        match site.compare_page(&store, &ids, false, None) {
            Ok(html) => {
                write(links.compare(&ids), html)?;
                if at == chosen_at {
                    chosen_compare = Some(links.compare(&ids));
                }
            }
            // Experiments on different data or seeds do not pair: the
            // export goes on without that comparison, and says so.
            Err(e) => eprintln!("export: no comparison of {}: {e}", ids.join(", ")),
        }
    }
    write(
        links.list(),
        site.list_page(
            &super::model::Catalog::load(&store)?,
            &query,
            &Default::default(),
            chosen_compare,
        )?,
    )?;
    for t in &training {
        write(links.training(t), site.training_page(&store, t)?)?;
    }
    for o in &optimizations {
        write(links.optimization(o), site.optimization_page(&store, o)?)?;
    }
    Ok(Exported {
        dir: out.to_path_buf(),
        pages,
    })
}
