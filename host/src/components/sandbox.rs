//! The per-instance sandbox: what a guest may touch (WASI built from the
//! config's deny-by-default grants), how much memory it may take, how long
//! it may compute, and what it may spend of the host ([`super::budget`]).

use std::time::Duration;

use wasi_rand::SeedableRng;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::budget::{Budgets, GuestBudget, Meter, OutputCaps};
use super::capabilities::{CallContext, CapabilityState};
use super::grants::Grants;
use super::grants::OutboundHosts;

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

impl Sandbox {
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
            stderr,
            caps: CapabilityState {
                budget: GuestBudget::new(self.timeout),
                meter: Meter::new(self.budgets),
                stopped: None,
                outputs: self.outputs,
                allowed_outbound_hosts: self.outbound.clone(),
                ctx,
            },
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

/// Everything one store holds: WASI and the memory cap, which the guest's
/// own code meets, and the capabilities' state, which its host calls meet
/// (the linker projects every forge import to `caps`).
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: MemoryCap,
    stderr: MemoryOutputPipe,
    pub caps: CapabilityState,
}

impl State {
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
