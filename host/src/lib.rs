//! forge-host: runs LLM experiments with sandboxed WebAssembly plugins.
//!
//! The path of one experiment: [`experiment`] (config → plan → runner) →
//! [`components`] (method and metric components, host capabilities) →
//! [`engine`] / [`retrieval`] → [`results`] (store → stats → report).
//! See ARCHITECTURE.md.

pub mod cli;
pub mod components;
pub mod engine;
pub mod experiment;
pub mod results;
pub mod retrieval;
pub mod serve;
pub mod train;
pub mod view;
