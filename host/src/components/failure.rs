//! Why a call into a plugin did not return normally, as a type: the runner
//! stores it in `RunError::kind` by the names below, which are exactly the
//! strings earlier builds wrote, so stored experiments read the same.

use std::fmt;

use serde::{Deserialize, Serialize};
use wasmtime::Trap;

use super::bindings::types::PluginError;
use super::budget;
use super::sandbox::{Sandbox, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The guest computed past the sandbox's time budget.
    Timeout,
    /// The guest's memory grew past its cap (seen by the resource limiter).
    MemoryLimit,
    /// The guest trapped on its own (a panic, an unreachable, ...).
    Trap,
    /// The example's deadline passed.
    Deadline,
    /// The guest called the host again after a budget refusal.
    Budget,
    /// The guest called `exit`.
    Exit,
    /// The method's answer was over `max_answer_bytes`.
    OutputTooLarge,
    /// A metric returned a score it did not declare, or not finite, or too big.
    InvalidScore,
    /// The plugin returned an error of its own.
    PluginError,
    /// forge itself failed.
    Host,
}

impl FailureKind {
    pub const ALL: [FailureKind; 10] = [
        Self::Timeout,
        Self::MemoryLimit,
        Self::Trap,
        Self::Deadline,
        Self::Budget,
        Self::Exit,
        Self::OutputTooLarge,
        Self::InvalidScore,
        Self::PluginError,
        Self::Host,
    ];

    /// The stored name (`memory_limit`, `plugin_error`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory_limit",
            Self::Trap => "trap",
            Self::Deadline => "deadline",
            Self::Budget => "budget",
            Self::Exit => "exit",
            Self::OutputTooLarge => "output_too_large",
            Self::InvalidScore => "invalid_score",
            Self::PluginError => "plugin_error",
            Self::Host => "host",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call into a plugin did not return normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Turns a wasmtime error into a stored reason. `host` stays for forge's
/// own failures; everything a guest brought on itself has its own kind.
pub(super) fn classify(e: &wasmtime::Error, state: &State, sandbox: &Sandbox) -> Failure {
    let chain = format!("{e:#}");
    // Stopped by the host: the error itself (a host call) or the flag the
    // epoch callback left (guest compute, where the trap says "interrupt").
    if let Some(stopped) = e
        .downcast_ref::<budget::Stopped>()
        .or(state.caps.stopped.as_ref())
    {
        let spent = format!(
            "{} model calls, {:.1} s guest compute",
            state.caps.ctx.calls.len(),
            state.caps.guest_compute().as_secs_f64()
        );
        return match stopped {
            budget::Stopped::Deadline { during } => Failure {
                kind: FailureKind::Deadline,
                message: format!(
                    "example deadline of {} ms passed ({spent}, in {during})",
                    state.caps.ctx.deadline.limit().as_millis()
                ),
            },
            budget::Stopped::Budget { during, first } => Failure {
                kind: FailureKind::Budget,
                message: format!("called {during} after a budget refusal ({first}); {spent}"),
            },
        };
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        // wasi:cli/exit in 0.2 carries only ok or err: every non-zero code
        // a guest passes (Rust's `exit(3)`) arrives as 1.
        let note = if exit.0 == 1 {
            " (WASI 0.2 passes only success or failure: any non-zero code arrives as 1)"
        } else {
            ""
        };
        return Failure {
            kind: FailureKind::Exit,
            message: format!(
                "guest called exit({}){note}{}",
                exit.0,
                stderr_detail(state)
            ),
        };
    }
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return Failure {
            kind: FailureKind::Timeout,
            message: format!(
                "guest computed for more than {} ms (sandbox timeout)",
                sandbox.timeout.as_millis()
            ),
        };
    }
    if state.limits.refused_memory() {
        return Failure {
            kind: FailureKind::MemoryLimit,
            message: format!(
                "guest memory grew past its cap of {} MiB ({chain})",
                sandbox.memory_bytes >> 20
            ),
        };
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return Failure {
            kind: FailureKind::Trap,
            message: format!("{trap}{}", stderr_detail(state)),
        };
    }
    Failure {
        kind: FailureKind::Host,
        message: chain,
    }
}

/// "; guest stderr: …" when the guest wrote any (a panic message).
fn stderr_detail(state: &State) -> String {
    let stderr = state.stderr();
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; guest stderr: {stderr}")
    }
}

pub(super) fn plugin_error_text(e: &PluginError) -> String {
    match e {
        PluginError::InvalidInput(m) => format!("invalid input: {m}"),
        PluginError::Unavailable(m) => format!("unavailable: {m}"),
        PluginError::Failed(m) => format!("failed: {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names stored experiments hold: changing one would make old
    /// stores' failures read as something else.
    #[test]
    fn failure_kinds_serialise_as_the_names_stores_hold() {
        let stored = [
            "timeout",
            "memory_limit",
            "trap",
            "deadline",
            "budget",
            "exit",
            "output_too_large",
            "invalid_score",
            "plugin_error",
            "host",
        ];
        for (kind, name) in FailureKind::ALL.iter().zip(stored) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_string(kind).unwrap(), format!("\"{name}\""));
            let back: FailureKind = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, *kind);
        }
    }
}
