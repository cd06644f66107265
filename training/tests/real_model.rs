//! On the real SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized): metadata,
//! DPO's first step (policy = reference ⇒ loss ln 2), gradients reaching
//! every LoRA tensor, padding.

mod common;

use std::sync::OnceLock;

use candle_core::DType;
use common::*;
use forge_train::schedule::Schedule;
use forge_train::{
    AdamWConfig, Adapter, BaseModel, Batch, DpoConfig, Lora, LoraConfig, LossType, MicroBatch,
    Model, ScheduleKind, Target, TrainConfig, Trainer,
};

fn base() -> Option<BaseModel> {
    static BASE: OnceLock<BaseModel> = OnceLock::new();
    let path = real_model_path()?;
    Some(
        BASE.get_or_init(|| BaseModel::from_gguf(&path).unwrap())
            .clone(),
    )
}

#[test]
fn hyper_parameters_come_from_the_gguf_metadata() {
    let Some(base) = base() else { return };
    let c = base.config();
    assert_eq!(
        (
            c.n_layer,
            c.n_embd,
            c.n_head,
            c.n_kv_head,
            c.head_dim,
            c.n_ff,
            c.vocab
        ),
        (30, 576, 9, 3, 64, 1536, 49152)
    );
    assert_eq!(c.rope_theta, 100_000.0);
    assert_eq!(c.rms_eps, f64::from(1e-5f32));
    assert_eq!(base.dtype(), DType::F32);
}

fn trainer(base: BaseModel) -> Trainer {
    let lora = Lora::init(
        base.config(),
        LoraConfig {
            r: 2,
            alpha: 4.0,
            dropout: 0.0,
            targets: Target::ALL.to_vec(),
            use_rslora: false,
        },
        1,
        DType::F32,
    )
    .unwrap();
    Trainer::new(
        Model::new(base, lora).unwrap(),
        TrainConfig {
            dpo: DpoConfig {
                beta: 0.1,
                loss_type: LossType::Sigmoid,
            },
            optimizer: AdamWConfig::default(),
            schedule: Schedule {
                kind: ScheduleKind::Constant,
                base_lr: 1e-3,
                warmup_steps: 0,
                total_steps: 2,
            },
            max_grad_norm: Some(1.0),
        },
        0,
    )
    .unwrap()
}

/// B = 0 at the start, so the policy is the reference: loss ln 2, rewards
/// 0; B gets gradient at step 1, A (zero gradient while B = 0) once B ≠ 0.
#[test]
fn first_step_is_ln2_and_every_lora_tensor_gets_gradient() {
    let Some(base) = base() else { return };
    let mut t = trainer(base);
    let data = pairs(2, 49152, 9);
    let mb = MicroBatch {
        pairs: &data,
        reference: None,
    };
    let names: Vec<String> = t
        .model()
        .lora()
        .params()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names.len(), 30 * 7 * 2);
    let (g1, m1) = t.gradients(mb).unwrap();
    assert!(
        (m1.loss - std::f64::consts::LN_2).abs() < 1e-6,
        "loss {}",
        m1.loss
    );
    assert_eq!(
        (m1.rewards_chosen, m1.rewards_rejected, m1.rewards_margins),
        (0.0, 0.0, 0.0)
    );
    for (name, g) in names.iter().zip(&g1) {
        let max = values(g).iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if name.contains("lora_B") {
            assert!(max > 0.0, "{name}: no gradient at step 1");
        } else {
            assert_eq!(max, 0.0, "{name}: A has gradient while B = 0");
        }
    }
    let step1 = t.step(&[mb]).unwrap();
    assert!((step1.dpo.loss - std::f64::consts::LN_2).abs() < 1e-6);
    let (g2, _) = t.gradients(mb).unwrap();
    for (name, g) in names.iter().zip(&g2) {
        assert!(
            values(g).iter().any(|&x| x != 0.0),
            "{name}: no gradient at step 2"
        );
    }
    let step2 = t.step(&[mb]).unwrap();
    assert!(
        step2.dpo.loss < std::f64::consts::LN_2,
        "the loss should fall: {}",
        step2.dpo.loss
    );
}

#[test]
fn padding_does_not_change_real_log_probs() {
    let Some(base) = base() else { return };
    let model = Model::new(
        base.clone(),
        Lora::init(base.config(), common::lora_config(0.0), 0, DType::F32).unwrap(),
    )
    .unwrap();
    let short: (&[u32], &[u32]) = (&[1, 9690, 198, 2683], &[359, 253, 5356, 2]);
    let long: (&[u32], &[u32]) = (
        &[1, 4093, 198, 2020, 536, 339, 820, 957, 8360, 288, 685],
        &[335, 253, 2714, 47, 909, 915, 5117, 588, 2760, 30, 2],
    );
    let alone = model
        .sequence_logps(&Batch::new(&[short]).unwrap(), Adapter::Off)
        .unwrap()
        .per_token()
        .unwrap();
    let padded = model
        .sequence_logps(&Batch::new(&[long, short]).unwrap(), Adapter::Off)
        .unwrap()
        .per_token()
        .unwrap();
    for (x, y) in alone[0].iter().zip(&padded[1]) {
        assert!((x - y).abs() < 1e-4, "{x} alone, {y} padded");
    }
    assert!(
        alone[0].iter().all(|&x| x < 0.0 && x > -30.0),
        "{:?}",
        alone[0]
    );
}
