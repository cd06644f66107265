//! What a run shows while it goes: a progress bar with ETA and the running
//! scores for people, one JSON event per line for machines (`--json`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::results::records::{Experiment, RunRecord};
use crate::results::report;
use crate::results::stats::Summary;

pub trait Progress: Send {
    fn start(&mut self, experiment: &Experiment, total: usize, already_done: usize);
    /// `running`: mean of each score so far.
    fn example(&mut self, run: &RunRecord, running: &[(String, f64)]);
    fn finish(&mut self, experiment: &Experiment, summary: &Summary);
    /// Something the user should know that does not stop the run.
    fn warning(&mut self, message: &str);
}

/// indicatif bar on stderr (hidden when stderr is not a terminal).
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bar {
    fn start(&mut self, e: &Experiment, total: usize, already_done: usize) {
        if already_done > 0 {
            eprintln!(
                "resuming {}: {already_done} of {total} examples already done",
                e.id
            );
        } else {
            eprintln!("experiment {} ({total} examples)", e.id);
        }
        self.bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        self.bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} < {eta}] {msg}")
                .expect("valid template"),
        );
        self.bar.set_position(already_done as u64);
    }

    fn example(&mut self, run: &RunRecord, running: &[(String, f64)]) {
        let scores: Vec<String> = running
            .iter()
            .map(|(k, v)| format!("{k} {}", report::fmt_score(k, *v)))
            .collect();
        self.bar.set_message(scores.join("  "));
        if let Some(e) = &run.error {
            self.bar.println(format!(
                "example {} failed: {}: {}",
                run.example_id, e.kind, e.message
            ));
        }
        self.bar.inc(1);
    }

    fn finish(&mut self, _e: &Experiment, _s: &Summary) {
        self.bar.finish_and_clear();
    }

    fn warning(&mut self, message: &str) {
        // Said before `start` too, when the bar is hidden (its println would drop it).
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
}

/// One JSON object per line on stdout.
pub struct JsonLines;

impl Progress for JsonLines {
    fn start(&mut self, e: &Experiment, total: usize, already_done: usize) {
        println!(
            "{}",
            json!({"event": "start", "experiment": e.id, "total": total, "already_done": already_done})
        );
    }

    fn example(&mut self, run: &RunRecord, running: &[(String, f64)]) {
        let running: serde_json::Map<String, serde_json::Value> =
            running.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        println!(
            "{}",
            json!({"event": "example", "index": run.index, "id": run.example_id, "answer": run.answer,
                   "scores": run.scores, "error": run.error, "metric_errors": run.metric_errors,
                   "latency_ms": run.latency_ms, "running": running})
        );
    }

    fn finish(&mut self, e: &Experiment, s: &Summary) {
        println!(
            "{}",
            json!({"event": "summary", "experiment": e.id, "status": e.status, "summary": s})
        );
    }

    fn warning(&mut self, message: &str) {
        println!("{}", json!({"event": "warning", "message": message}));
    }
}
