//! `forge:plugin/log`: plugin logs, kept (bounded) with the run and echoed
//! to tracing.

use crate::plugins::State;
use crate::plugins::bindings::log::{Host, Level};

const MAX_LINES: usize = 500;
const MAX_LINE_CHARS: usize = 2000;

impl Host for State {
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
        if self.ctx.logs.len() < MAX_LINES {
            self.ctx.logs.push(format!("{name}: {message}"));
        }
        Ok(())
    }
}
