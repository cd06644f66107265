//! A method that misbehaves in the way its params ask, so the host's
//! containment can be tested with a real component:
//! `{"mode": "loop" | "memory" | "read_file" | "network" | "env" | "trap" | "ok"
//!   | "question", "path": "/etc/hostname", "addr": "127.0.0.1:9"}`; "question"
//! takes the mode from the example's question, and no params means "ok"
//! (answers the first reference), which the hot-reload test relies on.
//! Modes that try to reach outside report what they got, so the test can
//! tell a leak from a denial.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "method" });

use exports::forge::plugin::solver::Guest;
use forge::plugin::types::{Answer, Example, PluginError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Params {
    mode: String,
    path: Option<String>,
    addr: Option<String>,
}

struct Hostile;

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
