//! Tokenizers rebuilt from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! Two kinds, as llama.cpp names them in `tokenizer.ggml.model`:
//!
//! - `gpt2`, byte-level BPE (SmolLM2). candle's own GGUF tokenizer
//!   mis-tokenizes SmolLM2 (it ignores the `smollm` pre-tokenizer), so we
//!   assemble a `tokenizers::Tokenizer` with the same pipeline as the model's
//!   `tokenizer.json`: split digits one by one, then GPT-2 byte-level
//!   splitting.
//! - `llama`, SentencePiece BPE (Gemma, Llama 2, Mistral): spaces become
//!   `▁`, pieces merge pairwise by score, and characters outside the
//!   vocabulary fall back to `<0xXX>` byte tokens (see [`sentencepiece`]).
//!
//! Either way special tokens are registered as added tokens so chat markers
//! like `<|im_start|>` parse as single ids.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::utils::Sequence as NormalizerSequence;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::EngineError;

/// `tokenizer.ggml.token_type` value of control (special) tokens.
const TOKEN_TYPE_CONTROL: i32 = 3;
/// ... of user-defined tokens (Gemma's runs of spaces, tabs and newlines,
/// HTML tags): llama.cpp splits them out of raw text before the model runs.
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// SentencePiece's visible space.
const SPM_SPACE: &str = "\u{2581}";

/// Builds the tokenizer described by `content`'s metadata: byte-level BPE
/// (`tokenizer.ggml.model == "gpt2"`) or SentencePiece BPE (`"llama"`).
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer, EngineError> {
    let model = meta_str(content, "tokenizer.ggml.model")?;
    let tokens = meta_strings(content, "tokenizer.ggml.tokens")?;
    let types = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .and_then(|vs| {
                vs.iter()
                    .map(|v| v.to_i32())
                    .collect::<candle_core::Result<Vec<_>>>()
            })
            .map_err(|e| load_err(format!("tokenizer.ggml.token_type: {e}")))?,
        None => vec![],
    };
    match model.as_str() {
        "gpt2" => byte_level_bpe(content, &tokens, &types),
        "llama" => sentencepiece(content, &tokens, &types),
        other => Err(load_err(format!(
            "unsupported tokenizer model '{other}' (supported: byte-level BPE 'gpt2', \
             SentencePiece 'llama')"
        ))),
    }
}

/// GPT-2 style byte-level BPE with the file's merges.
fn byte_level_bpe(
    content: &Content,
    tokens: &[String],
    types: &[i32],
) -> Result<Tokenizer, EngineError> {
    let pre = match content.metadata.get("tokenizer.ggml.pre") {
        Some(_) => meta_str(content, "tokenizer.ggml.pre")?,
        None => {
            // llama.cpp warns alike: the split of a file without one is a guess.
            tracing::warn!("GGUF without tokenizer.ggml.pre: splitting text as GPT-2 does");
            "default".into()
        }
    };
    let pre_tokenizer = pre_tokenizer(&pre).ok_or_else(|| {
        load_err(format!(
            "tokenizer.ggml.pre = {pre:?}: this pre-tokenizer is not supported yet, and splitting \
             the text another way would give other token ids than the model was trained on \
             (supported: {})",
            SUPPORTED_PRE.join(", ")
        ))
    })?;
    let merges = meta_strings(content, "tokenizer.ggml.merges")?;

    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.clone(), id as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| load_err(format!("malformed merge '{m}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut builder = BPE::builder().vocab_and_merges(vocab, merges);
    if let Some(unk) = unknown_token(content, tokens) {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| load_err(format!("building BPE: {e}")))?;

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    add_special_tokens(&mut tokenizer, tokens, types)?;
    Ok(tokenizer)
}

/// SentencePiece BPE as llama.cpp runs it (`llm_tokenizer_spm`): spaces
/// become `▁` (plus one in front when `add_space_prefix`), then adjacent
/// pieces merge, highest-scoring result first, while the result is in the
/// vocabulary; what is left outside it becomes byte tokens. The GGUF has no
/// merge list, so one is derived from the scores the way Hugging Face
/// converts SentencePiece models: every split of a token into two pieces
/// that are themselves tokens is a merge, ranked by the token's score.
/// With the file's distinct scores this picks the same merges in the same
/// order as llama.cpp (checked against its ids on Gemma 3's vocabulary).
fn sentencepiece(
    content: &Content,
    tokens: &[String],
    types: &[i32],
) -> Result<Tokenizer, EngineError> {
    let key = "tokenizer.ggml.scores";
    let scores = content
        .metadata
        .get(key)
        .ok_or_else(|| load_err(format!("missing metadata {key}")))?
        .to_vec()
        .and_then(|vs| {
            vs.iter()
                .map(|v| v.to_f32())
                .collect::<candle_core::Result<Vec<_>>>()
        })
        .map_err(|e| load_err(format!("{key}: {e}")))?;
    if scores.len() != tokens.len() {
        return Err(load_err(format!(
            "{key} has {} entries for {} tokens",
            scores.len(),
            tokens.len()
        )));
    }
    // llama.cpp's default for SentencePiece vocabularies is to add it.
    let add_space_prefix = content
        .metadata
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(true);

    let ids: HashMap<&str, u32> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.as_str(), id as u32))
        .collect();
    let mut ranked: Vec<(f32, u32, &str, &str)> = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        for (at, _) in token.char_indices().skip(1) {
            let (a, b) = token.split_at(at);
            if ids.contains_key(a) && ids.contains_key(b) {
                ranked.push((scores[id], id as u32, a, b));
            }
        }
    }
    // Best score first; ties (no two scored tokens share one in Gemma's
    // vocabulary) by id, which is stable.
    ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let merges = ranked
        .into_iter()
        .map(|(_, _, a, b)| (a.to_string(), b.to_string()))
        .collect();
    let vocab: Vocab = ids.iter().map(|(t, id)| (t.to_string(), *id)).collect();

    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true);
    if let Some(unk) = unknown_token(content, tokens) {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| load_err(format!("building SentencePiece BPE: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);

    let space = Replace::new(" ", SPM_SPACE).map_err(|e| load_err(e.to_string()))?;
    let unspace = Replace::new(SPM_SPACE, " ").map_err(|e| load_err(e.to_string()))?;
    if add_space_prefix {
        tokenizer
            .with_normalizer(Some(NormalizerSequence::new(vec![
                Prepend::new(SPM_SPACE.into()).into(),
                space.into(),
            ])))
            .map_err(|e| load_err(format!("normalizer: {e}")))?;
        tokenizer.with_decoder(Some(DecoderSequence::new(vec![
            unspace.into(),
            ByteFallback::new().into(),
            Fuse::new().into(),
            Strip::new(' ', 1, 0).into(),
        ])));
    } else {
        tokenizer
            .with_normalizer(Some(space))
            .map_err(|e| load_err(format!("normalizer: {e}")))?;
        tokenizer.with_decoder(Some(DecoderSequence::new(vec![
            unspace.into(),
            ByteFallback::new().into(),
            Fuse::new().into(),
        ])));
    }
    add_special_tokens(&mut tokenizer, tokens, types)?;
    // User-defined tokens match the raw text (before spaces become `▁`),
    // as llama.cpp's special-token partition does even when it does not
    // parse control tokens.
    let user: Vec<AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|(_, ty)| **ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    tokenizer
        .add_tokens(user)
        .map_err(|e| load_err(format!("user-defined tokens: {e}")))?;
    Ok(tokenizer)
}

/// Registers control tokens as special added tokens (parsed as one id).
fn add_special_tokens(
    tokenizer: &mut Tokenizer,
    tokens: &[String],
    types: &[i32],
) -> Result<(), EngineError> {
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(types.iter())
        .filter(|(_, ty)| **ty == TOKEN_TYPE_CONTROL)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| load_err(format!("special tokens: {e}")))?;
    Ok(())
}

/// The `tokenizer.ggml.pre` names split as llama.cpp splits them.
const SUPPORTED_PRE: [&str; 4] = ["smollm", "gpt-2", "phi-2", "default"];

/// The pre-tokenizer for a `tokenizer.ggml.pre` name, if supported.
/// SmolLM's splits digits individually before the byte-level regex;
/// `gpt-2` and `phi-2` are GPT-2's regex (llama.cpp's `GPT2` type), which
/// `ByteLevel` applies; `default` (no name in the file) gets the same.
/// Others (`llama-bpe`, `qwen2`, ...) use other regexes: refused.
fn pre_tokenizer(pre: &str) -> Option<Sequence> {
    let byte_level = ByteLevel::new(false, true, true);
    match pre {
        "smollm" => Some(Sequence::new(vec![
            Digits::new(true).into(),
            byte_level.into(),
        ])),
        "gpt-2" | "phi-2" | "default" => Some(Sequence::new(vec![byte_level.into()])),
        _ => None,
    }
}

fn meta_str(content: &Content, key: &str) -> Result<String, EngineError> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| load_err(format!("missing metadata {key}")))?
        .to_string()
        .cloned()
        .map_err(|e| load_err(format!("{key}: {e}")))
}

fn meta_strings(content: &Content, key: &str) -> Result<Vec<String>, EngineError> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| load_err(format!("missing metadata {key}")))?
        .to_vec()
        .map_err(|e| load_err(format!("{key}: {e}")))?;
    values
        .iter()
        .map(|v: &Value| v.to_string().cloned())
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(|e| load_err(format!("{key}: {e}")))
}

fn load_err(msg: String) -> EngineError {
    EngineError::Load(format!("tokenizer: {msg}"))
}

/// The file's `tokenizer.ggml.unknown_token_id`, as its token text.
fn unknown_token(content: &Content, tokens: &[String]) -> Option<String> {
    content
        .metadata
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(|v| v.to_u32().ok())
        .and_then(|id| tokens.get(id as usize))
        .cloned()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs::File;
    use std::io::BufReader;
    use std::path::PathBuf;

    use super::*;

    pub(crate) fn model_path() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
        ))
    }

    pub(crate) fn golden_path(name: &str) -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/golden/"
        ))
        .join(name)
    }

    /// The model's metadata, or None (test skipped) when the model has not
    /// been fetched.
    pub(crate) fn content() -> Option<Content> {
        let path = model_path();
        if !path.exists() {
            eprintln!(
                "skipping: {} missing (run scripts/fetch-models.sh)",
                path.display()
            );
            return None;
        }
        let mut reader = BufReader::new(File::open(path).unwrap());
        Some(Content::read(&mut reader).unwrap())
    }

    #[test]
    fn matches_reference_ids_and_round_trips() {
        let Some(content) = content() else { return };
        let tokenizer = tokenizer_from_gguf(&content).unwrap();
        let golden = std::fs::read_to_string(golden_path("smollm2_tokenizer.jsonl")).unwrap();
        let mut n = 0;
        for line in golden.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = row["text"].as_str().unwrap();
            let want: Vec<u32> = row["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let got = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
            assert_eq!(got, want, "ids of {text:?}");
            let back = tokenizer.decode(&got, false).unwrap();
            assert_eq!(back, text, "decode round trip of {text:?}");
            n += 1;
        }
        assert!(n >= 10, "golden file has only {n} rows");
    }
}
