//! Results that must not depend on how the work is cut: padding, and
//! batch size versus gradient accumulation.

mod common;

use candle_core::DType;
use common::*;
use forge_train::schedule::Schedule;
use forge_train::{
    AdamWConfig, Adapter, Batch, DpoConfig, LossType, MicroBatch, Model, ScheduleKind, TrainConfig,
    Trainer,
};

#[test]
fn padding_does_not_change_log_probs() {
    let model = Model::new(tiny_base(DType::F64), tiny_lora(DType::F64, 0.0, 3)).unwrap();
    let short: (&[u32], &[u32]) = (&[3, 4], &[5, 6, 7]);
    let long: (&[u32], &[u32]) = (&[9, 8, 7, 6, 5, 4], &[3, 2, 1, 10, 11, 12, 13]);
    for adapter in [Adapter::Off, Adapter::On] {
        let alone = model
            .sequence_logps(&Batch::new(&[short]).unwrap(), adapter)
            .unwrap();
        let padded = model
            .sequence_logps(&Batch::new(&[short, long]).unwrap(), adapter)
            .unwrap();
        assert_eq!(Batch::new(&[short, long]).unwrap().width(), 13);
        let (a, p) = (alone.per_token().unwrap(), padded.per_token().unwrap());
        assert_eq!(a[0].len(), 3);
        for (x, y) in a[0].iter().zip(&p[0]) {
            assert!(
                (x - y).abs() < 1e-12,
                "{adapter:?}: token log-prob {x} alone, {y} padded"
            );
        }
        let (sa, sp) = (alone.sums_f64().unwrap(), padded.sums_f64().unwrap());
        assert!((sa[0] - sp[0]).abs() < 1e-12);
        // And the sums are the sums of the token log-probs.
        assert!((sp[1] - p[1].iter().sum::<f64>()).abs() < 1e-12);
    }
}

fn trainer(max_grad_norm: f64) -> Trainer {
    let model = Model::new(tiny_base(DType::F64), tiny_lora(DType::F64, 0.0, 8)).unwrap();
    Trainer::new(
        model,
        TrainConfig {
            dpo: DpoConfig {
                beta: 0.3,
                loss_type: LossType::Sigmoid,
            },
            optimizer: AdamWConfig {
                weight_decay: 0.01,
                ..AdamWConfig::default()
            },
            schedule: Schedule {
                kind: ScheduleKind::Linear,
                base_lr: 1e-2,
                warmup_steps: 0,
                total_steps: 4,
            },
            max_grad_norm: Some(max_grad_norm),
        },
        0,
    )
    .unwrap()
}

/// Batch 1 × accumulation 8 and batch 8 × accumulation 1 make the same
/// update: same loss, same (pre-clip) gradient norm, same parameters after
/// two steps, with clipping active.
#[test]
fn accumulation_equals_a_larger_batch() {
    let data = pairs(8, 50, 21);
    let mut by_one = trainer(0.05);
    let mut by_eight = trainer(0.05);
    for _ in 0..2 {
        let singles: Vec<MicroBatch> = data
            .chunks(1)
            .map(|c| MicroBatch {
                pairs: c,
                reference: None,
            })
            .collect();
        let a = by_one.step(&singles).unwrap();
        let b = by_eight
            .step(&[MicroBatch {
                pairs: &data,
                reference: None,
            }])
            .unwrap();
        assert!(
            a.grad_norm > 0.05,
            "clipping should be active: {}",
            a.grad_norm
        );
        assert!(
            (a.grad_norm - b.grad_norm).abs() < 1e-12 * b.grad_norm,
            "{} vs {}",
            a.grad_norm,
            b.grad_norm
        );
        for ((name, x), (_, y)) in a.dpo.trl_names().iter().zip(b.dpo.trl_names()) {
            assert!((x - y).abs() < 1e-12, "{name}: {x} vs {y}");
        }
        assert_eq!((a.pairs, a.tokens), (b.pairs, b.tokens));
    }
    for (p, q) in by_one
        .model()
        .lora()
        .params()
        .iter()
        .zip(by_eight.model().lora().params())
    {
        for (x, y) in values(p.var.as_tensor())
            .iter()
            .zip(values(q.var.as_tensor()))
        {
            assert!((x - y).abs() < 1e-10, "{}: {x} vs {y}", p.name);
        }
    }
}

/// A token's log-prob depends only on the tokens before it: changing the
/// last token moves only the last log-prob (the causal mask).
#[test]
fn later_tokens_do_not_change_earlier_log_probs() {
    let model = Model::new(tiny_base(DType::F64), tiny_lora(DType::F64, 0.0, 3)).unwrap();
    let a: (&[u32], &[u32]) = (&[3, 4, 9], &[5, 6, 7, 8]);
    let b: (&[u32], &[u32]) = (&[3, 4, 9], &[5, 6, 7, 31]);
    let lp = model
        .sequence_logps(&Batch::new(&[a, b]).unwrap(), Adapter::On)
        .unwrap()
        .per_token()
        .unwrap();
    assert_eq!(&lp[0][..3], &lp[1][..3]);
    assert_ne!(lp[0][3], lp[1][3]);
    // And the prompt's tokens are context only: a different prompt token
    // moves the completion's log-probs.
    let c: (&[u32], &[u32]) = (&[3, 40, 9], &[5, 6, 7, 8]);
    let lc = model
        .sequence_logps(&Batch::new(&[c]).unwrap(), Adapter::On)
        .unwrap()
        .per_token()
        .unwrap();
    assert_ne!(lc[0][0], lp[0][0]);
}
