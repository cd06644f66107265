//! Byte-level BPE tokenizer rebuilt from a GGUF file's `tokenizer.ggml.*`
//! metadata.
//!
//! candle's own GGUF tokenizer mis-tokenizes SmolLM2 (it ignores the
//! `smollm` pre-tokenizer), so we assemble a `tokenizers::Tokenizer` with the
//! same pipeline as the model's `tokenizer.json`: split digits one by one,
//! then GPT-2 byte-level splitting; special tokens are registered as added
//! tokens so chat markers like `<|im_start|>` parse as single ids.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use super::EngineError;

/// `tokenizer.ggml.token_type` value of control (special) tokens.
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Builds the tokenizer described by `content`'s metadata. Only GPT-2 style
/// byte-level BPE (`tokenizer.ggml.model == "gpt2"`) is supported.
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer, EngineError> {
    let model = meta_str(content, "tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(load_err(format!(
            "unsupported tokenizer model '{model}' (only byte-level BPE 'gpt2')"
        )));
    }
    let pre = meta_str(content, "tokenizer.ggml.pre").unwrap_or_else(|_| "default".into());
    let tokens = meta_strings(content, "tokenizer.ggml.tokens")?;
    let merges = meta_strings(content, "tokenizer.ggml.merges")?;
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
    if let Some(unk) = content
        .metadata
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(|v| v.to_u32().ok())
        .and_then(|id| tokens.get(id as usize))
    {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder
        .build()
        .map_err(|e| load_err(format!("building BPE: {e}")))?;

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(&pre)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(types.iter())
        .filter(|(_, ty)| **ty == TOKEN_TYPE_CONTROL)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| load_err(format!("special tokens: {e}")))?;
    Ok(tokenizer)
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` name. SmolLM's splits digits
/// individually before the byte-level regex; other GPT-2 style vocabularies
/// get the plain byte-level split (good enough until we support them).
fn pre_tokenizer(pre: &str) -> Sequence {
    let byte_level = ByteLevel::new(false, true, true);
    match pre {
        "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]),
        _ => Sequence::new(vec![byte_level.into()]),
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
