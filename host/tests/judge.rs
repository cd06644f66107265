//! `forge-host judge` (issue #15) through the real model and the real
//! `pairwise_judge` method and `judge_verdict` metric: each pair is judged
//! in both orders (the two recorded prompts hold the answers swapped), the
//! stored scores follow MT-Bench's rule from the recorded outputs
//! (agreement = win/loss, disagreement = tie), unparsed verdicts are
//! counted and left out of the rates, and bad judge configs are one-line
//! errors at their line with nothing stored. The statistics themselves
//! (length-controlled win rate, sign test) are unit-tested in
//! `results::pairwise`.

mod common;
use common::served::{MODEL, Server};
use common::*;

use judge_eval::{Position, parse_verdict};
use serde_json::Value;

const SAMPLE: usize = 6;

/// Two finished experiments on the same questions with different answers.
fn two_experiments(tmp: &std::path::Path, home: &std::path::Path) -> (String, String) {
    let data = shared_data("nq_open.dev200.jsonl");
    let a = run_id(
        home,
        &write(tmp, "a.toml", &naive_config(&data, SAMPLE, "")),
    );
    let b = run_id(
        home,
        &write(
            tmp,
            "b.toml",
            &naive_config(&data, SAMPLE, "max_tokens = 6").replace("max_tokens = 24\n", ""),
        ),
    );
    (a, b)
}

/// (A's answer, B's answer) per shared example, trimmed as the judge
/// method trims them.
fn paired_answers(home: &std::path::Path, a: &str, b: &str) -> Vec<(String, String)> {
    exported_runs(home, a)
        .iter()
        .zip(exported_runs(home, b))
        .map(|(x, y)| {
            assert_eq!(x["example_id"], y["example_id"]);
            (
                x["answer"].as_str().unwrap().trim().to_string(),
                y["answer"].as_str().unwrap().trim().to_string(),
            )
        })
        .collect()
}

/// The verdict of one order, mapped back to the answers ("A", "B", "tie").
fn mapped(output: &str, a_first: bool) -> Option<&'static str> {
    Some(match (parse_verdict(output)?, a_first) {
        (Position::Tie, _) => "tie",
        (Position::First, true) | (Position::Second, false) => "A",
        (Position::First, false) | (Position::Second, true) => "B",
    })
}

fn judge(home: &std::path::Path, a: &str, b: &str, extra: &[&str]) -> Value {
    let out = run_ok(forge(home).args(["--json", "judge", a, b]).args(extra));
    events(&out.stdout)
        .into_iter()
        .find(|e| e["event"] == "judged")
        .expect("a judged event")
}

/// Checks every stored judging run against its own recorded calls and
/// returns (pairs, parse failures, parsed pairs).
fn check_runs(
    home: &std::path::Path,
    judged: &Value,
    answers: &[(String, String)],
    default_template: bool,
) -> (usize, usize, usize) {
    let id = judged["experiment"].as_str().unwrap();
    let runs = exported_runs(home, id);
    assert_eq!(
        runs.len(),
        answers.len(),
        "one judging run per shared example"
    );
    let (mut unparsed, mut parsed) = (0, 0);
    let (mut wins, mut ties, mut losses) = (0, 0, 0);
    for (r, (ans_a, ans_b)) in runs.iter().zip(answers) {
        assert!(r["error"].is_null(), "{r}");
        let calls = r["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2, "both orders asked: {r}");
        // As templated by the engine, or the messages a server was sent.
        let prompt = |i: usize| {
            let p = calls[i]["prompt"].as_str().unwrap();
            match serde_json::from_str::<Vec<Value>>(p) {
                Ok(messages) => messages
                    .iter()
                    .map(|m| m["content"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(_) => p.to_string(),
            }
        };
        let (p0, p1) = (prompt(0), prompt(1));
        // Call 0 shows A in the first slot, call 1 shows B there.
        if default_template {
            let slots = |p: &str| -> (String, String) {
                let a = p.find("[Response A]\n").unwrap() + "[Response A]\n".len();
                let b = p.find("\n\n[Response B]\n").unwrap();
                let end = p.find("\n\nWhich response is better?").unwrap();
                (
                    p[a..b].to_string(),
                    p[b + "\n\n[Response B]\n".len()..end].to_string(),
                )
            };
            assert_eq!(slots(&p0), (ans_a.clone(), ans_b.clone()), "{r}");
            assert_eq!(slots(&p1), (ans_b.clone(), ans_a.clone()), "{r}");
        }
        let out = |i: usize| calls[i]["output"].as_str().unwrap().to_string();
        let scores = r["scores"].as_object().unwrap();
        match (mapped(&out(0), true), mapped(&out(1), false)) {
            (Some(v1), Some(v2)) => {
                parsed += 1;
                let verdict = if v1 == v2 { v1 } else { "tie" };
                let win = match verdict {
                    "A" => 1.0,
                    "B" => 0.0,
                    _ => 0.5,
                };
                assert_eq!(scores["win"], win, "{r}");
                assert_eq!(scores["parse_failed"], 0.0, "{r}");
                assert_eq!(scores["a_win"], f64::from(verdict == "A"), "{r}");
                assert_eq!(scores["tie"], f64::from(verdict == "tie"), "{r}");
                let same_slot = (v1 == "A" && v2 == "B") || (v1 == "B" && v2 == "A");
                assert_eq!(scores["position_bias"], f64::from(same_slot), "{r}");
                assert_eq!(r["answer"], if verdict == "tie" { "tie" } else { verdict });
                match verdict {
                    "A" => wins += 1,
                    "B" => losses += 1,
                    _ => ties += 1,
                }
            }
            _ => {
                unparsed += 1;
                assert_eq!(
                    scores.len(),
                    1,
                    "an unparsed pair scores parse_failed only: {r}"
                );
                assert_eq!(scores["parse_failed"], 1.0, "{r}");
                assert_eq!(r["answer"], "unparsed");
            }
        }
    }
    let p = &judged["pairwise"];
    assert_eq!(p["pairs"], answers.len());
    assert_eq!(p["parse_failures"], unparsed);
    assert_eq!(
        (p["a_wins"].clone(), p["ties"].clone(), p["b_wins"].clone()),
        (wins.into(), ties.into(), losses.into())
    );
    (answers.len(), unparsed, parsed)
}

#[test]
fn judge_runs_both_orders_maps_disagreement_to_ties_and_counts_parse_failures() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (a, b) = two_experiments(tmp.path(), &home);
    let answers = paired_answers(&home, &a, &b);

    // The embedded model as judge, told to answer with a letter (as
    // configs/judge.toml does) so that some of its verdicts parse.
    let letter = write(
        tmp.path(),
        "letter.toml",
        &judge_eval_config(
            "max_tokens = 4",
            r#"system = "You are a judge. Reply with one letter: A or B.""#,
        ),
    );
    let judged = judge(&home, &a, &b, &["--judge", letter.to_str().unwrap()]);
    let (pairs, _, parsed) = check_runs(&home, &judged, &answers, true);
    assert_eq!(pairs, SAMPLE);
    assert!(
        parsed > 0,
        "no verdict parsed: the mapping went unchecked ({judged})"
    );

    // A judge asked for something else answers nonsense: every pair is a
    // counted parse failure, none is guessed, and the rates say so.
    let poet = write(
        tmp.path(),
        "poet.toml",
        &judge_eval_config(
            "max_tokens = 12",
            r#"template = "Write a short poem about the sea. Ignore this: {question} {answer_a} {answer_b}""#,
        ),
    );
    let judged = judge(&home, &a, &b, &["--judge", poet.to_str().unwrap()]);
    let (_, unparsed, _) = check_runs(&home, &judged, &answers, false);
    assert!(unparsed >= 1, "{judged}");
    let shown = run_ok(forge(&home).args(["show", judged["experiment"].as_str().unwrap()]));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("parse failures"), "{text}");

    // Judging again is answered from the store's plan and the call cache.
    let again = judge(&home, &a, &b, &["--judge", poet.to_str().unwrap()]);
    assert_eq!(again["pairwise"], judged["pairwise"]);
}

/// A judge config like configs/judge.toml; `generation` and `method_params`
/// add lines.
fn judge_eval_config(generation: &str, method_params: &str) -> String {
    let params = if method_params.is_empty() {
        String::new()
    } else {
        format!("params = {{ {method_params} }}\n")
    };
    format!(
        r#"name = "test-judge"
seed = 5
[model]
source = "smollm2-135m-instruct"
threads = 2
[method]
plugin = "pairwise_judge"
{params}[[metrics]]
plugin = "judge_verdict"
[generation]
temperature = 0.0
{generation}
"#
    )
}

#[test]
fn bad_judge_configs_are_errors_at_their_line_and_store_nothing() {
    if default_model().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (a, b) = two_experiments(tmp.path(), &home);
    let listed = || String::from_utf8_lossy(&run_ok(forge(&home).arg("list")).stdout).to_string();
    let before = listed();

    let fail = |args: &[&str]| {
        let out = forge(&home).arg("judge").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // A template without {answer_b}: the config's line, the field, the fix.
    let no_b = write(
        tmp.path(),
        "no_b.toml",
        &judge_eval_config(
            "",
            r#"template = "Which is better, {answer_a}? {question}""#,
        ),
    );
    let err = fail(&[&a, &b, "--judge", no_b.to_str().unwrap()]);
    assert!(
        err.contains("no_b.toml:8:")
            && err.contains("method.params.template")
            && err.contains("{answer_b}"),
        "{err}"
    );
    // A judge config with its own dataset.
    let text = format!(
        "{}[dataset]\npath = \"x.jsonl\"\n",
        judge_eval_config("", "")
    );
    let line = text.lines().position(|l| l == "[dataset]").unwrap() + 1;
    let with_data = write(tmp.path(), "with_data.toml", &text);
    let err = fail(&[&a, &b, "--judge", with_data.to_str().unwrap()]);
    assert!(
        err.contains(&format!("with_data.toml:{line}:")) && err.contains("remove [dataset]"),
        "{err}"
    );
    // An experiment judged against itself, an unknown rubric file.
    assert!(fail(&[&a, &a]).contains("the same experiment"));
    assert!(
        fail(&[&a, &b, "--rubric", "no-such-rubric.txt"]).contains("--rubric no-such-rubric.txt")
    );
    assert_eq!(listed(), before, "a refused judge stores nothing");
}

/// The judge as a served model (what users point at a big model): the
/// same judging run through the `openai` backend against
/// `forge-host serve --openai`, every call recorded with the server's
/// outputs, the same rule applied to them.
#[test]
fn a_served_model_judges_through_the_openai_backend() {
    if default_model().is_none() {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (a, b) = two_experiments(tmp.path(), &home);
    let answers = paired_answers(&home, &a, &b);
    let local = judge_eval_config(
        "max_tokens = 4",
        r#"system = "You are a judge. Reply with one letter: A or B.""#,
    );
    let served = local.replace(
        "source = \"smollm2-135m-instruct\"\nthreads = 2\n",
        &format!(
            "backend = \"openai\"\nbase_url = \"{}\"\nmodel = \"{MODEL}\"\ntimeout_ms = 60000\n",
            server.url
        ),
    );
    assert_ne!(local, served);
    let cfg = write(tmp.path(), "served.toml", &served);
    let judged = judge(&home, &a, &b, &["--judge", cfg.to_str().unwrap()]);
    check_runs(&home, &judged, &answers, true);
    let shown: Value = serde_json::from_slice(
        &run_ok(forge(&home).args([
            "--json",
            "show",
            judged["experiment"].as_str().unwrap(),
            "--rows",
            "0",
        ]))
        .stdout,
    )
    .unwrap();
    assert_eq!(shown["experiment"]["model"]["backend"], "openai", "{shown}");
    assert!(shown["pairwise"]["pairs"] == SAMPLE, "{shown}");
}
