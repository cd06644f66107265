//! Sweep groups as targets of the views: a group id stands for its cells.

use crate::results::store::Store;

/// A group by id when `id` names one (and no experiment has that exact id).
pub(super) fn group_or_none(
    store: &Store,
    id: &str,
) -> anyhow::Result<Option<crate::results::records::Group>> {
    if store.experiment(id).is_ok() {
        return Ok(None);
    }
    Ok(store.find_group(id)?)
}

/// A group's cells with their experiments and summaries, in grid order.
pub(super) fn group_members(
    store: &Store,
    g: &crate::results::records::Group,
) -> anyhow::Result<
    Vec<(
        crate::results::records::Experiment,
        crate::results::stats::Summary,
    )>,
> {
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

/// What `compare` and `report` work on: one group id (its cells, labelled
/// by their sweep values) or experiment ids (labelled by id). The title
/// names the group or the experiments.
pub(super) fn targets(
    store: &Store,
    ids: &[String],
) -> anyhow::Result<(String, Vec<(String, crate::results::records::Experiment)>)> {
    if let [one] = ids
        && let Some(g) = group_or_none(store, one)?
    {
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
        let e = store.find(id)?;
        out.push((e.id.clone(), e));
    }
    let title = out
        .iter()
        .map(|(l, _)| l.as_str())
        .collect::<Vec<_>>()
        .join(" vs ");
    Ok((title, out))
}
