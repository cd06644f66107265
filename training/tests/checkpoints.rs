//! Checkpoints: resuming gives the same run as not stopping, a killed
//! writer never leaves a complete-looking partial checkpoint, and damage is
//! reported with the file's name.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use candle_core::DType;
use common::*;
use forge_train::checkpoint::{self, dir_for_step};
use forge_train::schedule::Schedule;
use forge_train::{
    AdamWConfig, DpoConfig, LossType, MicroBatch, Model, PreferencePair, ScheduleKind, TrainConfig,
    Trainer,
};

fn config() -> TrainConfig {
    TrainConfig {
        dpo: DpoConfig {
            beta: 0.2,
            loss_type: LossType::Sigmoid,
        },
        optimizer: AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        },
        schedule: Schedule {
            kind: ScheduleKind::Cosine,
            base_lr: 5e-3,
            warmup_steps: 1,
            total_steps: 5,
        },
        max_grad_norm: Some(1.0),
    }
}

fn fresh() -> Trainer {
    // Dropout on: resuming must restore the RNG too.
    let model = Model::new(tiny_base(DType::F32), tiny_lora(DType::F32, 0.25, 2)).unwrap();
    Trainer::new(model, config(), 77).unwrap()
}

fn step(t: &mut Trainer, data: &[PreferencePair], i: usize) {
    let mb = &data[2 * i..2 * i + 2];
    t.step(&[MicroBatch {
        pairs: mb,
        reference: None,
    }])
    .unwrap();
}

#[test]
fn resume_continues_exactly_where_it_stopped() {
    let data = pairs(8, 50, 3);
    let mut straight = fresh();
    for i in 0..4 {
        step(&mut straight, &data, i);
    }

    let root = tempfile::tempdir().unwrap();
    let mut first = fresh();
    for i in 0..2 {
        step(&mut first, &data, i);
    }
    let dir = dir_for_step(root.path(), first.steps());
    first.save_checkpoint(&dir, "tiny", 4).unwrap();
    drop(first);

    let (mut resumed, state) = Trainer::resume(tiny_base(DType::F32), &dir, config()).unwrap();
    assert_eq!((state.step, state.data_position), (2, 4));
    assert_eq!(resumed.steps(), 2);
    for i in 2..4 {
        step(&mut resumed, &data, i);
    }
    for (p, q) in straight
        .model()
        .lora()
        .params()
        .iter()
        .zip(resumed.model().lora().params())
    {
        assert_eq!(
            values(p.var.as_tensor()),
            values(q.var.as_tensor()),
            "{}",
            p.name
        );
    }
    // Nothing but the checkpoint itself in the root.
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["checkpoint-2"]);
}

fn saved(root: &Path) -> std::path::PathBuf {
    let mut t = fresh();
    step(&mut t, &pairs(2, 50, 1), 0);
    let dir = dir_for_step(root, 1);
    t.save_checkpoint(&dir, "tiny", 2).unwrap();
    dir
}

#[test]
fn damaged_files_are_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = saved(root.path());
    let load = || {
        checkpoint::load(&dir, &tiny_config(), DType::F32)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };

    let opt = dir.join("optimizer.safetensors");
    let mut bytes = std::fs::read(&opt).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&opt, &bytes).unwrap();
    let err = load();
    assert!(
        err.contains("optimizer.safetensors") && err.contains("corrupt"),
        "{err}"
    );

    let dir = saved(root.path());
    let adapter = dir.join("adapter_model.safetensors");
    let len = std::fs::metadata(&adapter).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&adapter)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = load();
    assert!(err.contains("adapter_model.safetensors"), "{err}");

    let dir = saved(root.path());
    std::fs::write(dir.join("trainer_state.json"), "{\"format\": ").unwrap();
    let err = load();
    assert!(
        err.contains("trainer_state.json") && err.contains("invalid JSON"),
        "{err}"
    );

    let dir = saved(root.path());
    std::fs::remove_file(dir.join("trainer_state.json")).unwrap();
    let err = load();
    assert!(
        err.contains("trainer_state.json") && err.contains("not a complete checkpoint"),
        "{err}"
    );
}

/// Run by [`killed_writer_leaves_only_complete_checkpoints`] in a child
/// process: writes checkpoints until it is killed.
#[test]
#[ignore = "child process of killed_writer_leaves_only_complete_checkpoints"]
fn checkpoint_writer_child() {
    let Some(root) = std::env::var_os("FORGE_TRAIN_CKPT_CHILD") else {
        return;
    };
    let t = fresh();
    for i in 0u64.. {
        // Rewrites the same few names, so replacing is exercised too.
        t.save_checkpoint(&dir_for_step(Path::new(&root), i % 3), "tiny", i)
            .unwrap();
    }
}

#[test]
fn killed_writer_leaves_only_complete_checkpoints() {
    let root = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for delay_ms in [150, 230, 370, 410] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "checkpoint_writer_child"])
            .env("FORGE_TRAIN_CKPT_CHILD", root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        for entry in std::fs::read_dir(root.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("checkpoint-") {
                checkpoint::load(&path, &tiny_config(), DType::F32)
                    .unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms: {e}"));
                checked += 1;
            } else {
                assert!(name.starts_with('.'), "unexpected {name}");
            }
        }
    }
    assert!(checked > 0, "the child never finished a checkpoint");
}
