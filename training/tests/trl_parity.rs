//! forge's DPO against Hugging Face TRL's `DPOTrainer` + PEFT LoRA on
//! SmolLM2-135M-Instruct: the same pairs, initial adapter and
//! hyper-parameters, 20 optimizer steps, per-step loss and rewards within
//! 1e-3. The fixture (`host/tests/golden/dpo/`) is made by TRL itself:
//! `pairs.tokens.jsonl`, `initial_adapter/` (PEFT, HF row order),
//! `hparams.json`, `trl_steps.jsonl`.

mod common;

use std::path::PathBuf;

use candle_core::DType;
use common::*;
use forge_train::adapter::load_peft;
use forge_train::schedule::{Schedule, warmup_from_ratio};
use forge_train::{
    AdamWConfig, BaseModel, DpoConfig, LossType, MicroBatch, Model, PreferencePair, RefLogps,
    ScheduleKind, TrainConfig, Trainer,
};
use serde_json::Value;

fn fixture() -> Option<PathBuf> {
    let dir = repo().join("host/tests/golden/dpo");
    if dir.join("trl_steps.jsonl").is_file() {
        Some(dir)
    } else {
        skip(&format!("TRL fixture not found at {}", dir.display()));
        None
    }
}

fn jsonl(path: PathBuf) -> Vec<Value> {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn twenty_steps_match_trl() {
    let Some(model_path) = real_model_path() else {
        return;
    };
    let Some(dir) = fixture() else { return };
    let hp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("hparams.json")).unwrap()).unwrap();
    let f = |k: &str| {
        hp[k]
            .as_f64()
            .unwrap_or_else(|| panic!("hparams.json: {k}"))
    };
    let u = |k: &str| {
        hp[k]
            .as_u64()
            .unwrap_or_else(|| panic!("hparams.json: {k}"))
    };
    assert_eq!(
        hp["order"], "sequential",
        "only sequential order is reproduced"
    );
    assert_eq!(
        f("lora_dropout"),
        0.0,
        "torch's dropout draws cannot be reproduced"
    );
    let rows = jsonl(dir.join("pairs.tokens.jsonl"));
    let ids_of: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let pairs: Vec<PreferencePair> = rows
        .iter()
        .map(|r| PreferencePair {
            prompt: ids(&r["prompt_ids"]),
            chosen: ids(&r["chosen_ids"]),
            rejected: ids(&r["rejected_ids"]),
        })
        .collect();
    let trl = jsonl(dir.join("trl_steps.jsonl"));
    let (b, a, steps) = (
        u("per_device_train_batch_size") as usize,
        hp["gradient_accumulation_steps"].as_u64().unwrap_or(1) as usize,
        u("max_steps"),
    );
    assert_eq!(trl.len() as u64, steps);
    assert_eq!(pairs.len() % (b * a), 0, "an epoch must hold whole steps");

    let base = BaseModel::from_gguf(&model_path).unwrap();
    let lora = load_peft(&dir.join("initial_adapter"), base.config(), DType::F32).unwrap();
    assert_eq!(lora.config().r as u64, u("lora_r"));
    let model = Model::new(base, lora).unwrap();
    let warmup = match hp.get("warmup_steps").and_then(Value::as_u64) {
        Some(w) if w > 0 => w,
        _ => warmup_from_ratio(
            steps,
            hp.get("warmup_ratio")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        ),
    };
    let config = TrainConfig {
        dpo: DpoConfig {
            beta: f("beta"),
            loss_type: LossType::parse(hp["loss_type"].as_str().unwrap()).unwrap(),
        },
        optimizer: AdamWConfig {
            beta1: f("adam_beta1"),
            beta2: f("adam_beta2"),
            eps: f("adam_epsilon"),
            weight_decay: f("weight_decay"),
        },
        schedule: Schedule {
            kind: match hp["lr_scheduler_type"].as_str().unwrap() {
                "linear" => ScheduleKind::Linear,
                "cosine" => ScheduleKind::Cosine,
                "constant" | "constant_with_warmup" => ScheduleKind::Constant,
                other => panic!("schedule {other}"),
            },
            base_lr: f("learning_rate"),
            warmup_steps: warmup,
            total_steps: steps,
        },
        max_grad_norm: Some(f("max_grad_norm")),
    };

    // The host's path: reference log-probs computed once, adapter off.
    let reference: Vec<RefLogps> = pairs
        .chunks(b)
        .flat_map(|c| Trainer::reference_logps(&model, c).unwrap())
        .collect();
    let mut trainer = Trainer::new(model, config, 0).unwrap();
    let mut worst = [0.0f64; 3];
    let mut worst_ref = 0.0f64;
    println!(
        "step  loss(forge, trl)  rewards/chosen(forge, trl)  rewards/rejected(forge, trl)  grad_norm(forge, trl)"
    );
    for (s, want) in trl.iter().enumerate() {
        let per_step = b * a;
        let start = (s * per_step) % pairs.len();
        let idx: Vec<usize> = (start..start + per_step).collect();
        if let Some(names) = want.get("pair_ids").and_then(Value::as_array) {
            let names: Vec<&str> = names.iter().map(|n| n.as_str().unwrap()).collect();
            assert_eq!(
                names,
                idx.iter().map(|&i| ids_of[i].as_str()).collect::<Vec<_>>(),
                "step {}",
                s + 1
            );
        }
        // TRL's own reference log-probs of these pairs against forge's:
        // the base model's forward alone.
        if let (Some(rc), Some(rr)) = (want.get("ref_chosen_logps"), want.get("ref_rejected_logps"))
        {
            for (k, &i) in idx.iter().enumerate() {
                for (mine, theirs) in [
                    (reference[i].chosen, &rc[k]),
                    (reference[i].rejected, &rr[k]),
                ] {
                    let d = (mine - theirs.as_f64().unwrap()).abs();
                    worst_ref = worst_ref.max(d);
                    assert!(
                        d < 2e-3,
                        "pair {}: reference log-prob forge {mine}, TRL {theirs}",
                        ids_of[i]
                    );
                }
            }
        }
        let micro: Vec<MicroBatch> = idx
            .chunks(b)
            .map(|c| MicroBatch {
                pairs: &pairs[c[0]..c[0] + c.len()],
                reference: Some(&reference[c[0]..c[0] + c.len()]),
            })
            .collect();
        let got = trainer.step(&micro).unwrap();
        let w = |k: &str| want[k].as_f64().unwrap();
        println!(
            "{:>4}  {:.6} {:.6}  {:+.6} {:+.6}  {:+.6} {:+.6}  {:.4} {:.4}",
            s + 1,
            got.dpo.loss,
            w("loss"),
            got.dpo.rewards_chosen,
            w("rewards/chosen"),
            got.dpo.rewards_rejected,
            w("rewards/rejected"),
            got.grad_norm,
            w("grad_norm")
        );
        assert!(
            (got.learning_rate - w("learning_rate")).abs() < 1e-12,
            "step {}: learning rate {} vs {}",
            s + 1,
            got.learning_rate,
            w("learning_rate")
        );
        for (k, (mine, key)) in [
            (got.dpo.loss, "loss"),
            (got.dpo.rewards_chosen, "rewards/chosen"),
            (got.dpo.rewards_rejected, "rewards/rejected"),
        ]
        .into_iter()
        .enumerate()
        {
            let d = (mine - w(key)).abs();
            worst[k] = worst[k].max(d);
            assert!(
                d < 1e-3,
                "step {}: {key} forge {mine}, TRL {}",
                s + 1,
                w(key)
            );
        }
    }
    println!(
        "largest differences: loss {:.2e}, rewards/chosen {:.2e}, rewards/rejected {:.2e}, reference log-probs {worst_ref:.2e}",
        worst[0], worst[1], worst[2]
    );
}
