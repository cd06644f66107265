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

// Transitional: the old top-level paths, while the files move (the next
// commit points every `use` at the new paths).
#[path = "components/capabilities/mod.rs"]
pub mod capabilities;
#[path = "cli/index.rs"]
pub mod index_cli;
pub use components as plugins;
pub use experiment::{
    config, datasets, plan, progress, rescore, runner, scoring, sweep, verify, watch,
};
pub use results::{compare, report, stats, store};
