//! AdamW, gradient clipping and the learning-rate schedules against values
//! torch and transformers computed (`scripts/oracles/adamw_golden.py`,
//! `tests/golden/adamw.json`).

use candle_core::{Device, Tensor, Var};
use forge_train::optim::{AdamW, AdamWConfig, clip_grad_norm};
use forge_train::{Param, Schedule, ScheduleKind};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/adamw.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        n => vec![n.as_f64().unwrap() as f32],
    }
}

fn tensor(v: &Value) -> Tensor {
    let f = floats(v);
    let n = f.len();
    let t = Tensor::from_vec(f, n, &Device::Cpu).unwrap();
    match v[0].as_array() {
        Some(row) => t.reshape((n / row.len(), row.len())).unwrap(),
        None => t,
    }
}

fn assert_close(got: &Tensor, want: &Value, tol: f32, what: &str) {
    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let want = floats(want);
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1e-3),
            "{what}[{i}]: forge {g}, torch {w}"
        );
    }
}

#[test]
fn adamw_with_clipping_matches_torch_for_three_steps() {
    let g = golden();
    let params = ["p0", "p1"].map(|name| Param {
        name: name.into(),
        var: Var::from_tensor(&tensor(&g["params"][name])).unwrap(),
    });
    let betas = g["betas"].as_array().unwrap();
    let config = AdamWConfig {
        beta1: betas[0].as_f64().unwrap(),
        beta2: betas[1].as_f64().unwrap(),
        eps: g["eps"].as_f64().unwrap(),
        weight_decay: g["weight_decay"].as_f64().unwrap(),
    };
    let mut opt = AdamW::new(config, &params).unwrap();
    let lr = g["lr"].as_f64().unwrap();
    let max_norm = g["max_grad_norm"].as_f64().unwrap();
    for (step, (grads, want)) in g["grads"]
        .as_array()
        .unwrap()
        .iter()
        .zip(g["steps"].as_array().unwrap())
        .enumerate()
    {
        let mut gs = vec![tensor(&grads["p0"]), tensor(&grads["p1"])];
        let norm = clip_grad_norm(&mut gs, max_norm).unwrap();
        let want_norm = want["grad_norm"].as_f64().unwrap();
        assert!(
            (norm - want_norm).abs() < 1e-6 * want_norm,
            "step {step}: norm {norm} vs {want_norm}"
        );
        opt.step(&params, &gs, lr).unwrap();
        assert_close(
            params[0].var.as_tensor(),
            &want["p0"],
            1e-6,
            &format!("step {step} p0"),
        );
        assert_close(
            params[1].var.as_tensor(),
            &want["p1"],
            1e-6,
            &format!("step {step} p1"),
        );
        let (m, v) = opt.moments(0);
        assert_close(
            m,
            &want["p0_exp_avg"],
            1e-6,
            &format!("step {step} exp_avg"),
        );
        assert_close(
            v,
            &want["p0_exp_avg_sq"],
            1e-6,
            &format!("step {step} exp_avg_sq"),
        );
    }
    assert_eq!(opt.steps(), 3);
}

#[test]
fn clipping_leaves_small_gradients_alone() {
    let mut gs = vec![Tensor::new(&[0.3f32, 0.4], &Device::Cpu).unwrap()];
    let norm = clip_grad_norm(&mut gs, 1.0).unwrap();
    assert!((norm - 0.5).abs() < 1e-7);
    assert_eq!(gs[0].to_vec1::<f32>().unwrap(), [0.3, 0.4]);
    // Above the limit: scaled to max_norm / (norm + 1e-6).
    let norm = clip_grad_norm(&mut gs, 0.25).unwrap();
    let v = gs[0].to_vec1::<f32>().unwrap();
    let coef = 0.25 / (norm + 1e-6);
    assert!((v[0] as f64 - 0.3 * coef).abs() < 1e-7 && (v[1] as f64 - 0.4 * coef).abs() < 1e-7);
}

#[test]
fn schedules_match_transformers() {
    let g = &golden()["schedules"];
    for (name, kind) in [
        ("linear", ScheduleKind::Linear),
        ("cosine", ScheduleKind::Cosine),
        ("constant", ScheduleKind::Constant),
    ] {
        let s = Schedule {
            kind,
            base_lr: g["base_lr"].as_f64().unwrap(),
            warmup_steps: g["warmup_steps"].as_u64().unwrap(),
            total_steps: g["total_steps"].as_u64().unwrap(),
        };
        for (step, want) in g[name].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = s.lr(step as u64);
            assert!(
                (got - want).abs() < 1e-15,
                "{name} step {step}: forge {got}, transformers {want}"
            );
        }
    }
}
