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
use super::prefix_cache::{DEFAULT_PREFIX_CACHE_BYTES, PrefixCache, common_prefix};
use super::sampling::{Sampler, log_softmax, top_n};
use super::{
    Backend, EngineError, FinishReason, GenParams, Generation, ModelInfo, Prompt, TokenLogprob,
};

/// Tokens that end a turn besides the declared EOS, when the vocabulary has
/// them (as llama.cpp does: a raw prompt often ends in `<|endoftext|>`).
const END_OF_TURN_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"];

#[derive(Clone, Copy, Debug)]
pub struct CandleOptions {
    /// CPU threads for candle's kernels (0 = candle's default).
    pub threads: usize,
    pub weights: WeightFormat,
    /// Byte budget of the prefix cache's KV snapshots; 0 = no prefix cache
    /// (every prompt is prefilled from scratch).
    pub prefix_cache_bytes: usize,
}

impl Default for CandleOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            weights: WeightFormat::default(),
            prefix_cache_bytes: DEFAULT_PREFIX_CACHE_BYTES,
        }
    }
}

pub struct CandleBackend {
    model: LlamaModel,
    /// Shared so a decode stream can borrow it while the model runs.
    tokenizer: std::sync::Arc<Tokenizer>,
    template: Option<ChatTemplate>,
    end_ids: Vec<u32>,
    info: ModelInfo,
    /// The tokens whose KV state the model's cache holds right now (the
    /// last prompt and what was decoded after it).
    live: Vec<u32>,
    prefix_cache: PrefixCache,
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

        let model =
            LlamaModel::from_gguf(&content, &mut reader, &Device::Cpu, opts.weights, threads)?;
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
            tokenizer: std::sync::Arc::new(tokenizer),
            template,
            end_ids,
            info,
            live: Vec::new(),
            prefix_cache: PrefixCache::new(opts.prefix_cache_bytes),
        })
    }

    /// Runs `tokens` after the live sequence; logits of the last position,
    /// or of every position when `all`.
    fn extend(&mut self, tokens: &[u32], all: bool) -> Result<candle_core::Tensor, EngineError> {
        let pos = self.live.len();
        let out = if all {
            self.model.forward_all(tokens, pos)
        } else {
            self.model.forward(tokens, pos)
        };
        match &out {
            Ok(_) => self.live.extend_from_slice(tokens),
            Err(_) => self.live.clear(), // the model cleared its cache
        }
        out
    }

    /// Leaves the model's cache holding exactly `ids` and returns the
    /// logits after the last one, reusing the longest prefix of `ids` whose
    /// KV state is live or in the prefix cache. Returns how many prompt
    /// tokens were reused. At least one token is always run: its logits are
    /// what the first new token is drawn from.
    fn prefill(&mut self, ids: &[u32]) -> Result<(Vec<f32>, usize), EngineError> {
        let max_reuse = ids.len() - 1;
        let mut reused = 0;
        if self.prefix_cache.enabled() {
            let live = common_prefix(&self.live, ids).min(max_reuse);
            let snap = self
                .prefix_cache
                .longest_prefix(ids)
                .map(|(s, n)| (s, n.min(max_reuse)));
            match snap {
                Some((snap, n)) if n > live => {
                    self.model.restore(snap, n)?;
                    self.live = ids[..n].to_vec();
                    reused = n;
                }
                _ => {
                    self.model.truncate_cache(live);
                    self.live.truncate(live);
                    reused = live;
                }
            }
        } else {
            self.model.clear_cache();
            self.live.clear();
        }
        let logits = self.extend(&ids[reused..], false)?;
        if self.prefix_cache.enabled() && !self.prefix_cache.covers(ids) {
            let snap = self.model.snapshot(ids.len())?;
            self.prefix_cache.insert(ids.to_vec(), snap);
        }
        Ok((to_vec(&logits)?, reused))
    }

    /// Bytes and entries held by the prefix cache.
    pub fn prefix_cache_usage(&self) -> (usize, usize) {
        (self.prefix_cache.bytes_used(), self.prefix_cache.len())
    }

    /// The text of one token as it appears in output (` capital`, not
    /// `Ġcapital`).
    pub fn tokenizer_decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, false).unwrap_or_default()
    }

    fn token_text(&self, id: u32) -> String {
        self.tokenizer.decode(&[id], false).unwrap_or_default()
    }

    /// Token ids of `continuation` as they follow `prompt_text`. BPE merges
    /// can cross the boundary, so the pair is tokenised together and the
    /// prompt's own ids must be a prefix of the result; when a merge did
    /// cross it (e.g. a prompt ending in a space), the continuation is
    /// tokenised alone, which is what a model generating it token by token
    /// after this exact prompt would have produced anyway.
    fn continuation_ids(
        &self,
        prompt_text: &str,
        prompt_ids: &[u32],
        continuation: &str,
    ) -> Result<Vec<u32>, EngineError> {
        let joint = self.tokenize(&format!("{prompt_text}{continuation}"))?;
        if joint.len() > prompt_ids.len() && joint.starts_with(prompt_ids) {
            return Ok(joint[prompt_ids.len()..].to_vec());
        }
        tracing::debug!(
            continuation,
            "tokens merge across the prompt boundary; tokenising the continuation alone"
        );
        self.tokenize(continuation)
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
        let mut sampler = Sampler::from_params(params)?;
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

        let start = Instant::now();
        let (mut logits, cached_prompt_tokens) = if max_new > 0 {
            let (l, reused) = self.prefill(&prompt_ids)?;
            (Some(l), reused)
        } else {
            (None, 0)
        };
        let prefill_ms = start.elapsed().as_secs_f64() * 1e3;
        // Prompt and output so far, for the repetition penalty.
        let mut history = prompt_ids.clone();
        let mut token_logprobs = Vec::new();

        let decode_start = Instant::now();
        let mut completion_ids = Vec::new();
        let mut text = String::new();
        let tokenizer = self.tokenizer.clone();
        let mut stream = tokenizer.decode_stream(false);
        let mut finish_reason = FinishReason::Length;
        let mut stop_at = None;
        while let Some(l) = logits.take() {
            let token = sampler.sample_with_history(&l, &history);
            history.push(token);
            completion_ids.push(token);
            if self.end_ids.contains(&token) {
                finish_reason = FinishReason::Stop;
                break;
            }
            if let Some(n) = params.logprobs {
                // Of the raw distribution, as OpenAI and llama.cpp report them.
                let lp = log_softmax(&l);
                token_logprobs.push(TokenLogprob {
                    token: self.token_text(token),
                    id: token,
                    logprob: lp[token as usize],
                    top: top_n(&lp, n as usize)
                        .into_iter()
                        .map(|(id, p)| (self.token_text(id), p))
                        .collect(),
                });
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
                logits = Some(to_vec(&self.extend(&[token], false)?)?);
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
                tokens: token_logprobs,
                cached_prompt_tokens: cached_prompt_tokens as u32,
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

    /// The prompt is prefilled once (through the prefix cache); each
    /// continuation then runs in one forward from the prompt's KV state,
    /// which is truncated back to the prompt before the next.
    fn score_continuations(
        &mut self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<f64>, EngineError> {
        let _span = tracing::debug_span!("candle_score", n = continuations.len()).entered();
        let prompt_text = self.prompt_text(prompt)?;
        let prompt_ids = self.tokenize(&prompt_text)?;
        if prompt_ids.is_empty() {
            return Err(EngineError::InvalidParams("empty prompt".into()));
        }
        let conts = continuations
            .iter()
            .map(|c| {
                if c.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.continuation_ids(&prompt_text, &prompt_ids, c)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ctx = self.model.context_length();
        if let Some(longest) = conts.iter().map(Vec::len).max()
            && prompt_ids.len() + longest > ctx
        {
            return Err(EngineError::ContextOverflow {
                prompt: prompt_ids.len(),
                max_new: longest,
                ctx,
            });
        }
        let (first, _) = self.prefill(&prompt_ids)?;
        let first = log_softmax(&first);
        let vocab = first.len();
        let mut scores = Vec::with_capacity(conts.len());
        for ids in &conts {
            let Some(&head) = ids.first() else {
                scores.push(0.0);
                continue;
            };
            let mut total = first[head as usize] as f64;
            if ids.len() > 1 {
                self.model.truncate_cache(prompt_ids.len());
                self.live.truncate(prompt_ids.len());
                // Logits at each continuation position but the last predict
                // the next continuation token.
                let rows = to_vec(&self.extend(&ids[..ids.len() - 1], true)?)?;
                for (row, &next) in rows.chunks_exact(vocab).zip(&ids[1..]) {
                    total += log_softmax(row)[next as usize] as f64;
                }
            }
            scores.push(total);
        }
        Ok(scores)
    }
}

/// A logits tensor (any shape) as a flat `Vec<f32>`.
fn to_vec(t: &candle_core::Tensor) -> Result<Vec<f32>, EngineError> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| EngineError::Backend(e.to_string()))
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
