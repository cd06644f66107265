//! What an experiment or a training run leaves behind and how it is read:
//! the store, the statistics over it, paired comparisons and the report
//! views.

pub mod compare;
pub mod matrix;
pub mod optimization;
pub mod pairwise;
pub mod records;
pub mod report;
pub mod stats;
pub mod store;
pub mod training;

#[cfg(test)]
mod compat_tests;
