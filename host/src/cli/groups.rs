//! What an id on the command line names: an experiment, a sweep group (of
//! experiments or of training runs), a training run or an optimization
//! run; and sweep groups
//! as targets of the views (a group id stands for its cells).

use crate::results::optimization::OptimizationRun;
use crate::results::records::{Experiment, Group, GroupKind};
use crate::results::store::{Store, StoreError};
use crate::results::training::TrainingRun;

/// A stored object named by an id or a unique id prefix.
pub(super) enum Stored {
    Experiment(Box<Experiment>),
    Group(Group),
    Training(Box<TrainingRun>),
    Optimization(Box<OptimizationRun>),
}

/// Resolves `id`: an exact experiment or training run id first, then a
/// group (id or prefix, as before training runs were stored), then a
/// prefix of exactly one experiment or training run.
pub(super) fn resolve(store: &Store, id: &str) -> anyhow::Result<Stored> {
    if let Ok(e) = store.experiment(id) {
        return Ok(Stored::Experiment(Box::new(e)));
    }
    if let Some(t) = store.training_run(id)? {
        return Ok(Stored::Training(Box::new(t)));
    }
    if let Some(o) = store.optimization(id)? {
        return Ok(Stored::Optimization(Box::new(o)));
    }
    if let Some(g) = store.find_group(id)? {
        return Ok(Stored::Group(g));
    }
    if let Some(o) = store.find_optimization(id)?
        && matches!(store.find(id), Err(StoreError::NotFound(_)))
        && store.find_training_run(id)?.is_none()
    {
        return Ok(Stored::Optimization(Box::new(o)));
    }
    match (store.find(id), store.find_training_run(id)?) {
        (Ok(e), None) => Ok(Stored::Experiment(Box::new(e))),
        (Err(StoreError::NotFound(_)), Some(t)) => Ok(Stored::Training(Box::new(t))),
        (Ok(e), Some(t)) => {
            Err(StoreError::Ambiguous(id.into(), format!("{}, {}", e.id, t.id)).into())
        }
        (Err(StoreError::NotFound(_)), None) => anyhow::bail!(
            "nothing stored matches {id:?}: no experiment, sweep group, training run or optimization has that id or prefix (see `forge-host list`)"
        ),
        (Err(e), _) => Err(e.into()),
    }
}

/// A group by id when `id` names one (and no experiment has that exact id).
pub(super) fn group_or_none(store: &Store, id: &str) -> anyhow::Result<Option<Group>> {
    if store.experiment(id).is_ok() {
        return Ok(None);
    }
    Ok(store.find_group(id)?)
}

/// A group's cells with their experiments and summaries, in grid order.
pub(super) fn group_members(
    store: &Store,
    g: &Group,
) -> anyhow::Result<Vec<(Experiment, crate::results::stats::Summary)>> {
    let mut out = Vec::new();
    for m in &g.members {
        let Some(id) = &m.experiment_id else { continue };
        let e = store.experiment(id)?;
        if let Some(s) = store.summary(id)? {
            out.push((e, s));
        }
    }
    Ok(out)
}

/// A training sweep's cells' runs in grid order (None: not started yet).
pub(super) fn training_members(
    store: &Store,
    g: &Group,
) -> anyhow::Result<Vec<Option<TrainingRun>>> {
    g.members
        .iter()
        .map(|m| match &m.training_run {
            Some(id) => Ok(store.training_run(id)?),
            None => Ok(None),
        })
        .collect()
}

/// What `compare` and `report` work on: one group id (its cells, labelled
/// by their sweep values) or experiment ids (labelled by id). The title
/// names the group or the experiments.
pub(super) fn targets(
    store: &Store,
    ids: &[String],
) -> anyhow::Result<(String, Vec<(String, Experiment)>)> {
    if let [one] = ids
        && let Some(g) = group_or_none(store, one)?
    {
        if g.kind == GroupKind::Alignment {
            anyhow::bail!(
                "{} is an alignment group (forge-host align): its cells ran different datasets; see `forge-host show {}` and `forge-host report {}` for its table",
                g.id,
                g.id,
                g.id
            );
        }
        if g.kind == GroupKind::Optimization {
            anyhow::bail!(
                "{} is an optimization suite (forge-host optimize): its cells are optimization runs; see `forge-host show {}`",
                g.id,
                g.id
            );
        }
        if g.kind == GroupKind::Training {
            anyhow::bail!(
                "{} is a sweep of training runs, not of experiments; see `forge-host show {}` and `forge-host report {}`",
                g.id,
                g.id,
                g.id
            );
        }
        let mut out = Vec::new();
        for m in &g.members {
            let id = m.experiment_id.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "group {}: cell {} has not run yet; run {} again to finish the sweep",
                    g.id,
                    m.labels.join(", "),
                    g.config_path
                )
            })?;
            out.push((m.labels.join(" · "), store.experiment(id)?));
        }
        return Ok((format!("sweep {} ({})", g.id, g.axes.join(" × ")), out));
    }
    let mut out = Vec::new();
    for id in ids {
        let e = match store.find(id) {
            Ok(e) => e,
            Err(StoreError::NotFound(_)) if store.find_training_run(id)?.is_some() => {
                anyhow::bail!(
                    "{id:?} is a training run, not an experiment; see `forge-host show {id}` and `forge-host report {id}`"
                )
            }
            Err(e) => return Err(e.into()),
        };
        out.push((e.id.clone(), e));
    }
    let title = out
        .iter()
        .map(|(l, _)| l.as_str())
        .collect::<Vec<_>>()
        .join(" vs ");
    Ok((title, out))
}
