//! LoRA parameters: which projections carry an adapter, their `A`/`B`
//! matrices as candle `Var`s (the only tensors that get gradients), PEFT's
//! initialisation and names. Values are kept in GGUF row order (see
//! [`crate::layout`]); files in Hugging Face order are converted by
//! [`crate::adapter`].

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use crate::error::{Result, TrainError};

/// A linear layer of a llama block that can carry an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    #[serde(rename = "q_proj")]
    Q,
    #[serde(rename = "k_proj")]
    K,
    #[serde(rename = "v_proj")]
    V,
    #[serde(rename = "o_proj")]
    O,
    #[serde(rename = "gate_proj")]
    Gate,
    #[serde(rename = "up_proj")]
    Up,
    #[serde(rename = "down_proj")]
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// PEFT's module name (`target_modules` entry).
    pub fn peft_name(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    /// The module path inside a Hugging Face llama layer.
    pub fn hf_module(self) -> &'static str {
        match self {
            Target::Q => "self_attn.q_proj",
            Target::K => "self_attn.k_proj",
            Target::V => "self_attn.v_proj",
            Target::O => "self_attn.o_proj",
            Target::Gate => "mlp.gate_proj",
            Target::Up => "mlp.up_proj",
            Target::Down => "mlp.down_proj",
        }
    }

    /// The weight's name in a GGUF file, without the `blk.{i}.` prefix.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        }
    }

    /// From a PEFT module name (`q_proj`) or a short one (`q`, `gate`).
    pub fn parse(name: &str) -> Result<Self> {
        Target::ALL
            .into_iter()
            .find(|t| name == t.peft_name() || name == t.peft_name().trim_end_matches("_proj"))
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "unknown LoRA target {name:?} (one of q, k, v, o, gate, up, down or their *_proj names)"
                ))
            })
    }
}

/// PEFT's `LoraConfig` fields that change the numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    /// Dropout on the adapter's input (`lora_B(lora_A(dropout(x)))`).
    pub dropout: f64,
    pub targets: Vec<Target>,
    /// PEFT's `use_rslora`: scaling `alpha / sqrt(r)` instead of `alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
}

impl LoraConfig {
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    fn check(&self) -> Result<()> {
        if self.r == 0 {
            return Err(TrainError::Config("LoRA rank r must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TrainError::Config(format!(
                "LoRA dropout {} is outside [0, 1)",
                self.dropout
            )));
        }
        if self.targets.is_empty() {
            return Err(TrainError::Config("no LoRA target modules".into()));
        }
        Ok(())
    }

    fn has(&self, t: Target) -> bool {
        self.targets.contains(&t)
    }
}

/// One adapted projection: `y = W x + scaling * B (A x)`, `A: [r, in]`,
/// `B: [out, r]` (GGUF row order).
#[derive(Clone, Debug)]
pub struct LoraPair {
    pub a: Var,
    pub b: Var,
}

/// A trainable tensor and its PEFT name
/// (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`).
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub var: Var,
}

/// The adapter of every layer.
#[derive(Clone, Debug)]
pub struct Lora {
    config: LoraConfig,
    /// `layers[i][target.index()]`.
    layers: Vec<[Option<LoraPair>; 7]>,
}

/// PEFT's tensor name for a layer's target.
pub fn peft_tensor_name(layer: usize, target: Target, which: char) -> String {
    format!(
        "base_model.model.model.layers.{layer}.{}.lora_{which}.weight",
        target.hf_module()
    )
}

impl Lora {
    /// PEFT's default initialisation: `A` kaiming-uniform with `a = sqrt(5)`
    /// (uniform in ±1/sqrt(in)), `B` zero, so the adapted model starts as
    /// the base model. `seed` makes `A` reproducible.
    pub fn init(model: &LlamaConfig, config: LoraConfig, seed: u64, dtype: DType) -> Result<Self> {
        config.check()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Self::build(model, config, |_, _, (out, inp), r| {
            // kaiming_uniform_(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in).
            let bound = 1.0 / (inp as f64).sqrt();
            let a: Vec<f64> = (0..r * inp)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let a = Tensor::from_vec(a, (r, inp), &Device::Cpu)?.to_dtype(dtype)?;
            let b = Tensor::zeros((out, r), dtype, &Device::Cpu)?;
            Ok((a, b))
        })
    }

    /// From given `(A, B)` per `(layer, target)` (GGUF row order); every
    /// configured target of every layer must be there with its shape.
    pub fn from_tensors(
        model: &LlamaConfig,
        config: LoraConfig,
        mut tensors: BTreeMap<(usize, Target), (Tensor, Tensor)>,
    ) -> Result<Self> {
        config.check()?;
        let lora = Self::build(model, config, |layer, target, (out, inp), r| {
            let (a, b) = tensors.remove(&(layer, target)).ok_or_else(|| {
                TrainError::Model(format!(
                    "no tensors for {}",
                    peft_tensor_name(layer, target, 'A')
                ))
            })?;
            for (t, which, want) in [(&a, 'A', (r, inp)), (&b, 'B', (out, r))] {
                if t.dims() != [want.0, want.1] {
                    return Err(TrainError::Model(format!(
                        "{}: shape {:?}, the model needs [{}, {}]",
                        peft_tensor_name(layer, target, which),
                        t.dims(),
                        want.0,
                        want.1
                    )));
                }
            }
            Ok((a, b))
        })?;
        if let Some(((layer, target), _)) = tensors.into_iter().next() {
            return Err(TrainError::Model(format!(
                "tensors for {} are not part of this adapter (layers 0..{}, targets {:?})",
                peft_tensor_name(layer, target, 'A'),
                model.n_layer,
                lora.config.targets
            )));
        }
        Ok(lora)
    }

    fn build(
        model: &LlamaConfig,
        config: LoraConfig,
        mut make: impl FnMut(usize, Target, (usize, usize), usize) -> Result<(Tensor, Tensor)>,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(model.n_layer);
        for layer in 0..model.n_layer {
            let mut slots: [Option<LoraPair>; 7] = Default::default();
            for target in Target::ALL {
                if config.has(target) {
                    let (a, b) = make(layer, target, model.target_shape(target), config.r)?;
                    slots[target.index()] = Some(LoraPair {
                        a: Var::from_tensor(&a)?,
                        b: Var::from_tensor(&b)?,
                    });
                }
            }
            layers.push(slots);
        }
        Ok(Self { config, layers })
    }

    pub fn config(&self) -> &LoraConfig {
        &self.config
    }

    pub fn scaling(&self) -> f64 {
        self.config.scaling()
    }

    pub fn n_layer(&self) -> usize {
        self.layers.len()
    }

    pub fn pair(&self, layer: usize, target: Target) -> Option<&LoraPair> {
        self.layers.get(layer)?[target.index()].as_ref()
    }

    pub(crate) fn layer(&self, layer: usize) -> &[Option<LoraPair>; 7] {
        &self.layers[layer]
    }

    /// Every trainable tensor in a fixed order (layer, target, A then B):
    /// gradients and optimizer state are aligned with it.
    pub fn params(&self) -> Vec<Param> {
        let mut out = Vec::new();
        for (layer, slots) in self.layers.iter().enumerate() {
            for target in Target::ALL {
                if let Some(p) = &slots[target.index()] {
                    for (which, var) in [('A', &p.a), ('B', &p.b)] {
                        out.push(Param {
                            name: peft_tensor_name(layer, target, which),
                            var: var.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    pub fn num_parameters(&self) -> usize {
        self.params().iter().map(|p| p.var.elem_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LlamaConfig {
        LlamaConfig {
            n_layer: 2,
            n_embd: 16,
            n_head: 4,
            n_kv_head: 2,
            head_dim: 4,
            n_ff: 24,
            vocab: 10,
            rms_eps: 1e-5,
            rope_theta: 1e4,
        }
    }

    fn config(targets: Vec<Target>) -> LoraConfig {
        LoraConfig {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets,
            use_rslora: false,
        }
    }

    /// PEFT: A ~ U(±1/sqrt(in)) (kaiming_uniform_, a = sqrt(5)), B = 0,
    /// scaling alpha / r; the same seed gives the same A.
    #[test]
    fn init_is_peft_default_and_seeded() {
        let lora = Lora::init(
            &tiny(),
            config(vec![Target::Q, Target::Down]),
            3,
            DType::F32,
        )
        .unwrap();
        assert_eq!(lora.scaling(), 2.0);
        let params = lora.params();
        assert_eq!(params.len(), 2 * 2 * 2);
        assert_eq!(
            params[0].name,
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        );
        assert_eq!(
            params[3].name,
            "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"
        );
        let down_a = lora
            .pair(1, Target::Down)
            .unwrap()
            .a
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(down_a.len(), 4 * 24);
        let bound = 1.0 / (24f32).sqrt();
        assert!(down_a.iter().all(|v| v.abs() < bound));
        assert!(
            down_a.iter().any(|v| v.abs() > 0.8 * bound),
            "spread over the range"
        );
        let b = lora
            .pair(1, Target::Down)
            .unwrap()
            .b
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(b.iter().all(|&v| v == 0.0));
        let again = Lora::init(
            &tiny(),
            config(vec![Target::Q, Target::Down]),
            3,
            DType::F32,
        )
        .unwrap();
        let other = Lora::init(
            &tiny(),
            config(vec![Target::Q, Target::Down]),
            4,
            DType::F32,
        )
        .unwrap();
        let a = |l: &Lora| {
            l.params()[0]
                .var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(a(&lora), a(&again));
        assert_ne!(a(&lora), a(&other));
        assert!(lora.pair(0, Target::K).is_none());
    }

    #[test]
    fn rslora_scaling_and_bad_configs() {
        let mut c = config(vec![Target::V]);
        c.use_rslora = true;
        assert_eq!(c.scaling(), 4.0);
        for bad in [
            LoraConfig {
                r: 0,
                ..config(vec![Target::V])
            },
            LoraConfig {
                dropout: 1.0,
                ..config(vec![Target::V])
            },
            config(vec![]),
        ] {
            assert!(Lora::init(&tiny(), bad, 0, DType::F32).is_err());
        }
        assert_eq!(Target::parse("gate").unwrap(), Target::Gate);
        assert_eq!(Target::parse("o_proj").unwrap(), Target::O);
        assert!(Target::parse("lm_head").is_err());
    }
}
