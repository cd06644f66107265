//! `forge:plugin/budget` (since 0.1.4): what the current call may still
//! spend, so a plugin can stop before the host refuses it. The budgets
//! themselves are enforced in [`crate::components::budget`].

use super::CapabilityState;
use crate::components::bindings::budget::{Allowance, Host};

impl Host for CapabilityState {
    async fn remaining(&mut self) -> wasmtime::Result<Allowance> {
        let m = &self.meter;
        Ok(Allowance {
            model_calls: m.budgets.max_model_calls.saturating_sub(m.model_calls),
            generated_tokens: m.tokens_left(),
            items_per_call: m.budgets.max_items_per_call,
            deadline_ms: self
                .ctx
                .deadline
                .remaining()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        })
    }
}
