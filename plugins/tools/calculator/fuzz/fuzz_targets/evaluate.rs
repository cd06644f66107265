//! Any input must evaluate or return an error, never panic; a result that
//! is reported must be finite and format without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(v) = calculator::eval::evaluate(text)
    {
        assert!(v.is_finite(), "{text:?} gave {v}");
        let _ = calculator::eval::format_number(v);
    }
});
