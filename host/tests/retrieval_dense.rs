//! Dense, hybrid and stored retrieval with the real all-MiniLM-L6-v2
//! (scripts/fetch-models.sh), on small hand-made corpora, and the
//! `forge-host index` commands end to end.

mod common;

use std::path::{Path, PathBuf};

use common::{first_tool_call, forge, plugins, repo, run_ok, trace_of, write};
use forge_host::retrieval::chunk::{self, ChunkParams};
use forge_host::retrieval::embed::{self, BertEmbedder, TextEmbedder, dot};
use forge_host::retrieval::{
    BuildSpec, Fusion, HnswParams, Index, Params, SearchOptions, Source, Strategy, Tokenizer,
    corpus,
};

fn models() -> PathBuf {
    plugins();
    repo().join("models")
}

fn embedder() -> BertEmbedder {
    BertEmbedder::load(embed::DEFAULT_MODEL, &models()).unwrap()
}

const DOCS: &str = r#"{"id":"cat","title":"Cats","text":"The domestic cat is a small carnivorous mammal kept as a pet. Cats sleep for most of the day and hunt mice at night."}
{"id":"bridge","title":"Golden Gate Bridge","text":"The Golden Gate Bridge is a suspension bridge spanning the strait between San Francisco Bay and the Pacific Ocean. It opened in 1937."}
{"id":"bread","title":"Bread","text":"Bread is a staple food prepared from a dough of flour and water, usually by baking. Yeast makes the dough rise."}
{"id":"volcano","title":"Volcano","text":"A volcano is a rupture in the crust of a planet through which lava, volcanic ash and gases escape from a magma chamber below the surface."}
"#;

fn spec(path: &Path, strategy: Strategy, chunk: ChunkParams) -> BuildSpec {
    BuildSpec {
        name: "t".into(),
        source: Source::Corpus {
            path: path.into(),
            expected_sha256: None,
        },
        chunk,
        embedding: embed::DEFAULT_MODEL.into(),
        bm25: Params::default(),
        tokenizer: Tokenizer { stopwords: true },
        hnsw: HnswParams::default(),
        options: SearchOptions {
            strategy,
            ..SearchOptions::default()
        },
        embed_always: false,
        progress: false,
    }
}

#[test]
fn minilm_vectors_are_unit_length_and_rank_paraphrases_first() {
    let e = embedder();
    assert_eq!(e.dim(), 384);
    let texts: Vec<String> = [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "The stock market fell sharply today.",
        "How tall is the Eiffel Tower?",
        "The Eiffel Tower is 330 metres high.",
        "Penguins live in the southern hemisphere.",
    ]
    .map(String::from)
    .to_vec();
    let v = e.embed(&texts).unwrap();
    for x in &v {
        assert!((dot(x, x) - 1.0).abs() < 1e-4);
    }
    // The same vectors as sentence-transformers gives for the packaged
    // model (host/tests/golden/minilm.json, scripts/oracles/minilm_golden.py).
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("host/tests/golden/minilm.json")).unwrap(),
    )
    .unwrap();
    let golden = golden["vectors"].as_array().unwrap();
    assert_eq!(golden.len(), texts.len());
    for ((text, ours), g) in texts.iter().zip(&v).zip(golden) {
        assert_eq!(
            g["text"],
            text.as_str(),
            "rerun scripts/oracles/minilm_golden.py"
        );
        let want: Vec<f32> = serde_json::from_value(g["vector"].clone()).unwrap();
        let norm = dot(&want, &want).sqrt();
        let cosine = dot(ours, &want) / norm;
        assert!(
            cosine >= 0.9999,
            "{text:?}: cosine {cosine} with sentence-transformers"
        );
    }
    let sim = |a: usize, b: usize| dot(&v[a], &v[b]);
    eprintln!(
        "guitar/guitar {:.3} guitar/stocks {:.3} eiffel q/a {:.3} eiffel/penguins {:.3}",
        sim(0, 1),
        sim(0, 2),
        sim(3, 4),
        sim(3, 5)
    );
    assert!(sim(0, 1) > 0.6 && sim(0, 1) > sim(0, 2) + 0.4);
    assert!(sim(3, 4) > sim(3, 5) + 0.3);
    // Batching and padding do not change a text's vector.
    let alone = e.embed(&texts[2..3]).unwrap();
    assert!(dot(&alone[0], &v[2]) > 0.9999);
}

#[test]
fn real_tokenizer_chunks_are_exact_slices_of_at_most_n_word_pieces() {
    let e = embedder();
    let docs = corpus::load(&common::shared_data("squad.corpus.jsonl"), None)
        .unwrap()
        .documents;
    let docs = &docs[..40];
    let p = ChunkParams {
        tokens: 64,
        overlap: 8,
    };
    let chunks = chunk::chunk(docs, p, e.tokenizer()).unwrap();
    assert!(chunks.len() > docs.len());
    for c in &chunks {
        let d = docs.iter().find(|d| d.id == c.doc_id).unwrap();
        assert_eq!(&d.text[c.start..c.end], c.text);
        assert!(c.id.starts_with(&format!("{}#", d.id)));
        let n = e.tokenizer().encode(c.text.as_str(), false).unwrap().len();
        assert!(n <= 64 + 2, "{} has {n} word pieces", c.id);
    }
    // Consecutive chunks of a document overlap.
    let a = &chunks[0];
    let b = &chunks[1];
    assert_eq!(a.doc_id, b.doc_id);
    assert!(b.start < a.end, "{a:?} {b:?}");
}

#[tokio::test]
async fn dense_and_hybrid_find_the_document_bm25_misses_and_the_store_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let path = write(tmp.path(), "docs.jsonl", DOCS);
    let models = models();

    // No word in common with the right passage: BM25 finds nothing useful.
    let q = "Which furry hunter chases rodents after dark?";
    let bm25 = Index::load(
        &spec(&path, Strategy::Bm25, ChunkParams::WHOLE),
        &home,
        &models,
    )
    .unwrap();
    assert!(bm25.embedder.is_none() && bm25.key.is_none());
    let hits = bm25.search(q, 2).unwrap();
    assert!(hits.first().is_none_or(|h| h.chunk.id != "cat"), "{hits:?}");

    let chunking = ChunkParams {
        tokens: 16,
        overlap: 4,
    };
    let dense = Index::load(&spec(&path, Strategy::Dense, chunking), &home, &models).unwrap();
    assert!(dense.embedded > 4, "chunks embedded: {}", dense.embedded);
    let hits = dense.search(q, 3).unwrap();
    assert_eq!(hits[0].chunk.doc_id, "cat", "{hits:?}");
    assert!(hits[0].chunk.id.starts_with("cat#"));
    assert_eq!(hits[0].chunk.title.as_deref(), Some("Cats"));
    let first: Vec<(String, f64)> = hits.iter().map(|h| (h.chunk.id.clone(), h.score)).collect();

    // Hybrid, both fusions.
    for fusion in [Fusion::Rrf, Fusion::Weighted] {
        let o = SearchOptions {
            strategy: Strategy::Hybrid,
            fusion,
            ..SearchOptions::default()
        };
        let h = dense
            .search_with("When did the bridge in San Francisco open?", 3, &o, None)
            .await
            .unwrap();
        assert_eq!(h[0].chunk.doc_id, "bridge", "{fusion:?}: {h:?}");
    }
    let none = SearchOptions {
        strategy: Strategy::None,
        ..SearchOptions::default()
    };
    assert!(
        dense
            .search_with(q, 3, &none, None)
            .await
            .unwrap()
            .is_empty()
    );
    drop(dense);

    // Same corpus, chunking and model: reloaded, nothing embedded again.
    let again = Index::load(&spec(&path, Strategy::Hybrid, chunking), &home, &models).unwrap();
    assert_eq!(again.embedded, 0);
    let o = SearchOptions {
        strategy: Strategy::Dense,
        ..SearchOptions::default()
    };
    let same: Vec<(String, f64)> = again
        .search_with(q, 3, &o, None)
        .await
        .unwrap()
        .iter()
        .map(|h| (h.chunk.id.clone(), h.score))
        .collect();
    assert_eq!(same, first);
    // Other chunking: another key, embedded anew.
    let other = ChunkParams {
        tokens: 24,
        overlap: 0,
    };
    let third = Index::load(&spec(&path, Strategy::Dense, other), &home, &models).unwrap();
    assert!(third.embedded > 0);
    assert_ne!(third.key, again.key);
}

#[test]
fn an_unknown_hub_model_is_a_clear_error() {
    let e = BertEmbedder::load("nobody-xyz/no-such-model-forge", &models())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("\"nobody-xyz/no-such-model-forge\"")
            && e.contains("cannot fetch config.json from the Hugging Face hub"),
        "{e}"
    );
    let e = BertEmbedder::load("./no/such/dir", &models())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither the packaged alias"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = BertEmbedder::load(embed::DEFAULT_MODEL, empty.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("is not fetched") && e.contains("scripts/fetch-models.sh"),
        "{e}"
    );
}

#[test]
fn index_build_list_show_search_and_eval_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let docs = write(tmp.path(), "docs.jsonl", DOCS);
    let build = |name: &str| {
        let out = run_ok(
            forge(&home)
                .args(["--json", "index", "build", name, "--corpus"])
                .arg(&docs)
                .args(["--chunk-tokens", "32", "--chunk-overlap", "8"]),
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = build("small");
    assert_eq!(first["documents"], 4);
    assert!(first["embedded"].as_u64().unwrap() >= 4, "{first}");
    // Same corpus and chunking under another name: no embedding.
    let second = build("small-2");
    assert_eq!(second["embedded"], 0, "{second}");
    assert_eq!(second["key"], first["key"]);

    let out = run_ok(forge(&home).args(["index", "list"]));
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("small ") && list.contains("small-2"),
        "{list}"
    );
    let out = run_ok(forge(&home).args(["index", "show", "small"]));
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        show.contains("dims       384") && show.contains("32 tokens, overlap 8"),
        "{show}"
    );

    for strategy in ["dense", "bm25", "hybrid-weighted"] {
        let out = run_ok(forge(&home).args([
            "--json",
            "index",
            "search",
            "small",
            "how does yeast make dough rise",
            "--strategy",
            strategy,
            "-k",
            "2",
        ]));
        let first: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap())
                .unwrap();
        assert_eq!(first["doc_id"], "bread", "{strategy}: {first}");
    }

    let data = write(
        tmp.path(),
        "q.jsonl",
        "{\"id\":\"1\",\"question\":\"when did the golden gate bridge open\",\"answers\":[\"1937\"],\"meta\":{\"para_id\":\"bridge\"}}\n\
         {\"id\":\"2\",\"question\":\"what comes out of a volcano\",\"answers\":[\"lava\"],\"meta\":{\"para_id\":\"volcano\"}}\n",
    );
    let out = run_ok(
        forge(&home)
            .args(["--json", "index", "eval", "small", "--dataset"])
            .arg(&data),
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
    for r in rows.as_array().unwrap() {
        assert_eq!(r["scores"]["questions"], 2, "{r}");
        assert_eq!(r["scores"]["recall"][3], 1.0, "{r}");
    }

    let out = forge(&home)
        .args(["index", "search", "nope", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no stored index named \"nope\""), "{err}");
}

/// An experiment whose `[[indexes]]` asks for `strategy`, searched by the
/// real wikipedia_search tool component (offline mode) for the hostile
/// test method, with its home and corpus in `tmp`; returns the retrieval
/// record of example `e1` and the experiment's id.
fn run_in(tmp: &Path, strategy_lines: &str, question: &str) -> (serde_json::Value, String) {
    let home = tmp.join("home");
    let docs = write(tmp, "docs.jsonl", DOCS);
    let data = write(
        tmp,
        "q.jsonl",
        &format!("{{\"id\":\"e1\",\"question\":\"tool:{question}\",\"answers\":[\"x\"]}}\n"),
    );
    let cfg = write(
        tmp,
        "exp.toml",
        &common::hostile_config(
            &data,
            "params = { mode = \"question\" }",
            &format!(
                "[[tools]]\nplugin = \"wikipedia_search\"\nparams = {{ mode = \"offline\" }}\n\
                 [[indexes]]\nname = \"wiki\"\ncorpus = \"{}\"\nchunk_tokens = 24\nchunk_overlap = 4\n{strategy_lines}\n",
                docs.display()
            ),
        ),
    );
    let out = run_ok(forge(&home).args(["--json", "run"]).arg(&cfg));
    let ev = common::events(&out.stdout);
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let call = first_tool_call(&trace_of(&home, &id, "e1"));
    (call["retrievals"][0].clone(), id)
}

fn run_with_strategy(strategy_lines: &str, question: &str) -> serde_json::Value {
    run_in(
        tempfile::tempdir().unwrap().path(),
        strategy_lines,
        question,
    )
    .0
}

#[test]
fn an_experiment_searches_its_index_with_the_configured_strategy() {
    let r = run_with_strategy(
        "strategy = \"hybrid\"\nfusion = \"weighted\"",
        "furry hunter chasing rodents after dark",
    );
    assert_eq!(r["strategy"], "hybrid", "{r}");
    let top = r["hits"][0].as_str().unwrap();
    assert!(top.starts_with("cat#"), "{r}");
    let r = run_with_strategy("strategy = \"none\"", "furry hunter");
    assert_eq!(r["strategy"], "none", "{r}");
    assert_eq!(r["hits"].as_array().unwrap().len(), 0, "{r}");
}

/// The reranker scores with the experiment's model when a tool searches,
/// and its scores decide the order: the run's hits are the first stage's
/// candidates sorted by the model's log P(" yes") − log P(" no") after the
/// relevance prompt (asked here of the same model); for the second
/// question that order is not the fusion's.
#[test]
fn reranked_asks_the_real_model_whether_each_passage_answers() {
    use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};

    let Some(model) = common::default_model() else {
        return;
    };
    let mut backend = CandleBackend::load(&model, CandleOptions::default()).unwrap();
    let lines = "strategy = \"reranked\"\nrerank_candidates = 4";

    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = run_in(tmp.path(), lines, "When did the Golden Gate Bridge open?");
    assert_eq!(r["strategy"], "reranked", "{r}");
    assert!(r["error"].is_null(), "{r}");
    assert!(r["hits"][0].as_str().unwrap().starts_with("bridge#"), "{r}");
    let (_, by_model) = fused_and_model_order(tmp.path(), &r, &mut backend);
    assert_eq!(r["hits"], serde_json::json!(by_model), "{r}");

    // The packaged model prefers the volcano passage (−1.67 nats against
    // −2.64 for the bread one that fusion ranks first).
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = run_in(tmp.path(), lines, "What makes the dough rise?");
    assert!(r["error"].is_null(), "{r}");
    let (fused, by_model) = fused_and_model_order(tmp.path(), &r, &mut backend);
    assert_ne!(
        fused, by_model,
        "reranking must change this question's order"
    );
    assert_eq!(
        r["hits"],
        serde_json::json!(by_model),
        "the hits follow the model's scores"
    );
}

/// For the retrieval record `r` of a `run_in` experiment in `tmp`: the
/// first `k` ids of the fused candidates, and of the same candidates
/// sorted by `backend`'s yes/no log-probabilities (ties keep the fused
/// order).
fn fused_and_model_order(
    tmp: &Path,
    r: &serde_json::Value,
    backend: &mut dyn forge_host::engine::Backend,
) -> (Vec<String>, Vec<String>) {
    use forge_host::engine::Prompt;
    use forge_host::retrieval::rerank::relevance_prompt;

    // The same index, reloaded from the run's home.
    let mut spec = spec(
        &tmp.join("docs.jsonl"),
        Strategy::Reranked,
        ChunkParams {
            tokens: 24,
            overlap: 4,
        },
    );
    spec.name = "wiki".into();
    spec.options.candidates = 4;
    let index = Index::load(&spec, &tmp.join("home"), &models()).unwrap();
    let query = r["query"].as_str().unwrap();
    let k = r["k"].as_u64().unwrap() as usize;
    let fused = index.rank(query, k, &spec.options).unwrap();
    assert!(fused.len() > 1, "{fused:?}");
    let yes_no = [" yes".to_string(), " no".to_string()];
    let mut scored: Vec<(String, f64)> = fused
        .iter()
        .map(|&(i, _)| {
            let chunk = &index.chunks[i as usize];
            let prompt = Prompt::Raw(relevance_prompt(query, &chunk.indexed_text()));
            let lp = backend.score_continuations(&prompt, &yes_no).unwrap();
            (chunk.id.clone(), lp[0] - lp[1])
        })
        .collect();
    eprintln!("{query}: fused candidates and yes−no {scored:?}");
    let fused_ids = scored.iter().take(k).map(|(id, _)| id.clone()).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    (
        fused_ids,
        scored.iter().take(k).map(|(id, _)| id.clone()).collect(),
    )
}

/// The LLM reranker writes its yes/no log-probabilities to the call cache
/// and reads them back, so sweep cells that rerank the same candidates (the
/// `k` axis of an ablation) score each passage once.
#[tokio::test(flavor = "multi_thread")]
async fn llm_reranker_scores_go_through_the_call_cache() {
    use forge_host::engine::call_cache::{CallCache, ScoreKey, engine_version};
    use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
    use forge_host::engine::{EngineHandle, Prompt};
    use forge_host::retrieval::rerank::{LlmReranker, Reranker, relevance_prompt};

    let Some(model) = common::default_model() else {
        return;
    };
    let backend = CandleBackend::load(&model, CandleOptions::default()).unwrap();
    let engine = EngineHandle::spawn(Box::new(backend));
    let tmp = tempfile::tempdir().unwrap();
    let cache = CallCache::open(&tmp.path().join("calls.redb")).unwrap();
    let reranker = LlmReranker::new(engine.clone(), Some(cache.clone()));
    let q = "When did the Golden Gate Bridge open?";
    let passages = vec![
        "The Golden Gate Bridge opened in 1937.".to_string(),
        "Cats hunt mice at night.".to_string(),
    ];
    let first = reranker.score(q, &passages).await.unwrap();

    let version = engine_version(engine.info());
    let key = |p: &str| {
        ScoreKey {
            model_sha256: &engine.info().sha256,
            engine_version: &version,
            prompt: &Prompt::Raw(relevance_prompt(q, p)),
            continuations: &[" yes".to_string(), " no".to_string()],
        }
        .digest()
    };
    let stored = cache.get_scores(&key(&passages[0])).unwrap().unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0] - stored[1], first[0]);

    // A planted entry is what the reranker returns next time: it reads the
    // cache instead of asking the model.
    cache.put_scores(&key(&passages[1]), &[5.0, -5.0]).unwrap();
    let again = reranker.score(q, &passages).await.unwrap();
    assert_eq!(again, vec![first[0], 10.0]);
}
