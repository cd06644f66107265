//! Bad configs fail before any work with a message naming file, line and
//! field, and exit code 2.

mod common;
use common::*;

fn refused(body: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "d.jsonl",
        "{\"id\":\"a\",\"question\":\"q\",\"answers\":[\"x\"]}\n",
    );
    let cfg = write(tmp.path(), "bad.toml", body);
    let out = forge(&tmp.path().join("home"))
        .arg("run")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("bad.toml:"), "{err}");
    err
}

const GOOD: &str = r#"name = "t"
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "d.jsonl"
[method]
plugin = "naive"
[[metrics]]
plugin = "f1"
[generation]
max_tokens = 8
"#;

#[test]
fn unknown_method() {
    let e = refused(&GOOD.replace("plugin = \"naive\"", "plugin = \"tree_of_thought\""));
    assert!(
        e.contains("bad.toml:7:")
            && e.contains("method.plugin")
            && e.contains("unknown method plugin \"tree_of_thought\""),
        "{e}"
    );
}

#[test]
fn a_metric_where_a_method_belongs() {
    let e = refused(&GOOD.replace("plugin = \"naive\"", "plugin = \"f1\""));
    assert!(
        e.contains("method.plugin")
            && e.contains("expected a method plugin, but this component is a metric"),
        "{e}"
    );
}

#[test]
fn unknown_metric() {
    let e = refused(&GOOD.replace("plugin = \"f1\"", "plugin = \"bleurt\""));
    assert!(
        e.contains("bad.toml:9:")
            && e.contains("metrics[0].plugin")
            && e.contains("unknown metric plugin \"bleurt\""),
        "{e}"
    );
}

#[test]
fn missing_dataset() {
    let e = refused(&GOOD.replace("d.jsonl", "missing.jsonl"));
    assert!(
        e.contains("bad.toml:5:") && e.contains("dataset.path") && e.contains("missing.jsonl"),
        "{e}"
    );
}

#[test]
fn bad_numbers() {
    let e = refused(&GOOD.replace("max_tokens = 8", "max_tokens = \"many\""));
    assert!(
        e.contains("bad.toml:11:") && e.contains("generation.max_tokens"),
        "{e}"
    );
    let e = refused(&GOOD.replace("max_tokens = 8", "max_tokens = -3"));
    assert!(
        e.contains("bad.toml:11:") && e.contains("generation.max_tokens"),
        "{e}"
    );
    let e = refused(&format!("{GOOD}[run]\nconcurrency = 0\n"));
    assert!(
        e.contains("bad.toml:13:")
            && e.contains("run.concurrency")
            && e.contains("between 1 and 256"),
        "{e}"
    );
}

#[test]
fn unknown_model() {
    let e = refused(&GOOD.replace("smollm2-135m-instruct", "gpt-9"));
    assert!(
        e.contains("bad.toml:3:") && e.contains("model.source") && e.contains("gpt-9"),
        "{e}"
    );
}

#[test]
fn a_bad_dataset_row_names_its_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "d.jsonl",
        "{\"id\":\"a\",\"question\":\"q\",\"answers\":[\"x\"]}\n{\"id\":\"b\",\"answers\":[\"x\"]}\n",
    );
    let cfg = write(tmp.path(), "ok.toml", GOOD);
    let out = forge(&tmp.path().join("home"))
        .arg("run")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("d.jsonl:2: question: missing"), "{err}");
}

#[test]
fn a_duplicate_key_names_the_key_and_both_lines() {
    let e = refused(&GOOD.replace("name = \"t\"\n", "name = \"t\"\nseed = 1\nseed = 2\n"));
    assert!(
        e.contains("bad.toml:3:1: seed: duplicate key `seed` (first set on line 2)"),
        "{e}"
    );
    let e = refused(&GOOD.replace(
        "path = \"d.jsonl\"",
        "path = \"d.jsonl\"\npath = \"other.jsonl\"",
    ));
    assert!(
        e.contains("bad.toml:6:1: dataset.path: duplicate key `path` (first set on line 5)"),
        "{e}"
    );
    let e = refused(&format!(
        "{GOOD}[[metrics]]\nplugin = \"em\"\nplugin = \"f1\"\n"
    ));
    assert!(
        e.contains(
            "bad.toml:14:1: metrics[1].plugin: duplicate key `plugin` (first set on line 13)"
        ),
        "{e}"
    );
    let e = refused(&format!("{GOOD}[generation]\ntop_p = 0.5\n"));
    assert!(
        e.contains("bad.toml:12:2: generation: duplicate table `[generation]` (first on line 10)"),
        "{e}"
    );
}

/// One line on stderr: the error, nothing dumped after it.
fn one_line(e: &str) -> &str {
    let lines: Vec<&str> = e.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{e}");
    lines[0]
}

#[test]
fn a_file_that_is_not_a_component_gets_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "d.jsonl",
        "{\"id\":\"a\",\"question\":\"q\",\"answers\":[\"x\"]}\n",
    );
    write(tmp.path(), "notes.wasm", "hello, I am a text file\n");
    // The smallest core module: magic and version 1, no sections.
    write(tmp.path(), "core.wasm", "\0asm\u{1}\0\0\0");
    write(tmp.path(), "empty.wasm", "");
    let cases = [
        (
            "notes.wasm",
            "notes.wasm is not a valid WebAssembly component: not WebAssembly at all (it starts with \"hell\", not \"\\0asm\")",
        ),
        (
            "core.wasm",
            "core.wasm is not a valid WebAssembly component: a core WebAssembly module, not a component (build it for wasm32-wasip2, or wrap it with `wasm-tools component new`)",
        ),
        (
            "empty.wasm",
            "empty.wasm is not a valid WebAssembly component: the file is empty",
        ),
    ];
    for (file, reason) in cases {
        let cfg = write(
            tmp.path(),
            "bad.toml",
            &GOOD.replace("plugin = \"naive\"", &format!("plugin = \"{file}\"")),
        );
        let out = forge(&tmp.path().join("home"))
            .arg("run")
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let line = one_line(&err);
        assert!(
            line.starts_with("error: ")
                && line.contains("bad.toml:7:1: method.plugin: ")
                && line.ends_with(reason),
            "{line}"
        );
    }
}

#[test]
fn an_unknown_path_in_a_sweep_points_at_the_sweep_line() {
    // GOOD has 11 lines: [sweep] is line 12, the axis line 13.
    for (axis, unknown) in [
        (
            "\"method.parms.k\" = [1, 2]",
            "sweep.method.parms.k: method.parms: unknown field `parms`",
        ),
        (
            "\"generation.max_tokenz\" = [8, 16]",
            "sweep.generation.max_tokenz: generation.max_tokenz: unknown field `max_tokenz`",
        ),
        (
            "\"metrics.0.plugn\" = [\"f1\"]",
            "sweep.metrics.0.plugn: metrics[0].plugn: unknown field `plugn`",
        ),
        (
            "\"modle.source\" = [\"x\"]",
            "sweep.modle.source: modle: unknown field `modle`",
        ),
    ] {
        let e = refused(&format!("{GOOD}[sweep]\n{axis}\n"));
        assert!(e.contains(&format!("bad.toml:13:1: {unknown}")), "{e}");
    }
}

/// A dataset of two examples.
const TWO_ROWS: &str = "{\"id\":\"a\",\"question\":\"q\",\"answers\":[\"x\"]}\n{\"id\":\"b\",\"question\":\"q\",\"answers\":[\"y\"]}\n";

#[test]
fn a_sample_larger_than_the_dataset_is_said_with_both_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "d.jsonl", TWO_ROWS);
    let cfg = write(
        tmp.path(),
        "big.toml",
        &GOOD.replace("path = \"d.jsonl\"", "path = \"d.jsonl\"\nsample = 500"),
    );
    // The config's path (absolute here) comes first.
    let said =
        "big.toml:6:1: dataset.sample: sample = 500 but d.jsonl has 2 examples: running all 2";
    let out = run_ok(forge(&tmp.path().join("home")).arg("run").arg(&cfg));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: ") && l.ends_with(said)),
        "{err}"
    );
    // --json: the same words as an event, before the run starts.
    let out = run_ok(
        forge(&tmp.path().join("home2"))
            .args(["--json", "run"])
            .arg(&cfg),
    );
    let ev = events(&out.stdout);
    assert_eq!(ev[0]["event"], "warning", "{ev:?}");
    assert!(ev[0]["message"].as_str().unwrap().ends_with(said), "{ev:?}");
    assert_eq!(ev[1]["total"], 2, "{ev:?}");
}

#[test]
fn a_sweep_cell_is_warned_and_refused_at_its_sweep_line() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "d.jsonl", TWO_ROWS);
    // GOOD has 11 lines: [sweep] is line 12, the axis line 13.
    let cfg = write(
        tmp.path(),
        "grid.toml",
        &format!("{GOOD}[sweep]\n\"dataset.sample\" = [1, 500]\n"),
    );
    let out = run_ok(forge(&tmp.path().join("home")).arg("run").arg(&cfg));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "grid.toml:13:1: sweep.dataset.sample: cell dataset.sample=500: dataset.sample: sample = 500 but d.jsonl has 2 examples: running all 2"
        ),
        "{err}"
    );
    // Plugins are found when a cell is planned: its error names the cell.
    let e = refused(&format!(
        "{GOOD}[sweep]\nmethod = [{{ plugin = \"naive\" }}, {{ plugin = \"tot\" }}]\n"
    ));
    assert!(
        e.contains("bad.toml:13:1: sweep.method: cell method=tot: method.plugin: unknown method plugin \"tot\""),
        "{e}"
    );
}

/// `[model] device`: a value that is no device, and "cuda" in a build
/// without the `cuda` feature (the suite's build), each name the line.
#[test]
fn a_device_this_build_cannot_use() {
    let with = |device: &str| {
        GOOD.replace(
            "source = \"smollm2-135m-instruct\"",
            &format!("source = \"smollm2-135m-instruct\"\ndevice = \"{device}\""),
        )
    };
    let e = refused(&with("gpu"));
    assert!(
        e.contains("bad.toml:4:") && e.contains("model.device") && e.contains("\"cuda:N\""),
        "{e}"
    );
    if !forge_host::engine::device::CUDA_BUILT {
        let e = refused(&with("cuda:1"));
        assert!(
            e.contains("bad.toml:4:")
                && e.contains("model.device")
                && e.contains("`cuda` feature")
                && e.contains("scripts/build-cuda.sh"),
            "{e}"
        );
    }
}
