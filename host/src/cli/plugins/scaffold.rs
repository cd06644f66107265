//! `forge-host plugins new <method|metric|tool> <name> --lang L`: a ready
//! plugin project bound to the newest contract — its source with a working
//! example body, its manifest, the contract's `.wit`, rows to try it on, an
//! experiment that uses it, and a README with the commands.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

use crate::components::contract::{HOST_VERSION, RELEASED};

/// The languages a plugin can be written in with a pinned toolchain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_str(s, true).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The file an author edits.
    pub fn source(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }

    fn language(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    fn toolchain(self) -> String {
        match self {
            Lang::Rust => "cargo (target wasm32-wasip2)".into(),
            Lang::Python => format!("componentize-py {}", super::build::COMPONENTIZE_PY),
            Lang::Js => format!("componentize-js {}", super::build::COMPONENTIZE_JS),
        }
    }
}

/// The worlds an author can start from (`optimizer` plugins are written
/// against `plugins/optimizers/optimizer-kit`, in Rust).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Method,
    Metric,
    Tool,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Method => "method",
            Kind::Metric => "metric",
            Kind::Tool => "tool",
        }
    }
}

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("templates/", $path))
    };
}

fn body(kind: Kind, lang: Lang) -> &'static str {
    match (lang, kind) {
        (Lang::Rust, Kind::Method) => template!("rust/method.rs"),
        (Lang::Rust, Kind::Metric) => template!("rust/metric.rs"),
        (Lang::Rust, Kind::Tool) => template!("rust/tool.rs"),
        (Lang::Python, Kind::Method) => template!("python/method.py"),
        (Lang::Python, Kind::Metric) => template!("python/metric.py"),
        (Lang::Python, Kind::Tool) => template!("python/tool.py"),
        (Lang::Js, Kind::Method) => template!("js/method.js"),
        (Lang::Js, Kind::Metric) => template!("js/metric.js"),
        (Lang::Js, Kind::Tool) => template!("js/tool.js"),
    }
}

/// Writes the project; returns its folder and the files written.
pub fn new(
    kind: Kind,
    name: &str,
    lang: Lang,
    dir: Option<&Path>,
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let ok_name = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok_name {
        bail!(
            "plugin name {name:?}: use lowercase letters, digits and '_', starting with a letter (it is how configs and agents name it)"
        );
    }
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty: choose another --dir",
            dir.display()
        );
    }
    let contract = HOST_VERSION.to_string();
    let wit = RELEASED
        .iter()
        .find(|(v, _)| *v == contract)
        .map(|(_, text)| *text)
        .context("the host's own contract is not embedded")?;
    let test_line = match kind {
        Kind::Method => String::new(),
        _ => format!("    forge-host plugins test dist/{name}.wasm --dataset examples.jsonl\n"),
    };
    let examples_row = match kind {
        Kind::Method => String::new(),
        Kind::Metric => "| `examples.jsonl` | answers with the scores they should get: `forge-host plugins test` checks them |\n".into(),
        Kind::Tool => "| `examples.jsonl` | inputs with the output (or error) they should give: `forge-host plugins test` checks them |\n".into(),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{world}}", kind.as_str())
            .replace("{{contract}}", &contract)
            .replace("{{lang}}", lang.as_str())
            .replace("{{language}}", lang.language())
            .replace("{{source}}", lang.source())
            .replace("{{toolchain}}", &lang.toolchain())
            .replace("{{test_line}}", &test_line)
            .replace("{{examples_row}}", &examples_row)
            .replace("{{wit_bindgen}}", super::build::WIT_BINDGEN)
    };
    let mut files: Vec<(&str, String)> = vec![
        (lang.source(), fill(body(kind, lang))),
        ("plugin.toml", fill(template!("plugin.toml"))),
        ("README.md", fill(template!("README.md"))),
        ("wit/forge.wit", wit.to_string()),
        ("questions.jsonl", questions(kind).to_string()),
        ("experiment.toml", fill(experiment(kind))),
        (".gitignore", "dist/\ntarget/\n".to_string()),
    ];
    match kind {
        Kind::Metric => files.push(("examples.jsonl", fill(template!("metric.examples.jsonl")))),
        Kind::Tool => files.push(("examples.jsonl", fill(template!("tool.examples.jsonl")))),
        Kind::Method => {}
    }
    if lang == Lang::Rust {
        files.push(("Cargo.toml", fill(template!("rust/Cargo.toml"))));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(rel.to_string());
    }
    written.sort();
    Ok((dir, written))
}

/// What the experiment asks: questions its tool helps with, for a tool.
fn questions(kind: Kind) -> &'static str {
    match kind {
        Kind::Tool => template!("tool.questions.jsonl"),
        _ => template!("questions.jsonl"),
    }
}

fn experiment(kind: Kind) -> &'static str {
    match kind {
        Kind::Method => template!("method.experiment.toml"),
        Kind::Metric => template!("metric.experiment.toml"),
        Kind::Tool => template!("tool.experiment.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_filled_and_names_its_world() {
        let tmp = tempfile::tempdir().unwrap();
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for kind in [Kind::Method, Kind::Metric, Kind::Tool] {
                let dir = tmp
                    .path()
                    .join(format!("{}_{}", lang.as_str(), kind.as_str()));
                let (dir, files) = new(kind, "my_plugin", lang, Some(&dir)).unwrap();
                assert!(files.contains(&lang.source().to_string()), "{files:?}");
                for f in &files {
                    let text = std::fs::read_to_string(dir.join(f)).unwrap();
                    assert!(
                        !text.contains("{{"),
                        "{}: unfilled placeholder",
                        dir.join(f).display()
                    );
                }
                let manifest =
                    crate::components::manifest::Manifest::read(&dir.join("plugin.toml")).unwrap();
                assert_eq!(manifest.world, kind.as_str());
                assert_eq!(manifest.lang.as_deref(), Some(lang.as_str()));
                assert_eq!(manifest.contract, HOST_VERSION.to_string());
                let experiment = std::fs::read_to_string(dir.join("experiment.toml")).unwrap();
                assert!(experiment.contains("dist/my_plugin.wasm"), "{experiment}");
            }
        }
        let taken = tmp.path().join("rust_tool");
        let err = new(Kind::Tool, "x", Lang::Rust, Some(&taken))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        let err = new(Kind::Tool, "My-Tool", Lang::Rust, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lowercase"), "{err}");
    }
}
