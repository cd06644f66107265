//! `torch.optim.AdamW` (single-tensor path, `amsgrad=False`) with state
//! that saves and loads, and `torch.nn.utils.clip_grad_norm_`.
//!
//! One step, in torch's order:
//! `p ← p·(1 − lr·wd)`; `m ← m + (1−β1)(g − m)`; `v ← β2 v + (1−β2) g²`;
//! `p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::fsutil;
use crate::lora::Param;

/// Hugging Face `TrainingArguments` defaults: β = (0.9, 0.999), ε = 1e-8,
/// no weight decay.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

pub const STATE_TENSORS: &str = "optimizer.safetensors";
pub const STATE_JSON: &str = "optimizer.json";

#[derive(Serialize, Deserialize)]
struct StateJson {
    format: String,
    step: u64,
    config: AdamWConfig,
    params: Vec<String>,
}

const FORMAT: &str = "forge-train adamw 1";

pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    names: Vec<String>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl AdamW {
    /// Zero moments for `params` (torch's lazily created state).
    pub fn new(config: AdamWConfig, params: &[Param]) -> Result<Self> {
        let zeros = |p: &Param| p.var.as_tensor().zeros_like();
        Ok(Self {
            config,
            step: 0,
            names: params.iter().map(|p| p.name.clone()).collect(),
            m: params
                .iter()
                .map(zeros)
                .collect::<candle_core::Result<_>>()?,
            v: params
                .iter()
                .map(zeros)
                .collect::<candle_core::Result<_>>()?,
        })
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// First and second moments of the parameter at `index`.
    pub fn moments(&self, index: usize) -> (&Tensor, &Tensor) {
        (&self.m[index], &self.v[index])
    }

    /// One update of every parameter with its gradient at learning rate `lr`.
    pub fn step(&mut self, params: &[Param], grads: &[Tensor], lr: f64) -> Result<()> {
        if params.len() != self.names.len() || grads.len() != params.len() {
            return Err(TrainError::Model(format!(
                "optimizer has {} parameters, got {} parameters and {} gradients",
                self.names.len(),
                params.len(),
                grads.len()
            )));
        }
        let c = self.config;
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = lr / bc1;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            if p.name != self.names[i] {
                return Err(TrainError::Model(format!(
                    "optimizer parameter {i} is {}, got {}",
                    self.names[i], p.name
                )));
            }
            let g = g.to_dtype(p.var.dtype())?;
            let mut w = p.var.as_tensor().detach();
            if c.weight_decay != 0.0 {
                w = w.affine(1.0 - lr * c.weight_decay, 0.0)?;
            }
            let m = (&self.m[i] + ((&g - &self.m[i])? * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = (v.sqrt()? / bc2_sqrt)?.affine(1.0, c.eps)?;
            let w = (w + ((&m / denom)? * -step_size)?)?;
            p.var.set(&w)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// `optimizer.safetensors` (`{name}.exp_avg`, `{name}.exp_avg_sq`) and
    /// `optimizer.json` (step, config, parameter order) in `dir`, each
    /// written to a temporary file and renamed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        for (i, name) in self.names.iter().enumerate() {
            tensors.insert(format!("{name}.exp_avg"), self.m[i].clone());
            tensors.insert(format!("{name}.exp_avg_sq"), self.v[i].clone());
        }
        fsutil::write_safetensors(&dir.join(STATE_TENSORS), &tensors)?;
        let json = StateJson {
            format: FORMAT.into(),
            step: self.step,
            config: self.config,
            params: self.names.clone(),
        };
        fsutil::write_json(&dir.join(STATE_JSON), &json)
    }

    /// Reads what [`AdamW::save`] wrote, checking it belongs to `params`.
    pub fn load(dir: &Path, params: &[Param]) -> Result<Self> {
        let json_path = dir.join(STATE_JSON);
        let json: StateJson = fsutil::read_json(&json_path)?;
        if json.format != FORMAT {
            return Err(TrainError::file(
                &json_path,
                format!("format {:?}, expected {FORMAT:?}", json.format),
            ));
        }
        let names: Vec<&String> = params.iter().map(|p| &p.name).collect();
        if json.params.iter().collect::<Vec<_>>() != names {
            return Err(TrainError::file(
                &json_path,
                format!(
                    "optimizer state is for {} other parameters (first {:?}), the adapter has {} (first {:?})",
                    json.params.len(),
                    json.params.first(),
                    names.len(),
                    names.first()
                ),
            ));
        }
        let st_path = dir.join(STATE_TENSORS);
        let mut tensors = fsutil::read_safetensors(&st_path)?;
        let mut take = |key: String, p: &Param| -> Result<Tensor> {
            let t = tensors
                .remove(&key)
                .ok_or_else(|| TrainError::file(&st_path, format!("missing tensor {key}")))?;
            if t.dims() != p.var.dims() {
                return Err(TrainError::file(
                    &st_path,
                    format!(
                        "{key}: shape {:?}, the parameter is {:?}",
                        t.dims(),
                        p.var.dims()
                    ),
                ));
            }
            Ok(t.to_dtype(p.var.dtype())?)
        };
        let mut m = Vec::new();
        let mut v = Vec::new();
        for p in params {
            m.push(take(format!("{}.exp_avg", p.name), p)?);
            v.push(take(format!("{}.exp_avg_sq", p.name), p)?);
        }
        Ok(Self {
            config: json.config,
            step: json.step,
            names: json.params,
            m,
            v,
        })
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm` (torch's
/// coefficient `max_norm / (norm + 1e-6)`, clamped to 1) and returns the
/// norm before clipping (what Hugging Face logs as `grad_norm`).
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = g.affine(coef, 0.0)?;
        }
    }
    Ok(norm)
}

/// `sqrt(Σ g²)` over every tensor, accumulated in f64.
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut sum = 0.0;
    for g in grads {
        sum += g
            .to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
    }
    Ok(sum.sqrt())
}

/// Zero tensors shaped like `params` (a gradient accumulator).
pub(crate) fn zeros_like(params: &[Param]) -> Result<Vec<Tensor>> {
    Ok(params
        .iter()
        .map(|p| Tensor::zeros(p.var.shape(), p.var.dtype(), &Device::Cpu))
        .collect::<candle_core::Result<_>>()?)
}
