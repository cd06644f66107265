//! The training forward + DPO loss is differentiated correctly: autograd
//! against central finite differences on a tiny random llama in f64, with
//! and without recomputation and with LoRA dropout; frozen weights get no
//! gradient.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::*;
use forge_train::dpo::{PairLogps, dpo_loss};
use forge_train::{Adapter, Batch, DpoConfig, LossType, Model, PreferencePair, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Setup {
    model: Model,
    batch: Batch,
    n: usize,
    ref_c: Vec<f64>,
    ref_r: Vec<f64>,
    adapter: Adapter,
    dpo: DpoConfig,
}

fn setup(pairs: &[PreferencePair], dropout: f64, adapter: Adapter, loss_type: LossType) -> Setup {
    let model = Model::new(tiny_base(DType::F64), tiny_lora(DType::F64, dropout, 5)).unwrap();
    let refs = Trainer::reference_logps(&model, pairs).unwrap();
    let rows: Vec<(&[u32], &[u32])> = pairs
        .iter()
        .map(|p| (&p.prompt[..], &p.chosen[..]))
        .chain(pairs.iter().map(|p| (&p.prompt[..], &p.rejected[..])))
        .collect();
    Setup {
        model,
        batch: Batch::new(&rows).unwrap(),
        n: pairs.len(),
        ref_c: refs.iter().map(|r| r.chosen).collect(),
        ref_r: refs.iter().map(|r| r.rejected).collect(),
        adapter,
        dpo: DpoConfig {
            beta: 0.5,
            loss_type,
        },
    }
}

fn loss(s: &Setup) -> Tensor {
    let lp = s.model.sequence_logps(&s.batch, s.adapter).unwrap();
    let lens = s.batch.completion_lens();
    dpo_loss(
        &s.dpo,
        &PairLogps {
            policy_chosen: &lp.sums.narrow(0, 0, s.n).unwrap(),
            policy_rejected: &lp.sums.narrow(0, s.n, s.n).unwrap(),
            ref_chosen: &s.ref_c,
            ref_rejected: &s.ref_r,
            chosen_lens: &lens[..s.n],
            rejected_lens: &lens[s.n..],
        },
    )
    .unwrap()
    .0
}

fn loss_value(s: &Setup) -> f64 {
    loss(s).to_scalar::<f64>().unwrap()
}

fn set_element(var: &Var, i: usize, value: f64) {
    let mut v = values(var.as_tensor());
    v[i] = value;
    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
        .unwrap();
}

/// Samples elements of every LoRA tensor and a random direction over all
/// of them; returns the worst relative error seen.
fn check(s: &Setup) -> f64 {
    let grads = s.model.backward(&loss(s)).unwrap();
    let params = s.model.lora().params();
    assert_eq!(grads.len(), params.len());
    let h = 1e-5;
    let rel = |fd: f64, an: f64| (fd - an).abs() / fd.abs().max(an.abs()).max(1e-8);
    let mut worst: f64 = 0.0;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    for (p, g) in params.iter().zip(&grads) {
        let g = values(g);
        assert!(g.iter().any(|&x| x != 0.0), "{}: zero gradient", p.name);
        for _ in 0..3 {
            let i = rng.random_range(0..g.len());
            let orig = values(p.var.as_tensor())[i];
            set_element(&p.var, i, orig + h);
            let up = loss_value(s);
            set_element(&p.var, i, orig - h);
            let down = loss_value(s);
            set_element(&p.var, i, orig);
            let fd = (up - down) / (2.0 * h);
            let e = rel(fd, g[i]);
            assert!(
                e < 1e-6,
                "{}[{i}]: finite difference {fd}, autograd {}",
                p.name,
                g[i]
            );
            worst = worst.max(e);
        }
    }
    // Directional derivative along a random direction through every tensor.
    let dirs: Vec<Vec<f64>> = params
        .iter()
        .map(|p| {
            (0..p.var.elem_count())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let origs: Vec<Tensor> = params
        .iter()
        .map(|p| p.var.as_tensor().copy().unwrap())
        .collect();
    let shift = |eps: f64| {
        for ((p, d), o) in params.iter().zip(&dirs).zip(&origs) {
            let v: Vec<f64> = values(o).iter().zip(d).map(|(x, d)| x + eps * d).collect();
            p.var
                .set(&Tensor::from_vec(v, p.var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
    };
    shift(h);
    let up = loss_value(s);
    shift(-h);
    let down = loss_value(s);
    shift(0.0);
    let fd = (up - down) / (2.0 * h);
    let an: f64 = grads
        .iter()
        .zip(&dirs)
        .map(|(g, d)| values(g).iter().zip(d).map(|(g, d)| g * d).sum::<f64>())
        .sum();
    let e = rel(fd, an);
    assert!(
        e < 1e-6,
        "directional derivative: finite difference {fd}, autograd {an}"
    );
    worst.max(e)
}

#[test]
fn finite_differences_match_autograd_with_recomputation() {
    let s = setup(&pairs(3, 50, 1), 0.0, Adapter::On, LossType::Sigmoid);
    let worst = check(&s);
    eprintln!("worst relative error {worst:.2e}");
}

#[test]
fn finite_differences_match_autograd_without_recomputation() {
    let mut s = setup(&pairs(3, 50, 2), 0.0, Adapter::On, LossType::Ipo);
    s.model.set_checkpointing(false);
    check(&s);
}

/// The recomputed layer must redraw the forward's dropout masks, or the
/// gradient belongs to another function than the loss.
#[test]
fn finite_differences_match_autograd_with_lora_dropout() {
    let s = setup(
        &pairs(2, 50, 3),
        0.3,
        Adapter::Train { dropout_key: 42 },
        LossType::Sigmoid,
    );
    check(&s);
}

#[test]
fn recomputation_gives_the_same_gradients_as_the_full_graph() {
    let mut s = setup(
        &pairs(4, 50, 4),
        0.2,
        Adapter::Train { dropout_key: 7 },
        LossType::Hinge,
    );
    let with = s.model.backward(&loss(&s)).unwrap();
    s.model.set_checkpointing(false);
    let without = s.model.backward(&loss(&s)).unwrap();
    for (a, b) in with.iter().zip(&without) {
        for (x, y) in values(a).iter().zip(values(b)) {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1e-6), "{x} vs {y}");
        }
    }
}

/// What backward leaves in candle's grad store: nothing shaped like a
/// frozen weight (which is what a plain `matmul` would leave, see below).
#[test]
fn frozen_weights_get_no_gradient() {
    for checkpointing in [false, true] {
        let mut s = setup(&pairs(2, 50, 5), 0.0, Adapter::On, LossType::Sigmoid);
        s.model.set_checkpointing(checkpointing);
        let store = loss(&s).backward().unwrap();
        let cfg = tiny_config();
        let mut frozen: Vec<Vec<usize>> = forge_train::Target::ALL
            .iter()
            .flat_map(|&t| {
                let (o, i) = cfg.target_shape(t);
                [vec![o, i], vec![i, o]]
            })
            .collect();
        frozen.push(vec![cfg.vocab, cfg.n_embd]);
        frozen.push(vec![cfg.n_embd, cfg.vocab]);
        let lora_ids: Vec<_> = s.model.lora().params().iter().map(|p| p.var.id()).collect();
        let mut other_elems = 0;
        for id in store.get_ids() {
            let g = store.get_id(*id).unwrap();
            assert!(
                !frozen.contains(&g.dims().to_vec()),
                "checkpointing {checkpointing}: a gradient of shape {:?} (a frozen weight's) is in the store",
                g.dims()
            );
            if !lora_ids.contains(id) {
                other_elems += g.elem_count();
            }
        }
        // What remains besides LoRA: activation-sized leaves (the input
        // embedding's gradient, norm weights' broadcast, masks, rope tables).
        let tokens = s.batch.rows() * s.batch.width();
        assert!(
            other_elems < 64 * tokens * cfg.n_embd,
            "{other_elems} stray gradient elements"
        );
    }
}

/// The trap [`forge_train`]'s frozen linear op avoids: candle's matmul
/// backward computes the gradient of a plain (non-`Var`) weight too.
#[test]
fn candle_matmul_computes_a_gradient_for_a_plain_weight() {
    let x = Var::from_tensor(&Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap()).unwrap();
    let w = Tensor::ones((5, 4), DType::F32, &Device::Cpu).unwrap();
    let y = x
        .as_tensor()
        .matmul(&w.t().unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let store = y.backward().unwrap();
    let shapes: Vec<Vec<usize>> = store
        .get_ids()
        .map(|id| store.get_id(*id).unwrap().dims().to_vec())
        .collect();
    assert!(shapes.contains(&vec![4, 5]), "{shapes:?}");
}
