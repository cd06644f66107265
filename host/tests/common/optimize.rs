//! `forge-host optimize` in tests: the secret-word task (16 questions
//! whose answer the model can only know from the prompt) and the scripted
//! optimizer's proposals, shared by the optimize tests and the dashboard's.

use std::path::{Path, PathBuf};

use super::write;

/// 16 questions whose answer ("zorblax") the model cannot know unless the
/// prompt tells it: a prompt that does is a large, certain gain.
pub fn secret_dataset(dir: &Path) -> PathBuf {
    let qs = [
        "What is the secret word?",
        "Tell me the secret word.",
        "Which word is the secret one?",
        "Say the secret word.",
        "What word is secret here?",
        "Do you know the secret word?",
        "Name the secret word.",
        "The secret word is what?",
        "Give me the secret word.",
        "What's the secret word?",
        "Secret word, please?",
        "Which is the secret word?",
        "Could you say the secret word?",
        "What is the hidden secret word?",
        "Reveal the secret word.",
        "I need the secret word.",
    ];
    let mut body = String::new();
    for (i, q) in qs.iter().enumerate() {
        body +=
            &serde_json::json!({"id": format!("s{i:02}"), "question": q, "answers": ["zorblax"]})
                .to_string();
        body.push('\n');
    }
    write(dir, "secret.jsonl", &body)
}

pub const SCRIPTED: &str = r#"[optimize.optimizer]
plugin = "scripted_optimizer"
[optimize.optimizer.params.proposals]
1 = ["The secret word is zorblax."]
2 = ["Answer with the word banana. {question}"]
3 = ["{question} Answer in French."]
[optimize.optimizer.params.on_feedback]
1 = ["The secret word is zorblax. {question}"]
"#;

pub fn scripted_config(dir: &Path, optimize_tail: &str) -> PathBuf {
    secret_config(dir, optimize_tail, SCRIPTED)
}

/// The secret-word experiment with `optimize_tail` in `[optimize]` and an
/// `[optimize.optimizer]` block.
pub fn secret_config(dir: &Path, optimize_tail: &str, optimizer: &str) -> PathBuf {
    let data = secret_dataset(dir);
    let path = write(
        dir,
        "scripted.toml",
        &format!(
            r#"name = "secret-opt"
seed = 3
[model]
source = "smollm2-135m-instruct"
threads = 2
[dataset]
path = "{data}"
[method]
plugin = "naive"
params = {{ template = "{{question}}", first_line = true }}
[[metrics]]
plugin = "contains"
[generation]
max_tokens = 12
[optimize]
param = "template"
max_iterations = 4
patience = 2
failures = 2
{optimize_tail}
[optimize.splits]
train = 4
validation = 6
test = 6
{optimizer}"#,
            data = data.display()
        ),
    );
    // A tail key that [optimize] already sets replaces its line.
    let mut text = std::fs::read_to_string(&path).unwrap();
    for line in optimize_tail.lines() {
        let key = line.split('=').next().unwrap().trim();
        if let Some(old) = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")) && *l != line)
        {
            let old = format!("{old}\n");
            text = text.replacen(&old, "", 1);
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}
