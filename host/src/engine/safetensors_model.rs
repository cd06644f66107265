//! Llama-family models in Hugging Face's layout — `config.json`,
//! `model.safetensors`, `tokenizer.json`, `tokenizer_config.json` — run by
//! the same llama engine as GGUF files.
//!
//! Rather than a second forward pass, the tensors are renamed to llama.cpp's
//! GGUF names, the Q/K rows permuted to GGUF's interleaved-RoPE order (what
//! `convert_hf_to_gguf.py` does), and written with the config as metadata
//! into an in-memory GGUF that [`super::llama::LlamaModel`] loads. Matrices
//! are quantised to Q8_0 (`weights = "q8_0"`) or kept f32 (the default,
//! as the file has them; they run on candle's matmul).

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use tokenizers::Tokenizer;

use super::EngineError;
use super::llama::WeightFormat;

/// The files of a model directory (or hf-hub snapshot).
pub const FILES: &[&str] = &[
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
];

/// The `config.json` fields the llama engine needs.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: String,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    rope_theta: f64,
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    attention_bias: bool,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

/// What tokenizer_config.json says about prompts.
#[derive(Debug, Default, Deserialize)]
struct TokenizerConfig {
    chat_template: Option<serde_json::Value>,
    bos_token: Option<serde_json::Value>,
    eos_token: Option<serde_json::Value>,
    #[serde(default)]
    add_bos_token: bool,
}

/// A safetensors model made ready for the GGUF loader.
pub struct HfModel {
    pub content: Content,
    pub reader: Cursor<Vec<u8>>,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub add_bos: bool,
    /// e.g. "q8_0 quantised from bf16 safetensors".
    pub weights: String,
}

/// Loads the model in `dir`.
pub fn load(dir: &Path, format: WeightFormat) -> Result<HfModel, EngineError> {
    let _span = tracing::debug_span!("load_safetensors", dir = %dir.display()).entered();
    let file = |name: &str| -> PathBuf { dir.join(name) };
    let read = |name: &str| -> Result<String, EngineError> {
        std::fs::read_to_string(file(name))
            .map_err(|e| EngineError::Load(format!("{}: {e}", file(name).display())))
    };
    let config: HfConfig = serde_json::from_str(&read("config.json")?)
        .map_err(|e| EngineError::Load(format!("{}: {e}", file("config.json").display())))?;
    let bad_config =
        |msg: String| EngineError::Load(format!("{}: {msg}", file("config.json").display()));
    if !matches!(config.model_type.as_str(), "llama" | "mistral") {
        return Err(bad_config(format!(
            "unsupported model_type '{}' (supported: llama, mistral)",
            config.model_type
        )));
    }
    if config.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(bad_config("rope_scaling is not supported".into()));
    }
    if config.attention_bias {
        return Err(bad_config("attention_bias is not supported".into()));
    }
    let tok_config: TokenizerConfig = match read("tokenizer_config.json") {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            EngineError::Load(format!("{}: {e}", file("tokenizer_config.json").display()))
        })?,
        Err(_) => TokenizerConfig::default(),
    };
    let tokenizer = Tokenizer::from_file(file("tokenizer.json"))
        .map_err(|e| EngineError::Load(format!("{}: {e}", file("tokenizer.json").display())))?;

    let weights_path = file("model.safetensors");
    let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
        .map_err(|e| EngineError::Load(format!("{}: {e}", weights_path.display())))?;
    let source_dtype = tensors
        .values()
        .next()
        .map(|t| format!("{:?}", t.dtype()).to_lowercase())
        .unwrap_or_default();
    let (gguf, quantised) = to_gguf(&config, &tensors, format)
        .map_err(|e| EngineError::Load(format!("{}: {e}", weights_path.display())))?;
    let mut reader = Cursor::new(gguf);
    let content = Content::read(&mut reader)
        .map_err(|e| EngineError::Load(format!("{}: {e}", weights_path.display())))?;
    let weights = if quantised {
        format!("q8_0 quantised from {source_dtype} safetensors")
    } else {
        format!("f32 from {source_dtype} safetensors")
    };
    Ok(HfModel {
        content,
        reader,
        tokenizer,
        chat_template: tok_config
            .chat_template
            .and_then(|v| v.as_str().map(str::to_string)),
        bos_token: tok_config.bos_token.as_ref().and_then(token_content),
        eos_token: tok_config.eos_token.as_ref().and_then(token_content),
        add_bos: tok_config.add_bos_token,
        weights,
    })
}

/// `"<s>"` or `{"content": "<s>", ...}`.
fn token_content(v: &serde_json::Value) -> Option<String> {
    v.as_str()
        .or_else(|| v.get("content").and_then(|c| c.as_str()))
        .map(str::to_string)
}

/// The GGUF bytes of the model, and whether matrices were quantised.
fn to_gguf(
    c: &HfConfig,
    tensors: &HashMap<String, Tensor>,
    format: WeightFormat,
) -> Result<(Vec<u8>, bool), String> {
    let n_head = c.num_attention_heads;
    let n_head_kv = c.num_key_value_heads.unwrap_or(n_head);
    let head_dim = c.head_dim.unwrap_or(c.hidden_size / n_head);
    let get = |name: &str| -> Result<Tensor, String> {
        tensors
            .get(name)
            .ok_or_else(|| format!("missing tensor {name}"))?
            .to_dtype(DType::F32)
            .map_err(|e| format!("{name}: {e}"))
    };
    let quantise = format == WeightFormat::Q8_0;
    let matrix = |t: Tensor| -> Result<QTensor, String> {
        let dtype = if quantise && t.dim(1).is_ok_and(|d| d % 32 == 0) {
            GgmlDType::Q8_0
        } else {
            GgmlDType::F32
        };
        QTensor::quantize(&t, dtype).map_err(|e| e.to_string())
    };
    let vector = |t: Tensor| QTensor::quantize(&t, GgmlDType::F32).map_err(|e| e.to_string());
    // HF's Q/K rows are in rotate-half order; GGUF's in interleaved pairs.
    let to_interleaved = |t: Tensor, heads: usize| -> Result<Tensor, String> {
        let (out, inp) = t.dims2().map_err(|e| e.to_string())?;
        t.reshape((heads, 2, out / heads / 2, inp))
            .and_then(|t| t.transpose(1, 2))
            .and_then(|t| t.reshape((out, inp)))
            .map_err(|e| e.to_string())
    };

    let mut out: Vec<(String, QTensor)> = Vec::new();
    out.push((
        "token_embd.weight".into(),
        matrix(get("model.embed_tokens.weight")?)?,
    ));
    out.push((
        "output_norm.weight".into(),
        vector(get("model.norm.weight")?)?,
    ));
    if !c.tie_word_embeddings && tensors.contains_key("lm_head.weight") {
        out.push(("output.weight".into(), matrix(get("lm_head.weight")?)?));
    }
    for i in 0..c.num_hidden_layers {
        let hf = |s: &str| format!("model.layers.{i}.{s}.weight");
        let gg = |s: &str| format!("blk.{i}.{s}.weight");
        out.push((gg("attn_norm"), vector(get(&hf("input_layernorm"))?)?));
        out.push((
            gg("attn_q"),
            matrix(to_interleaved(get(&hf("self_attn.q_proj"))?, n_head)?)?,
        ));
        out.push((
            gg("attn_k"),
            matrix(to_interleaved(get(&hf("self_attn.k_proj"))?, n_head_kv)?)?,
        ));
        out.push((gg("attn_v"), matrix(get(&hf("self_attn.v_proj"))?)?));
        out.push((gg("attn_output"), matrix(get(&hf("self_attn.o_proj"))?)?));
        out.push((
            gg("ffn_norm"),
            vector(get(&hf("post_attention_layernorm"))?)?,
        ));
        out.push((gg("ffn_gate"), matrix(get(&hf("mlp.gate_proj"))?)?));
        out.push((gg("ffn_up"), matrix(get(&hf("mlp.up_proj"))?)?));
        out.push((gg("ffn_down"), matrix(get(&hf("mlp.down_proj"))?)?));
    }

    let u32v = |n: usize| Value::U32(n as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.embedding_length", u32v(c.hidden_size)),
        ("llama.feed_forward_length", u32v(c.intermediate_size)),
        ("llama.block_count", u32v(c.num_hidden_layers)),
        ("llama.attention.head_count", u32v(n_head)),
        ("llama.attention.head_count_kv", u32v(n_head_kv)),
        ("llama.rope.dimension_count", u32v(head_dim)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(c.rms_norm_eps as f32),
        ),
        ("llama.rope.freq_base", Value::F32(c.rope_theta as f32)),
        ("llama.context_length", u32v(c.max_position_embeddings)),
    ];
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = out.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut bytes = Cursor::new(Vec::new());
    gguf_file::write(&mut bytes, &md, &ts).map_err(|e| e.to_string())?;
    Ok((bytes.into_inner(), quantise))
}
