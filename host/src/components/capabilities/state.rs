//! What one store's host calls meet: the capabilities and the record of
//! their use ([`CallContext`]), the budgets they are charged to, and the
//! guest's compute clock that host time is taken off. Every forge import is
//! implemented on [`CapabilityState`]; the sandbox's store state holds one
//! and the linker projects to it (Spin's per-factor instance state), so the
//! capabilities never see WASI or the plugin host.

use std::time::{Duration, Instant};

use super::CallContext;
use crate::components::budget::{Ask, GuestBudget, Meter, OutputCaps, Stopped};
use crate::components::grants::OutboundHosts;
use crate::results::records::{CallKind, LlmCall};

pub struct CapabilityState {
    /// Guest compute of the current call; host calls add to `in_host`.
    pub budget: GuestBudget,
    /// Model calls, tokens and items spent of the plugin's budgets.
    pub meter: Meter,
    /// Set when the host stopped the guest (deadline, budget), for the
    /// failure's kind when the trap itself says only "interrupt".
    pub stopped: Option<Stopped>,
    pub outputs: OutputCaps,
    /// `host:port` pairs the `http` capability may reach for this plugin.
    pub allowed_outbound_hosts: OutboundHosts,
    /// Host capabilities and what the guest did with them.
    pub ctx: CallContext,
}

impl CapabilityState {
    /// Admits a host call against the budgets and the deadline: `Ok(Err)` is
    /// a refusal for the guest, `Err` stops it (a second refusal, or the
    /// example's deadline has passed).
    pub(crate) fn admit(
        &mut self,
        what: &'static str,
        ask: Ask,
    ) -> wasmtime::Result<Result<(), String>> {
        self.check_deadline(what)?;
        self.meter.admit(what, ask).map_err(|s| self.stop(s))
    }

    /// Admits a call carrying `items` (texts, pairs) against the budgets;
    /// a refusal is recorded without its items, so a refused flood does not
    /// bloat the run, and returned for the guest.
    pub(crate) fn admit_items(
        &mut self,
        what: &'static str,
        kind: CallKind,
        items: usize,
    ) -> wasmtime::Result<Result<(), String>> {
        let admitted = self.admit(what, Ask::Items(items))?;
        if let Err(refused) = &admitted {
            self.ctx.calls.push(LlmCall {
                kind,
                prompt: format!("({items} items, refused)"),
                finish_reason: "error".into(),
                error: Some(refused.clone()),
                ..LlmCall::default()
            });
        }
        Ok(admitted)
    }

    /// Stops the guest when the example's deadline has passed.
    pub(crate) fn check_deadline(&mut self, what: &'static str) -> wasmtime::Result<()> {
        if self.ctx.deadline.expired() {
            return Err(self.stop(Stopped::Deadline { during: what }));
        }
        Ok(())
    }

    /// Ends a host call run under [`crate::components::budget::Deadline::run`]:
    /// its time is host time, not guest compute; `None` (the deadline passed
    /// while it ran) stops the guest.
    pub(crate) fn host_call_done<T>(
        &mut self,
        what: &'static str,
        started: Instant,
        out: Option<T>,
    ) -> wasmtime::Result<T> {
        self.budget.in_host += started.elapsed();
        out.ok_or_else(|| self.stop(Stopped::Deadline { during: what }))
    }

    /// CPU-bound model work (embedding, NLI) on the blocking pool, off the
    /// async workers, under the example's deadline; its time is host time.
    /// Past the deadline the batch finishes unobserved (at most
    /// `max_items_per_call` items) while the guest is stopped.
    pub(crate) async fn off_thread<I, R>(
        &mut self,
        what: &'static str,
        input: I,
        work: impl FnOnce(&I) -> R + Send + 'static,
    ) -> wasmtime::Result<(I, R)>
    where
        I: Send + 'static,
        R: Send + 'static,
    {
        let started = Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            let r = work(&input);
            (input, r)
        });
        let deadline = self.ctx.deadline;
        let done = deadline.run(job).await;
        Ok(self.host_call_done(what, started, done)??)
    }

    fn stop(&mut self, why: Stopped) -> wasmtime::Error {
        self.stopped = Some(why.clone());
        wasmtime::Error::new(why)
    }

    /// Guest compute of this call so far.
    pub fn guest_compute(&self) -> Duration {
        self.budget
            .started
            .elapsed()
            .saturating_sub(self.budget.in_host)
    }
}
