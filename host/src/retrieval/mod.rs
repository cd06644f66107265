//! The host's retrieval: named indexes built once per experiment from the
//! corpora the config names (`[[indexes]]`), searched with BM25 by the
//! `forge:plugin/retrieval` capability.

pub mod bm25;
pub mod corpus;
pub mod tokenize;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use bm25::{Bm25, Params};
pub use corpus::{CorpusError, Document};
pub use tokenize::Tokenizer;

/// One searchable index.
pub struct Index {
    pub name: String,
    pub documents: Vec<Document>,
    pub bm25: Bm25,
    /// sha256 of the corpus file (part of the plan hash).
    pub corpus_sha256: String,
    /// Wall time of reading the corpus and building the index, ms.
    pub build_ms: f64,
}

/// A search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit<'a> {
    pub document: &'a Document,
    pub score: f64,
}

impl Index {
    /// Reads the corpus at `path` and indexes title + text of every document.
    pub fn build(
        name: &str,
        path: &Path,
        expected_sha256: Option<&str>,
        params: Params,
        tokenizer: Tokenizer,
    ) -> Result<Self, CorpusError> {
        let started = Instant::now();
        let loaded = corpus::load(path, expected_sha256)?;
        let texts: Vec<String> = loaded
            .documents
            .iter()
            .map(|d| match &d.title {
                Some(t) => format!("{t}\n{}", d.text),
                None => d.text.clone(),
            })
            .collect();
        let bm25 = Bm25::build(params, tokenizer, texts.iter().map(String::as_str));
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            index = name,
            documents = bm25.len(),
            terms = bm25.vocabulary(),
            build_ms,
            "index built"
        );
        Ok(Self {
            name: name.into(),
            documents: loaded.documents,
            bm25,
            corpus_sha256: loaded.sha256,
            build_ms,
        })
    }

    pub fn search(&self, query: &str, k: usize) -> Vec<Hit<'_>> {
        self.bm25
            .search(query, k)
            .into_iter()
            .map(|(doc, score)| Hit {
                document: &self.documents[doc as usize],
                score,
            })
            .collect()
    }
}

/// The indexes of one experiment.
#[derive(Default, Clone)]
pub struct Indexes {
    pub list: Vec<Arc<Index>>,
}

impl Indexes {
    pub fn get(&self, name: &str) -> Option<&Index> {
        self.list.iter().find(|i| i.name == name).map(|i| &**i)
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|i| i.name.as_str()).collect()
    }
}
