//! `forge-host view` end to end: a store made by real runs of the default
//! model (a naive run, a ReAct agent with its tool, a three-method sweep,
//! and a replayed hostile answer), the real server binary on a free
//! loopback port, every API endpoint with its 400s and 404s, the token
//! rule, the static export, and headless Chromium (Debian's chromium +
//! chromedriver, which scripts/test.sh installs) walking list → experiment
//! → example trace → sweep → compare, watching a live run, and proving the
//! hostile answer never executes. The browser part saves screenshots
//! (target/tmp/view-screenshots, and `FORGE_SCREENSHOTS` when set: the
//! README's come from there).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::{forge, repo, run_ok, shared_data, write};
use serde_json::{Value, json};

/// The names the fixture's experiments have (from the repo's configs).
const NAIVE: &str = "nq-naive";
const REACT: &str = "nq-react-wikipedia";
const SWEEP: &str = "nq-methods";
const HOSTILE: &str = "view-hostile";
/// What the replayed answer is: markup that would run if it were not
/// escaped (a script element and an onerror handler).
const PAYLOAD: &str =
    r#"<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">pwned"#;

/// One store for every test in this file, built once.
struct Fixture {
    home: PathBuf,
    naive: String,
    react: String,
    hostile: String,
    group: String,
    cells: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let home = dir.join("home");
        let configs = repo().join("configs");
        run_ok(forge(&home).args(["run", "--limit", "4"]).arg(configs.join("nq_naive.toml")));
        run_ok(
            forge(&home)
                .args(["run", "--limit", "2"])
                .arg(configs.join("nq_react_wikipedia.toml")),
        );
        run_ok(
            forge(&home)
                .args(["run", "--limit", "3"])
                .arg(configs.join("nq_methods_sweep.toml")),
        );
        let rows = [
            json!({"id": "h1", "question": "what does <b>bold</b> & <i>this</i> do?", "answers": ["nothing"], "meta": {"answer": PAYLOAD}}),
            json!({"id": "h2", "question": "plain question", "answers": ["plain"], "meta": {"answer": "plain"}}),
        ];
        let data = write(
            &dir,
            "hostile.jsonl",
            &rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
        );
        let cfg = write(
            &dir,
            "hostile.toml",
            &common::replay_config(HOSTILE, &data, "[[metrics]]\nplugin = \"exact_match\"\n"),
        );
        run_ok(forge(&home).arg("run").arg(&cfg));
        let list = api_json(&home, &["list", "--json"]);
        let id_of = |name: &str| -> Vec<String> {
            list["experiments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["experiment"])
                .filter(|e| e["name"] == name)
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect()
        };
        let group = list["groups"]
            .as_array()
            .and_then(|g| g.first())
            .and_then(|g| g["id"].as_str())
            .map(String::from)
            .unwrap_or_else(|| panic!("no group in `list --json`: {list}"));
        Fixture {
            naive: id_of(NAIVE).remove(0),
            react: id_of(REACT).remove(0),
            hostile: id_of(HOSTILE).remove(0),
            cells: id_of(SWEEP),
            group,
            home,
        }
    })
}

fn api_json(home: &Path, args: &[&str]) -> Value {
    let out = run_ok(forge(home).args(args));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `forge-host view` on a free port; killed on drop.
struct View {
    child: Child,
    url: String,
}

impl View {
    fn start(home: &Path, extra: &[&str]) -> View {
        Self::try_start(home, extra).unwrap_or_else(|e| panic!("view did not start: {e}"))
    }

    fn try_start(home: &Path, extra: &[&str]) -> Result<View, String> {
        let mut child = forge(home)
            .args(["view", "--port", "0"])
            .args(extra)
            .env_remove("FORGE_VIEW_TOKEN")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("view on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap().to_string());
                }
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Ok(View { child, url }),
            Err(_) => {
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(stderr.lock().unwrap().clone())
            }
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// GET `path`: (status, content type, body).
fn get(base: &str, path: &str) -> (u16, String, String) {
    get_with(base, path, None)
}

fn get_with(base: &str, path: &str, bearer: Option<&str>) -> (u16, String, String) {
    let mut req = agent().get(format!("{base}{path}"));
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    common::response_parts(req.call().unwrap())
}

fn get_json(base: &str, path: &str) -> (u16, Value) {
    let (status, ct, body) = get(base, path);
    assert!(ct.starts_with("application/json"), "{path}: {ct}: {body}");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

#[test]
fn api_serves_every_endpoint_and_refuses_bad_requests_by_name() {
    let f = fixture();
    let view = View::start(&f.home, &[]);
    let u = &view.url;

    // Experiments: filters, sort, window.
    let (s, all) = get_json(u, "/api/experiments?limit=500");
    assert_eq!(s, 200);
    assert_eq!(all["total"], 6, "{all}");
    let (_, react) = get_json(u, "/api/experiments?method=react");
    assert_eq!(react["total"], 1);
    assert_eq!(react["rows"][0]["id"], f.react.as_str());
    assert_eq!(react["rows"][0]["done"], 2);
    assert_eq!(react["rows"][0]["scores"].as_array().unwrap().len(), 3);
    let (_, grouped) = get_json(u, &format!("/api/experiments?group={}", f.group));
    assert_eq!(grouped["total"], 3);
    // Cells share the sweep's name; their labels tell them apart.
    let mut cells: Vec<&str> = grouped["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cell"].as_str().unwrap())
        .collect();
    cells.sort();
    assert_eq!(cells, ["cot", "cot_fewshot", "naive"]);
    assert_eq!(react["rows"][0]["cell"], Value::Null);
    let (_, searched) = get_json(u, "/api/experiments?q=HOSTILE");
    assert_eq!(searched["total"], 1, "search is case-insensitive");
    let (_, page) = get_json(u, "/api/experiments?sort=n&order=asc&limit=2&offset=1");
    let ns: Vec<u64> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert_eq!(page["total"], 6);
    assert_eq!(ns.len(), 2);
    assert!(ns[0] <= ns[1], "sorted by n ascending: {ns:?}");
    assert_eq!(
        page["facets"]["methods"],
        json!(["cot", "cot_fewshot", "naive", "react", "replay"])
    );

    // One experiment, its runs, one run.
    let (s, e) = get_json(u, &format!("/api/experiments/{}", f.react));
    assert_eq!(s, 200);
    assert_eq!(e["method"], "react");
    assert_eq!(e["done"], 2);
    assert_eq!(e["live"], false);
    assert!(e["summary"]["agent"].is_object(), "{e}");
    let (_, runs) = get_json(
        u,
        &format!("/api/experiments/{}/runs?offset=1&limit=5", f.naive),
    );
    assert_eq!(runs["total"], 4);
    let idx: Vec<u64> = runs["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [1, 2, 3]);
    // The score the examples are coloured by: the first, or the one asked.
    assert_eq!(runs["headline"], "exact_match");
    let (_, by_f1) = get_json(u, &format!("/api/experiments/{}/runs?headline=f1", f.naive));
    assert_eq!(by_f1["headline"], "f1");
    let f1_of_0 = by_f1["rows"][0]["scores"]["f1"].as_f64().unwrap();
    assert_eq!(
        by_f1["rows"][0]["headline"].as_f64().unwrap(),
        f1_of_0.clamp(0.0, 1.0)
    );
    let (_, run) = get_json(u, &format!("/api/experiments/{}/runs/0", f.react));
    let steps = run["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert_eq!(run["trace_len"], steps.len());
    let tool = steps
        .iter()
        .find(|s| s["kind"] == "tool_call")
        .expect("the agent called its tool");
    assert_eq!(tool["tool"]["tool"], "wikipedia_search");
    assert_eq!(run["tools"][0]["tool"], "wikipedia_search");
    let (_, window) = get_json(
        u,
        &format!("/api/experiments/{}/runs/0?from=1&limit=2", f.react),
    );
    assert_eq!(window["trace_from"], 1);
    assert_eq!(
        window["steps"].as_array().unwrap().len(),
        2.min(steps.len() - 1)
    );

    // Compare: the same numbers as `forge-host compare --json`.
    let ids = f.cells.join(",");
    let (s, c) = get_json(u, &format!("/api/compare?ids={ids}"));
    assert_eq!(s, 200, "{c}");
    let cli = api_json(
        &f.home,
        &["compare", "--json", &f.cells[0], &f.cells[1], &f.cells[2]],
    );
    assert_eq!(c["comparisons"], cli, "view and `compare` disagree");

    // Groups.
    let (_, groups) = get_json(u, "/api/groups");
    assert_eq!(groups[0]["id"], f.group.as_str());
    assert_eq!(groups[0]["cells"], 3);
    let (_, g) = get_json(u, &format!("/api/groups/{}", f.group));
    assert_eq!(g["cells"].as_array().unwrap().len(), 3);
    assert_eq!(g["cells"][0]["labels"], json!(["naive"]));

    // Bad values: 400 naming the parameter.
    for (path, param) in [
        ("/api/experiments?status=done", "status"),
        ("/api/experiments?limit=0", "limit"),
        ("/api/experiments?limit=501", "limit"),
        ("/api/experiments?offset=-1", "offset"),
        ("/api/experiments?sort=colour", "sort"),
        ("/api/experiments?order=up", "order"),
        ("/api/experiments?group=nosuchgroup", "group"),
        ("/api/experiments?colour=red", "query"),
        ("/api/compare", "ids"),
        ("/api/events?colour=red", "query"),
    ] {
        let (s, body) = get_json(u, path);
        assert_eq!(s, 400, "{path}: {body}");
        assert_eq!(body["parameter"], param, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(param) || param == "query",
            "{body}"
        );
    }
    let (s, body) = get_json(u, &format!("/api/experiments/{}/runs/x", f.react));
    assert_eq!((s, body["parameter"].as_str()), (400, Some("index")));
    let (s, body) = get_json(u, &format!("/api/compare?ids={},{}", f.naive, f.react));
    assert_eq!(s, 400, "different seeds do not pair: {body}");
    assert!(body["error"].as_str().unwrap().contains("seed"), "{body}");
    let (s, body) = get_json(
        u,
        &format!("/api/experiments/{}/runs?headline=bleu", f.naive),
    );
    assert_eq!((s, body["parameter"].as_str()), (400, Some("headline")));
    let (s, body) = get_json(u, &format!("/api/compare?ids={ids}&headline=bleu"));
    assert_eq!((s, body["parameter"].as_str()), (400, Some("headline")));

    // Unknown ids: 404 with a JSON error.
    for path in [
        "/api/experiments/nope".to_string(),
        format!("/api/experiments/{}/runs/99", f.react),
        "/api/groups/nope".into(),
        "/api/nope".into(),
        format!("/api/compare?ids={},nope", f.naive),
        "/api/events?experiment=nope".into(),
    ] {
        let (s, body) = get_json(u, &path);
        assert_eq!(s, 404, "{path}: {body}");
        assert!(body["error"].is_string());
    }

    // Pages answer HTML; an unknown page is a 404 page, a bad value a 400.
    let (s, ct, html) = get(u, "/");
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/html"));
    assert!(html.contains(&f.react));
    assert_eq!(get(u, "/experiments/nope").0, 404);
    assert_eq!(get(u, "/nope").0, 404);
    assert_eq!(get(u, "/?sort=colour").0, 400);
    assert_eq!(
        get(u, &format!("/experiments/{}/examples/7", f.react)).0,
        404
    );
    let (s, ct, js) = get(u, "/assets/forge.js");
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/javascript"));
    assert!(js.contains("EventSource"));

    // The event stream: its first event is the state now.
    let mut r = agent()
        .get(format!("{u}/api/events?experiment={}", f.naive))
        .call()
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut first = String::new();
    let mut reader = BufReader::new(r.body_mut().as_reader());
    while !first.contains("\n\n") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0);
        first.push_str(&line);
    }
    assert!(first.starts_with("event: progress\n"), "{first}");
    let data: Value = serde_json::from_str(
        first
            .lines()
            .nth(1)
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        data,
        json!([{"id": f.naive, "status": "COMPLETED", "done": 4, "n": 4}])
    );
}

#[test]
fn off_loopback_the_view_needs_its_token_on_every_request() {
    let f = fixture();
    let refused = View::try_start(&f.home, &["--host", "0.0.0.0"])
        .err()
        .expect("no token: refused");
    assert!(refused.contains("--token"), "{refused}");

    let token = "s3cret-token";
    let view = View::start(&f.home, &["--host", "0.0.0.0", "--token", token]);
    let base = view.url.replace("0.0.0.0", "127.0.0.1");
    for path in ["/", "/api/experiments", "/assets/forge.css", "/api/events"] {
        assert_eq!(get(&base, path).0, 401, "{path} without the token");
        assert_eq!(
            get_with(&base, path, Some("wrong")).0,
            401,
            "{path} with a wrong token"
        );
    }
    assert_eq!(get_with(&base, "/api/experiments", Some(token)).0, 200);
    // ?token= works once and leaves a cookie for the page's own requests.
    let mut r = agent()
        .get(format!("{base}/?token={token}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let _ = r.body_mut().read_to_string();
    let pair = cookie.split(';').next().unwrap();
    let mut r = agent()
        .get(format!("{base}/api/groups"))
        .header("cookie", pair)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let _ = r.body_mut().read_to_string();
}

/// Every relative `href`/`src` of an exported page, resolved in `dir`.
fn local_links(dir: &Path, html: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            let link = part.split('"').next().unwrap().replace("&#x2f;", "/");
            let link = link.split('#').next().unwrap().to_string();
            if link.is_empty() || link.contains(':') {
                continue;
            }
            out.push(dir.join(link));
        }
    }
    out
}

#[test]
fn export_writes_pages_that_link_to_each_other_without_a_server() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("site");
    let res = api_json(
        &f.home,
        &[
            "view",
            "export",
            &f.group,
            &f.react,
            &f.hostile,
            "--json",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    // index, 5 experiments with 3 + 3 + 3 + 2 + 2 examples, the group and
    // the comparison of its cells (react and the hostile replay do not pair).
    assert_eq!(res["pages"], 1 + 5 + 13 + 1 + 1, "{res}");
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!index.contains("/api/"), "an export has no live parts");
    assert!(!index.contains("data-live"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "html") {
            let html = std::fs::read_to_string(&p).unwrap();
            assert!(
                !html.contains("<script>window.__xss"),
                "{} carries the payload unescaped",
                p.display()
            );
            for link in local_links(&dir, &html) {
                // Links to what the export left out (the naive run, not
                // chosen) are the only ones allowed to dangle.
                if link.to_string_lossy().contains(&f.naive) {
                    continue;
                }
                assert!(
                    link.exists(),
                    "{} links to missing {}",
                    p.display(),
                    link.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} links checked");
    let bad = run_ok_or_err(
        forge(&f.home)
            .args(["view", "export", "nosuch", "--out"])
            .arg(out.path().join("x")),
    );
    assert!(bad.contains("nothing stored matches \"nosuch\""), "{bad}");
}

fn run_ok_or_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A training run and an optimization run, each on its own page through
/// the report's chart code, linked from the list, and exported.
#[test]
fn training_and_optimization_runs_have_their_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let train_cfg = write(
        tmp.path(),
        "train.toml",
        &common::train::tiny_toml(0.1, 2, "", ""),
    );
    let out = run_ok(&mut common::train::forge_train(&home, &train_cfg));
    let train_id = common::train::event(&common::events(&out.stdout), "done")
        .and_then(|e| e["run"].as_str().map(String::from))
        .expect("the training run's id");
    let opt_cfg = common::optimize::scripted_config(tmp.path(), "max_iterations = 1");
    let out = run_ok(forge(&home).args(["--json", "optimize"]).arg(&opt_cfg));
    let opt_id = common::events(&out.stdout)
        .iter()
        .find(|e| e["event"] == "optimization")
        .and_then(|e| e["run"]["id"].as_str().map(String::from))
        .expect("the optimization's id");

    let view = View::start(&home, &[]);
    let u = &view.url;
    // minijinja escapes '/' in attributes as &#x2f;.
    let (_, _, list) = get(u, "/");
    let list = list.replace("&#x2f;", "/");
    assert!(list.contains(&format!("/training/{train_id}")), "{list}");
    assert!(list.contains(&format!("/optimizations/{opt_id}")), "{list}");

    let (s, _, page) = get(u, &format!("/training/{train_id}"));
    assert_eq!(s, 200, "{page}");
    assert!(page.contains(&format!("Training run {train_id}")));
    // The loss and reward curves, each an SVG with a text alternative.
    let charts = page.matches("<figure class=\"chart\"").count();
    assert!(charts >= 2, "{charts} charts on the training page");
    assert!(page.contains("aria-label="));
    assert!(page.contains("max_steps = 2"), "the config text is shown");

    let (s, _, page) = get(u, &format!("/optimizations/{opt_id}"));
    assert_eq!(s, 200, "{page}");
    assert!(page.contains(&format!("Optimization run {opt_id}")));
    assert_eq!(
        page.matches("<figure class=\"chart\"").count(),
        1,
        "score vs iteration"
    );
    // The accepted prompt, escaped like everything a model produced.
    assert!(
        page.contains("The secret word is zorblax. {question}"),
        "{page}"
    );

    assert_eq!(get(u, "/training/nope").0, 404);
    assert_eq!(get(u, "/optimizations/nope").0, 404);

    let site = tmp.path().join("site");
    run_ok(
        forge(&home)
            .args(["view", "export", &train_id, &opt_id, "--out"])
            .arg(&site),
    );
    for page in [
        format!("training-{train_id}.html"),
        format!("optimization-{opt_id}.html"),
    ] {
        let html =
            std::fs::read_to_string(site.join(&page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(html.contains("<svg"), "{page} has its chart");
    }
}

// ---------------------------------------------------------------- browser

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group: the browser it
        // started goes with it, even when the test panicked mid-session.
        // `--` matters: procps-ng's kill reads `-KILL -1234` as
        // kill(-1, SIGKILL), every process the user may signal.
        let pid = self.child.id();
        if pid > 1 {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{pid}"))
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, url }
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    let profile = tempfile::tempdir().unwrap().keep();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            // As the machine's probe starts it: headless, no sandbox (root),
            // no background connections (the network is closed).
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,1200",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

fn screenshots() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("view-screenshots")];
    if let Some(d) = std::env::var_os("FORGE_SCREENSHOTS") {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

async fn shoot(c: &fantoccini::Client, name: &str, height: u32) {
    c.set_window_size(1280, height).await.unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    for d in screenshots() {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{name}.png")), &png).unwrap();
    }
}

async fn text(c: &fantoccini::Client, css: &str) -> String {
    // A live page swaps its <main> between finding an element and reading
    // it: read again from the new one.
    for _ in 0..20 {
        let el = c
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        match el.text().await {
            Ok(t) => return t,
            Err(e) if e.is_stale_element_reference() => continue,
            Err(e) => panic!("{css}: {e}"),
        }
    }
    panic!("{css} went stale 20 times in a row")
}

async fn count(c: &fantoccini::Client, css: &str) -> usize {
    c.find_all(fantoccini::Locator::Css(css))
        .await
        .unwrap()
        .len()
}

async fn js(c: &fantoccini::Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

async fn click_link(c: &fantoccini::Client, text: &str) {
    c.find(fantoccini::Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn click(c: &fantoccini::Client, css: &str) {
    c.find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_walks_the_dashboard_watches_a_live_run_and_never_runs_a_hostile_answer() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        common::skip::skip(
            "Debian's chromium and chromium-driver are not installed (scripts/test.sh installs them)",
        );
        return;
    }
    let f = tokio::task::spawn_blocking(fixture).await.unwrap();
    let view = View::start(&f.home, &[]);
    let u = view.url.clone();
    let driver = start_driver();
    let c = browser(&driver).await;

    // The list: every experiment, filters, sort by a column.
    c.goto(&format!("{u}/")).await.unwrap();
    assert_eq!(count(&c, "#experiments tbody tr").await, 6);
    assert!(text(&c, "h1").await.starts_with("Experiments"));
    c.goto(&format!("{u}/?method=react")).await.unwrap();
    assert_eq!(count(&c, "#experiments tbody tr").await, 1);
    c.goto(&format!("{u}/")).await.unwrap();
    click_link(&c, "examples").await;
    assert!(c.current_url().await.unwrap().as_str().contains("sort=n"));
    let first = text(&c, "#experiments tbody tr:first-child td.num").await;
    assert_eq!(first, "4/4", "most examples first (the naive run's 4)");

    // Experiment: scores, the per-example table, charts with text alternatives.
    c.goto(&format!("{u}/")).await.unwrap();
    click_link(&c, REACT).await;
    assert!(text(&c, "h1").await.contains(REACT));
    assert_eq!(count(&c, "#scores tbody tr").await, 3);
    assert_eq!(count(&c, "#runs tbody tr").await, 2);
    assert!(text(&c, ".cards").await.contains("tool calls/example"));
    assert_eq!(
        text(&c, "#tool-summary tbody td:first-child").await,
        "wikipedia_search",
        "the agent card's per-tool table"
    );
    assert!(count(&c, "figure.chart svg").await >= 2);
    let unlabelled = js(&c, "return [...document.querySelectorAll('figure.chart .svg')].filter(e => !e.getAttribute('aria-label')).length").await;
    assert_eq!(unlabelled, 0);
    shoot(&c, "experiment", 1250).await;
    // Colour the examples by another score: the table and the grid follow.
    click_link(&c, "f1").await;
    assert!(text(&c, "#examples").await.contains("coloured by f1"));
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("headline=f1")
    );
    c.back().await.unwrap();

    // Example: the agent's trace, its tool call read, the model calls.
    click(&c, "#runs tbody tr:first-child td a").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/examples/0")
    );
    let api_run: Value =
        serde_json::from_str(&get(&u, &format!("/api/experiments/{}/runs/0", f.react)).2).unwrap();
    assert_eq!(
        text(&c, "#question").await,
        api_run["run"]["question"].as_str().unwrap()
    );
    assert!(count(&c, "ol.trace li.step").await >= 3);
    assert!(
        text(&c, "li.k-tool_call code.call")
            .await
            .starts_with("wikipedia_search[")
    );
    assert!(count(&c, "details.call").await >= 1);
    assert_eq!(
        text(&c, "#tools tbody td:first-child").await,
        "wikipedia_search"
    );
    // From the top: question, answer, scores, tools, the trace's start.
    shoot(&c, "example-trace", 1500).await;
    // A deep link to a step lands on it.
    c.goto(&format!("{u}/experiments/{}/examples/0#step-2", f.react))
        .await
        .unwrap();
    assert_eq!(
        js(&c, "return document.querySelector(':target').id").await,
        "step-2"
    );

    // The sweep: the heat map's cells open their experiments; compare all.
    c.goto(&format!("{u}/groups/{}", f.group)).await.unwrap();
    assert_eq!(count(&c, "#heat tbody td").await, 3);
    assert_eq!(count(&c, "#cells tbody tr").await, 3);
    click(&c, "#heat tbody td:nth-of-type(2) a").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/experiments/{}", f.cells[1])
    );
    c.back().await.unwrap();
    click_link(&c, "Compare every cell against the first").await;
    assert_eq!(count(&c, "table.verdicts").await, 2);
    assert_eq!(text(&c, "ol.legs li:first-child .cell").await, "naive");
    assert!(text(&c, "table.verdicts").await.contains("mcnemar-exact"));
    // f1 differs somewhere between the three methods on these questions.
    c.goto(&format!(
        "{u}/compare?ids={}&headline=f1",
        f.cells.join(",")
    ))
    .await
    .unwrap();
    let rows = count(&c, "#differing-table tbody tr").await;
    let regressions = count(&c, "#differing-table tbody tr[data-regression=true]").await;
    click(&c, "#regressions-only").await;
    let visible = js(&c, "return [...document.querySelectorAll('#differing-table tbody tr')].filter(r => !r.hidden).length").await;
    assert_eq!(visible, regressions, "of {rows} differing examples");
    click(&c, "#regressions-only").await;
    shoot(&c, "compare", 1400).await;

    // The hostile answer is shown as text and never runs, on every page
    // that carries it.
    for path in [
        format!("/experiments/{}/examples/0", f.hostile),
        format!("/experiments/{}", f.hostile),
        "/".to_string(),
    ] {
        c.goto(&format!("{u}{path}")).await.unwrap();
        let state = js(&c, "return [typeof window.__xss, document.querySelectorAll('main script, main img').length]").await;
        assert_eq!(state, json!(["undefined", 0]), "{path}");
    }
    c.goto(&format!("{u}/experiments/{}/examples/0", f.hostile))
        .await
        .unwrap();
    assert!(
        text(&c, "#answer")
            .await
            .contains("<script>window.__xss = 1</script>")
    );
    assert!(text(&c, "#question").await.contains("<b>bold</b>"));

    // The static export opens from file:// and its links work.
    let site = tempfile::tempdir().unwrap();
    run_ok(
        forge(&f.home)
            .args(["view", "export", &f.react, &f.naive, "--out"])
            .arg(site.path()),
    );
    c.goto(&format!("file://{}/index.html", site.path().display()))
        .await
        .unwrap();
    assert_eq!(count(&c, "#experiments tbody tr").await, 2);
    click_link(&c, REACT).await;
    assert!(text(&c, "h1").await.contains(REACT));
    click(&c, "#runs tbody tr:first-child td a").await;
    assert!(count(&c, "ol.trace li.step").await >= 3);

    // Live: a run that starts after the page opened fills it in, without
    // a reload (a marker set on the window survives).
    let live_home = tempfile::tempdir().unwrap();
    let dataset = shared_data("nq_open.dev200.jsonl");
    let cfg = write(
        live_home.path(),
        "live.toml",
        &common::naive_config(&dataset, 30, ""),
    );
    run_ok(
        forge(live_home.path())
            .args(["run", "--limit", "1"])
            .arg(&cfg),
    );
    let live_view = View::start(live_home.path(), &[]);
    let lu = live_view.url.clone();
    let mut run = forge(live_home.path())
        .args(["run", "--new"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the experiment to appear, then open its page.
    let deadline = Instant::now() + Duration::from_secs(120);
    let id = loop {
        let (_, l) = get_json(&lu, "/api/experiments?status=running");
        if let Some(id) = l["rows"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the live run never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    c.goto(&format!("{lu}/experiments/{id}")).await.unwrap();
    js(&c, "window.__marker = 42; return 0").await;
    // `list` reads beside the running writer too.
    let listed = api_json(live_home.path(), &["list", "--json"]);
    assert!(
        listed["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["experiment"]["id"] == id.as_str()),
        "{listed}"
    );
    let seen_first: u64 = text(&c, "#done").await.parse().unwrap();
    let mut seen = vec![seen_first];
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done: u64 = text(&c, "#done").await.parse().unwrap_or(0);
        if seen.last() != Some(&done) {
            seen.push(done);
        }
        let status = text(&c, "h1 .status").await;
        if status == "COMPLETED" && done == 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed the run finish: saw {seen:?}, status {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(run.wait().unwrap().success());
    assert!(
        seen_first < 30,
        "the page opened after the run had finished: {seen:?}"
    );
    assert!(
        seen.len() >= 2,
        "the count never moved on the page: {seen:?}"
    );
    assert_eq!(
        js(&c, "return window.__marker").await,
        42,
        "the page reloaded"
    );
    assert_eq!(count(&c, "#runs tbody tr").await, 30);
    assert_eq!(text(&c, "#livebadge").await, "finished");

    c.close().await.unwrap();
}
