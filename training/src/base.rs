//! The frozen base model: every GGUF weight dequantized to a plain f32
//! tensor. Plain tensors (not `Var`s) are leaves autograd does not track;
//! what keeps candle from computing their gradients anyway is
//! [`crate::autograd::frozen_linear`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::rng::normal;
use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::LlamaConfig;
use crate::error::{Result, TrainError};
use crate::lora::Target;

/// One block's weights, `[out, in]` for the projections (GGUF row order).
#[derive(Clone, Debug)]
pub(crate) struct LayerWeights {
    pub attn_norm: Tensor,
    pub ffn_norm: Tensor,
    /// Indexed by [`Target::index`].
    pub proj: [Tensor; 7],
}

impl LayerWeights {
    pub fn get(&self, t: Target) -> &Tensor {
        &self.proj[t.index()]
    }
}

#[derive(Clone, Debug)]
pub struct BaseModel {
    pub(crate) config: LlamaConfig,
    pub(crate) embed: Tensor,
    pub(crate) layers: Vec<LayerWeights>,
    pub(crate) norm: Tensor,
    /// `None`: tied to the token embedding (SmolLM2).
    pub(crate) output: Option<Tensor>,
}

impl BaseModel {
    /// Reads a llama GGUF file and dequantizes every weight to f32.
    pub fn from_gguf(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| TrainError::io(path, e))?;
        let mut reader = BufReader::new(file);
        let content =
            Content::read(&mut reader).map_err(|e| TrainError::file(path, format!("GGUF: {e}")))?;
        let config =
            LlamaConfig::from_gguf(&content).map_err(|e| TrainError::file(path, e.to_string()))?;
        let mut tensor = |name: &str| -> Result<Tensor> {
            let q = content
                .tensor(&mut reader, name, &Device::Cpu)
                .map_err(|e| TrainError::file(path, format!("tensor {name}: {e}")))?;
            let t = q
                .dequantize(&Device::Cpu)
                .map_err(|e| TrainError::file(path, format!("tensor {name}: {e}")))?;
            Ok(t.to_dtype(DType::F32)?)
        };
        let embed = tensor("token_embd.weight")?;
        let norm = tensor("output_norm.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            Some(tensor("output.weight")?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let proj = Target::ALL.map(|t| tensor(&format!("blk.{i}.{}.weight", t.gguf_name())));
            let [q, k, v, o, g, u, d] = proj;
            layers.push(LayerWeights {
                attn_norm: tensor(&format!("blk.{i}.attn_norm.weight"))?,
                ffn_norm: tensor(&format!("blk.{i}.ffn_norm.weight"))?,
                proj: [q?, k?, v?, o?, g?, u?, d?],
            });
        }
        let model = Self {
            config,
            embed,
            layers,
            norm,
            output,
        };
        model
            .check_shapes()
            .map_err(|e| TrainError::file(path, e.to_string()))?;
        Ok(model)
    }

    /// A random model of the given shape (tests, benchmarks): projections
    /// N(0, 1/in), norms around 1, untied output head unless `tied`.
    pub fn random(config: &LlamaConfig, seed: u64, dtype: DType, tied: bool) -> Result<Self> {
        config.check()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut randn = |shape: (usize, usize), std: f64| -> Result<Tensor> {
            let v: Vec<f64> = (0..shape.0 * shape.1)
                .map(|_| std * normal(&mut rng))
                .collect();
            Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)?)
        };
        let c = config;
        let norm = |randn: &mut dyn FnMut((usize, usize), f64) -> Result<Tensor>,
                    n: usize|
         -> Result<Tensor> {
            Ok(randn((1, n), 0.1)?.affine(1.0, 1.0)?.reshape(n)?)
        };
        let mut layers = Vec::new();
        for _ in 0..c.n_layer {
            let attn_norm = norm(&mut randn, c.n_embd)?;
            let ffn_norm = norm(&mut randn, c.n_embd)?;
            let mut proj = Vec::new();
            for t in Target::ALL {
                let (out, inp) = c.target_shape(t);
                proj.push(randn((out, inp), 1.0 / (inp as f64).sqrt())?);
            }
            let proj: [Tensor; 7] = proj.try_into().expect("seven projections");
            layers.push(LayerWeights {
                attn_norm,
                ffn_norm,
                proj,
            });
        }
        let embed = randn((c.vocab, c.n_embd), 1.0)?;
        let output = if tied {
            None
        } else {
            Some(randn((c.vocab, c.n_embd), 1.0 / (c.n_embd as f64).sqrt())?)
        };
        Ok(Self {
            config: c.clone(),
            embed,
            layers,
            norm: norm(&mut randn, c.n_embd)?,
            output,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn dtype(&self) -> DType {
        self.embed.dtype()
    }

    /// The output head: `output.weight`, or the token embedding when tied.
    pub(crate) fn head(&self) -> &Tensor {
        self.output.as_ref().unwrap_or(&self.embed)
    }

    /// A projection weight by its GGUF name (`blk.3.attn_q.weight`).
    pub fn weight(&self, layer: usize, target: Target) -> &Tensor {
        self.layers[layer].get(target)
    }

    /// Replaces projection weights by GGUF name (the output of
    /// [`crate::adapter::merge`]): the base model with an adapter merged in.
    pub fn replace_weights(&mut self, weights: &BTreeMap<String, Tensor>) -> Result<()> {
        for (name, w) in weights {
            let (layer, target) = parse_gguf_name(name)
                .ok_or_else(|| TrainError::Model(format!("no projection named {name}")))?;
            let slot = self
                .layers
                .get_mut(layer)
                .ok_or_else(|| TrainError::Model(format!("{name}: no layer {layer}")))?;
            let old = &mut slot.proj[target.index()];
            if old.dims() != w.dims() {
                return Err(TrainError::Model(format!(
                    "{name}: shape {:?}, the model has {:?}",
                    w.dims(),
                    old.dims()
                )));
            }
            *old = w.to_dtype(old.dtype())?;
        }
        Ok(())
    }

    /// Every weight has the shape the config implies.
    fn check_shapes(&self) -> Result<()> {
        let c = &self.config;
        let want = |name: String, t: &Tensor, dims: &[usize]| -> Result<()> {
            if t.dims() == dims {
                Ok(())
            } else {
                Err(TrainError::Model(format!(
                    "{name}: shape {:?}, expected {dims:?}",
                    t.dims()
                )))
            }
        };
        want(
            "token_embd.weight".into(),
            &self.embed,
            &[c.vocab, c.n_embd],
        )?;
        want("output_norm.weight".into(), &self.norm, &[c.n_embd])?;
        if let Some(o) = &self.output {
            want("output.weight".into(), o, &[c.vocab, c.n_embd])?;
        }
        for (i, l) in self.layers.iter().enumerate() {
            want(
                format!("blk.{i}.attn_norm.weight"),
                &l.attn_norm,
                &[c.n_embd],
            )?;
            want(format!("blk.{i}.ffn_norm.weight"), &l.ffn_norm, &[c.n_embd])?;
            for t in Target::ALL {
                let (o, n) = c.target_shape(t);
                want(gguf_name(i, t), l.get(t), &[o, n])?;
            }
        }
        Ok(())
    }
}

/// `blk.{layer}.{attn_q,...}.weight`.
pub fn gguf_name(layer: usize, target: Target) -> String {
    format!("blk.{layer}.{}.weight", target.gguf_name())
}

fn parse_gguf_name(name: &str) -> Option<(usize, Target)> {
    let rest = name.strip_prefix("blk.")?.strip_suffix(".weight")?;
    let (layer, module) = rest.split_once('.')?;
    let target = Target::ALL.into_iter().find(|t| t.gguf_name() == module)?;
    Some((layer.parse().ok()?, target))
}
