//! Why a call into a plugin did not return normally, as a type: the runner
//! stores it in `RunError::kind` by the names below, which are exactly the
//! strings earlier builds wrote, so stored experiments read the same.

use std::fmt;

use serde::{Deserialize, Serialize};

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
