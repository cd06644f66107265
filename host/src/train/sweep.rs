//! `[sweep]` over training runs: a train config with a `[sweep]` table
//! expands (as an experiment sweep does, errors placed on the sweep line)
//! into one train config per cell; the cells train one after another, each
//! its own stored, resumable run, and the store keeps a group of them.
//!
//! Running the same file again continues its latest group: a cell whose
//! run is stored as done with every step keeps it, an interrupted one
//! resumes from its checkpoint, the rest train. Cells share the reference
//! log-prob cache (keyed by model and pair), so a cell on pairs another
//! cell already saw does no reference forward.

use std::path::Path;

use super::config::TrainConfigFile;
use super::run::{Outcome, Prepared, TrainOptions, train_prepared};
use crate::experiment::config::{ConfigError, read_config_text};
use crate::experiment::sweep::{self, Cell, Sweep};
use crate::results::store::{Group, GroupKind};
use crate::results::training::{TrainStatus, TrainingRun};

pub type TrainSweep = Sweep<TrainConfigFile>;

/// Expands a train config's `[sweep]`; the group is named by the file's
/// stem (a train config has no `name`).
pub fn load(path: &Path) -> anyhow::Result<TrainSweep> {
    let text = read_config_text(path)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("train-sweep");
    Ok(Sweep::expand(path, &text, stem, TrainConfigFile::parse)?)
}

/// What became of one cell.
pub struct CellReport {
    pub labels: Vec<String>,
    pub run: TrainingRun,
    /// Done before this command: nothing ran.
    pub kept: bool,
    /// This command's outcome when the cell trained.
    pub outcome: Option<Outcome>,
}

pub struct SweepReport {
    pub group: Group,
    pub cells: Vec<CellReport>,
}

/// Trains every cell in order as one group. `announce` hears of each cell
/// once its run id is known, and whether it is kept as stored.
pub fn run(
    sweep: &TrainSweep,
    opts: &TrainOptions,
    mut announce: impl FnMut(usize, &Cell<TrainConfigFile>, &str, bool),
) -> anyhow::Result<SweepReport> {
    let store = opts.store;
    let mut group = sweep::open_group(store, sweep, GroupKind::Training, false)?;
    let mut cells = Vec::new();
    for (i, cell) in sweep.cells.iter().enumerate() {
        let placed = |e: anyhow::Error| match e.downcast::<ConfigError>() {
            Ok(ce) => sweep.place(cell, &ce).into(),
            Err(e) => e,
        };
        let prepared =
            Prepared::new(cell.config.clone(), opts.home, opts.models_dir).map_err(placed)?;
        let run_id = prepared.run_id.clone();
        group.members[i].training_run = Some(run_id.clone());
        store.put_group(&group)?;
        let stored = store.training_run(&run_id)?;
        let finished = stored.filter(|r| {
            r.status == TrainStatus::Done
                && r.steps_done == r.total_steps
                && Path::new(&r.output)
                    .join("adapter_model.safetensors")
                    .is_file()
        });
        announce(i, cell, &run_id, finished.is_some());
        let report = match finished {
            Some(run) => CellReport {
                labels: cell.labels.clone(),
                run,
                kept: true,
                outcome: None,
            },
            None => {
                let out = train_prepared(prepared, opts).map_err(placed)?;
                CellReport {
                    labels: cell.labels.clone(),
                    run: out.record.clone(),
                    kept: false,
                    outcome: Some(out),
                }
            }
        };
        cells.push(report);
    }
    Ok(SweepReport { group, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(extra: &str) -> Result<TrainSweep, ConfigError> {
        let text = format!(
            "[train]\nmodel = \"smollm2-135m-instruct\"\ndata = \"d.jsonl\"\nbeta = 0.1\n{extra}"
        );
        Sweep::expand(
            Path::new("dpo_beta.toml"),
            &text,
            "dpo_beta",
            TrainConfigFile::parse,
        )
    }

    #[test]
    fn a_train_sweep_expands_into_train_configs() {
        let s = expand("[sweep]\n\"train.beta\" = [0.05, 0.2]\n\"train.limit_pairs\" = [2, 4]\n")
            .unwrap();
        assert_eq!(s.name, "dpo_beta");
        assert_eq!(s.axes, ["train.beta", "train.limit_pairs"]);
        assert_eq!(s.cells.len(), 4);
        let c = &s.cells[1];
        assert_eq!(c.labels, ["0.05", "4"]);
        assert_eq!(c.config.train.beta, 0.05);
        assert_eq!(c.config.train.limit_pairs, Some(4));
        assert!(
            c.config
                .text
                .starts_with("# sweep cell: train.beta=0.05, train.limit_pairs=4\n")
        );
    }

    #[test]
    fn a_bad_cell_is_placed_on_its_sweep_line() {
        // [sweep] is line 5, the axis line 6.
        let e = expand("[sweep]\n\"train.beta\" = [0.1, -1.0]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (6, "sweep.train.beta"), "{e}");
        assert!(
            e.message
                .starts_with("cell train.beta=-1.0: train.beta: must be a positive number"),
            "{e}"
        );
        let e = expand("[sweep]\n\"train.bta\" = [0.1]\n").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (6, "sweep.train.bta"), "{e}");
        assert!(e.message.contains("unknown field"), "{e}");
    }

    /// The shipped ablation configs expand into the cells they promise.
    #[test]
    fn the_shipped_ablations_expand() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let beta = load(&configs.join("dpo_hh_beta.toml")).unwrap();
        assert_eq!(beta.name, "dpo_hh_beta");
        let betas: Vec<f64> = beta.cells.iter().map(|c| c.config.train.beta).collect();
        assert_eq!(betas, [0.05, 0.1, 0.2]);
        let data = load(&configs.join("dpo_hh_data.toml")).unwrap();
        let limits: Vec<Option<usize>> = data
            .cells
            .iter()
            .map(|c| c.config.train.limit_pairs)
            .collect();
        assert_eq!(limits, [Some(200), Some(500), Some(800)]);
        for c in beta.cells.iter().chain(&data.cells) {
            let d = c.config.resolve(&c.config.train.data);
            assert!(
                d.ends_with("shared/data/hh_harmless.train.jsonl"),
                "{}",
                d.display()
            );
        }
    }
}
