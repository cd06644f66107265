//! A test comparing a SIMD path with the generic code needs a CPU that has
//! it; elsewhere the dispatch runs the generic code on both sides and the
//! test would compare it with itself. Such a test says so instead of
//! passing (`SKIPPED: <test>: <reason>`, counted apart by scripts/test.sh)
//! and, under `CI` (run on machines with AVX-512 VNNI), fails.

use std::io::Write;

/// Whether the running test may go on: `have` is the CPU's feature check.
pub(crate) fn require(have: bool, feature: &str) -> bool {
    if have {
        return true;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("<unnamed test>");
    let reason = format!("no {feature} on this CPU: nothing to compare the generic code with");
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {reason} (CI is set, so it may not skip)"
    );
    // Past libtest's capture, which would hide it for a passing test; one
    // write on a line of its own, so other output does not split it.
    let line = format!("\nSKIPPED: {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}
