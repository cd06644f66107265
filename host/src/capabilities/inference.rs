//! `forge:plugin/inference`: generation through the experiment's engine.
//! Every call is recorded (prompt, output, tokens, latency) with the run.

use std::time::Instant;

use crate::engine::{self, EngineError, Prompt};
use crate::plugins::State;
use crate::plugins::bindings::inference::{
    FinishReason, GenerateParams, Generation, Host, InferenceError, Message,
};
use crate::store::LlmCall;

impl State {
    async fn generate(
        &mut self,
        prompt: Prompt,
        params: GenerateParams,
    ) -> Result<Generation, InferenceError> {
        let started = Instant::now();
        let out = self.generate_inner(prompt, params).await;
        // Time in the host does not count against the guest's compute budget.
        self.budget.in_host += started.elapsed();
        out
    }

    async fn generate_inner(
        &mut self,
        prompt: Prompt,
        p: GenerateParams,
    ) -> Result<Generation, InferenceError> {
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
            ..engine::GenParams::greedy(p.max_tokens)
        };
        let started = Instant::now();
        let result = engine.generate(prompt.clone(), params.clone()).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let params_json = serde_json::to_value(&params).unwrap_or_default();
        match result {
            Ok(g) => {
                self.ctx.calls.push(LlmCall {
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
                });
                Ok(Generation {
                    text: g.text,
                    prompt_tokens: g.prompt_tokens,
                    completion_tokens: g.completion_tokens,
                    latency_ms,
                    finish_reason: match g.finish_reason {
                        engine::FinishReason::Stop => FinishReason::Stop,
                        engine::FinishReason::Length => FinishReason::Length,
                    },
                })
            }
            Err(e) => {
                self.ctx.calls.push(LlmCall {
                    prompt: match &prompt {
                        Prompt::Raw(s) => s.clone(),
                        Prompt::Chat(m) => serde_json::to_string(m).unwrap_or_default(),
                    },
                    output: String::new(),
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    latency_ms,
                    prefill_ms: 0.0,
                    decode_ms: 0.0,
                    finish_reason: "error".into(),
                    params: params_json,
                    error: Some(e.to_string()),
                });
                Err(match e {
                    EngineError::InvalidParams(m) => InferenceError::InvalidParams(m),
                    e @ EngineError::ContextOverflow { .. } => {
                        InferenceError::ContextOverflow(e.to_string())
                    }
                    other => InferenceError::Backend(other.to_string()),
                })
            }
        }
    }
}

/// SplitMix64 of (seed, n): well-spread per-call seeds from one example seed.
pub fn derive_seed(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Host for State {
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
        let messages = messages
            .into_iter()
            .map(|m| engine::Message {
                role: m.role,
                content: m.content,
            })
            .collect();
        Ok(self.generate(Prompt::Chat(messages), params).await)
    }

    async fn complete(
        &mut self,
        prompt: String,
        params: GenerateParams,
    ) -> wasmtime::Result<Result<Generation, InferenceError>> {
        Ok(self.generate(Prompt::Raw(prompt), params).await)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn derived_seeds_differ_per_call_and_repeat_per_seed() {
        let a: Vec<u64> = (0..4).map(|n| super::derive_seed(7, n)).collect();
        assert_eq!(
            a,
            (0..4).map(|n| super::derive_seed(7, n)).collect::<Vec<_>>()
        );
        let mut b = a.clone();
        b.dedup();
        assert_eq!(b.len(), 4);
        assert_ne!(super::derive_seed(8, 0), a[0]);
    }
}
