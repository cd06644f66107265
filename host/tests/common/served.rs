//! `forge-host serve --openai` (the real binary, the real default model) on
//! a free loopback port, for tests that need a served model: the OpenAI
//! surface itself (`openai_backend.rs`) and a served judge (`judge.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::{forge, plugins};

/// The model the server serves (the packaged default).
pub const MODEL: &str = "smollm2-135m-instruct";

/// `forge-host serve --openai` on a free loopback port; killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start() -> Server {
        plugins(); // fetches the model if missing
        let tmp = std::env::temp_dir();
        let mut child = forge(&tmp.join("forge-serve-test-home"))
            .args(["serve", "--openai", "--port", "0", "--model", MODEL])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap().to_string());
                }
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!("server did not start:\n{}", stderr.lock().unwrap().as_str())
            });
        Server { child, url, stderr }
    }

    /// ctrl-c: the server must stop cleanly.
    pub fn interrupt(mut self) {
        let st = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                let log = self.stderr.lock().unwrap().clone();
                assert!(st.success(), "exit {st} after ctrl-c:\n{log}");
                assert!(log.contains("server stopped"), "{log}");
                return;
            }
            assert!(Instant::now() < deadline, "no exit after ctrl-c");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
