//! The CPU backend: a GGUF llama run with candle, tokenized and templated
//! from the file's own metadata.

use std::fs::File;
use std::io::BufReader;
use std::sync::Once;
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::gguf_file::Content;
use tokenizers::Tokenizer;

use super::chat_template::ChatTemplate;
use super::gguf_tokenizer::tokenizer_from_gguf;
use super::llama::{LlamaModel, WeightFormat};
use super::model_source::ResolvedModel;
use super::sampling::Sampler;
use super::{Backend, EngineError, FinishReason, GenParams, Generation, ModelInfo, Prompt};

/// Tokens that end a turn besides the declared EOS, when the vocabulary has
/// them (as llama.cpp does: a raw prompt often ends in `<|endoftext|>`).
const END_OF_TURN_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"];

#[derive(Clone, Copy, Debug)]
pub struct CandleOptions {
    /// CPU threads for candle's kernels (0 = candle's default).
    pub threads: usize,
    pub weights: WeightFormat,
}

impl Default for CandleOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            weights: WeightFormat::default(),
        }
    }
}

pub struct CandleBackend {
    model: LlamaModel,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    end_ids: Vec<u32>,
    info: ModelInfo,
}

/// One finished generation with its token ids (for tests and analyses that
/// need more than text).
#[derive(Clone, Debug)]
pub struct TracedGeneration {
    pub generation: Generation,
    pub prompt_ids: Vec<u32>,
    /// Every sampled token, including a final end-of-turn token.
    pub completion_ids: Vec<u32>,
}

impl CandleBackend {
    pub fn load(resolved: &ResolvedModel, opts: CandleOptions) -> Result<Self, EngineError> {
        let _span = tracing::debug_span!("load_model", path = %resolved.path.display()).entered();
        let start = Instant::now();
        let threads = configure_threads(opts.threads);

        let file = File::open(&resolved.path)
            .map_err(|e| EngineError::Load(format!("{}: {e}", resolved.path.display())))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|e| EngineError::Load(format!("{}: {e}", resolved.path.display())))?;
        let tokenizer = tokenizer_from_gguf(&content)?;
        let token_str = |key: &str| -> Option<String> {
            let id = content.metadata.get(key)?.to_u32().ok()?;
            tokenizer.id_to_token(id)
        };
        let template = match content.metadata.get("tokenizer.chat_template") {
            Some(v) => {
                let source = v
                    .to_string()
                    .map_err(|e| EngineError::Load(format!("tokenizer.chat_template: {e}")))?;
                Some(ChatTemplate::new(
                    source,
                    &token_str("tokenizer.ggml.bos_token_id").unwrap_or_default(),
                    &token_str("tokenizer.ggml.eos_token_id").unwrap_or_default(),
                )?)
            }
            None => None,
        };
        let mut end_ids: Vec<u32> = END_OF_TURN_TOKENS
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        if let Some(eos) = content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
        {
            end_ids.push(eos);
        }
        end_ids.sort_unstable();
        end_ids.dedup();

        let model = LlamaModel::from_gguf(&content, &mut reader, &Device::Cpu, opts.weights)?;
        let info = ModelInfo {
            source: resolved.source.clone(),
            path: resolved.path.display().to_string(),
            sha256: resolved.sha256.clone(),
            architecture: "llama".into(),
            context_length: model.context_length(),
            weights: model.weights().to_string(),
            threads,
            backend: "candle-cpu".into(),
            load_ms: start.elapsed().as_secs_f64() * 1e3,
        };
        tracing::debug!(load_ms = info.load_ms, weights = %info.weights, "model loaded");
        Ok(Self {
            model,
            tokenizer,
            template,
            end_ids,
            info,
        })
    }

    /// The exact text the model sees for `prompt`.
    pub fn prompt_text(&self, prompt: &Prompt) -> Result<String, EngineError> {
        match prompt {
            Prompt::Raw(text) => Ok(text.clone()),
            Prompt::Chat(messages) => self
                .template
                .as_ref()
                .ok_or_else(|| {
                    EngineError::InvalidParams(
                        "model has no chat template; use a raw prompt".into(),
                    )
                })?
                .render(messages),
        }
    }

    /// Token ids of `text`: special-token markers parsed, no BOS added.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| EngineError::Backend(format!("tokenize: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// [`Backend::generate`], also returning the token ids.
    pub fn generate_traced(
        &mut self,
        prompt: &Prompt,
        params: &GenParams,
    ) -> Result<TracedGeneration, EngineError> {
        let _span =
            tracing::debug_span!("candle_generate", max_tokens = params.max_tokens).entered();
        if params.stop.iter().any(|s| s.is_empty()) {
            return Err(EngineError::InvalidParams("empty stop sequence".into()));
        }
        let mut sampler = Sampler::new(params.temperature, params.top_p, params.seed)?;
        let prompt_text = self.prompt_text(prompt)?;
        let prompt_ids = self.tokenize(&prompt_text)?;
        if prompt_ids.is_empty() {
            return Err(EngineError::InvalidParams("empty prompt".into()));
        }
        let max_new = params.max_tokens as usize;
        let ctx = self.model.context_length();
        if prompt_ids.len() + max_new > ctx {
            return Err(EngineError::ContextOverflow {
                prompt: prompt_ids.len(),
                max_new,
                ctx,
            });
        }

        // Prefix caching comes later: every request starts from scratch.
        self.model.clear_cache();
        let start = Instant::now();
        let mut logits = if max_new > 0 {
            Some(self.model.forward(&prompt_ids, 0)?)
        } else {
            None
        };
        let prefill_ms = start.elapsed().as_secs_f64() * 1e3;

        let decode_start = Instant::now();
        let mut completion_ids = Vec::new();
        let mut text = String::new();
        let mut stream = self.tokenizer.decode_stream(false);
        let mut finish_reason = FinishReason::Length;
        let mut stop_at = None;
        while let Some(l) = logits.take() {
            let l = l
                .to_vec1::<f32>()
                .map_err(|e| EngineError::Backend(e.to_string()))?;
            let token = sampler.sample(&l);
            completion_ids.push(token);
            if self.end_ids.contains(&token) {
                finish_reason = FinishReason::Stop;
                break;
            }
            let chunk = stream
                .step(token)
                .map_err(|e| EngineError::Backend(format!("detokenize: {e}")))?;
            if let Some(chunk) = chunk {
                let before = text.len();
                text.push_str(&chunk);
                stop_at = find_stop(&text, before, &params.stop);
                if stop_at.is_some() {
                    finish_reason = FinishReason::Stop;
                    break;
                }
            }
            if completion_ids.len() < max_new {
                let pos = prompt_ids.len() + completion_ids.len() - 1;
                logits = Some(self.model.forward(&[token], pos)?);
            }
        }
        // The stream holds back incomplete UTF-8; a full decode of the
        // (short) completion flushes it.
        let text_ids: Vec<u32> = completion_ids
            .iter()
            .copied()
            .filter(|id| !self.end_ids.contains(id))
            .collect();
        let mut text = match stop_at {
            Some(_) => text,
            None => self
                .tokenizer
                .decode(&text_ids, false)
                .map_err(|e| EngineError::Backend(format!("detokenize: {e}")))?,
        };
        if let Some(at) = stop_at {
            text.truncate(at);
        }
        let decode_ms = decode_start.elapsed().as_secs_f64() * 1e3;
        let completion_tokens = text_ids.len() as u32;
        Ok(TracedGeneration {
            generation: Generation {
                prompt_text,
                text,
                prompt_tokens: prompt_ids.len() as u32,
                completion_tokens,
                finish_reason,
                prefill_ms,
                decode_ms,
                tokens: Vec::new(),
                cached_prompt_tokens: 0,
            },
            prompt_ids,
            completion_ids,
        })
    }
}

impl Backend for CandleBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(&mut self, prompt: &Prompt, params: &GenParams) -> Result<Generation, EngineError> {
        self.generate_traced(prompt, params).map(|t| t.generation)
    }
}

/// Byte offset of the earliest stop sequence in `text` that ends after
/// `new_from` (earlier text was already checked), so each step only scans
/// the new tail.
fn find_stop(text: &str, new_from: usize, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter_map(|s| {
            let mut from = new_from.saturating_sub(s.len() - 1);
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            text[from..].find(s.as_str()).map(|i| from + i)
        })
        .min()
}

/// candle sizes its CPU thread pool from `CANDLE_NUM_THREADS` on first use;
/// on a few shared cores, more spinning threads than cores collapses
/// throughput, so pin it to the configured count unless the user set it.
/// Returns the count in effect.
fn configure_threads(threads: usize) -> usize {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if threads > 0 && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            // SAFETY: runs once, at model load, before candle reads the
            // variable; nothing else in forge mutates the environment.
            unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
        }
    });
    std::env::var("CANDLE_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_search_finds_earliest_across_chunks() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        // "EN" arrived earlier, "D" completes it.
        assert_eq!(find_stop("abc EN", 4, &stops), None);
        assert_eq!(find_stop("abc END", 6, &stops), Some(4));
        assert_eq!(find_stop("héllo\n\nEND", 6, &stops), Some(6));
        assert_eq!(find_stop("é", 2, &["éé".to_string()]), None);
    }
}
