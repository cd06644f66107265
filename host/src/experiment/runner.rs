//! Runs a plan: each example not yet done goes through the method and the
//! metrics, up to `concurrency` at once, and its run is committed as soon as
//! it finishes. The runner is the only writer of runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::task::JoinSet;

use crate::components::bindings::types::{Answer, StepKind};
use crate::components::budget::Deadline;
use crate::components::capabilities::{CallContext, tools};
use crate::components::seed::derive_seed;
use crate::components::{Failure, FailureKind, OutputCaps};
use crate::experiment::datasets::Example;
use crate::experiment::plan::Plan;
use crate::experiment::progress::Progress;
use crate::experiment::scoring::{Metric, Scorer};
use crate::results::stats::{self, Summary};
use crate::results::store::{
    self, Experiment, RunError, RunRecord, RunScores, Status, Store, TraceStep,
};

/// Runs one example through the method and every metric, under the
/// example's deadline (the method's `example_timeout_ms`). Never panics on
/// plugin misbehaviour: failures are recorded in the returned run, and what
/// a plugin produced is kept only up to the method's output caps.
pub async fn run_example(plan: &Plan, index: u32, example: &Example) -> RunRecord {
    let seed = derive_seed(plan.config.config.seed, u64::from(index));
    let started = Instant::now();
    let span = tracing::info_span!("example", index, id = %example.id);
    let _enter = span.enter();

    let sandbox = &plan.method.sandbox;
    let caps = sandbox.outputs;
    let deadline = Deadline::after(sandbox.example_timeout);
    let ctx = CallContext::new(plan.caps.clone(), seed).until(deadline);
    let (outcome, ctx) = plan
        .host
        .solve(&plan.method, seed, ctx, &example.to_wit())
        .await;
    let mut dropped_log_bytes = ctx.logs_dropped_bytes;
    let mut run = RunRecord {
        index,
        example_id: example.id.clone(),
        question: example.question.clone(),
        references: example.answers.clone(),
        answer: None,
        trace: vec![],
        contexts: vec![],
        calls: ctx.calls,
        logs: ctx.logs,
        scores: BTreeMap::new(),
        metric_errors: BTreeMap::new(),
        error: None,
        latency_ms: 0.0,
        prompt_tokens: 0,
        completion_tokens: 0,
        finished_at: String::new(),
    };
    for t in ctx.tool_calls {
        run.trace.push(TraceStep {
            kind: "tool_call".into(),
            content: serde_json::to_string(&t).unwrap_or_default(),
        });
    }
    // The method's own requests and searches (a tool's are in its call).
    for h in ctx.http_calls {
        run.trace.push(TraceStep {
            kind: "http".into(),
            content: serde_json::to_string(&h).unwrap_or_default(),
        });
    }
    for r in ctx.retrievals {
        run.trace.push(TraceStep {
            kind: "retrieval".into(),
            content: serde_json::to_string(&r).unwrap_or_default(),
        });
    }
    match outcome
        .into_result()
        .and_then(|a| within_answer_cap(a, &caps))
    {
        Ok(answer) => {
            run.answer = Some(answer.text.clone());
            run.contexts = answer.contexts.clone();
            run.trace.extend(answer.trace.iter().map(|s| TraceStep {
                kind: step_kind(s.kind).into(),
                content: tools::truncate(&s.content, caps.max_answer_bytes),
            }));
            let scorer = Scorer {
                host: &plan.host,
                metrics: plan
                    .metrics
                    .iter()
                    .zip(&plan.metric_names)
                    .map(|(configured, names)| Metric { configured, names })
                    .collect(),
                caps: &plan.caps,
            };
            dropped_log_bytes += scorer
                .score(seed, deadline, example, &answer, &mut run)
                .await;
        }
        Err(f) => run.error = Some(f.into()),
    }
    cap_trace_and_logs(&mut run, &caps, dropped_log_bytes);
    run.prompt_tokens = run.calls.iter().map(|c| u64::from(c.prompt_tokens)).sum();
    run.completion_tokens = run
        .calls
        .iter()
        .map(|c| u64::from(c.completion_tokens))
        .sum();
    run.latency_ms = started.elapsed().as_secs_f64() * 1e3;
    run.finished_at = store::now();
    run
}

/// An answer over `max_answer_bytes` (text and contexts) fails its example:
/// nothing huge is stored and no metric sees it.
fn within_answer_cap(answer: Answer, caps: &OutputCaps) -> Result<Answer, Failure> {
    let bytes = answer.text.len() + answer.contexts.iter().map(String::len).sum::<usize>();
    if bytes > caps.max_answer_bytes {
        return Err(Failure {
            kind: FailureKind::OutputTooLarge,
            message: format!(
                "the answer (text and contexts) is {bytes} bytes, over max_answer_bytes {}",
                caps.max_answer_bytes
            ),
        });
    }
    Ok(answer)
}

/// Keeps the first `max_trace_steps` steps and `max_log_bytes` of logs,
/// with one note each saying how much was dropped.
fn cap_trace_and_logs(run: &mut RunRecord, caps: &OutputCaps, mut dropped_log_bytes: usize) {
    if run.trace.len() > caps.max_trace_steps {
        let dropped = run.trace.len() - caps.max_trace_steps;
        run.trace.truncate(caps.max_trace_steps);
        run.trace.push(TraceStep {
            kind: "note".into(),
            content: format!(
                "forge: {dropped} trace steps dropped (max_trace_steps {})",
                caps.max_trace_steps
            ),
        });
    }
    let mut kept = 0;
    run.logs.retain(|line| {
        kept += line.len();
        let keep = kept <= caps.max_log_bytes;
        if !keep {
            dropped_log_bytes += line.len();
        }
        keep
    });
    if dropped_log_bytes > 0 {
        run.logs.push(format!(
            "forge: {dropped_log_bytes} log bytes dropped (max_log_bytes {})",
            caps.max_log_bytes
        ));
    }
}

impl From<Failure> for RunError {
    fn from(f: Failure) -> Self {
        RunError {
            kind: f.kind.as_str().into(),
            message: f.message,
        }
    }
}

/// The WIT kind of a stored trace step; None for host-recorded steps
/// (`tool_call`), which a method never returns.
pub(crate) fn step_kind_of(kind: &str) -> Option<StepKind> {
    Some(match kind {
        "thought" => StepKind::Thought,
        "action" => StepKind::Action,
        "observation" => StepKind::Observation,
        "answer" => StepKind::Answer,
        "note" => StepKind::Note,
        _ => return None,
    })
}

fn step_kind(k: StepKind) -> &'static str {
    match k {
        StepKind::Thought => "thought",
        StepKind::Action => "action",
        StepKind::Observation => "observation",
        StepKind::Answer => "answer",
        StepKind::Note => "note",
    }
}

/// How a `run` command went.
pub struct RunReport {
    pub experiment: Experiment,
    pub summary: Summary,
}

/// Creates (or resumes) the experiment for `plan` in `store` and runs the
/// examples that are not done yet.
pub async fn run(
    plan: Arc<Plan>,
    store: &Store,
    fresh: bool,
    progress: &mut dyn Progress,
) -> anyhow::Result<RunReport> {
    let existing = if fresh {
        None
    } else {
        store.resumable(&plan.plan_sha256)?
    };
    let mut experiment = match existing {
        Some(e) => e,
        None => {
            let e = new_experiment(&plan);
            store.put_experiment(&e)?;
            e
        }
    };
    if experiment.status == Status::Pending {
        experiment = store.set_status(&experiment.id, Status::Running, None)?;
    }
    let previous = store.run_scores(&experiment.id)?;
    let done: BTreeSet<u32> = previous.iter().map(|r| r.index).collect();
    let resumed_from = done.len();
    let todo: Vec<(u32, usize)> = plan
        .indices
        .iter()
        .enumerate()
        .map(|(i, &d)| (i as u32, d))
        .filter(|(i, _)| !done.contains(i))
        .collect();
    progress.start(&experiment, plan.indices.len(), resumed_from);
    let mut running: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for r in &previous {
        accumulate(&mut running, |n| r.score_value(n), &plan.score_names);
    }

    let wall = Instant::now();
    if let Err(e) = run_todo(&plan, store, &experiment, todo, &mut running, progress).await {
        // A host-side failure (store write, a panicking task): the experiment
        // is FAILED with the reason; every run committed so far stays.
        let _ = store.set_status(&experiment.id, Status::Failed, Some(format!("{e:#}")));
        return Err(e);
    }

    let runs = store.run_scores(&experiment.id)?;
    let mut summary = stats::summarise(
        &runs,
        &plan.score_names,
        plan.config.config.seed,
        plan.config.config.stats.bootstrap_iterations,
    );
    // Throughput is measured on this session's examples only: an interrupted
    // session's wall time is not known.
    let session: Vec<&RunScores> = runs.iter().filter(|r| !done.contains(&r.index)).collect();
    summary.set_throughput(
        wall.elapsed().as_secs_f64(),
        session.len(),
        session.iter().map(|r| r.completion_tokens).sum(),
    );
    store.put_summary(&experiment.id, &summary)?;
    let mut experiment = store.set_status(&experiment.id, Status::Completed, None)?;
    experiment.error = None;
    progress.finish(&experiment, &summary);
    Ok(RunReport {
        experiment,
        summary,
    })
}

/// Keeps `concurrency` examples in flight and commits each run the moment
/// it finishes, so a killed process loses only the examples still running.
async fn run_todo(
    plan: &Arc<Plan>,
    store: &Store,
    experiment: &Experiment,
    todo: Vec<(u32, usize)>,
    running: &mut BTreeMap<String, (f64, usize)>,
    progress: &mut dyn Progress,
) -> anyhow::Result<()> {
    let concurrency = plan.config.config.run.concurrency;
    let mut todo = todo.into_iter();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < concurrency {
            let Some((index, dataset_index)) = todo.next() else {
                break;
            };
            let plan = plan.clone();
            tasks.spawn(async move {
                let example = &plan.dataset.examples[dataset_index];
                run_example(&plan, index, example).await
            });
        }
        match tasks.join_next().await {
            Some(done) => commit(store, experiment, plan, done, running, progress)?,
            None => return Ok(()),
        }
    }
}

fn commit(
    store: &Store,
    experiment: &Experiment,
    plan: &Plan,
    joined: Result<RunRecord, tokio::task::JoinError>,
    running: &mut BTreeMap<String, (f64, usize)>,
    progress: &mut dyn Progress,
) -> anyhow::Result<()> {
    // A panic here is a host bug, not a plugin's: stop, keep what is stored.
    let run = joined.context("an example task panicked (host bug)")?;
    store.put_run(&experiment.id, &run)?;
    accumulate(running, |n| run.score_value(n), &plan.score_names);
    // In the config's order, like the summary.
    let means: Vec<(String, f64)> = plan
        .score_names
        .iter()
        .filter_map(|k| {
            running
                .get(k)
                .map(|(sum, n)| (k.clone(), sum / (*n).max(1) as f64))
        })
        .collect();
    progress.example(&run, &means);
    Ok(())
}

fn accumulate(
    running: &mut BTreeMap<String, (f64, usize)>,
    score_value: impl Fn(&str) -> Option<f64>,
    names: &[String],
) {
    for name in names {
        if let Some(v) = score_value(name) {
            let e = running.entry(name.clone()).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
    }
}

fn new_experiment(plan: &Plan) -> Experiment {
    let c = &plan.config.config;
    let created_at = store::now();
    let stamp: String = created_at
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let id = format!(
        "{}-{}-{}",
        c.name,
        &stamp[..8],
        &stamp[8..14.min(stamp.len())]
    );
    let id = format!("{id}-{}", &plan.plan_sha256[..4]);
    Experiment {
        id,
        name: c.name.clone(),
        status: Status::Pending,
        config_path: plan.config.path.display().to_string(),
        config_text: plan.config.text.clone(),
        config_sha256: plan.config_sha256.clone(),
        plan_sha256: plan.plan_sha256.clone(),
        created_at,
        started_at: None,
        finished_at: None,
        host_version: env!("CARGO_PKG_VERSION").into(),
        host_sha256: plan.host_sha256.clone(),
        wasmtime_version: crate::components::WASMTIME_VERSION.into(),
        model: plan.engine.info().clone(),
        plugins: plan.plugin_records(),
        dataset_path: plan.dataset.path.display().to_string(),
        dataset_sha256: plan.dataset.sha256.clone(),
        example_ids: plan
            .indices
            .iter()
            .map(|&i| plan.dataset.examples[i].id.clone())
            .collect(),
        score_names: plan.score_names.clone(),
        error: None,
        rescored_from: None,
        judged: None,
    }
}
