//! `forge:plugin/inference`: generation through the experiment's engine.
//! Every call is recorded (prompt, output, tokens, latency) with the run.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::CapabilityState;
use crate::components::bindings::inference::{
    FinishReason, GenerateOptions, GenerateParams, Generation, GenerationExt, Host, InferenceError,
    Message, Scored, TokenLogprob, TopLogprob,
};
use crate::components::budget::Ask;
use crate::components::seed::derive_seed;
use crate::engine::call_cache::{CallKey, engine_version};
use crate::engine::{self, EngineError, Prompt};
use crate::results::records::{CallKind, LlmCall};

/// `[generation]`: the defaults a method's generations start from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default = "default_top_p")]
    pub top_p: f32,
    #[serde(default)]
    pub stop: Vec<String>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_tokens: default_max_tokens(),
            temperature: 0.0,
            top_p: default_top_p(),
            stop: vec![],
        }
    }
}

fn default_max_tokens() -> u32 {
    64
}
fn default_top_p() -> f32 {
    1.0
}

/// The most alternatives per step a plugin may ask for (OpenAI's cap).
const MAX_TOP_LOGPROBS: u32 = 20;

fn default_options() -> GenerateOptions {
    GenerateOptions {
        top_k: 0,
        repetition_penalty: 1.0,
        logprobs: None,
    }
}

impl CapabilityState {
    /// One generation under the plugin's budgets and the example's deadline
    /// (`what`: the import, for refusals and the deadline's reason). A
    /// generation is cut to the tokens left of `max_generated_tokens`.
    async fn generate(
        &mut self,
        what: &'static str,
        prompt: Prompt,
        mut params: GenerateParams,
        options: GenerateOptions,
    ) -> wasmtime::Result<Result<engine::Generation, InferenceError>> {
        if let Err(refused) = self.admit(what, Ask::Generate)? {
            return Ok(Err(InferenceError::Backend(refused)));
        }
        let left = u32::try_from(self.meter.tokens_left()).unwrap_or(u32::MAX);
        params.max_tokens = params.max_tokens.min(left);
        let started = Instant::now();
        let deadline = self.ctx.deadline;
        let out = deadline
            .run(self.generate_inner(prompt, params, options))
            .await;
        // Time in the host does not count against the guest's compute budget.
        let out = self.host_call_done(what, started, out)?;
        if let Ok(g) = &out {
            self.meter.generated_tokens += u64::from(g.completion_tokens);
        }
        Ok(out)
    }

    async fn generate_inner(
        &mut self,
        prompt: Prompt,
        p: GenerateParams,
        o: GenerateOptions,
    ) -> Result<engine::Generation, InferenceError> {
        let Some(engine) = self.ctx.caps.engine.clone() else {
            return Err(InferenceError::Backend(
                "this plugin has no inference capability".into(),
            ));
        };
        if p.max_tokens == 0
            || !(p.temperature.is_finite() && p.temperature >= 0.0)
            || !(p.top_p > 0.0 && p.top_p <= 1.0)
        {
            return Err(InferenceError::InvalidParams(format!(
                "max-tokens {} must be > 0, temperature {} >= 0, top-p {} in (0, 1]",
                p.max_tokens, p.temperature, p.top_p
            )));
        }
        if !(o.repetition_penalty.is_finite() && o.repetition_penalty > 0.0)
            || o.logprobs.is_some_and(|n| n > MAX_TOP_LOGPROBS)
        {
            return Err(InferenceError::InvalidParams(format!(
                "repetition-penalty {} must be > 0, logprobs {:?} at most {MAX_TOP_LOGPROBS}",
                o.repetition_penalty, o.logprobs
            )));
        }
        // Each call of an example gets its own reproducible seed unless the
        // plugin chose one: self-consistency's k samples differ, re-runs agree.
        let seed = p
            .seed
            .unwrap_or_else(|| derive_seed(self.ctx.seed, self.ctx.calls.len() as u64));
        let params = engine::GenParams {
            max_tokens: p.max_tokens,
            temperature: p.temperature,
            top_p: p.top_p,
            stop: p.stop.clone(),
            seed,
            top_k: o.top_k,
            repetition_penalty: o.repetition_penalty,
            logprobs: o.logprobs,
        };
        let started = Instant::now();
        let cache = self.ctx.caps.call_cache.clone();
        let key = cache.as_ref().map(|_| {
            let info = engine.info();
            CallKey {
                model_sha256: &info.sha256,
                engine_version: &engine_version(info),
                prompt: &prompt,
                params: &params,
            }
            .digest()
        });
        // A cache that cannot be read or written is a warning, not a failed
        // example: the call is simply computed.
        let hit = match (&cache, &key) {
            (Some(c), Some(k)) => c.get(k).unwrap_or_else(|e| {
                tracing::warn!("{e}");
                None
            }),
            _ => None,
        };
        let cache_hit = hit.is_some();
        let result = match hit {
            Some(g) => Ok(g),
            None => {
                let r = engine.generate(prompt.clone(), params.clone()).await;
                if let (Some(c), Some(k), Ok(g)) = (&cache, &key, &r)
                    && let Err(e) = c.put(k, g)
                {
                    tracing::warn!("{e}");
                }
                r
            }
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let params_json = serde_json::to_value(&params).unwrap_or_default();
        match result {
            Ok(mut g) => {
                if cache_hit {
                    // Nothing ran: no model time, no prefix-cache reuse.
                    g.prefill_ms = 0.0;
                    g.decode_ms = 0.0;
                    g.cached_prompt_tokens = 0;
                    g.max_batch = 0;
                }
                self.ctx.calls.push(LlmCall {
                    kind: CallKind::Generate,
                    prompt: g.prompt_text.clone(),
                    output: g.text.clone(),
                    prompt_tokens: g.prompt_tokens,
                    completion_tokens: g.completion_tokens,
                    latency_ms,
                    prefill_ms: g.prefill_ms,
                    decode_ms: g.decode_ms,
                    finish_reason: format!("{:?}", g.finish_reason).to_lowercase(),
                    params: params_json,
                    error: None,
                    cached_prompt_tokens: g.cached_prompt_tokens,
                    cache_hit,
                    max_batch: g.max_batch,
                });
                Ok(g)
            }
            Err(e) => {
                self.ctx.calls.push(LlmCall {
                    kind: CallKind::Generate,
                    prompt: prompt_record(&prompt),
                    latency_ms,
                    finish_reason: "error".into(),
                    params: params_json,
                    error: Some(e.to_string()),
                    ..LlmCall::default()
                });
                Err(to_guest_error(e))
            }
        }
    }

    /// Continuation scoring, recorded as a call of kind `score` whose
    /// output is the JSON list of scores.
    async fn score(
        &mut self,
        what: &'static str,
        prompt: Prompt,
        continuations: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<f64>, InferenceError>> {
        let Some(engine) = self.ctx.caps.engine.clone() else {
            return Ok(Err(InferenceError::Backend(
                "this plugin has no inference capability".into(),
            )));
        };
        let ask = Ask::Score {
            continuations: continuations.len(),
        };
        if let Err(refused) = self.admit(what, ask)? {
            return Ok(Err(InferenceError::Backend(refused)));
        }
        let started = Instant::now();
        let deadline = self.ctx.deadline;
        let result = deadline
            .run(engine.score_continuations(prompt.clone(), continuations.clone()))
            .await;
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let result = self.host_call_done(what, started, result)?;
        self.ctx.calls.push(LlmCall {
            kind: CallKind::Score,
            prompt: prompt_record(&prompt),
            output: result
                .as_ref()
                .map(|s| serde_json::to_string(s).unwrap_or_default())
                .unwrap_or_default(),
            latency_ms,
            finish_reason: if result.is_ok() { "score" } else { "error" }.into(),
            params: serde_json::json!({ "continuations": continuations }),
            error: result.as_ref().err().map(|e| e.to_string()),
            ..LlmCall::default()
        });
        Ok(result.map_err(to_guest_error))
    }
}

/// A prompt as recorded when the engine did not render it (errors, scoring).
fn prompt_record(prompt: &Prompt) -> String {
    match prompt {
        Prompt::Raw(s) => s.clone(),
        Prompt::Chat(m) => serde_json::to_string(m).unwrap_or_default(),
    }
}

fn to_guest_error(e: EngineError) -> InferenceError {
    match e {
        EngineError::InvalidParams(m) => InferenceError::InvalidParams(m),
        e @ EngineError::ContextOverflow { .. } => InferenceError::ContextOverflow(e.to_string()),
        other => InferenceError::Backend(other.to_string()),
    }
}

fn to_guest_generation(g: &engine::Generation, latency_ms: f64) -> Generation {
    Generation {
        text: g.text.clone(),
        prompt_tokens: g.prompt_tokens,
        completion_tokens: g.completion_tokens,
        latency_ms,
        finish_reason: match g.finish_reason {
            engine::FinishReason::Stop => FinishReason::Stop,
            engine::FinishReason::Length => FinishReason::Length,
        },
    }
}

fn to_guest_ext(g: engine::Generation, latency_ms: f64) -> GenerationExt {
    GenerationExt {
        generation: to_guest_generation(&g, latency_ms),
        tokens: g
            .tokens
            .into_iter()
            .map(|t| TokenLogprob {
                token: t.token,
                id: t.id,
                logprob: t.logprob,
                top: t
                    .top
                    .into_iter()
                    .map(|(token, logprob)| TopLogprob { token, logprob })
                    .collect(),
            })
            .collect(),
        cached_prompt_tokens: g.cached_prompt_tokens,
    }
}

fn to_engine_messages(messages: Vec<Message>) -> Vec<engine::Message> {
    messages
        .into_iter()
        .map(|m| engine::Message {
            role: m.role,
            content: m.content,
        })
        .collect()
}

impl Host for CapabilityState {
    async fn default_params(&mut self) -> wasmtime::Result<GenerateParams> {
        let g = &self.ctx.caps.generation;
        Ok(GenerateParams {
            max_tokens: g.max_tokens,
            temperature: g.temperature,
            top_p: g.top_p,
            stop: g.stop.clone(),
            seed: None,
        })
    }

    async fn chat(
        &mut self,
        messages: Vec<Message>,
        params: GenerateParams,
    ) -> wasmtime::Result<Result<Generation, InferenceError>> {
        let prompt = Prompt::Chat(to_engine_messages(messages));
        let started = Instant::now();
        let g = self
            .generate("inference.chat", prompt, params, default_options())
            .await?;
        Ok(g.map(|g| to_guest_generation(&g, started.elapsed().as_secs_f64() * 1e3)))
    }

    async fn complete(
        &mut self,
        prompt: String,
        params: GenerateParams,
    ) -> wasmtime::Result<Result<Generation, InferenceError>> {
        let started = Instant::now();
        let g = self
            .generate(
                "inference.complete",
                Prompt::Raw(prompt),
                params,
                default_options(),
            )
            .await?;
        Ok(g.map(|g| to_guest_generation(&g, started.elapsed().as_secs_f64() * 1e3)))
    }

    async fn chat_ext(
        &mut self,
        messages: Vec<Message>,
        params: GenerateParams,
        options: GenerateOptions,
    ) -> wasmtime::Result<Result<GenerationExt, InferenceError>> {
        let prompt = Prompt::Chat(to_engine_messages(messages));
        let started = Instant::now();
        let g = self
            .generate("inference.chat-ext", prompt, params, options)
            .await?;
        Ok(g.map(|g| to_guest_ext(g, started.elapsed().as_secs_f64() * 1e3)))
    }

    async fn complete_ext(
        &mut self,
        prompt: String,
        params: GenerateParams,
        options: GenerateOptions,
    ) -> wasmtime::Result<Result<GenerationExt, InferenceError>> {
        let started = Instant::now();
        let g = self
            .generate(
                "inference.complete-ext",
                Prompt::Raw(prompt),
                params,
                options,
            )
            .await?;
        Ok(g.map(|g| to_guest_ext(g, started.elapsed().as_secs_f64() * 1e3)))
    }

    async fn score(
        &mut self,
        prompt: String,
        continuations: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<f64>, InferenceError>> {
        CapabilityState::score(self, "inference.score", Prompt::Raw(prompt), continuations).await
    }

    async fn score_chat(
        &mut self,
        messages: Vec<Message>,
        continuations: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<f64>, InferenceError>> {
        let prompt = Prompt::Chat(to_engine_messages(messages));
        CapabilityState::score(self, "inference.score-chat", prompt, continuations).await
    }

    async fn score_ext(
        &mut self,
        prompt: String,
        continuations: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Scored>, InferenceError>> {
        self.score_with_tokens("inference.score-ext", Prompt::Raw(prompt), continuations)
            .await
    }

    async fn score_chat_ext(
        &mut self,
        messages: Vec<Message>,
        continuations: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Scored>, InferenceError>> {
        let prompt = Prompt::Chat(to_engine_messages(messages));
        self.score_with_tokens("inference.score-chat-ext", prompt, continuations)
            .await
    }
}

impl CapabilityState {
    /// A score call (admitted and recorded as any; scores are not call-cached), then each
    /// continuation's token count from the engine's tokenizer (no forward).
    async fn score_with_tokens(
        &mut self,
        what: &'static str,
        prompt: Prompt,
        continuations: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Scored>, InferenceError>> {
        let scores = match CapabilityState::score(self, what, prompt.clone(), continuations.clone())
            .await?
        {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let engine = self
            .ctx
            .caps
            .engine
            .clone()
            .expect("score succeeded, so there is an engine");
        let tokens = match engine.continuation_tokens(prompt, continuations).await {
            Ok(t) => t,
            Err(e) => return Ok(Err(to_guest_error(e))),
        };
        if let Some(call) = self.ctx.calls.last_mut() {
            call.params["tokens"] = serde_json::json!(tokens);
        }
        Ok(Ok(scores
            .into_iter()
            .zip(tokens)
            .map(|(logprob, tokens)| Scored { logprob, tokens })
            .collect()))
    }
}
