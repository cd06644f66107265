//! What the `rag` method and the RAG metric components (`retrieval`,
//! `context`, `faithfulness`) share, as plain Rust tested natively:
//!
//! - [`note`]: the `retrieved: [{"id":..,"score":..}]` trace note the method
//!   writes and the metrics read (metrics see the method's trace, not the
//!   host's own retrieval records);
//! - [`relevance`]: which retrieved passages are gold (by document id, else
//!   by text containment in the example's context);
//! - [`ranking`]: recall@k, MRR, nDCG@k;
//! - [`context`]: context precision (rank-weighted) and context recall;
//! - [`claims`]: an answer's claims, lexical support, the judge's yes/no.

pub mod claims;
pub mod context;
pub mod note;
pub mod ranking;
pub mod relevance;

/// Fills `{name}` placeholders in one pass, so text filled in (a passage
/// that happens to contain `{question}`) is never filled again.
pub use template_kit::fill;
