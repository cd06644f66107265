//! PEFT's on-disk LoRA adapter (`adapter_config.json` +
//! `adapter_model.safetensors`) in and out, and merging an adapter into the
//! base weights.
//!
//! Files are in Hugging Face row order; in memory `B` of q/k is in GGUF
//! row order ([`crate::layout`]), converted on the way in and out.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Tensor};
use serde_json::{Map, Value, json};

use crate::base::{BaseModel, gguf_name};
use crate::config::LlamaConfig;
use crate::error::{Result, TrainError};
use crate::fsutil;
use crate::layout::{gguf_to_hf_rows, hf_to_gguf_rows};
use crate::lora::{Lora, LoraConfig, Target, peft_tensor_name};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Heads whose row order differs between the layouts, if any.
fn permuted_heads(model: &LlamaConfig, target: Target) -> Option<usize> {
    match target {
        Target::Q => Some(model.n_head),
        Target::K => Some(model.n_kv_head),
        _ => None,
    }
}

/// Writes `dir/adapter_config.json` and `dir/adapter_model.safetensors`
/// (f32, HF row order) so that PEFT's `PeftModel.from_pretrained` loads
/// them onto `base_model_name_or_path`. Creates `dir`.
pub fn save_peft(
    dir: &Path,
    lora: &Lora,
    model: &LlamaConfig,
    base_model_name_or_path: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut tensors = HashMap::new();
    for layer in 0..lora.n_layer() {
        for target in Target::ALL {
            let Some(pair) = lora.pair(layer, target) else {
                continue;
            };
            let a = pair.a.as_tensor().to_dtype(DType::F32)?;
            let mut b = pair.b.as_tensor().to_dtype(DType::F32)?;
            if let Some(heads) = permuted_heads(model, target) {
                b = gguf_to_hf_rows(&b, heads)?;
            }
            tensors.insert(peft_tensor_name(layer, target, 'A'), a);
            tensors.insert(peft_tensor_name(layer, target, 'B'), b);
        }
    }
    fsutil::write_safetensors(&dir.join(WEIGHTS_FILE), &tensors)?;
    fsutil::write_json(
        &dir.join(CONFIG_FILE),
        &peft_config_json(lora.config(), base_model_name_or_path),
    )
}

fn peft_config_json(c: &LoraConfig, base: &str) -> Value {
    // An integral alpha is written as PEFT writes it (an int).
    let alpha = if c.alpha.fract() == 0.0 && c.alpha.abs() < 1e15 {
        json!(c.alpha as i64)
    } else {
        json!(c.alpha)
    };
    json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "r": c.r,
        "lora_alpha": alpha,
        "lora_dropout": c.dropout,
        "target_modules": c.targets.iter().map(|t| t.peft_name()).collect::<Vec<_>>(),
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": c.use_rslora,
        "use_dora": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "modules_to_save": null,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    })
}

/// Reads a PEFT LoRA adapter for `model`. Anything forge cannot apply
/// exactly (DoRA, biases, per-layer ranks, extra modules) is an error, as
/// is a tensor whose shape does not fit the model (another base model's
/// adapter): the message names the tensor and both shapes.
pub fn load_peft(dir: &Path, model: &LlamaConfig, dtype: DType) -> Result<Lora> {
    let config_path = dir.join(CONFIG_FILE);
    let raw: Map<String, Value> = fsutil::read_json(&config_path)?;
    let config = parse_peft_config(&raw).map_err(|m| TrainError::file(&config_path, m))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut file = fsutil::read_safetensors(&weights_path)?;
    let mut tensors = BTreeMap::new();
    for layer in 0..model.n_layer {
        for &target in &config.targets {
            let (out, inp) = model.target_shape(target);
            let mut take = |which: char, want: [usize; 2]| -> Result<Tensor> {
                let name = peft_tensor_name(layer, target, which);
                let t = file.remove(&name).ok_or_else(|| {
                    TrainError::file(&weights_path, format!("missing tensor {name}"))
                })?;
                if t.dims() != want {
                    return Err(TrainError::file(
                        &weights_path,
                        format!(
                            "{name}: shape {:?} in the file, this model needs {want:?} \
                             (is the adapter for another base model?)",
                            t.dims()
                        ),
                    ));
                }
                Ok(t.to_dtype(dtype)?)
            };
            let a = take('A', [config.r, inp])?;
            let mut b = take('B', [out, config.r])?;
            if let Some(heads) = permuted_heads(model, target) {
                b = hf_to_gguf_rows(&b, heads)?;
            }
            tensors.insert((layer, target), (a, b));
        }
    }
    if let Some(extra) = file.keys().min() {
        return Err(TrainError::file(
            &weights_path,
            format!(
                "tensor {extra} is not part of a {}-layer adapter of {:?}",
                model.n_layer,
                config
                    .targets
                    .iter()
                    .map(|t| t.peft_name())
                    .collect::<Vec<_>>()
            ),
        ));
    }
    Lora::from_tensors(model, config, tensors)
        .map_err(|e| TrainError::file(&weights_path, e.to_string()))
}

fn parse_peft_config(raw: &Map<String, Value>) -> std::result::Result<LoraConfig, String> {
    let get = |k: &str| raw.get(k).filter(|v| !v.is_null());
    let str_of = |k: &str| get(k).and_then(Value::as_str);
    if str_of("peft_type") != Some("LORA") {
        return Err(format!(
            "peft_type {:?}, expected \"LORA\"",
            get("peft_type")
        ));
    }
    if let Some(b) = str_of("bias").filter(|b| *b != "none") {
        return Err(format!("bias {b:?} is not supported (only \"none\")"));
    }
    for flag in ["use_dora", "fan_in_fan_out", "lora_bias", "use_qalora"] {
        if get(flag).and_then(Value::as_bool) == Some(true) {
            return Err(format!("{flag} = true is not supported"));
        }
    }
    for key in [
        "modules_to_save",
        "layers_to_transform",
        "rank_pattern",
        "alpha_pattern",
    ] {
        let set = match get(key) {
            None => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(format!(
                "{key} is set ({}); forge applies one rank to every layer and no extra modules",
                get(key).unwrap()
            ));
        }
    }
    let r = get("r")
        .and_then(Value::as_u64)
        .ok_or("missing or invalid r")? as usize;
    let alpha = get("lora_alpha")
        .and_then(Value::as_f64)
        .ok_or("missing or invalid lora_alpha")?;
    let dropout = get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    let targets = match get("target_modules") {
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str()
                    .ok_or_else(|| format!("target_modules entry {n} is not a string"))
                    .and_then(|s| Target::parse(s).map_err(|e| e.to_string()))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        Some(Value::String(s)) if s == "all-linear" => Target::ALL.to_vec(),
        Some(Value::String(s)) => vec![Target::parse(s).map_err(|_| {
            format!("target_modules {s:?}: a regular expression is not supported, list the modules")
        })?],
        _ => return Err("missing target_modules".into()),
    };
    let mut targets = targets;
    targets.sort();
    targets.dedup();
    Ok(LoraConfig {
        r,
        alpha,
        dropout,
        targets,
        use_rslora: get("use_rslora").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// `scaling · B A` for every adapted projection, in GGUF row order, keyed
/// by GGUF tensor name (`blk.0.attn_q.weight`), f32: what the host's
/// inference path adds to the file's weights when it loads an adapter.
pub fn deltas(lora: &Lora) -> Result<BTreeMap<String, Tensor>> {
    let mut out = BTreeMap::new();
    for_each_delta(lora, |layer, target, delta| {
        out.insert(gguf_name(layer, target), delta);
        Ok(())
    })?;
    Ok(out)
}

/// `W + scaling · B A` for every adapted projection (see [`deltas`]),
/// keyed by GGUF tensor name, f32.
pub fn merge(base: &BaseModel, lora: &Lora) -> Result<BTreeMap<String, Tensor>> {
    let mut out = BTreeMap::new();
    for_each_delta(lora, |layer, target, delta| {
        let w = base.weight(layer, target).to_dtype(DType::F32)?;
        out.insert(gguf_name(layer, target), (w + delta)?);
        Ok(())
    })?;
    Ok(out)
}

fn for_each_delta(
    lora: &Lora,
    mut f: impl FnMut(usize, Target, Tensor) -> Result<()>,
) -> Result<()> {
    for layer in 0..lora.n_layer() {
        for target in Target::ALL {
            if let Some(pair) = lora.pair(layer, target) {
                let a = pair.a.as_tensor().to_dtype(DType::F32)?;
                let b = pair.b.as_tensor().to_dtype(DType::F32)?;
                f(layer, target, b.matmul(&a)?.affine(lora.scaling(), 0.0)?)?;
            }
        }
    }
    Ok(())
}
