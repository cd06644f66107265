//! A method that misbehaves in the way its params ask, so the host's
//! containment can be tested with a real component:
//! `{"mode": "loop" | "memory" | "read_file" | "network" | "env" | "trap" | "ok"
//!   | "question", "path": "/etc/hostname", "addr": "127.0.0.1:9"}`; "question"
//! takes the mode from the example's question, and no params means "ok"
//! (answers the first reference), which the hot-reload test relies on.
//! Modes that try to reach outside report what they got, so the test can
//! tell a leak from a denial. Modes that spend the host (contract 0.1.4):
//! "model_loop" (tiny generations forever, errors ignored), "polite_loop"
//! (generates until `budget.remaining` says no calls are left, then
//! answers), "huge_embed" / "huge_score" (100,000 items per call, again
//! after a refusal), "big_answer" (50 MiB), "log_flood" (20 MiB of logs,
//! then answers), "trace_flood" (20,000 steps), "exit" (`exit(3)`).

wit_bindgen::generate!({ path: "../../../../wit/v0.1.4", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::inference::{self, GenerateParams};
use forge::plugin::types::{Answer, Example, PluginError, Step, StepKind};
use forge::plugin::{budget, embeddings, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Params {
    mode: String,
    path: Option<String>,
    addr: Option<String>,
}

struct Hostile;

/// The smallest generation: one token.
fn tiny() -> GenerateParams {
    GenerateParams {
        max_tokens: 1,
        temperature: 0.0,
        top_p: 1.0,
        stop: vec![],
        seed: None,
    }
}

fn answer(text: String) -> Answer {
    Answer {
        text,
        trace: vec![],
        contexts: vec![],
    }
}

impl Guest for Hostile {
    fn solve(example: Example, params: String) -> Result<Answer, PluginError> {
        let p: Params = if params.trim() == "{}" || params.trim().is_empty() {
            Params {
                mode: "ok".into(),
                path: None,
                addr: None,
            }
        } else {
            serde_json::from_str(&params).map_err(|e| PluginError::InvalidInput(e.to_string()))?
        };
        // mode "question": the example's question names the misbehaviour.
        let mode = if p.mode == "question" {
            example.question.clone()
        } else {
            p.mode.clone()
        };
        match mode.as_str() {
            "ok" => Ok(answer(example.answers.first().cloned().unwrap_or_default())),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "read_file" => {
                let path = p.path.unwrap_or_else(|| "/etc/hostname".into());
                match std::fs::read_to_string(&path) {
                    Ok(s) => Ok(answer(format!("LEAKED:{s}"))),
                    Err(e) => Err(PluginError::Unavailable(format!("read {path}: {e}"))),
                }
            }
            "network" => {
                let addr = p.addr.unwrap_or_else(|| "127.0.0.1:9".into());
                match std::net::TcpStream::connect(&addr) {
                    Ok(_) => Ok(answer(format!("LEAKED:connected to {addr}"))),
                    Err(e) => Err(PluginError::Unavailable(format!("connect {addr}: {e}"))),
                }
            }
            "env" => match std::env::vars().next() {
                Some((k, v)) => Ok(answer(format!("LEAKED:{k}={v}"))),
                None => Err(PluginError::Unavailable("no environment".into())),
            },
            "trap" => panic!("hostile guest panics on purpose"),
            "model_loop" => loop {
                let _ = inference::complete("Hi", &tiny());
            },
            "polite_loop" => {
                let mut calls = 0;
                while budget::remaining().model_calls > 0 {
                    inference::complete("Hi", &tiny()).map_err(|e| {
                        PluginError::Failed(format!("refused before the budget said so: {e:?}"))
                    })?;
                    calls += 1;
                }
                Ok(answer(format!("stopped after {calls} calls")))
            }
            "huge_embed" => {
                let texts: Vec<String> = (0..100_000).map(|i| format!("text {i}")).collect();
                let first = embeddings::embed(&texts);
                // Keeps going after the refusal: the host ends the example.
                let _ = embeddings::embed(&texts);
                Ok(answer(format!("embed returned {first:?} and then again")))
            }
            "huge_score" => {
                let conts: Vec<String> = (0..100_000).map(|i| format!(" {i}")).collect();
                let first = inference::score("Count:", &conts).map(|v| v.len());
                let _ = inference::score("Count:", &conts);
                Ok(answer(format!("score returned {first:?} and then again")))
            }
            "big_answer" => Ok(answer("x".repeat(50 << 20))),
            "log_flood" => {
                let line = "y".repeat(1023);
                for _ in 0..20_000 {
                    log::log(log::Level::Info, &line);
                }
                Ok(answer(example.answers.first().cloned().unwrap_or_default()))
            }
            "trace_flood" => Ok(Answer {
                text: example.answers.first().cloned().unwrap_or_default(),
                trace: (0..20_000)
                    .map(|i| Step {
                        kind: StepKind::Thought,
                        content: format!("step {i}"),
                    })
                    .collect(),
                contexts: vec![],
            }),
            "exit" => std::process::exit(3),
            // "tool:INPUT": call the first granted tool with INPUT.
            m if m.starts_with("tool:") => {
                let tools = forge::plugin::tools::available();
                let name = tools.first().map(|t| t.name.clone()).unwrap_or_default();
                match forge::plugin::tools::call(&name, &m["tool:".len()..]) {
                    Ok(out) => Ok(answer(out)),
                    Err(e) => Ok(answer(format!("TOOL ERROR {e:?}"))),
                }
            }
            other => Err(PluginError::InvalidInput(format!("unknown mode {other}"))),
        }
    }
}

export!(Hostile);
