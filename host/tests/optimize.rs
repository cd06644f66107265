//! `forge-host optimize` (issue #16) through the real model, plugins and
//! store: a scripted optimizer (the `scripted_optimizer` test guest, no
//! model) drives the control flow deterministically — a proposal that lost
//! `{question}` is re-asked, a significantly better one is accepted by the
//! paired test, worse ones are rejected, the loop stops on the plateau or
//! the budget, and the test split is touched only at the end; the real
//! interviewer (the task model itself) runs the whole loop, is killed with
//! SIGKILL after its first iteration, and the same command finishes with
//! the trajectory an uninterrupted run gives; bad configs fail at their line.

mod common;
use common::optimize::{SCRIPTED, scripted_config, secret_config};
use common::served::{MODEL, Server};
use common::*;

use serde_json::Value;
use std::path::Path;

/// `optimize --json`: the progress lines and the final record.
fn optimize(home: &Path, config: &Path) -> (Vec<String>, Value) {
    let out = run_ok(forge(home).args(["--json", "optimize"]).arg(config));
    let ev = events(&out.stdout);
    let said = ev
        .iter()
        .filter(|e| e["event"] == "optimize")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let done = ev
        .iter()
        .find(|e| e["event"] == "optimization")
        .expect("the optimization event")
        .clone();
    (said, done)
}

fn decisions(done: &Value) -> Vec<String> {
    done["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["decision"].as_str().unwrap().to_string())
        .collect()
}

/// Every experiment in the store: (name, created_at).
fn experiments(home: &Path) -> Vec<(String, String)> {
    let v: Value =
        serde_json::from_slice(&run_ok(forge(home).args(["--json", "list"])).stdout).unwrap();
    v["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = &e["experiment"];
            (
                e["name"].as_str().unwrap().to_string(),
                e["created_at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_scripted_optimizer_is_re_asked_accepted_by_the_paired_test_and_stops_on_the_plateau() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = scripted_config(tmp.path(), "");
    let (said, done) = optimize(&home, &cfg);
    let run = &done["run"];
    assert_eq!(run["status"], "completed", "{said:#?}");
    // Baseline, the re-asked zorblax prompt accepted, two worse ones
    // rejected, then two rejections in a row: the plateau.
    assert_eq!(
        decisions(&done),
        ["baseline", "accepted", "rejected", "rejected"],
        "{said:#?}"
    );
    assert_eq!(run["stop_reason"], "plateau");
    assert_eq!(run["iterations_done"], 3);
    assert_eq!(run["best_prompt"], "The secret word is zorblax. {question}");
    let c = &done["candidates"].as_array().unwrap()[1];
    let asks = c["interviews"].as_array().unwrap();
    assert_eq!(
        asks.len(),
        2,
        "the proposal without {{question}} is asked again"
    );
    assert!(asks[0]["feedback"].is_null());
    assert!(
        asks[1]["feedback"]
            .as_str()
            .unwrap()
            .contains("lost {question}"),
        "{asks:?}"
    );
    // The paired test on validation: 6 of 6 fixed, none broken.
    let paired = &c["paired"];
    assert_eq!(paired["test"], "mcnemar-exact");
    assert!(paired["delta"].as_f64().unwrap() > 0.99);
    assert!(paired["p_value"].as_f64().unwrap() < 0.05);
    let rejected = &done["candidates"].as_array().unwrap()[2];
    assert!(rejected["paired"]["delta"].as_f64().unwrap() < 0.0);
    // The held-out proof: the same test examples, start vs best, paired.
    let test = &run["test"];
    assert_eq!(test["paired"]["n"], 6);
    assert!(test["best"]["mean"].as_f64().unwrap() > test["start"]["mean"].as_f64().unwrap());
    assert!(test["paired"]["p_value"].as_f64().unwrap() < 0.05);
    // The splits are disjoint and fixed by the seed.
    let ids = |k: &str| -> Vec<String> {
        run["splits"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (train, val, test_ids) = (ids("train"), ids("validation"), ids("test"));
    assert_eq!((train.len(), val.len(), test_ids.len()), (4, 6, 6));
    for id in &test_ids {
        assert!(
            !train.contains(id) && !val.contains(id),
            "{id} is in two splits"
        );
    }
    // The test split is touched once, at the end: both test experiments
    // start after every other experiment of the run.
    let exps = experiments(&home);
    let (tests, others): (Vec<_>, Vec<_>) = exps.iter().partition(|(n, _)| n.contains("-test-"));
    assert_eq!(tests.len(), 2, "{exps:?}");
    let first_test = tests.iter().map(|(_, t)| t).min().unwrap();
    assert!(others.iter().all(|(_, t)| t < first_test), "{exps:?}");
    // `show` prints the trajectory and the test; a rerun finds it done.
    let shown = run_ok(forge(&home).args(["show", run["id"].as_str().unwrap()]));
    let text = String::from_utf8_lossy(&shown.stdout);
    for needle in [
        "accepted",
        "rejected",
        "held-out test (6 examples, contains)",
        "best prompt",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    let again = run_ok(forge(&home).arg("optimize").arg(&cfg));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already optimized"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        experiments(&home).len(),
        exps.len(),
        "the rerun ran nothing"
    );
}

#[test]
fn the_budget_stops_the_loop_before_an_iteration_and_the_test_still_runs() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = scripted_config(tmp.path(), "max_calls = 5");
    // --dry-run: the splits and the most work, nothing run or stored.
    let dry = run_ok(
        forge(&home)
            .args(["--json", "optimize", "--dry-run"])
            .arg(&cfg),
    );
    let p = &events(&dry.stdout)[0];
    assert_eq!(
        (
            p["train"].clone(),
            p["validation"].clone(),
            p["test"].clone()
        ),
        (4.into(), 6.into(), 6.into())
    );
    // 4 + 6 baseline, 4 iterations × 4 candidates × (2 gate + 6 + 4), 2 × 6 test.
    assert_eq!(p["max_example_runs"], 4 + 6 + 4 * 4 * (2 + 6 + 4) + 2 * 6);
    assert!(
        !home.join("forge.redb").exists(),
        "a dry run stores nothing"
    );
    let (_, done) = optimize(&home, &cfg);
    let run = &done["run"];
    assert_eq!(run["stop_reason"], "budget: model calls");
    assert_eq!(run["iterations_done"], 0);
    assert_eq!(decisions(&done), ["baseline"]);
    assert!(run["spend"]["task_calls"].as_u64().unwrap() >= 5);
    assert_eq!(
        run["test"]["paired"]["delta"], 0.0,
        "the starting prompt stands"
    );
    assert_eq!(
        run["test"]["start_experiment"],
        run["test"]["best_experiment"]
    );
}

/// The real interviewer (the task model): every proposal it makes is
/// stored with its calls, none of its prompts shows a validation or test
/// question, and a SIGKILL after the first iteration loses nothing: the
/// same command ends with the trajectory of an uninterrupted run.
#[test]
fn the_real_interviewer_run_resumes_after_kill_with_the_same_trajectory() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "real.toml",
        &format!(
            r#"name = "nq-opt"
seed = 11
[model]
source = "smollm2-135m-instruct"
threads = 2
[dataset]
path = "{}"
sample = 16
[method]
plugin = "naive"
params = {{ template = "Question: {{question}}\nAnswer:", first_line = true }}
[[metrics]]
plugin = "contains"
[[metrics]]
plugin = "f1"
[generation]
max_tokens = 12
[optimize]
param = "template"
metric = "f1"
max_iterations = 2
patience = 2
retries = 1
failures = 2
gate = false
[optimize.splits]
train = 4
validation = 6
test = 6
[optimize.optimizer]
plugin = "interviewer"
params = {{ max_tokens = 48, temperature = 0.9 }}
"#,
            shared_data("nq_open.dev200.jsonl").display()
        ),
    );
    let whole = tmp.path().join("whole");
    let (_, a) = optimize(&whole, &cfg);

    let killed = tmp.path().join("killed");
    {
        use std::io::{BufRead, BufReader};
        let mut child = forge(&killed)
            .args(["--json", "optimize"])
            .arg(&cfg)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.contains("\"iteration 1 candidate") {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let (said, b) = optimize(&killed, &cfg);
    assert!(
        said.iter().any(|s| s.starts_with("continuing ")),
        "the second command continues the killed run: {said:#?}"
    );
    let trajectory = |d: &Value| -> Vec<Value> {
        d["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                serde_json::json!([
                    c["iteration"],
                    c["candidate"],
                    c["prompt"],
                    c["decision"],
                    c["validation"]["mean"],
                    c["interviews"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| {
                            i["calls"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|c| c["output"].clone())
                                .collect::<Vec<_>>()
                        })
                        .collect::<Vec<_>>(),
                ])
            })
            .collect()
    };
    assert_eq!(trajectory(&a), trajectory(&b));
    assert_eq!(a["run"]["stop_reason"], b["run"]["stop_reason"]);
    assert_eq!(a["run"]["best_prompt"], b["run"]["best_prompt"]);
    assert_eq!(a["run"]["test"]["paired"], b["run"]["test"]["paired"]);
    assert_eq!(a["run"]["iterations_done"], 2, "{:#?}", a["candidates"]);

    // Every ask is stored with the interviewer's calls; none of its
    // prompts shows a validation or test question.
    let calls: Vec<&Value> = a["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["interviews"].as_array().unwrap())
        .flat_map(|i| i["calls"].as_array().unwrap())
        .collect();
    assert!(calls.len() >= 2, "one ask per iteration at least");
    assert!(
        calls
            .iter()
            .all(|c| c["completion_tokens"].as_u64().unwrap() > 0)
    );
    let rows: Vec<Value> = std::fs::read_to_string(shared_data("nq_open.dev200.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let question_of = |id: &Value| {
        rows.iter().find(|r| r["id"] == *id).unwrap()["question"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for split in ["validation", "test"] {
        for id in a["run"]["splits"][split].as_array().unwrap() {
            let q = question_of(id);
            assert!(
                calls
                    .iter()
                    .all(|c| !c["prompt"].as_str().unwrap().contains(&q)),
                "the interviewer saw {split} question {q:?}"
            );
        }
    }
    let shown_train = a["run"]["splits"]["train"]
        .as_array()
        .unwrap()
        .iter()
        .any(|id| {
            calls
                .iter()
                .any(|c| c["prompt"].as_str().unwrap().contains(&question_of(id)))
        });
    assert!(shown_train, "the interviewer is shown training failures");
}

#[test]
fn bad_optimize_configs_fail_at_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let base = scripted_config(tmp.path(), "");
    let text = std::fs::read_to_string(&base).unwrap();
    let line_of =
        |t: &str, needle: &str| t.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "param = \"template\"",
            "param = \"system\"",
            "param = ",
            "method.params has no \"system\"",
        ),
        (
            "patience = 2",
            "patience = 2\nselect_on = \"train\"",
            "select_on",
            "allow_train_selection = true",
        ),
        (
            "plugin = \"scripted_optimizer\"",
            "plugin = \"interviewer\"\nparams = { instructions = \"Improve {prompt}.\" }",
            "params = { instructions",
            "lacks {failures}",
        ),
        (
            "failures = 2",
            "failures = 2\nmetric = \"bleu\"",
            "metric = ",
            "\"bleu\" is not a score of the metrics (they give contains)",
        ),
    ];
    for (from, to, at, message) in cases {
        let mut bad = text.replacen(from, to, 1);
        if to.contains("interviewer") {
            // The scripted optimizer's params tables go with it.
            let cut = bad.find("[optimize.optimizer.params.proposals]").unwrap();
            bad.truncate(cut);
        }
        let path = write(tmp.path(), "bad.toml", &bad);
        let out = forge(&home).arg("optimize").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to}: accepted");
        let line = line_of(&bad, at);
        assert!(
            err.contains(&format!("bad.toml:{line}:")) && err.contains(message),
            "{to}: expected line {line} and {message:?} in\n{err}"
        );
    }
}

/// The few-shot optimizer needs no interviewer: demonstrations from the
/// training split (here the references, LabeledFewShot style) in front of
/// the starting prompt; with the model's own answers and nothing right on
/// train there is nothing to show, and the run stops with "no change".
#[test]
fn few_shot_demonstrations_are_searched_on_validation() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = secret_config(
        tmp.path(),
        "max_candidates = 2\nmax_iterations = 2",
        "[optimize.optimizer]\nplugin = \"fewshot\"\nparams = { k = 2, candidates = 2, answers = \"reference\" }\n",
    );
    let (said, done) = optimize(&tmp.path().join("home"), &cfg);
    let rows = done["candidates"].as_array().unwrap();
    // Two failures shown with k = 2: one subset in iteration 1; once the
    // incumbent is right on train, its successes give two subsets, tested
    // together (Holm).
    assert_eq!(
        (rows[1]["iteration"].clone(), rows[2]["iteration"].clone()),
        (1.into(), 2.into())
    );
    assert_eq!(
        rows[3]["iteration"], 2,
        "two subsets in iteration 2: {said:#?}"
    );
    assert!(
        rows[3]["reason"].as_str().unwrap().contains("Holm"),
        "{said:#?}"
    );
    let best = done["run"]["best_prompt"].as_str().unwrap();
    assert!(
        best.ends_with("\n\n{question}") && best.matches("zorblax").count() == 2,
        "{best:?}"
    );
    assert!(
        decisions(&done).contains(&"accepted".to_string()),
        "{said:#?}"
    );
    assert!(
        rows[1]["analysis"]
            .as_str()
            .unwrap()
            .contains("2 demonstration(s) (reference answers)")
    );

    let tmp = tempfile::tempdir().unwrap();
    let cfg = secret_config(
        tmp.path(),
        "",
        "[optimize.optimizer]\nplugin = \"fewshot\"\n",
    );
    let (_, done) = optimize(&tmp.path().join("home"), &cfg);
    assert_eq!(done["run"]["stop_reason"], "no_change");
    assert_eq!(decisions(&done), ["baseline", "invalid"]);
}

/// APE's likelihood ranking: the pool is ranked by the task model's
/// per-token log-probability of the references, through `score-chat-ext`;
/// the prompt that states the answer ranks first and is accepted, and the
/// run stops when the pool is used up.
#[test]
fn instruction_ranking_proposes_the_most_likely_prompt_first() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = secret_config(
        tmp.path(),
        "patience = 3",
        r#"[optimize.optimizer]
plugin = "instruction_rank"
params = { pool = ["Answer briefly. {question}", "The secret word is zorblax. {question}", "{question} Reply in one word."] }
"#,
    );
    let (said, done) = optimize(&tmp.path().join("home"), &cfg);
    let rows = done["candidates"].as_array().unwrap();
    assert_eq!(
        rows[1]["prompt"], "The secret word is zorblax. {question}",
        "{said:#?}"
    );
    assert_eq!(rows[1]["decision"], "accepted");
    assert!(
        rows[1]["analysis"]
            .as_str()
            .unwrap()
            .starts_with("ranked 3 prompts")
    );
    let calls = rows[1]["interviews"][0]["calls"].as_array().unwrap();
    assert!(
        !calls.is_empty() && calls.iter().all(|c| c["kind"] == "score"),
        "{calls:?}"
    );
    assert_eq!(done["run"]["stop_reason"], "no_change", "{said:#?}");
    assert_eq!(
        rows.len(),
        5,
        "baseline, the 3 of the pool, then nothing left"
    );
}

/// A `[sweep]` over models is a suite: each cell optimised on its own
/// (its own best prompt and held-out test), one group, one table.
#[test]
fn a_sweep_over_models_optimises_each_and_tables_them() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let cfg = secret_config(tmp.path(), "max_iterations = 1", SCRIPTED);
    let text = std::fs::read_to_string(&cfg).unwrap()
        + "[sweep]\n\"model.weights\" = [\"native\", \"q8_0\"]\n";
    std::fs::write(&cfg, text).unwrap();
    let out = run_ok(forge(&home).args(["--json", "optimize"]).arg(&cfg));
    let ev = events(&out.stdout);
    let suite = ev
        .iter()
        .find(|e| e["event"] == "optimization_suite")
        .unwrap();
    assert_eq!(suite["group"]["kind"], "optimization");
    let runs = suite["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["best_prompt"], "The secret word is zorblax. {question}");
        assert!(
            r["test"]["best"]["mean"].as_f64().unwrap()
                > r["test"]["start"]["mean"].as_f64().unwrap()
        );
    }
    assert_ne!(runs[0]["id"], runs[1]["id"]);
    let group = suite["group"]["id"].as_str().unwrap();
    let shown = run_ok(forge(&home).args(["show", group]));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("native") && text.contains("q8_0") && text.contains("test gain"),
        "{text}"
    );
}

/// The interviewer as a served model (`[optimize.interviewer] backend =
/// "openai"`: here `forge-host serve --openai`, as vLLM or TGI would be):
/// its calls go to the server, are recorded with the iteration and
/// counted as the interviewer's, apart from the task model's.
#[test]
fn a_served_interviewer_is_asked_through_the_openai_backend() {
    if default_model().is_none() {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = secret_config(
        tmp.path(),
        "max_iterations = 1\nretries = 0",
        &format!(
            r#"[optimize.optimizer]
plugin = "interviewer"
params = {{ max_tokens = 24, temperature = 0.0 }}
[optimize.interviewer]
backend = "openai"
base_url = "{}"
model = "{MODEL}"
timeout_ms = 60000
"#,
            server.url
        ),
    );
    let (said, done) = optimize(&tmp.path().join("home"), &cfg);
    let run = &done["run"];
    assert_eq!(run["status"], "completed", "{said:#?}");
    assert_eq!(run["interviewer_model"], MODEL);
    let asks = done["candidates"].as_array().unwrap()[1]["interviews"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(asks.len(), 1, "retries = 0: one ask");
    let calls = asks[0]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0]["completion_tokens"].as_u64().unwrap() > 0,
        "{calls:?}"
    );
    assert!(
        calls[0]["prompt"].as_str().unwrap().contains("PROMPT:"),
        "the interview went to the server: {calls:?}"
    );
    assert_eq!(run["spend"]["interviewer_calls"], 1);
    assert!(run["spend"]["task_calls"].as_u64().unwrap() >= 10);
    server.interrupt();
    // With the server gone, the interviewer is what fails (the task model
    // is the embedded one), and the error names its table.
    let out = forge(&tmp.path().join("home"))
        .args(["optimize", "--new"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran without its server");
    assert!(err.contains("[optimize] interviewer"), "{err}");
}
