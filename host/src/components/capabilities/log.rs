//! `forge:plugin/log`: plugin logs, kept with the run up to the plugin's
//! `max_log_bytes` (what is dropped is counted and noted) and echoed to
//! tracing.

use super::CapabilityState;
use crate::components::bindings::log::{Host, Level};

const MAX_LINE_CHARS: usize = 2000;

impl Host for CapabilityState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message: String = message.chars().take(MAX_LINE_CHARS).collect();
        let name = match level {
            Level::Debug => {
                tracing::debug!(target: "plugin", "{message}");
                "debug"
            }
            Level::Info => {
                tracing::info!(target: "plugin", "{message}");
                "info"
            }
            Level::Warn => {
                tracing::warn!(target: "plugin", "{message}");
                "warn"
            }
            Level::Error => {
                tracing::error!(target: "plugin", "{message}");
                "error"
            }
        };
        // `info: message`, the message as the plugin wrote it.
        let line = format!("{name}: {message}");
        if self.ctx.logs_kept_bytes + line.len() <= self.outputs.max_log_bytes {
            self.ctx.logs_kept_bytes += line.len();
            self.ctx.logs.push(line);
        } else {
            self.ctx.logs_dropped_bytes += line.len();
        }
        Ok(())
    }
}
