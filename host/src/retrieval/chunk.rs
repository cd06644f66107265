//! Splitting documents into passages by word pieces of the embedding
//! tokenizer. A chunk never spans two documents, and its text is an exact
//! slice of its document's text (by the tokenizer's byte offsets), so a
//! passage can always be found again in its source.

use serde::{Deserialize, Serialize};

use super::corpus::Document;

/// How documents are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkParams {
    /// Word pieces per chunk; 0 keeps whole documents.
    pub tokens: usize,
    /// Word pieces shared by consecutive chunks of a document.
    pub overlap: usize,
}

impl ChunkParams {
    pub const WHOLE: ChunkParams = ChunkParams {
        tokens: 0,
        overlap: 0,
    };
}

/// One retrievable passage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// `<doc id>#<n>` (n from 0), or the document id for whole documents.
    pub id: String,
    pub doc_id: String,
    pub title: Option<String>,
    pub text: String,
    /// Byte range of `text` in the document's text.
    pub start: usize,
    pub end: usize,
}

impl Chunk {
    /// What is indexed: the title, if any, then the passage.
    pub fn indexed_text(&self) -> String {
        match &self.title {
            Some(t) => format!("{t}\n{}", self.text),
            None => self.text.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk_overlap ({overlap}) must be smaller than chunk_tokens ({tokens})")]
    Overlap { tokens: usize, overlap: usize },
    #[error("tokenizing document {id:?}: {message}")]
    Tokenize { id: String, message: String },
}

/// Whole documents as chunks (ids unchanged).
pub fn whole(docs: &[Document]) -> Vec<Chunk> {
    docs.iter()
        .map(|d| Chunk {
            id: d.id.clone(),
            doc_id: d.id.clone(),
            title: d.title.clone(),
            text: d.text.clone(),
            start: 0,
            end: d.text.len(),
        })
        .collect()
}

/// Token byte spans of `text`, as `(start, end)` pairs, in order.
pub trait Spans {
    fn spans(&self, text: &str) -> Result<Vec<(usize, usize)>, String>;
}

impl Spans for tokenizers::Tokenizer {
    fn spans(&self, text: &str) -> Result<Vec<(usize, usize)>, String> {
        let enc = self.encode(text, false).map_err(|e| e.to_string())?;
        // Word pieces of one word share nothing; drop empty (special) spans.
        Ok(enc
            .get_offsets()
            .iter()
            .copied()
            .filter(|(s, e)| e > s)
            .collect())
    }
}

/// Cuts every document into windows of `p.tokens` word pieces, stepping
/// `p.tokens - p.overlap`; the last window of a document may be shorter.
pub fn chunk(docs: &[Document], p: ChunkParams, tok: &dyn Spans) -> Result<Vec<Chunk>, ChunkError> {
    if p.tokens == 0 {
        return Ok(whole(docs));
    }
    if p.overlap >= p.tokens {
        return Err(ChunkError::Overlap {
            tokens: p.tokens,
            overlap: p.overlap,
        });
    }
    let step = p.tokens - p.overlap;
    let mut out = Vec::new();
    for d in docs {
        let spans = tok.spans(&d.text).map_err(|message| ChunkError::Tokenize {
            id: d.id.clone(),
            message,
        })?;
        if spans.is_empty() {
            continue;
        }
        let mut first = 0;
        let mut n = 0;
        loop {
            let last = (first + p.tokens).min(spans.len()) - 1;
            let (start, end) = (spans[first].0, spans[last].1);
            out.push(Chunk {
                id: format!("{}#{n}", d.id),
                doc_id: d.id.clone(),
                title: d.title.clone(),
                text: d.text[start..end].to_string(),
                start,
                end,
            });
            n += 1;
            if last + 1 >= spans.len() {
                break;
            }
            first += step;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One "token" per whitespace-separated word.
    struct Words;
    impl Spans for Words {
        fn spans(&self, text: &str) -> Result<Vec<(usize, usize)>, String> {
            let mut out = Vec::new();
            let mut start = None;
            for (i, c) in text
                .char_indices()
                .chain(std::iter::once((text.len(), ' ')))
            {
                match (c.is_whitespace(), start) {
                    (true, Some(s)) => {
                        out.push((s, i));
                        start = None;
                    }
                    (false, None) => start = Some(i),
                    _ => {}
                }
            }
            Ok(out)
        }
    }

    fn doc(id: &str, text: &str) -> Document {
        Document {
            id: id.into(),
            title: Some(format!("T{id}")),
            text: text.into(),
        }
    }

    #[test]
    fn windows_overlap_and_stop_at_document_ends() {
        let docs = [doc("a", "w0 w1 w2 w3 w4 w5 w6"), doc("b", "x0 x1")];
        let c = chunk(
            &docs,
            ChunkParams {
                tokens: 3,
                overlap: 1,
            },
            &Words,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = c.iter().map(|c| (c.id.as_str(), c.text.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a#0", "w0 w1 w2"),
                ("a#1", "w2 w3 w4"),
                ("a#2", "w4 w5 w6"),
                ("b#0", "x0 x1"),
            ]
        );
        for ch in &c {
            let d = docs.iter().find(|d| d.id == ch.doc_id).unwrap();
            assert_eq!(&d.text[ch.start..ch.end], ch.text);
            assert_eq!(ch.title, d.title);
        }
    }

    #[test]
    fn no_overlap_partitions_and_the_tail_is_short() {
        let docs = [doc("a", "  w0  w1 w2\nw3 w4 ")];
        let p = ChunkParams {
            tokens: 2,
            overlap: 0,
        };
        let c = chunk(&docs, p, &Words).unwrap();
        let texts: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        // Exact slices: inner whitespace kept, outer dropped.
        assert_eq!(texts, ["w0  w1", "w2\nw3", "w4"]);
        // A window that ends exactly at the document end adds no empty tail.
        let c = chunk(&[doc("z", "a b c d")], p, &Words).unwrap();
        assert_eq!(c.len(), 2);
        assert!(chunk(&[doc("e", "   ")], p, &Words).unwrap().is_empty());
    }

    #[test]
    fn whole_documents_and_bad_overlap() {
        let docs = [doc("a", "one two")];
        let c = chunk(&docs, ChunkParams::WHOLE, &Words).unwrap();
        assert_eq!((c[0].id.as_str(), c[0].text.as_str()), ("a", "one two"));
        let e = chunk(
            &docs,
            ChunkParams {
                tokens: 4,
                overlap: 4,
            },
            &Words,
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be smaller"), "{e}");
    }
}
