//! Why a file is not a loadable component, in one line: the user gave a
//! text file, a core module or a broken build, and wasmtime's own message
//! can be a multi-line debug dump of bytes.

/// Component binaries start with the magic, version 0x0d and layer 1; core
/// modules with the magic, version 1 and layer 0.
const MAGIC: &[u8] = b"\0asm";
const CORE_LAYER: [u8; 2] = [0, 0];

/// The short reason `bytes` did not compile as a component.
pub(super) fn reason(bytes: &[u8], error: &wasmtime::Error) -> String {
    if bytes.is_empty() {
        return "the file is empty".into();
    }
    if !bytes.starts_with(MAGIC) {
        let head = bytes[..bytes.len().min(4)].escape_ascii();
        return format!("not WebAssembly at all (it starts with \"{head}\", not \"\\0asm\")");
    }
    if bytes.get(6..8) == Some(&CORE_LAYER[..]) {
        return "a core WebAssembly module, not a component (build it for wasm32-wasip2, \
                or wrap it with `wasm-tools component new`)"
            .into();
    }
    // A component that does not validate: wasmtime's chain, on one line.
    format!("{error:#}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err() -> wasmtime::Error {
        wasmtime::Error::msg("bad magic number - expected=[\n    0x0,\n] (at offset 0x0)")
    }

    #[test]
    fn each_kind_of_wrong_file_gets_one_line() {
        assert_eq!(reason(b"", &err()), "the file is empty");
        assert_eq!(
            reason(b"hello", &err()),
            "not WebAssembly at all (it starts with \"hell\", not \"\\0asm\")"
        );
        assert!(reason(b"\0asm\x01\0\0\0", &err()).starts_with("a core WebAssembly module"));
        assert_eq!(
            reason(b"\0asm\x0d\0\x01\0", &err()),
            "bad magic number - expected=[ 0x0, ] (at offset 0x0)"
        );
    }
}
