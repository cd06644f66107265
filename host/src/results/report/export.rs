//! Exports of runs (JSON, JSONL, CSV), streamed from the store, and of a
//! group's aggregates.

use std::io::Write;

use crate::results::stats::Summary;
use crate::results::store::{Experiment, RunRecord, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Jsonl,
    Csv,
}

/// Writes an experiment's runs (and, for JSON, the experiment and summary),
/// reading them from the store one at a time: exporting 100,000 runs never
/// holds them all.
pub fn export(
    out: &mut dyn Write,
    format: ExportFormat,
    e: &Experiment,
    summary: Option<&Summary>,
    store: &Store,
) -> anyhow::Result<()> {
    let mut failed: Option<anyhow::Error> = None;
    let mut each = |f: &mut dyn FnMut(&RunRecord) -> anyhow::Result<()>| -> anyhow::Result<()> {
        store.for_each_run(&e.id, |r| match f(&r) {
            Ok(()) => true,
            Err(err) => {
                failed = Some(err);
                false
            }
        })?;
        failed.take().map_or(Ok(()), Err)
    };
    match format {
        ExportFormat::Json => {
            write!(out, "{{\"experiment\": ")?;
            serde_json::to_writer(&mut *out, e)?;
            write!(out, ",\n\"summary\": ")?;
            serde_json::to_writer(&mut *out, &summary)?;
            write!(out, ",\n\"runs\": [")?;
            let mut first = true;
            each(&mut |r| {
                writeln!(out, "{}", if first { "" } else { "," })?;
                first = false;
                serde_json::to_writer(&mut *out, r)?;
                Ok(())
            })?;
            writeln!(out, "]}}")?;
        }
        ExportFormat::Jsonl => {
            each(&mut |r| {
                serde_json::to_writer(&mut *out, r)?;
                writeln!(out)?;
                Ok(())
            })?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let mut header: Vec<String> =
                ["index", "example_id", "question", "answer", "references"]
                    .map(String::from)
                    .to_vec();
            header.extend(e.score_names.iter().cloned());
            header.extend(
                [
                    "error_kind",
                    "error",
                    "latency_ms",
                    "prompt_tokens",
                    "completion_tokens",
                ]
                .map(String::from),
            );
            w.write_record(&header)?;
            each(&mut |r| {
                let mut row = vec![
                    r.index.to_string(),
                    r.example_id.clone(),
                    r.question.clone(),
                    r.answer.clone().unwrap_or_default(),
                    r.references.join(" | "),
                ];
                row.extend(
                    e.score_names
                        .iter()
                        .map(|n| r.scores.get(n).map(|v| v.to_string()).unwrap_or_default()),
                );
                row.push(r.error.as_ref().map(|x| x.kind.clone()).unwrap_or_default());
                row.push(
                    r.error
                        .as_ref()
                        .map(|x| x.message.clone())
                        .unwrap_or_default(),
                );
                row.push(format!("{:.1}", r.latency_ms));
                row.push(r.prompt_tokens.to_string());
                row.push(r.completion_tokens.to_string());
                w.write_record(&row)?;
                Ok(())
            })?;
            w.flush()?;
        }
    }
    Ok(())
}
