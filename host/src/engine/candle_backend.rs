//! The CPU backend: a GGUF model (llama or gemma3, see [`super::arch`]) or a
//! llama-family safetensors directory run with candle, tokenized and
//! templated from the model's own metadata.

use std::fs::File;
use std::io::BufReader;
use std::sync::Once;
use std::time::Instant;

use candle_core::quantized::gguf_file::Content;
use tokenizers::Tokenizer;

use super::adapter::AdapterInfo;
use super::arch::{ArchModel, architecture};
use super::chat_template::ChatTemplate;
use super::device::ComputeDevice;
use super::gguf_tokenizer::tokenizer_from_gguf;
use super::llama::{SequenceKv, WeightFormat};
use super::model_source::ResolvedModel;
use super::prefix_cache::{DEFAULT_PREFIX_CACHE_BYTES, PrefixCache, common_prefix};
use super::safetensors_model;
use super::sampling::{Sampler, log_softmax, top_n};
use super::{
    Backend, BatchingBackend, EngineError, FinishReason, GenParams, Generation, ModelInfo, Prompt,
    SequenceEvent, StreamDelta, TokenLogprob,
};

/// Tokens that end a turn besides the declared EOS, when the vocabulary has
/// them (as llama.cpp does: a raw prompt often ends in `<|endoftext|>`).
const END_OF_TURN_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"];

#[derive(Clone, Debug)]
pub struct CandleOptions {
    /// CPU threads for candle's kernels (0 = candle's default).
    pub threads: usize,
    pub weights: WeightFormat,
    /// Byte budget of the prefix cache's KV snapshots; 0 = no prefix cache
    /// (every prompt is prefilled from scratch).
    pub prefix_cache_bytes: usize,
    /// A PEFT LoRA adapter directory merged into the weights at load.
    pub adapter: Option<std::path::PathBuf>,
    /// Where the model runs (`[model] device`).
    pub device: ComputeDevice,
}

impl Default for CandleOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            weights: WeightFormat::default(),
            prefix_cache_bytes: DEFAULT_PREFIX_CACHE_BYTES,
            adapter: None,
            device: ComputeDevice::Cpu,
        }
    }
}

pub struct CandleBackend {
    model: ArchModel,
    /// Shared so a decode stream can borrow it while the model runs.
    tokenizer: std::sync::Arc<Tokenizer>,
    template: Option<ChatTemplate>,
    end_ids: Vec<u32>,
    /// Put in front of every prompt when the file asks for it
    /// (`tokenizer.ggml.add_bos_token`, as Gemma does), like llama.cpp.
    bos: Option<u32>,
    info: ModelInfo,
    /// The tokens whose KV state the model's cache holds right now (the
    /// last prompt and what was decoded after it).
    live: Vec<u32>,
    prefix_cache: PrefixCache,
    /// Requests being decoded together ([`BatchingBackend`]).
    running: Vec<Running>,
}

/// A request in the running batch.
struct Running {
    id: u64,
    seq: Sequence,
    stream: bool,
}

/// What a model source says about text besides the weights.
struct Vocabulary {
    tokenizer: Tokenizer,
    chat_template: Option<String>,
    bos: Option<String>,
    eos: Option<String>,
    /// Whether prompts start with `bos` (llama.cpp's `add_bos_token`).
    add_bos: bool,
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
    /// Loads a GGUF file, or a Hugging Face safetensors directory (see
    /// [`super::safetensors_model`]).
    pub fn load(resolved: &ResolvedModel, opts: CandleOptions) -> Result<Self, EngineError> {
        let _span = tracing::debug_span!("load_model", path = %resolved.path.display()).entered();
        let start = Instant::now();
        let threads = configure_threads(opts.threads);
        let (model, vocab, weights, adapter) = if resolved.path.is_dir() {
            let hf = safetensors_model::load(&resolved.path, opts.weights)?;
            let mut reader = hf.reader;
            let (model, adapter) = ArchModel::from_gguf(
                &hf.content,
                &mut reader,
                opts.device,
                opts.weights,
                threads,
                opts.adapter.as_deref(),
            )?;
            let vocab = Vocabulary {
                tokenizer: hf.tokenizer,
                chat_template: hf.chat_template,
                bos: hf.bos_token,
                eos: hf.eos_token,
                add_bos: hf.add_bos,
            };
            let weights = match &adapter {
                Some(a) => format!("{}; {}", hf.weights, a.describe()),
                None => hf.weights,
            };
            (model, vocab, weights, adapter)
        } else {
            let (model, vocab, adapter) = Self::read_gguf(&resolved.path, &opts, threads)?;
            let weights = model.weights().to_string();
            (model, vocab, weights, adapter)
        };

        let Vocabulary {
            tokenizer,
            chat_template,
            bos,
            eos,
            add_bos,
        } = vocab;
        let template = chat_template
            .map(|source| {
                ChatTemplate::new(
                    &source,
                    bos.as_deref().unwrap_or_default(),
                    eos.as_deref().unwrap_or_default(),
                )
            })
            .transpose()?;
        let mut end_ids: Vec<u32> = END_OF_TURN_TOKENS
            .iter()
            .copied()
            .chain(eos.as_deref())
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        end_ids.sort_unstable();
        end_ids.dedup();
        let bos = bos
            .filter(|_| add_bos)
            .and_then(|t| tokenizer.token_to_id(&t));

        let mut prefix_cache_bytes = opts.prefix_cache_bytes;
        if prefix_cache_bytes > 0 && !model.supports_kv_snapshots() {
            tracing::info!(
                arch = model.name(),
                "prefix cache off: this architecture has no KV snapshots \
                 (every prompt is prefilled from scratch)"
            );
            prefix_cache_bytes = 0;
        }
        let info = ModelInfo {
            source: resolved.source.clone(),
            path: resolved.path.display().to_string(),
            sha256: resolved.sha256.clone(),
            architecture: model.name().into(),
            context_length: model.context_length(),
            weights,
            adapter,
            threads,
            backend: match opts.device {
                ComputeDevice::Cuda(_) => super::BackendKind::CandleCuda,
                ComputeDevice::Cpu | ComputeDevice::CpuTensors => super::BackendKind::CandleCpu,
            },
            load_ms: start.elapsed().as_secs_f64() * 1e3,
        };
        tracing::debug!(load_ms = info.load_ms, weights = %info.weights, "model loaded");
        Ok(Self {
            model,
            tokenizer: std::sync::Arc::new(tokenizer),
            template,
            end_ids,
            bos,
            info,
            live: Vec::new(),
            prefix_cache: PrefixCache::new(prefix_cache_bytes),
            running: Vec::new(),
        })
    }

    /// The model and vocabulary of a GGUF file; errors name the file.
    fn read_gguf(
        path: &std::path::Path,
        opts: &CandleOptions,
        threads: usize,
    ) -> Result<(ArchModel, Vocabulary, Option<AdapterInfo>), EngineError> {
        let in_file = |e: EngineError| match e {
            EngineError::Load(m) => EngineError::Load(format!("{}: {m}", path.display())),
            e => e,
        };
        let file =
            File::open(path).map_err(|e| EngineError::Load(format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|e| EngineError::Load(format!("{}: {e}", path.display())))?;
        // Before the tokenizer: an unsupported file fails on what matters.
        let arch = architecture(&content).map_err(in_file)?;
        if !super::arch::SUPPORTED.contains(&arch.as_str()) {
            return Err(in_file(EngineError::Load(format!(
                "unsupported architecture '{arch}' (supported: {})",
                super::arch::SUPPORTED.join(", ")
            ))));
        }
        let tokenizer = tokenizer_from_gguf(&content).map_err(in_file)?;
        let token_str = |key: &str| -> Option<String> {
            let id = content.metadata.get(key)?.to_u32().ok()?;
            tokenizer.id_to_token(id)
        };
        let chat_template = content
            .metadata
            .get("tokenizer.chat_template")
            .map(|v| v.to_string().cloned())
            .transpose()
            .map_err(|e| in_file(EngineError::Load(format!("tokenizer.chat_template: {e}"))))?;
        let bos = token_str("tokenizer.ggml.bos_token_id");
        let eos = token_str("tokenizer.ggml.eos_token_id");
        let add_bos = content
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        let (model, adapter) = ArchModel::from_gguf(
            &content,
            &mut reader,
            opts.device,
            opts.weights,
            threads,
            opts.adapter.as_deref(),
        )
        .map_err(in_file)?;
        let vocab = Vocabulary {
            tokenizer,
            chat_template,
            bos,
            eos,
            add_bos,
        };
        Ok((model, vocab, adapter))
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

    /// The log-probability of each `completion` token after `prompt` and
    /// the completion tokens before it (token ids; one forward from an
    /// empty cache). What `train dpo`'s forward computes for a completion,
    /// by the inference path.
    pub fn token_logprobs(
        &mut self,
        prompt: &[u32],
        completion: &[u32],
    ) -> Result<Vec<f64>, EngineError> {
        if prompt.is_empty() {
            return Err(EngineError::InvalidParams("empty prompt".into()));
        }
        let ids: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        let ctx = self.model.context_length();
        if ids.len() > ctx {
            return Err(EngineError::ContextOverflow {
                prompt: prompt.len(),
                max_new: completion.len(),
                ctx,
            });
        }
        if completion.is_empty() {
            return Ok(Vec::new());
        }
        self.model.clear_cache();
        self.live.clear();
        // Row i predicts token i + 1; the completion is predicted by the
        // rows from the prompt's last token on.
        let rows = to_vec(&self.extend(&ids[..ids.len() - 1], true)?)?;
        let vocab = rows.len() / (ids.len() - 1);
        Ok(rows
            .chunks_exact(vocab)
            .skip(prompt.len() - 1)
            .zip(completion)
            .map(|(row, &next)| log_softmax(row)[next as usize] as f64)
            .collect())
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
        let joint = self.prompt_ids(&format!("{prompt_text}{continuation}"))?;
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

    /// Token ids the model is run on for the prompt `text`: [`Self::tokenize`]
    /// with BOS in front when the model wants one and the text (e.g. a chat
    /// template's `{{ bos_token }}`) did not already start with it.
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let mut ids = self.tokenize(text)?;
        if let Some(bos) = self.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
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
        // A batch of one: the same code path as batched decoding, so a
        // request's tokens do not depend on whether it ran alone.
        let mut seq = self.begin(prompt, params)?;
        while !seq.is_done() {
            self.decode_step(&mut [&mut seq])?;
        }
        self.finish(seq)
    }

    /// Validates and prefills one request (through the prefix cache) and
    /// returns it ready to decode in [`Self::decode_step`], with its own KV cache.
    pub fn begin(&mut self, prompt: &Prompt, params: &GenParams) -> Result<Sequence, EngineError> {
        if params.stop.iter().any(|s| s.is_empty()) {
            return Err(EngineError::InvalidParams("empty stop sequence".into()));
        }
        let sampler = Sampler::from_params(params)?;
        let prompt_text = self.prompt_text(prompt)?;
        let prompt_ids = self.prompt_ids(&prompt_text)?;
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
        let (logits, cached_prompt_tokens, kv) = if max_new > 0 {
            let (l, reused) = self.prefill(&prompt_ids)?;
            // The sequence decodes in its own cache; the model's is free
            // for the next prefill (it gets this one back at `finish`).
            self.live.clear();
            (Some(l), reused, self.model.take_cache())
        } else {
            (None, 0, SequenceKv::default())
        };
        Ok(Sequence {
            sampler,
            kv,
            history: prompt_ids.clone(),
            prompt_text,
            prompt_ids,
            completion_ids: Vec::new(),
            token_logprobs: Vec::new(),
            text: String::new(),
            decoder: StreamState::default(),
            logits: logits.map(Next::Logits),
            finish_reason: FinishReason::Length,
            stop_at: None,
            cached_prompt_tokens,
            prefill_ms: start.elapsed().as_secs_f64() * 1e3,
            decode_start: Instant::now(),
            decode_ms: 0.0,
            streamed_text: 0,
            streamed_tokens: 0,
            max_batch: 0,
            params: params.clone(),
        })
    }

    /// One decode step of every sequence in `seqs` that is not done: each
    /// draws its next token from its own logits (its own sampler and RNG),
    /// checks its own end tokens, stop sequences and `max_tokens`, and those
    /// still going run their new token in ONE batched forward pass. On an
    /// error every sequence in `seqs` is unusable.
    pub fn decode_step(&mut self, seqs: &mut [&mut Sequence]) -> Result<(), EngineError> {
        let mut feed = Vec::with_capacity(seqs.len());
        for (i, seq) in seqs.iter_mut().enumerate() {
            if let Some(token) = self.advance(seq)? {
                feed.push((i, token));
            }
        }
        if feed.is_empty() {
            return Ok(());
        }
        let tokens: Vec<u32> = feed.iter().map(|&(_, t)| t).collect();
        let logits = {
            let mut kvs: Vec<&mut SequenceKv> = Vec::with_capacity(feed.len());
            let mut next = feed.iter().map(|&(i, _)| i).peekable();
            for (i, seq) in seqs.iter_mut().enumerate() {
                if next.peek() == Some(&i) {
                    next.next();
                    kvs.push(&mut seq.kv);
                }
            }
            let _span = tracing::debug_span!("decode_step", batch = feed.len()).entered();
            self.model.forward_batch(&mut kvs, &tokens)?
        };
        // On a GPU, copying every row's logits to the host and scanning them
        // there costs more than the forward itself at large batches: when
        // every row only needs the argmax, the device takes it.
        let on_device = matches!(self.model, ArchModel::DeviceLlama(_));
        let next: Vec<Next> = if on_device && feed.iter().all(|&(i, _)| seqs[i].argmax_suffices()) {
            logits
                .argmax_keepdim(candle_core::D::Minus1)
                .and_then(|t| t.flatten_all()?.to_vec1::<u32>())
                .map_err(|e| EngineError::Backend(e.to_string()))?
                .into_iter()
                .map(Next::Argmax)
                .collect()
        } else {
            let logits = to_vec(&logits)?;
            let vocab = logits.len() / feed.len();
            logits
                .chunks_exact(vocab)
                .map(|row| Next::Logits(row.to_vec()))
                .collect()
        };
        for (&(i, _), next) in feed.iter().zip(next) {
            seqs[i].logits = Some(next);
            seqs[i].max_batch = seqs[i].max_batch.max(feed.len() as u32);
        }
        Ok(())
    }

    /// Samples `seq`'s next token; returns it when it must be run through
    /// the model (the sequence goes on), `None` when the sequence is done.
    fn advance(&self, seq: &mut Sequence) -> Result<Option<u32>, EngineError> {
        let (token, l) = match seq.logits.take() {
            None => return Ok(None),
            Some(Next::Argmax(token)) => (token, None),
            Some(Next::Logits(l)) => (seq.sampler.sample_with_history(&l, &seq.history), Some(l)),
        };
        seq.history.push(token);
        seq.completion_ids.push(token);
        let finished = |seq: &mut Sequence| {
            seq.decode_ms = seq.decode_start.elapsed().as_secs_f64() * 1e3;
            Ok(None)
        };
        if self.end_ids.contains(&token) {
            seq.finish_reason = FinishReason::Stop;
            return finished(seq);
        }
        if let (Some(n), Some(l)) = (seq.params.logprobs, &l) {
            // Of the raw distribution, as OpenAI and llama.cpp report them.
            let lp = log_softmax(l);
            seq.token_logprobs.push(TokenLogprob {
                token: self.token_text(token),
                id: token,
                logprob: lp[token as usize],
                top: top_n(&lp, n as usize)
                    .into_iter()
                    .map(|(id, p)| (self.token_text(id), p))
                    .collect(),
            });
        }
        if let Some(chunk) = seq.decoder.step(&self.tokenizer, token)? {
            let before = seq.text.len();
            seq.text.push_str(&chunk);
            seq.stop_at = find_stop(&seq.text, before, &seq.params.stop);
            if seq.stop_at.is_some() {
                seq.finish_reason = FinishReason::Stop;
                return finished(seq);
            }
        }
        if seq.completion_ids.len() < seq.params.max_tokens as usize {
            Ok(Some(token))
        } else {
            finished(seq)
        }
    }

    /// The result of a done sequence. Its KV cache becomes the model's
    /// live one, so a next prompt sharing its prefix reuses it.
    pub fn finish(&mut self, seq: Sequence) -> Result<TracedGeneration, EngineError> {
        let text = seq.final_text(&self.tokenizer, &self.end_ids)?;
        if !seq.kv.is_empty() {
            self.live = seq.history[..seq.kv.len()].to_vec();
            self.model.put_cache(seq.kv);
        }
        let completion_tokens = seq
            .completion_ids
            .iter()
            .filter(|id| !self.end_ids.contains(id))
            .count() as u32;
        Ok(TracedGeneration {
            generation: Generation {
                prompt_text: seq.prompt_text,
                text,
                prompt_tokens: seq.prompt_ids.len() as u32,
                completion_tokens,
                finish_reason: seq.finish_reason,
                prefill_ms: seq.prefill_ms,
                decode_ms: seq.decode_ms,
                tokens: seq.token_logprobs,
                cached_prompt_tokens: seq.cached_prompt_tokens as u32,
                max_batch: seq.max_batch,
            },
            prompt_ids: seq.prompt_ids,
            completion_ids: seq.completion_ids,
        })
    }

    /// Output of `seq` not yet handed out by this call: text that no stop
    /// sequence can still cut (all of it once the sequence is done), and
    /// the log-probabilities of the tokens sampled since.
    pub fn stream_delta(&self, seq: &mut Sequence) -> Result<StreamDelta, EngineError> {
        let upto = if seq.is_done() {
            seq.final_text(&self.tokenizer, &self.end_ids)?
        } else {
            // A stop sequence may begin in the last (longest stop - 1) bytes.
            let hold = seq
                .params
                .stop
                .iter()
                .map(|s| s.len() - 1)
                .max()
                .unwrap_or(0);
            let mut end = seq.text.len().saturating_sub(hold);
            while !seq.text.is_char_boundary(end) {
                end -= 1;
            }
            seq.text[..end].to_string()
        };
        let text = match upto.get(seq.streamed_text..) {
            Some(t) if upto.len() > seq.streamed_text => t.to_string(),
            _ => String::new(),
        };
        seq.streamed_text = seq.streamed_text.max(upto.len());
        let tokens = seq.token_logprobs[seq.streamed_tokens..].to_vec();
        seq.streamed_tokens = seq.token_logprobs.len();
        Ok(StreamDelta { text, tokens })
    }
}

/// One request in flight: its own KV cache, sampler (with its own RNG) and
/// output so far. Made by [`CandleBackend::begin`], advanced by
/// [`CandleBackend::decode_step`], turned into a result by [`CandleBackend::finish`].
pub struct Sequence {
    params: GenParams,
    sampler: Sampler,
    kv: SequenceKv,
    prompt_text: String,
    prompt_ids: Vec<u32>,
    /// Prompt and output so far, for the repetition penalty; `kv` holds all
    /// but the last sampled token.
    history: Vec<u32>,
    /// Every sampled token, including a final end-of-turn token.
    completion_ids: Vec<u32>,
    token_logprobs: Vec<TokenLogprob>,
    /// Detokenised output so far (incomplete UTF-8 held back).
    text: String,
    decoder: StreamState,
    /// What the next token is drawn from; `None` once done.
    logits: Option<Next>,
    finish_reason: FinishReason,
    /// Byte offset of the stop sequence that ended the output.
    stop_at: Option<usize>,
    cached_prompt_tokens: usize,
    prefill_ms: f64,
    /// Decode time is wall time from the end of prefill to the last token,
    /// including steps shared with other sequences.
    decode_start: Instant,
    decode_ms: f64,
    /// Bytes of text and log-probabilities already streamed.
    streamed_text: usize,
    streamed_tokens: usize,
    /// The largest batch this sequence's decode steps ran in.
    max_batch: u32,
}

/// What a sequence's next token comes from.
enum Next {
    /// The model's raw logits, for the sequence's own sampler.
    Logits(Vec<f32>),
    /// The argmax, already taken on the model's device (a greedy sequence
    /// that asked for no log-probabilities: see [`CandleBackend::decode_step`]).
    Argmax(u32),
}

impl Sequence {
    /// Whether the argmax of its logits is all its next token needs.
    fn argmax_suffices(&self) -> bool {
        self.sampler.is_plain_greedy() && self.params.logprobs.is_none()
    }

    /// Nothing left to sample (end token, stop sequence or `max_tokens`).
    pub fn is_done(&self) -> bool {
        self.logits.is_none()
    }

    fn final_text(&self, tokenizer: &Tokenizer, end_ids: &[u32]) -> Result<String, EngineError> {
        if let Some(at) = self.stop_at {
            return Ok(self.text[..at].to_string());
        }
        // The stream holds back incomplete UTF-8; a full decode of the
        // (short) completion flushes it.
        let text_ids: Vec<u32> = self
            .completion_ids
            .iter()
            .copied()
            .filter(|id| !end_ids.contains(id))
            .collect();
        tokenizer
            .decode(&text_ids, false)
            .map_err(|e| EngineError::Backend(format!("detokenize: {e}")))
    }
}

/// `tokenizers`' incremental decoder state (its `DecodeStream` borrows the
/// tokenizer, which a sequence that outlives a call cannot hold).
#[derive(Default)]
struct StreamState {
    ids: Vec<u32>,
    prefix: String,
    prefix_index: usize,
}

impl StreamState {
    fn step(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<Option<String>, EngineError> {
        tokenizers::tokenizer::step_decode_stream(
            tokenizer,
            vec![id],
            false,
            &mut self.ids,
            &mut self.prefix,
            &mut self.prefix_index,
        )
        .map_err(|e| EngineError::Backend(format!("detokenize: {e}")))
    }
}

impl Backend for CandleBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(&mut self, prompt: &Prompt, params: &GenParams) -> Result<Generation, EngineError> {
        self.generate_traced(prompt, params).map(|t| t.generation)
    }

    fn batching(&mut self) -> Option<&mut dyn BatchingBackend> {
        // Gemma 3 decodes one sequence at a time (its KV cache lives in
        // the model); the engine thread then serves requests in turn.
        if self.model.supports_batching() {
            Some(self)
        } else {
            None
        }
    }

    fn continuation_tokens(
        &mut self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> Result<Vec<u32>, EngineError> {
        let prompt_text = self.prompt_text(prompt)?;
        let prompt_ids = self.prompt_ids(&prompt_text)?;
        continuations
            .iter()
            .map(|c| {
                if c.is_empty() {
                    Ok(0)
                } else {
                    Ok(self.continuation_ids(&prompt_text, &prompt_ids, c)?.len() as u32)
                }
            })
            .collect()
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
        let prompt_ids = self.prompt_ids(&prompt_text)?;
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

impl BatchingBackend for CandleBackend {
    fn join(
        &mut self,
        id: u64,
        prompt: &Prompt,
        params: &GenParams,
        stream: bool,
    ) -> Result<(), EngineError> {
        let _span =
            tracing::debug_span!("candle_join", id, max_tokens = params.max_tokens).entered();
        let seq = self.begin(prompt, params)?;
        self.running.push(Running { id, seq, stream });
        Ok(())
    }

    fn step(&mut self, events: &mut Vec<SequenceEvent>) {
        let mut running = std::mem::take(&mut self.running);
        let stepped = {
            let mut seqs: Vec<&mut Sequence> = running.iter_mut().map(|r| &mut r.seq).collect();
            self.decode_step(&mut seqs)
        };
        if let Err(e) = stepped {
            // The batch's caches may be half-updated: fail every member.
            let msg = e.to_string();
            for r in running {
                events.push(SequenceEvent::Done(
                    r.id,
                    Err(EngineError::Backend(msg.clone())),
                ));
            }
            return;
        }
        for mut r in running {
            if r.stream {
                match self.stream_delta(&mut r.seq) {
                    Ok(d) if d.text.is_empty() && d.tokens.is_empty() => {}
                    Ok(d) => events.push(SequenceEvent::Delta(r.id, d)),
                    Err(e) => {
                        events.push(SequenceEvent::Done(r.id, Err(e)));
                        continue;
                    }
                }
            }
            if r.seq.is_done() {
                let result = self.finish(r.seq).map(|t| t.generation);
                events.push(SequenceEvent::Done(r.id, result));
            } else {
                self.running.push(r);
            }
        }
    }

    fn cancel(&mut self, id: u64) {
        self.running.retain(|r| r.id != id);
    }

    fn running(&self) -> usize {
        self.running.len()
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
