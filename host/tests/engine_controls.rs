//! Sampling controls, log-probabilities, continuation scoring and the prefix
//! cache of the candle engine, on the packaged SmolLM2 model (skipped with a
//! message when it is not fetched).

use std::sync::{LazyLock, Mutex, MutexGuard};

use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::{Backend, GenParams, Message, Prompt};

/// Bounds on |forge − llama.cpp| log-probability of the same token at the
/// same step. Measured when forge ran the Q4_1 file requantised to Q8_0
/// (now it runs the file's weights on llama.cpp's kernels, but attention
/// and activations still round differently): over the 234 comparable
/// golden tokens, max 0.36 nats, mean 0.053. The bounds leave headroom for that and still catch a wrong
/// softmax (temperature applied, log10, penalties folded in, an off-by-one
/// position), which is off by whole nats on most tokens.
const GOLDEN_LOGPROB_MAX_TOL: f64 = 0.5;
const GOLDEN_LOGPROB_MEAN_TOL: f64 = 0.1;

mod common;
use common::{default_model as resolved, golden_path};

fn load(prefix_cache_bytes: usize) -> Option<CandleBackend> {
    let opts = CandleOptions {
        threads: 2,
        prefix_cache_bytes,
        ..CandleOptions::default()
    };
    Some(CandleBackend::load(&resolved()?, opts).expect("load model"))
}

static BACKEND: LazyLock<Option<Mutex<CandleBackend>>> =
    LazyLock::new(|| load(CandleOptions::default().prefix_cache_bytes).map(Mutex::new));

fn backend() -> Option<MutexGuard<'static, CandleBackend>> {
    // Every test asks: each one missing the model is marked skipped (or
    // fails under CI), not only the first, which loads it.
    resolved()?;
    BACKEND
        .as_ref()
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
}

fn chat(content: &str) -> Prompt {
    Prompt::Chat(vec![Message {
        role: "user".into(),
        content: content.into(),
    }])
}

fn with_logprobs(max_tokens: u32, n: u32) -> GenParams {
    GenParams {
        logprobs: Some(n),
        ..GenParams::greedy(max_tokens)
    }
}

#[test]
fn greedy_logprobs_are_each_steps_maximum_and_match_llama_cpp() {
    let Some(mut backend) = backend() else { return };
    let text = std::fs::read_to_string(golden_path("smollm2_greedy.jsonl")).unwrap();
    let (mut compared, mut worst, mut sum) = (0, 0f64, 0f64);
    for (row_i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let messages: Vec<Message> = serde_json::from_value(row["messages"].clone()).unwrap();
        let steps = row["steps"].as_array().unwrap();
        let out = backend
            .generate_traced(&Prompt::Chat(messages), &with_logprobs(16, 5))
            .unwrap();
        let g = &out.generation;
        assert_eq!(g.tokens.len() as u32, g.completion_tokens, "row {row_i}");
        for (k, t) in g.tokens.iter().enumerate() {
            // Greedy picks the mode: its log-prob is the step's best, and
            // the top list is sorted and starts with it.
            assert_eq!(t.top.len(), 5);
            assert_eq!(t.top[0].1, t.logprob, "row {row_i} step {k}: {t:?}");
            assert!(t.top.windows(2).all(|w| w[0].1 >= w[1].1), "{t:?}");
            assert!(t.logprob <= 0.0);
            assert_eq!(t.id, out.completion_ids[k]);
            // Against llama.cpp's top-5 where both chose the same token.
            let Some(step) = steps.get(k) else { break };
            if step["id"].as_u64() != Some(t.id as u64) {
                break; // diverged (near-tie, see engine_golden): stop comparing
            }
            let diff = (step["logprob"].as_f64().unwrap() - t.logprob as f64).abs();
            worst = worst.max(diff);
            sum += diff;
            compared += 1;
        }
    }
    eprintln!(
        "logprobs vs llama.cpp over {compared} tokens: max |diff| {worst:.4}, mean {:.4}",
        sum / compared as f64
    );
    assert!(compared > 100, "only {compared} tokens compared");
    assert!(worst < GOLDEN_LOGPROB_MAX_TOL, "max |diff| {worst}");
    assert!(sum / (compared as f64) < GOLDEN_LOGPROB_MEAN_TOL);
}

#[test]
fn scoring_prefers_the_obvious_continuation_and_matches_generation() {
    let Some(mut backend) = backend() else { return };
    let prompt = Prompt::Raw("The capital of France is".into());
    let s = backend
        .score_continuations(&prompt, &[" Paris".into(), " banana".into(), String::new()])
        .unwrap();
    eprintln!("score Paris {:.3} banana {:.3}", s[0], s[1]);
    assert!(s[0] > s[1] + 2.0, "{s:?}");
    assert_eq!(s[2], 0.0);

    // yes − no margins on true and false statements. SmolLM2-135M is
    // barely above chance at yes/no, so the check is on the mean over four
    // pairs: true statements must lean more to " yes". Measured on the
    // file's own Q4_1 weights: forge −0.393 vs −0.467; llama-server on the
    // same prompts −0.290 vs −0.440 (with weights requantised to Q8_0 forge
    // had −0.12 vs −0.43): the gap is a few hundredths of a nat, so only
    // its sign is tested.
    let margin = |backend: &mut CandleBackend, q: &str| {
        let p = Prompt::Raw(format!("Question: {q}\nAnswer (yes or no):"));
        let s = backend
            .score_continuations(&p, &[" yes".into(), " no".into()])
            .unwrap();
        s[0] - s[1]
    };
    let pairs = [
        ("Is the sun hot?", "Is the sun cold?"),
        ("Is Paris in France?", "Is Paris in Japan?"),
        ("Is water wet?", "Is fire cold?"),
        ("Do fish live in water?", "Do cats have wings?"),
    ];
    let (mut truth, mut lie) = (0.0, 0.0);
    for (t, f) in pairs {
        truth += margin(&mut backend, t) / pairs.len() as f64;
        lie += margin(&mut backend, f) / pairs.len() as f64;
    }
    eprintln!("mean yes-no margin: true {truth:.3}, false {lie:.3}");
    assert!(truth > lie, "{truth} vs {lie}");

    // Scoring the greedy continuation gives the sum of the log-probs the
    // generation reported for its tokens: scoring runs the continuation as
    // one multi-row forward, decode runs it row by row, and attention sums
    // in a fixed order per row (llama::attend), so the two agree to f32
    // rounding of the final sums. (With candle's batched attention matmul
    // they drifted by up to 0.1 nats per token.)
    for p in [
        Prompt::Raw("Once upon a time".into()),
        chat("Name a large animal."),
    ] {
        let g = backend.generate(&p, &with_logprobs(12, 1)).unwrap();
        let sum: f64 = g.tokens.iter().map(|t| t.logprob as f64).sum();
        let scored = backend
            .score_continuations(&p, std::slice::from_ref(&g.text))
            .unwrap()[0];
        eprintln!("{:?}: generated sum {sum:.4}, scored {scored:.4}", g.text);
        assert!(
            (sum - scored).abs() < 1e-3,
            "{sum} vs {scored} for {:?}",
            g.text
        );
    }
}

#[test]
fn top_k_and_repetition_penalty_reach_the_model() {
    let Some(mut backend) = backend() else { return };
    let prompt = chat("Write the word 'go' ten times.");
    let greedy = backend.generate(&prompt, &GenParams::greedy(16)).unwrap();
    // top-k 1 is greedy whatever the temperature and seed.
    for seed in [1, 2] {
        let p = GenParams {
            temperature: 1.5,
            top_k: 1,
            seed,
            ..GenParams::greedy(16)
        };
        assert_eq!(backend.generate(&prompt, &p).unwrap().text, greedy.text);
    }
    // A hot temperature without top-k wanders off greedy for some seed.
    let wander = (0..4).any(|seed| {
        let p = GenParams {
            temperature: 1.5,
            seed,
            ..GenParams::greedy(16)
        };
        backend.generate(&prompt, &p).unwrap().text != greedy.text
    });
    assert!(wander);
    // Penalising repeats changes a repetitive greedy output, and the
    // reported log-probs stay those of the raw distribution (<= 0).
    let p = GenParams {
        repetition_penalty: 1.5,
        logprobs: Some(2),
        ..GenParams::greedy(16)
    };
    let penalised = backend.generate(&prompt, &p).unwrap();
    eprintln!("greedy {:?}\npenalised {:?}", greedy.text, penalised.text);
    assert_ne!(penalised.text, greedy.text);
    assert!(penalised.tokens.iter().all(|t| t.logprob <= 0.0));
    let bad = GenParams {
        repetition_penalty: 0.0,
        ..GenParams::greedy(4)
    };
    let err = backend.generate(&prompt, &bad).unwrap_err().to_string();
    assert!(
        err.contains("invalid generation parameters")
            && err.contains("repetition_penalty must be > 0, got 0"),
        "{err}"
    );
}

/// A few-shot prompt: `shots` worked examples (shared by every question),
/// then the question.
fn few_shot(question: &str) -> Prompt {
    let mut text = String::from(
        "Answer each question with a short fact. Think about what the question asks, \
         then give the answer after 'Answer:'.\n\n",
    );
    let shots = [
        ("What is the capital of Italy?", "Rome"),
        ("Who wrote Hamlet?", "William Shakespeare"),
        ("What is the largest planet in the solar system?", "Jupiter"),
        ("How many legs does a spider have?", "Eight"),
        ("What is the chemical symbol for gold?", "Au"),
        (
            "Which ocean lies between Africa and Australia?",
            "The Indian Ocean",
        ),
        ("What language is spoken in Brazil?", "Portuguese"),
        ("Who painted the Mona Lisa?", "Leonardo da Vinci"),
        (
            "What is the boiling point of water at sea level in Celsius?",
            "100 degrees",
        ),
        ("What is the tallest mountain on Earth?", "Mount Everest"),
        ("Which gas do plants absorb from the air?", "Carbon dioxide"),
        ("What is the smallest prime number?", "Two"),
        ("In which country are the pyramids of Giza?", "Egypt"),
        ("What is the currency of Japan?", "The yen"),
        (
            "Who was the first person to walk on the Moon?",
            "Neil Armstrong",
        ),
        (
            "What is the freezing point of water in Fahrenheit?",
            "32 degrees",
        ),
        (
            "Which animal is known as the king of the jungle?",
            "The lion",
        ),
        ("How many continents are there?", "Seven"),
        ("What is the hardest natural substance?", "Diamond"),
        ("Which planet is known as the red planet?", "Mars"),
    ];
    for (q, a) in shots {
        text.push_str(&format!("Question: {q}\nAnswer: {a}\n\n"));
    }
    text.push_str(&format!("Question: {question}\nAnswer:"));
    Prompt::Raw(text)
}

const QUESTIONS: [&str; 4] = [
    "What is the capital of France?",
    "Who discovered penicillin?",
    "How many days are in a leap year?",
    "What is the largest ocean?",
];

#[test]
fn prefix_cache_reuses_shared_prefixes_without_changing_outputs() {
    let Some(mut cold) = load(0) else { return };
    let mut warm = load(64 << 20).unwrap();
    let shared = {
        let a = cold
            .tokenize(&cold.prompt_text(&few_shot(QUESTIONS[0])).unwrap())
            .unwrap();
        let b = cold
            .tokenize(&cold.prompt_text(&few_shot(QUESTIONS[1])).unwrap())
            .unwrap();
        a.iter().zip(&b).take_while(|(x, y)| x == y).count()
    };
    eprintln!("shared prefix: {shared} tokens");
    assert!(shared >= 350, "{shared}");
    let params = GenParams {
        stop: vec!["\n".into()],
        ..GenParams::greedy(12)
    };
    let (mut cold_ms, mut warm_ms) = (0.0, 0.0);
    for (i, q) in QUESTIONS.iter().enumerate() {
        let a = cold.generate(&few_shot(q), &params).unwrap();
        let b = warm.generate(&few_shot(q), &params).unwrap();
        eprintln!(
            "{q} -> {:?}: prefill {:.0} ms cold, {:.0} ms with {} cached tokens",
            a.text, a.prefill_ms, b.prefill_ms, b.cached_prompt_tokens
        );
        assert_eq!(a.text, b.text, "{q}");
        assert_eq!(a.cached_prompt_tokens, 0);
        if i > 0 {
            assert!(b.cached_prompt_tokens as usize >= shared - 1, "{b:?}");
            cold_ms += a.prefill_ms;
            warm_ms += b.prefill_ms;
        }
    }
    eprintln!(
        "prefill after the first question: {cold_ms:.0} ms cold, {warm_ms:.0} ms warm ({:.1}x)",
        cold_ms / warm_ms
    );
    // A different prompt in between evicts nothing and is not reused...
    let other = warm.generate(&chat("Say hi."), &params).unwrap();
    assert_eq!(other.cached_prompt_tokens, 0);
    // ...and the few-shot prefix comes back from its snapshot.
    let again = warm
        .generate(&few_shot("Who wrote Faust?"), &params)
        .unwrap();
    assert!(
        again.cached_prompt_tokens as usize >= shared - 1,
        "{again:?}"
    );
    let (bytes, entries) = warm.prefix_cache_usage();
    assert!(bytes <= 64 << 20 && entries >= 1, "{bytes} {entries}");

    // A budget too small for one snapshot stores nothing and changes nothing.
    let mut tiny = load(1 << 10).unwrap();
    for q in &QUESTIONS[..2] {
        let t = tiny.generate(&few_shot(q), &params).unwrap();
        let c = cold.generate(&few_shot(q), &params).unwrap();
        assert_eq!(t.text, c.text);
    }
    assert_eq!(tiny.prefix_cache_usage(), (0, 0));
}
