//! A test that cannot run here says so instead of passing: it prints
//! `SKIPPED: <test>: <reason>`, which scripts/test.sh counts apart from
//! the passes. With `CI` set nothing may skip: the test fails instead.

use std::cell::Cell;
use std::io::Write;

thread_local! {
    /// libtest runs each test on its own thread: one marker per test.
    static SAID: Cell<bool> = const { Cell::new(false) };
}

/// Marks the running test as skipped for `reason` (fails it under `CI`).
/// The caller returns right after.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed test>");
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run: {reason} (CI is set, so it may not skip)");
    }
    if !SAID.replace(true) {
        // Straight to the stream: libtest's capture (print!/eprint!) would
        // hide it for a test that returns normally. One write on a line of
        // its own, so other output does not split it.
        let line = format!("\nSKIPPED: {test}: {reason}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
