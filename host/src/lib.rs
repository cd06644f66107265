//! forge-host: runs LLM experiments with sandboxed WebAssembly plugins.
//!
//! The path of one experiment: [`config`] → [`plan`] → [`runner`] (method and
//! metric components through [`plugins`], host capabilities in
//! [`capabilities`], the model in [`engine`]) → [`store`] → [`stats`] /
//! [`report`]. See ARCHITECTURE.md.

pub mod capabilities;
pub mod cli;
pub mod compare;
pub mod config;
pub mod datasets;
pub mod engine;
pub mod index_cli;
pub mod plan;
pub mod plugins;
pub mod progress;
pub mod report;
pub mod rescore;
pub mod retrieval;
pub mod runner;
pub mod scoring;
pub mod serve;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod verify;
pub mod watch;
