//! The author's path, as the guide (docs/plugins.md) tells it: `plugins
//! new` writes a project, `plugins build` builds it with the pinned
//! toolchain, `plugins test` tries it on rows with expected results, and
//! the project's own experiment uses it with the real model. A Python
//! metric, a JavaScript tool and a Rust tool, each from a fresh scaffold.
//! Also: a declared need the experiment does not grant stops the run with
//! the field to add; granted, the run goes; a missing toolchain is named
//! with the command that installs it.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `forge()` with the toolchains the repository's build scripts install
/// (target/py-toolchain, target/js-toolchain), run in `dir`.
fn author(home: &Path, dir: &Path) -> Command {
    let mut c = forge(home);
    c.env("FORGE_TOOLCHAINS", repo().join("target"))
        .env("CARGO_NET_OFFLINE", "true")
        .current_dir(dir);
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `plugins new KIND NAME --lang LANG` in `root`, then `plugins build`.
fn scaffold_and_build(home: &Path, root: &Path, kind: &str, name: &str, lang: &str) -> PathBuf {
    run_ok(author(home, root).args(["plugins", "new", kind, name, "--lang", lang]));
    let dir = root.join(name);
    let built = run_ok(author(home, &dir).args(["plugins", "build", "."]));
    let said = text(&built);
    assert!(
        said.contains(&format!("dist/{name}.wasm ({kind}, forge:plugin@0.1.6")),
        "{said}"
    );
    assert!(dir.join(format!("dist/{name}.plugin.toml")).is_file());
    dir
}

#[test]
fn a_python_metric_from_scaffold_to_experiment() {
    plugins();
    run_script("scripts/build-py-plugins.sh"); // installs the toolchain once
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = scaffold_and_build(&home, tmp.path(), "metric", "loose_match", "python");

    let tried = run_ok(author(&home, &dir).args(["plugins", "test", "dist/loose_match.wasm"]));
    let said = text(&tried);
    assert!(
        said.contains("3 of 3 passed") && said.contains("ok    miss"),
        "{said}"
    );

    // A wrong expectation fails the command and names the row and score.
    let rows = std::fs::read_to_string(dir.join("examples.jsonl")).unwrap();
    let wrong = rows.replacen(
        "\"expect\": {\"loose_match\": 0.0}",
        "\"expect\": {\"loose_match\": 1.0}",
        1,
    );
    assert_ne!(rows, wrong);
    write(&dir, "wrong.jsonl", &wrong);
    let out = author(&home, &dir)
        .args([
            "plugins",
            "test",
            "dist/loose_match.wasm",
            "--dataset",
            "wrong.jsonl",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("FAIL  miss")
            && said.contains("loose_match: expected 1.0, got 0.0")
            && said.contains("1 of 3 examples failed"),
        "{said}"
    );

    // The project's experiment: the real model answers, the Python metric
    // scores. Every stored score is the template's rule applied to the
    // stored answer (a reference inside it, ignoring case).
    let id = run_id(&home, &dir.join("experiment.toml"));
    let runs = exported_runs(&home, &id);
    assert_eq!(runs.len(), 3);
    for r in &runs {
        let answer = r["answer"].as_str().unwrap().trim().to_lowercase();
        let hit = r["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().trim().to_lowercase())
            .any(|a| !a.is_empty() && answer.contains(&a));
        assert_eq!(
            r["scores"]["loose_match"],
            if hit { 1.0 } else { 0.0 },
            "{r}"
        );
    }
}

#[test]
fn a_javascript_tool_from_scaffold_to_experiment_with_its_needs_granted() {
    plugins();
    run_script("scripts/build-js-plugins.sh");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = scaffold_and_build(&home, tmp.path(), "tool", "word_count", "js");

    let tried =
        run_ok(author(&home, &dir).args(["--json", "plugins", "test", "dist/word_count.wasm"]));
    let v: serde_json::Value = serde_json::from_slice(&tried.stdout).unwrap();
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["rows"][0]["got"], "4 words, 12 characters");
    assert!(
        v["rows"][2]["got"]["error"]
            .as_str()
            .unwrap()
            .contains("expected some text"),
        "{v}"
    );

    // The manifest now declares a clock; the experiment does not grant
    // one, so it refuses to start and names what to add.
    let beside = dir.join("dist/word_count.plugin.toml");
    let manifest = std::fs::read_to_string(&beside).unwrap();
    std::fs::write(&beside, format!("{manifest}clock = true\n")).unwrap();
    let shown = run_ok(author(&home, &dir).args(["plugins", "inspect", "dist/word_count.wasm"]));
    assert!(
        text(&shown).contains("needs     clock ("),
        "{}",
        text(&shown)
    );
    let out = author(&home, &dir)
        .args(["run", "experiment.toml"])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("experiment.toml:")
            && said.contains("tools[0].plugin")
            && said.contains("needs what this experiment does not grant")
            && said.contains("grants.clock = true"),
        "{said}"
    );

    // Granted: the real model's agent runs with the tool on offer.
    let config = std::fs::read_to_string(dir.join("experiment.toml")).unwrap();
    let granted = config.replace(
        "plugin = \"dist/word_count.wasm\"\n",
        "plugin = \"dist/word_count.wasm\"\ngrants = { clock = true }\n",
    );
    assert_ne!(config, granted);
    std::fs::write(dir.join("experiment.toml"), granted).unwrap();
    let id = run_id(&home, &dir.join("experiment.toml"));
    let runs = exported_runs(&home, &id);
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert!(r["error"].is_null(), "{r}");
    }
    // The scaffold's prompt shows a worked call of this tool, and the
    // default model makes one: answered by the JavaScript component.
    let call = first_tool_call(&trace_of(&home, &id, "q1"));
    assert_eq!(call["tool"], "word_count", "{call}");
    assert!(call["error"].is_null(), "{call}");
    let output = call["output"].as_str().unwrap();
    let words = call["input"].as_str().unwrap().split_whitespace().count();
    assert!(output.starts_with(&format!("{words} words, ")), "{call}");
}

#[test]
fn a_rust_tool_from_scaffold_builds_offline_and_passes_its_rows() {
    plugins();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = scaffold_and_build(&home, tmp.path(), "tool", "char_count", "rust");
    let tried = run_ok(author(&home, &dir).args(["plugins", "test", "dist/char_count.wasm"]));
    assert!(text(&tried).contains("3 of 3 passed"), "{}", text(&tried));
}

#[test]
fn a_missing_toolchain_is_named_with_the_command_that_installs_it() {
    plugins();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let empty = tmp.path().join("no-toolchains");
    for (lang, needs) in [
        ("python", "componentize-py 0.25.1 is not installed"),
        ("js", "componentize-js 0.23.0 is not installed"),
    ] {
        let name = format!("m_{lang}");
        run_ok(author(&home, tmp.path()).args(["plugins", "new", "metric", &name, "--lang", lang]));
        let out = author(&home, &tmp.path().join(&name))
            .env("FORGE_TOOLCHAINS", &empty)
            .args(["plugins", "build", "."])
            .output()
            .unwrap();
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(needs) && said.contains("--install"), "{said}");
    }
}
