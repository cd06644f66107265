//! `forge-host view` under load, on loopback: the dashboard served by the
//! same code as the CLI (`forge_host::view::bind`), requests made by real
//! HTTP clients in other threads, latency of every request recorded.
//!
//! The store: 1,000 finished experiments of 20 runs (with summaries, as
//! `run` leaves them), one of 100,000 runs, and one whose single example
//! has a 10,000-step agent trace. Measured:
//! - the experiments page (`/`, 50 rows of 1,002) at 16 concurrent clients;
//! - the 100,000-run experiment's page and its first example page, one
//!   client (the first, cold request apart: it draws the charts);
//! - the first window (100 steps) of the 10,000-step trace.
//!
//!   cargo bench -p forge-host --bench view_load --profile dev
//!
//! A bounded script, not criterion: it runs a fixed number of requests and
//! prints p50/p99/max; nothing here is asserted.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use forge_host::results::records::TraceStep;
use forge_host::results::store::Store;

#[path = "fixtures/scale_store.rs"]
mod scale_store;

const SMALL_EXPERIMENTS: usize = 1_000;
const SMALL_RUNS: usize = 20;
const BIG: usize = 100_000;
const TRACE_STEPS: usize = 10_000;
const CLIENTS: usize = 16;
const LIST_REQUESTS_PER_CLIENT: usize = 25;
const SEQUENTIAL: usize = 100;

fn fill(path: &Path) {
    let t = Instant::now();
    let store = Store::open(path).unwrap();
    scale_store::put_experiment(&store, "big-a", BIG, false, true);
    for e in 0..SMALL_EXPERIMENTS {
        scale_store::put_experiment(&store, &format!("small-{e:04}"), SMALL_RUNS, false, true);
    }
    // One agent example with a 10,000-step trace: thought, tool call,
    // observation, over and over.
    store
        .put_experiment(&scale_store::experiment("trace-10k", 1))
        .unwrap();
    let mut run = scale_store::run(0, false);
    run.trace = (0..TRACE_STEPS)
        .map(|i| match i % 3 {
            0 => TraceStep {
                kind: "thought".into(),
                content: format!("Step {i}: I should look the next number up."),
            },
            1 => TraceStep {
                kind: "tool_call".into(),
                content: serde_json::json!({
                    "tool": "calculator", "input": format!("{i} * 3"),
                    "output": (i * 3).to_string(), "latency_ms": 0.4,
                })
                .to_string(),
            },
            _ => TraceStep {
                kind: "observation".into(),
                content: (i * 3).to_string(),
            },
        })
        .collect();
    store.put_runs("trace-10k", &[run]).unwrap();
    eprintln!(
        "store filled: {BIG} runs + {SMALL_EXPERIMENTS} × {SMALL_RUNS} + a {TRACE_STEPS}-step trace in {:.1} s, {:.0} MiB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(path).unwrap().len() as f64 / 1048576.0
    );
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// One GET, its body read in full; the time it took.
fn timed_get(agent: &ureq::Agent, url: &str) -> Duration {
    let t = Instant::now();
    let mut r = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let body = r.body_mut().read_to_string().unwrap();
    assert!(body.len() > 100, "{url}: {body}");
    t.elapsed()
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(what: &str, mut times: Vec<Duration>, wall: Duration) {
    times.sort();
    println!(
        "| {what} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
        times.len(),
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        times.last().unwrap().as_secs_f64() * 1000.0,
        times.len() as f64 / wall.as_secs_f64(),
    );
}

fn sequential(base: &str, path: &str, what: &str) {
    let agent = agent();
    let url = format!("{base}{path}");
    let cold = timed_get(&agent, &url);
    println!(
        "| {what}, first (cold) request | 1 | {:.1} | | | |",
        cold.as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let times: Vec<Duration> = (0..SEQUENTIAL).map(|_| timed_get(&agent, &url)).collect();
    report(what, times, t.elapsed());
}

fn main() {
    // `cargo bench` passes --bench; a filter or other flags are ignored.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forge.redb");
    fill(&path);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bound = rt
        .block_on(forge_host::view::bind(forge_host::view::ViewArgs {
            store: path.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
        }))
        .unwrap();
    let base = format!("http://{}", bound.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(bound.serve(async {
        let _ = stopped.await;
    }));

    println!("| request | n | p50 ms | p99 ms | max ms | requests/s |");
    println!("|---|---|---|---|---|---|");
    // The experiments page: 16 clients at once, each its own connection.
    let url = format!("{base}/");
    let cold = timed_get(&agent(), &url);
    println!(
        "| experiments page, first (cold) request: reads every record and summary | 1 | {:.1} | | | |",
        cold.as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = agent();
                (0..LIST_REQUESTS_PER_CLIENT)
                    .map(|_| timed_get(&agent, &url))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let times: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    report(
        &format!("experiments page (50 of 1,002), {CLIENTS} concurrent clients"),
        times,
        t.elapsed(),
    );
    let t = Instant::now();
    let one = agent();
    let times = (0..SEQUENTIAL).map(|_| timed_get(&one, &url)).collect();
    report("experiments page, 1 client", times, t.elapsed());

    sequential(&base, "/experiments/big-a", "100,000-run experiment page");
    sequential(
        &base,
        "/experiments/big-a/examples/0",
        "its first example page",
    );
    sequential(
        &base,
        "/experiments/trace-10k/examples/0",
        "10,000-step trace, first window (100 steps)",
    );
    sequential(
        &base,
        "/api/experiments/trace-10k/runs/0",
        "the same window as JSON (/api)",
    );

    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();
}
