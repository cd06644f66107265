//! A preference row as token ids, the way TRL's oracle fixture makes them
//! (`scripts/oracles/dpo_trl.py`): the HH transcript split into turns,
//! rendered by the model's own chat template with the generation prompt,
//! each completion `strip()`ped and closed by the end-of-turn token;
//! the prompt cut from the left, completions from the right.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use forge_train::PreferencePair;
use tokenizers::Tokenizer;

use super::data::{DataError, PreferenceData, PreferenceRow};
use crate::engine::chat_template::ChatTemplate;
use crate::engine::gguf_tokenizer::tokenizer_from_gguf;
use crate::experiment::datasets::preference::split_transcript;

/// The model's tokenizer, chat template and end-of-turn token.
pub struct PromptFormat {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    end_of_turn: u32,
}

/// What truncation cut, counted over a data set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Truncated {
    pub prompts: usize,
    pub chosen: usize,
    pub rejected: usize,
}

/// A tokenised row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPair {
    pub id: String,
    pub pair: PreferencePair,
    pub truncated: Truncated,
}

impl PromptFormat {
    /// From the GGUF's `tokenizer.*` metadata (the engine's tokenizer and
    /// template code); the end-of-turn token is the tokenizer's eos, which
    /// the template must use (SmolLM2: `<|im_end|>`).
    pub fn from_gguf(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut reader = BufReader::new(
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        );
        let content = Content::read(&mut reader)
            .with_context(|| format!("reading the GGUF header of {}", path.display()))?;
        let tokenizer = tokenizer_from_gguf(&content)?;
        let token = |key: &str| -> Option<(u32, String)> {
            let id = content.metadata.get(key)?.to_u32().ok()?;
            Some((id, tokenizer.id_to_token(id)?))
        };
        let source = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .with_context(|| format!("{}: no chat template", path.display()))?;
        let bos = token("tokenizer.ggml.bos_token_id").map(|t| t.1);
        let (eos_id, eos) = token("tokenizer.ggml.eos_token_id")
            .with_context(|| format!("{}: no eos token", path.display()))?;
        if !source.contains(&eos) {
            anyhow::bail!(
                "{}: the eos token {eos:?} is not the chat template's end-of-turn token",
                path.display()
            );
        }
        let template = ChatTemplate::new(&source, bos.as_deref().unwrap_or_default(), &eos)?;
        Ok(Self {
            tokenizer,
            template,
            end_of_turn: eos_id,
        })
    }

    pub fn end_of_turn(&self) -> u32 {
        self.end_of_turn
    }

    fn ids(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("tokenizing: {e}"))
    }

    /// One row; the error is the message for the row's `field`.
    pub fn encode(
        &self,
        row: &PreferenceRow,
        max_prompt: usize,
        max_completion: usize,
    ) -> Result<EncodedPair, (&'static str, String)> {
        let messages = split_transcript(&row.prompt).map_err(|m| ("prompt", m))?;
        let rendered = self
            .template
            .render(&messages)
            .map_err(|e| ("prompt", e.to_string()))?;
        let prompt = self.ids(&rendered).map_err(|m| ("prompt", m))?;
        let completion = |text: &str, field: &'static str| {
            let mut ids = self.ids(text.trim()).map_err(|m| (field, m))?;
            ids.push(self.end_of_turn);
            Ok::<_, (&'static str, String)>(ids)
        };
        let chosen = completion(&row.chosen, "chosen")?;
        let rejected = completion(&row.rejected, "rejected")?;
        let truncated = Truncated {
            prompts: usize::from(prompt.len() > max_prompt),
            chosen: usize::from(chosen.len() > max_completion),
            rejected: usize::from(rejected.len() > max_completion),
        };
        Ok(EncodedPair {
            id: row.id.clone(),
            pair: PreferencePair {
                prompt: prompt[prompt.len().saturating_sub(max_prompt)..].to_vec(),
                chosen: chosen[..chosen.len().min(max_completion)].to_vec(),
                rejected: rejected[..rejected.len().min(max_completion)].to_vec(),
            },
            truncated,
        })
    }

    /// Every row of `data` (errors as `file:line: field: message`) and the
    /// truncation counts.
    pub fn encode_all(
        &self,
        data: &PreferenceData,
        max_prompt: usize,
        max_completion: usize,
    ) -> Result<(Vec<EncodedPair>, Truncated), DataError> {
        let mut total = Truncated::default();
        let mut out = Vec::with_capacity(data.rows.len());
        for row in &data.rows {
            let e = self
                .encode(row, max_prompt, max_completion)
                .map_err(|(field, message)| DataError::Row {
                    path: data.path.clone(),
                    line: row.line,
                    field: field.into(),
                    message,
                })?;
            total.prompts += e.truncated.prompts;
            total.chosen += e.truncated.chosen;
            total.rejected += e.truncated.rejected;
            out.push(e);
        }
        Ok((out, total))
    }
}
