//! The per-instance sandbox: what a guest may touch (WASI built from the
//! config's deny-by-default grants), how much memory it may take, how long
//! it may compute, and what it may spend of the host ([`super::budget`]).

use std::time::{Duration, Instant};

use wasi_rand::SeedableRng;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::budget::{Ask, Budgets, Meter, Stopped};
use super::grants::OutboundHosts;
use crate::components::capabilities::CallContext;
use crate::experiment::config::{Grants, Limits, SandboxDefaults};

/// Limits and grants for one plugin, resolved from the config.
#[derive(Clone, Debug, PartialEq)]
pub struct Sandbox {
    pub grants: Grants,
    /// `grants.allowed_outbound_hosts`, resolved once here (at plan time)
    /// and shared by every store built for this plugin.
    pub outbound: OutboundHosts,
    /// Relative `read_dirs` are found from here on the host (the config's
    /// folder) and mounted in the guest under the name as written, so a
    /// config and the file paths in its params mean the same thing from
    /// any working directory.
    pub base_dir: Option<std::path::PathBuf>,
    /// Guest compute time per call (host calls excluded).
    pub timeout: Duration,
    pub memory_bytes: usize,
    /// Wall clock per example when this plugin is the method (zero: none).
    pub example_timeout: Duration,
    pub budgets: Budgets,
    pub outputs: OutputCaps,
}

/// How much of what a plugin produces is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputCaps {
    /// Answer text and contexts; over it the example fails.
    pub max_answer_bytes: usize,
    pub max_trace_steps: usize,
    pub max_log_bytes: usize,
}

impl OutputCaps {
    pub const UNLIMITED: OutputCaps = OutputCaps {
        max_answer_bytes: usize::MAX,
        max_trace_steps: usize::MAX,
        max_log_bytes: usize::MAX,
    };
}

impl Sandbox {
    pub fn new(grants: &Grants, limits: &Limits, defaults: &SandboxDefaults) -> Self {
        let d = defaults;
        let size = |v: Option<u64>, default: u64| {
            usize::try_from(v.unwrap_or(default)).unwrap_or(usize::MAX)
        };
        Self {
            grants: grants.clone(),
            outbound: OutboundHosts::resolve(&grants.allowed_outbound_hosts),
            base_dir: None,
            timeout: Duration::from_millis(limits.timeout_ms.unwrap_or(d.timeout_ms)),
            memory_bytes: (limits.memory_mb.unwrap_or(d.memory_mb) as usize)
                .saturating_mul(1 << 20),
            example_timeout: Duration::from_millis(
                limits.example_timeout_ms.unwrap_or(d.example_timeout_ms),
            ),
            budgets: Budgets {
                max_model_calls: limits.max_model_calls.unwrap_or(d.max_model_calls),
                max_generated_tokens: limits
                    .max_generated_tokens
                    .unwrap_or(d.max_generated_tokens),
                max_items_per_call: limits.max_items_per_call.unwrap_or(d.max_items_per_call),
            },
            outputs: OutputCaps {
                max_answer_bytes: size(limits.max_answer_bytes, d.max_answer_bytes),
                max_trace_steps: size(limits.max_trace_steps, d.max_trace_steps),
                max_log_bytes: size(limits.max_log_bytes, d.max_log_bytes),
            },
        }
    }

    /// WASI for one instance: nothing unless granted. Randomness is seeded so
    /// guests (and their hash maps) behave the same on every run.
    fn wasi(&self, seed: u64, stderr: MemoryOutputPipe) -> anyhow::Result<WasiCtx> {
        let mut b = WasiCtxBuilder::new();
        b.stderr(stderr);
        b.secure_random(wasi_rand::rngs::StdRng::seed_from_u64(seed));
        b.insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(
            seed ^ 0x9e37_79b9_7f4a_7c15,
        ));
        b.insecure_random_seed(u128::from(seed));
        for dir in &self.grants.read_dirs {
            let host = match &self.base_dir {
                Some(base) if std::path::Path::new(dir).is_relative() => base.join(dir),
                _ => std::path::PathBuf::from(dir),
            };
            b.preopened_dir(&host, dir, FsPerms::ReadOnly)
                .map_err(|e| anyhow::anyhow!("granting read access to {}: {e}", host.display()))?;
        }
        for key in &self.grants.env {
            if let Ok(v) = std::env::var(key) {
                b.env(key, v);
            }
        }
        if !self.grants.clock {
            b.wall_clock(FrozenClock);
            b.monotonic_clock(FrozenClock);
        }
        if !self.outbound.is_empty() {
            let allowed = self.outbound.clone();
            b.allow_tcp(true);
            b.allow_ip_name_lookup(true);
            // Checked on every connect, as Spin does with allowed_outbound_hosts.
            b.socket_addr_check(move |addr, _use| {
                let ok = allowed.allows_addr(&addr);
                if !ok {
                    tracing::warn!(%addr, "plugin connection denied");
                }
                Box::pin(async move { ok })
            });
        }
        Ok(b.build())
    }

    pub fn state(&self, seed: u64, ctx: CallContext) -> anyhow::Result<State> {
        let stderr = MemoryOutputPipe::new(64 * 1024);
        Ok(State {
            wasi: self.wasi(seed, stderr.clone())?,
            table: ResourceTable::new(),
            limits: MemoryCap {
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.memory_bytes)
                    .instances(64)
                    .trap_on_grow_failure(true)
                    .build(),
                refused: false,
            },
            budget: GuestBudget {
                started: Instant::now(),
                in_host: Duration::ZERO,
                limit: self.timeout,
            },
            meter: Meter::new(self.budgets),
            stopped: None,
            outputs: self.outputs,
            stderr,
            allowed_outbound_hosts: self.outbound.clone(),
            ctx,
        })
    }
}

/// wasmtime's `StoreLimits`, remembering whether it refused to grow a
/// memory: that is how a `memory_limit` failure is recognised, rather than
/// by the text of the trap.
pub struct MemoryCap {
    limits: StoreLimits,
    refused: bool,
}

impl MemoryCap {
    /// Whether the cap stopped a memory growth (which traps the guest).
    pub fn refused_memory(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = self.limits.memory_growing(current, desired, maximum);
        self.refused |= grow.is_err();
        grow
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Clocks for guests without the clock grant: time stands still.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Guest compute time of the current call: wall time minus time spent in
/// host calls (a long generation must not count against the plugin).
#[derive(Debug)]
pub struct GuestBudget {
    pub started: Instant,
    pub in_host: Duration,
    pub limit: Duration,
}

impl GuestBudget {
    pub fn restart(&mut self) {
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
    }

    pub fn exhausted(&self) -> bool {
        self.started.elapsed().saturating_sub(self.in_host) >= self.limit
    }
}

/// Everything one store holds.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: MemoryCap,
    pub budget: GuestBudget,
    /// Model calls, tokens and items spent of the plugin's budgets.
    pub meter: Meter,
    /// Set when the host stopped the guest (deadline, budget), for the
    /// failure's kind when the trap itself says only "interrupt".
    pub stopped: Option<Stopped>,
    pub outputs: OutputCaps,
    stderr: MemoryOutputPipe,
    /// `host:port` pairs the `http` capability may reach for this plugin.
    pub allowed_outbound_hosts: OutboundHosts,
    /// Host capabilities and what the guest did with them.
    pub ctx: CallContext,
}

impl State {
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

    /// Stops the guest when the example's deadline has passed.
    pub(crate) fn check_deadline(&mut self, what: &'static str) -> wasmtime::Result<()> {
        if self.ctx.deadline.expired() {
            return Err(self.stop(Stopped::Deadline { during: what }));
        }
        Ok(())
    }

    /// Ends a host call run under [`super::budget::Deadline::run`]: its
    /// time is host time, not guest compute; `None` (the deadline passed
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

    /// What the guest wrote to stderr (panic messages), for error reports.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
