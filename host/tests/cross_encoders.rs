//! Cross-encoders (`retrieval::cross_encoder`) on small randomly
//! initialised checkpoints the test writes (no hub access here; see
//! common/cross_encoder.rs): loading, pair tokenisation, label mapping, the
//! classifier head against a hand computation, batching, determinism and
//! error messages; then `reranked` with a cross-encoder through
//! `forge-host index search` and a real experiment, and the `faithfulness`
//! component's `nli` mode through a real `forge-host run` (contract 0.1.3).
//! Logits are checked against Hugging Face transformers' for the same
//! checkpoints (host/tests/golden/cross_encoders.json).

mod common;
use common::cross_encoder::{
    Golden, SEED, write_checkpoint, write_checkpoint_seeded, write_deberta_checkpoint,
};
use common::*;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert;
use forge_host::retrieval::cross_encoder::{Architecture, PairClassifier};

const NLI_LABELS: [&str; 3] = ["contradiction", "entailment", "neutral"];

fn load(dir: &Path) -> PairClassifier {
    PairClassifier::load(dir.to_str().unwrap()).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_bert_checkpoint_loads_with_its_labels_and_tokenises_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_checkpoint(&tmp.path().join("nli"), false, &NLI_LABELS, None);
    let ce = load(&dir);
    assert_eq!(ce.architecture(), Architecture::Bert);
    assert_eq!(ce.labels(), NLI_LABELS);
    assert_eq!(ce.label_id("ENTAILMENT"), Some(1));
    assert_eq!(ce.label_id("yes"), None);

    // [CLS] query [SEP] passage [SEP], token types 0 then 1.
    let enc = ce
        .encode(&pairs(&[("who won", "the broncos won the game")]))
        .unwrap()
        .remove(0);
    let (cls, sep) = (101, 102);
    assert_eq!(enc.ids[0], cls);
    let seps: Vec<usize> = (0..enc.ids.len()).filter(|&i| enc.ids[i] == sep).collect();
    assert_eq!(seps, [3, enc.ids.len() - 1], "{enc:?}");
    assert!(enc.type_ids[..=3].iter().all(|&t| t == 0), "{enc:?}");
    assert!(enc.type_ids[4..].iter().all(|&t| t == 1), "{enc:?}");
    assert!(enc.mask.iter().all(|&m| m == 1));

    // A pair past 512 word pieces is cut longest first: the passage.
    let long = "word ".repeat(2000);
    let enc = ce
        .encode(&pairs(&[("who won the game", &long)]))
        .unwrap()
        .remove(0);
    assert_eq!(enc.ids.len(), 512);
    assert_eq!(
        enc.ids[5],
        sep,
        "the query is kept whole: {:?}",
        &enc.ids[..8]
    );
    assert_eq!(*enc.ids.last().unwrap(), sep);
}

/// Without tokenizer.json (the ms-marco cross-encoders were published with
/// only vocab.txt) a BERT checkpoint is tokenised from its WordPiece
/// vocabulary exactly as from the tokenizer.json it was made from; a
/// RoBERTa one is a clear error.
#[test]
fn a_bert_vocab_txt_tokenises_like_its_tokenizer_json() {
    let tmp = tempfile::tempdir().unwrap();
    let json_dir = write_checkpoint(&tmp.path().join("json"), false, &["LABEL_0"], None);
    let vocab_dir = write_checkpoint(&tmp.path().join("vocab"), false, &["LABEL_0"], None);
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vocab_dir.join("tokenizer.json")).unwrap()).unwrap();
    let mut vocab: Vec<(&String, u64)> = t["model"]["vocab"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k, v.as_u64().unwrap()))
        .collect();
    vocab.sort_by_key(|(_, id)| *id);
    let lines: String = vocab.iter().map(|(k, _)| format!("{k}\n")).collect();
    std::fs::write(vocab_dir.join("vocab.txt"), lines).unwrap();
    std::fs::write(
        vocab_dir.join("tokenizer_config.json"),
        r#"{"do_lower_case": true}"#,
    )
    .unwrap();
    std::fs::remove_file(vocab_dir.join("tokenizer.json")).unwrap();

    let ps = pairs(&[
        (
            "Who won Super Bowl 50?",
            "The Denver Broncos defeated the Carolina Panthers 24–10.",
        ),
        (
            "Café in Zürich",
            "naïve résumé: HELLO, world! (1937) unbelievably",
        ),
    ]);
    let (a, b) = (load(&json_dir), load(&vocab_dir));
    assert_eq!(a.encode(&ps).unwrap(), b.encode(&ps).unwrap());

    let mut c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vocab_dir.join("config.json")).unwrap()).unwrap();
    c["architectures"] = serde_json::json!(["RobertaForSequenceClassification"]);
    std::fs::write(vocab_dir.join("config.json"), c.to_string()).unwrap();
    let e = PairClassifier::load(vocab_dir.to_str().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no tokenizer.json") && e.contains("vocab.txt"),
        "{e}"
    );
}

/// The head (pooler: dense + tanh on [CLS]; classifier) computed by hand
/// from the safetensors file and candle's BertModel output, with the pair
/// tokenised here: the classifier's logits must agree.
#[test]
fn the_classifier_head_matches_a_hand_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_checkpoint(&tmp.path().join("ce"), false, &NLI_LABELS, None);
    let (q, p) = ("what makes dough rise", "Yeast makes the dough rise.");
    let got = load(&dir).logits(&pairs(&[(q, p)])).unwrap().remove(0);

    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let mat = |n: &str| tensors[n].to_vec2::<f32>().unwrap();
    let vec = |n: &str| tensors[n].to_vec1::<f32>().unwrap();
    let config: bert::Config =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
    let model = bert::BertModel::load(vb.pp("bert"), &config).unwrap();
    let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    // This tokenizer.json pads every input to 128 (sentence-transformers'
    // export): one unpadded pair here.
    tok.with_padding(None);
    let enc = tok.encode((q, p), true).unwrap();
    let row = |v: &[u32]| Tensor::new(vec![v.to_vec()], &Device::Cpu).unwrap();
    let hidden = model
        .forward(&row(enc.get_ids()), &row(enc.get_type_ids()), None)
        .unwrap();
    let cls: Vec<f32> = hidden.to_vec3::<f32>().unwrap()[0][0].clone();

    let affine = |w: &[Vec<f32>], b: &[f32], x: &[f32]| -> Vec<f32> {
        w.iter()
            .zip(b)
            .map(|(wi, bi)| wi.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + bi)
            .collect()
    };
    let pooled: Vec<f32> = affine(
        &mat("bert.pooler.dense.weight"),
        &vec("bert.pooler.dense.bias"),
        &cls,
    )
    .into_iter()
    .map(f32::tanh)
    .collect();
    let want = affine(&mat("classifier.weight"), &vec("classifier.bias"), &pooled);
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
    }
}

#[test]
fn batches_equal_one_by_one_and_loads_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    for (roberta, name) in [(false, "bert"), (true, "roberta")] {
        let dir = write_checkpoint(&tmp.path().join(name), roberta, &NLI_LABELS, None);
        let ce = load(&dir);
        let ps = growing_pairs();
        let batched = ce.logits(&ps).unwrap();
        assert_eq!(batched.len(), ps.len());
        let golden = Golden::for_checkpoint(&format!("{name}_nli"), &dir);
        for (p, b) in ps.iter().zip(&batched) {
            let one = ce.logits(std::slice::from_ref(p)).unwrap().remove(0);
            for (x, y) in one.iter().zip(b) {
                assert!((x - y).abs() < 1e-4, "{name}: {one:?} vs {b:?}");
            }
            assert_close(b, golden.logits_of(p), &format!("{name} {p:?}"));
        }
        assert_eq!(load(&dir).logits(&ps).unwrap(), batched, "{name}");
        let probs = ce.probabilities(&ps[..2]).unwrap();
        assert!(
            probs
                .iter()
                .all(|p| (p.iter().sum::<f32>() - 1.0).abs() < 1e-5)
        );
        if roberta {
            assert_eq!(ce.architecture(), Architecture::Roberta);
            // One token type: the tokenizer's 1s are not passed on.
            let enc = ce.encode(&ps[..1]).unwrap().remove(0);
            assert!(enc.type_ids.iter().all(|&t| t == 0));
        }
    }
}

/// DeBERTa-v2 (the DeBERTa-v3 NLI cross-encoders): loads with its labels,
/// no token types, batched == one by one == transformers, deterministic
/// across loads.
#[test]
fn a_deberta_v2_checkpoint_runs_batched_like_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_deberta_checkpoint(&tmp.path().join("deb"), &NLI_LABELS);
    let ce = load(&dir);
    assert_eq!(ce.architecture(), Architecture::DebertaV2);
    assert_eq!(ce.label_id("entailment"), Some(1));
    let ps = deberta_pairs();
    let enc = ce.encode(&ps[..1]).unwrap().remove(0);
    assert!(enc.type_ids.iter().all(|&t| t == 0));
    let batched = ce.logits(&ps).unwrap();
    let golden = Golden::for_checkpoint("deberta_nli", &dir);
    for (p, b) in ps.iter().zip(&batched) {
        let one = ce.logits(std::slice::from_ref(p)).unwrap().remove(0);
        assert_eq!(one.len(), 3);
        for (x, y) in one.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{one:?} vs {b:?}");
        }
        assert_close(b, golden.logits_of(p), &format!("deberta {p:?}"));
    }
    assert_eq!(load(&dir).logits(&ps).unwrap(), batched);
    // Different pairs, different logits: the encoder is not bypassed.
    assert_ne!(batched[0], batched[1]);
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_checkpoint(&tmp.path().join("ce"), false, &["LABEL_0"], None);
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
    };
    let err = || {
        PairClassifier::load(dir.to_str().unwrap())
            .err()
            .unwrap()
            .to_string()
    };

    edit(&|c| c["architectures"] = serde_json::json!(["ModernBertForSequenceClassification"]));
    let e = err();
    assert!(
        e.contains("ModernBertForSequenceClassification")
            && e.contains("not supported")
            && e.contains("BertForSequenceClassification"),
        "{e}"
    );
    edit(&|c| c["architectures"] = serde_json::json!(["BertForSequenceClassification"]));
    // Three labels in the config, one row in the classifier's weights.
    edit(&|c| c["id2label"] = serde_json::json!({"0": "a", "1": "b", "2": "c"}));
    let e = err();
    assert!(e.contains("weights") && e.contains("classifier"), "{e}");
    edit(&|c| {
        c.as_object_mut().unwrap().remove("id2label");
    });
    assert!(err().contains("id2label: missing"), "{}", err());

    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = err();
    assert!(e.contains("tokenizer.json"), "{e}");
    let e = PairClassifier::load("./not/a/model")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither a model directory"), "{e}");

    // An NLI model cannot rerank: which label means "relevant"?
    let nli = write_checkpoint(&tmp.path().join("nli"), false, &NLI_LABELS, None);
    let e = forge_host::retrieval::rerank::named(
        nli.to_str().unwrap(),
        None,
        Some(&std::sync::Arc::new(load(&nli))),
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("one relevance logit"), "{e}");
}

const DOCS: &str = r#"{"id":"cat","title":"Cats","text":"The domestic cat is a small carnivorous mammal kept as a pet. Cats sleep for most of the day and hunt mice at night."}
{"id":"bridge","title":"Golden Gate Bridge","text":"The Golden Gate Bridge is a suspension bridge spanning the strait between San Francisco Bay and the Pacific Ocean. It opened in 1937."}
{"id":"bread","title":"Bread","text":"Bread is a staple food prepared from a dough of flour and water, usually by baking. Yeast makes the dough rise."}
{"id":"volcano","title":"Volcano","text":"A volcano is a rupture in the crust of a planet through which lava, volcanic ash and gases escape from a magma chamber below the surface."}
{"id":"moon","title":"Moon","text":"The Moon is Earth's only natural satellite. Apollo 11 landed the first people on it in 1969."}
{"id":"river","title":"Nile","text":"The Nile is a major river in northeastern Africa that flows north into the Mediterranean Sea."}
"#;

const QUESTION: &str = "when did the golden gate bridge open";

fn search_json(home: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["--json", "index", "search", "small", QUESTION];
    a.extend_from_slice(args);
    let out = run_ok(forge(home).args(&a));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `index search --strategy reranked --rerank DIR` and an experiment with
/// `[[indexes]] strategy = "reranked"`, `rerank = "<dir>"` both reorder
/// the hybrid candidates by the cross-encoder's logit of (query, title +
/// passage), as Hugging Face transformers computes it for the checkpoint.
#[test]
fn reranked_with_a_cross_encoder_from_the_cli_and_an_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let docs = write(tmp.path(), "docs.jsonl", DOCS);
    let ce_dir = write_checkpoint(&tmp.path().join("marco"), false, &["LABEL_0"], None);
    run_ok(
        forge(&home)
            .args(["--json", "index", "build", "small", "--corpus"])
            .arg(&docs),
    );

    let candidates = search_json(&home, &["--strategy", "hybrid", "-k", "20"]);
    assert_eq!(candidates.len(), 6);
    // The expected order comes from transformers' logits for the same
    // checkpoint, not from the classifier under test.
    let golden = Golden::for_checkpoint("marco", &ce_dir);
    let texts: Vec<(String, String)> = candidates
        .iter()
        .map(|c| {
            (
                QUESTION.to_string(),
                format!(
                    "{}\n{}",
                    c["title"].as_str().unwrap(),
                    c["text"].as_str().unwrap()
                ),
            )
        })
        .collect();
    let logits: Vec<&[f32]> = texts.iter().map(|p| golden.logits_of(p)).collect();
    let mut want: Vec<(String, f64)> = candidates
        .iter()
        .zip(&logits)
        .map(|(c, l)| (c["id"].as_str().unwrap().to_string(), f64::from(l[0])))
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    want.truncate(4);

    let got = search_json(
        &home,
        &[
            "--strategy",
            "reranked",
            "--rerank",
            ce_dir.to_str().unwrap(),
            "-k",
            "4",
        ],
    );
    let got: Vec<(String, f64)> = got
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 4);
    for ((gi, gs), (wi, ws)) in got.iter().zip(&want) {
        assert_eq!(gi, wi, "{got:?} vs {want:?}");
        assert!((gs - ws).abs() < 1e-4, "{got:?} vs {want:?}");
    }

    // The same through an experiment: the rag method retrieves only; the
    // cross-encoder is named relative to the config.
    let data = write(
        tmp.path(),
        "q.jsonl",
        &format!("{{\"id\":\"q1\",\"question\":\"{QUESTION}\",\"answers\":[\"1937\"]}}\n"),
    );
    let cfg = write(
        tmp.path(),
        "exp.toml",
        &format!(
            r#"name = "xenc-rerank"
seed = 1
[model]
source = "smollm2-135m-instruct"
[dataset]
path = "{}"
[[indexes]]
name = "small"
corpus = "docs.jsonl"
strategy = "reranked"
rerank = "marco"
[method]
plugin = "rag"
params = {{ index = "small", k = 4, retrieve_only = true }}
[[metrics]]
plugin = "retrieval"
"#,
            data.display()
        ),
    );
    let ev = events(&run_ok(forge(&home).args(["--json", "run"]).arg(&cfg)).stdout);
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value =
        serde_json::from_slice(&run_ok(forge(&home).args(["--json", "show", &id])).stdout).unwrap();
    let run = &v["runs"][0];
    assert!(run["error"].is_null(), "{run}");
    let note = run["trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["content"].as_str())
        .find_map(|c| c.strip_prefix("retrieved: "))
        .unwrap_or_else(|| panic!("no retrieved note: {run}"));
    let note: Vec<serde_json::Value> = serde_json::from_str(note).unwrap();
    let exp: Vec<(String, f64)> = note
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(exp.len(), 4);
    for ((ei, es), (wi, ws)) in exp.iter().zip(&want) {
        assert_eq!(ei, wi, "{exp:?} vs {want:?}");
        assert!((es - ws).abs() < 1e-4, "{exp:?} vs {want:?}");
    }

    // A missing cross-encoder directory is a config error at `rerank`.
    let bad = write(
        tmp.path(),
        "bad.toml",
        &std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("rerank = \"marco\"", "rerank = \"no-such-model\""),
    );
    let out = forge(&home).args(["run"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("indexes[0].rerank") && err.contains("no-such-model"),
        "{err}"
    );
}

/// Rows with a context and a one-sentence answer for the `replay` method.
/// (id, context, one-sentence answer) of the NLI run.
const NLI_ROWS: [(&str, &str, &str); 3] = [
    (
        "a",
        "The Golden Gate Bridge opened in 1937 and spans the Golden Gate strait.",
        "The bridge opened in 1937.",
    ),
    (
        "b",
        "Bread is made from flour and water; yeast makes the dough rise.",
        "Bread is made of stone.",
    ),
    (
        "c",
        "The Nile flows north into the Mediterranean Sea.",
        "The Nile flows into the Mediterranean.",
    ),
];

fn nli_rows(dir: &Path) -> std::path::PathBuf {
    let body: String = NLI_ROWS
        .iter()
        .map(|(id, ctx, ans)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "question": "q", "answers": ["x"], "context": ctx, "meta": {"answer": ans}})
            )
        })
        .collect();
    write(dir, "nli.jsonl", &body)
}

fn nli_config(data: &Path, model: Option<&Path>) -> String {
    let nli = model.map_or(String::new(), |m| {
        format!("[nli]\nmodel = \"{}\"\n", m.display())
    });
    replay_config(
        "xenc-nli",
        data,
        &format!("[[metrics]]\nplugin = \"faithfulness\"\nparams = {{ mode = \"nli\" }}\n{nli}"),
    )
}

fn runs_of(home: &Path, cfg: &Path) -> (String, Vec<serde_json::Value>) {
    let (id, v) = show(home, cfg);
    (id, v["runs"].as_array().unwrap().clone())
}

fn show(home: &Path, cfg: &Path) -> (String, serde_json::Value) {
    let ev = events(&run_ok(forge(home).args(["--json", "run"]).arg(cfg)).stdout);
    let id = ev.last().unwrap()["experiment"]
        .as_str()
        .unwrap()
        .to_string();
    let v =
        serde_json::from_slice(&run_ok(forge(home).args(["--json", "show", &id])).stdout).unwrap();
    (id, v)
}

/// faithfulness `mode = "nli"` through a real run: each claim goes to the
/// host's cross-encoder as (context, claim); the stored score is what the
/// same checkpoint's argmax says here; a model biased towards
/// "entailment" (label id 2 in its config, not 1) supports every claim,
/// so labels are matched by name; no `[nli]` is the example's stored
/// metric error; the weights are part of the plan hash.
#[test]
fn faithfulness_nli_through_a_real_run() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let data = nli_rows(tmp.path());
    let labels = ["contradiction", "neutral", "entailment"];
    let plain = write_checkpoint(&tmp.path().join("nli"), false, &labels, None);
    let (plain_id, v) = show(
        &home,
        &write(tmp.path(), "plain.toml", &nli_config(&data, Some(&plain))),
    );
    // A 0.1.3 metric beside a 0.1.1 method: older guests still link.
    let contract = |name: &str| {
        v["experiment"]["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["contract"]
            .clone()
    };
    assert_eq!(contract("faithfulness"), "forge:plugin@0.1.3");
    assert_eq!(contract("replay"), "forge:plugin@0.1.1");
    let runs = v["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 3);
    // The same weights as bert_nli's golden checkpoint; only the label
    // names differ (config.json).
    let golden = Golden::for_checkpoint("bert_nli", &plain);
    for r in &runs {
        assert!(
            r["error"].is_null() && r["metric_errors"].as_object().unwrap().is_empty(),
            "{r}"
        );
        let calls = r["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "one claim, one call: {r}");
        assert_eq!(calls[0]["kind"], "nli");
        let sent: Vec<(String, String)> =
            serde_json::from_str(calls[0]["prompt"].as_str().unwrap()).unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, r["contexts"][0].as_str().unwrap(), "{r}");
        let probs = softmax(golden.logits_of(&sent[0]));
        let argmax = (0..3)
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap();
        let want = if argmax == 2 { 1.0 } else { 0.0 };
        assert_eq!(r["scores"]["faithfulness"], want, "{probs:?}: {r}");
        assert_eq!(r["scores"]["hallucination"], 1.0 - want, "{r}");
        assert_eq!(r["scores"]["claims"], 1.0, "{r}");
    }

    let biased = write_checkpoint(&tmp.path().join("nli-e"), false, &labels, Some((2, 50.0)));
    let (_, runs) = runs_of(
        &home,
        &write(tmp.path(), "biased.toml", &nli_config(&data, Some(&biased))),
    );
    for r in &runs {
        assert_eq!(r["scores"]["faithfulness"], 1.0, "{r}");
    }

    // No [nli] model: the metric fails for the example with the host's
    // message; the failed call is recorded.
    let (_, runs) = runs_of(
        &home,
        &write(tmp.path(), "none.toml", &nli_config(&data, None)),
    );
    for r in &runs {
        assert!(r["error"].is_null(), "{r}");
        let msg = r["metric_errors"]["faithfulness"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            msg.contains(forge_host::components::capabilities::nli::NO_NLI_MODEL),
            "{r}"
        );
        assert_eq!(r["calls"][0]["kind"], "nli", "{r}");
    }

    // Other weights in the same directory: a new plan, not a resume.
    write_checkpoint_seeded(&tmp.path().join("nli"), false, &labels, None, SEED + 1);
    let (again, _) = runs_of(
        &home,
        &write(tmp.path(), "plain.toml", &nli_config(&data, Some(&plain))),
    );
    assert_ne!(again, plain_id);
}

type Pairs = Vec<(String, String)>;

/// More pairs than one batch (16), of different lengths (padding).
fn growing_pairs() -> Vec<(String, String)> {
    (0..21)
        .map(|i| {
            (
                format!("question number {i}"),
                "a passage that grows longer ".repeat(1 + i % 7),
            )
        })
        .collect()
}

fn deberta_pairs() -> Vec<(String, String)> {
    (0..18)
        .map(|i| (format!("claim {i}"), "some premise text ".repeat(1 + i % 5)))
        .collect()
}

/// (query, title + passage) of every document: the reranker's inputs.
fn marco_pairs() -> Vec<(String, String)> {
    DOCS.lines()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                QUESTION.to_string(),
                format!(
                    "{}\n{}",
                    d["title"].as_str().unwrap(),
                    d["text"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

/// Within 1e-4 of the oracle's logits.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() < 1e-4,
            "{what}: {got:?} vs transformers {want:?}"
        );
    }
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

/// Writes the golden checkpoints and the pairs asked of each into
/// `$FORGE_ORACLE_DIR` (`<name>/` and `inputs.json`), for
/// scripts/oracles/cross_encoder_golden.py, which runs it.
#[test]
#[ignore = "run by scripts/oracles/cross_encoder_golden.py"]
fn write_oracle_inputs() {
    let root = PathBuf::from(std::env::var_os("FORGE_ORACLE_DIR").expect("FORGE_ORACLE_DIR"));
    let nli: Vec<(String, String)> = NLI_ROWS
        .iter()
        .map(|(_, ctx, ans)| (ctx.to_string(), ans.to_string()))
        .collect();
    let cases: [(&str, PathBuf, Pairs); 4] = [
        (
            "bert_nli",
            write_checkpoint(&root.join("bert_nli"), false, &NLI_LABELS, None),
            [growing_pairs(), nli].concat(),
        ),
        (
            "roberta_nli",
            write_checkpoint(&root.join("roberta_nli"), true, &NLI_LABELS, None),
            growing_pairs(),
        ),
        (
            "deberta_nli",
            write_deberta_checkpoint(&root.join("deberta_nli"), &NLI_LABELS),
            deberta_pairs(),
        ),
        (
            "marco",
            write_checkpoint(&root.join("marco"), false, &["LABEL_0"], None),
            marco_pairs(),
        ),
    ];
    let inputs: serde_json::Map<String, serde_json::Value> = cases
        .into_iter()
        .map(|(name, dir, pairs)| {
            (
                name.to_string(),
                serde_json::json!({"dir": dir, "pairs": pairs}),
            )
        })
        .collect();
    std::fs::write(
        root.join("inputs.json"),
        serde_json::to_string_pretty(&inputs).unwrap(),
    )
    .unwrap();
}
