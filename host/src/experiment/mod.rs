//! One experiment, from a config to stored runs: the config and its
//! dataset, the plan, the runner, and the commands built on them (sweep,
//! rescore, verify, watch).

pub mod config;
pub mod datasets;
pub mod plan;
pub mod progress;
pub mod rescore;
pub mod runner;
pub mod scoring;
pub mod sweep;
pub mod verify;
pub mod watch;
