//! One experiment, from a config to stored runs: the config and its
//! dataset, the plan, the runner, and the commands built on them (sweep,
//! rescore, judge, align, optimize, verify, watch).

pub(crate) mod alignment;
pub mod config;
pub mod datasets;
pub(crate) mod judge;
pub(crate) mod optimize;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod rescore;
pub(crate) mod runner;
mod scoring;
pub(crate) mod sweep;
pub(crate) mod verify;
pub(crate) mod watch;
