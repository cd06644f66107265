//! Few-shot prefix-cache speedup on the packaged model: the same questions
//! after a ~400-token shared few-shot prefix, with and without the prefix
//! cache, greedy, 2 threads. Prints prefill work and wall time of each.
//!
//!     cargo run --release -p forge-host --example prefix_cache_speedup

use std::path::Path;
use std::time::Instant;

use forge_host::engine::candle_backend::{CandleBackend, CandleOptions};
use forge_host::engine::model_source;
use forge_host::engine::{Backend, GenParams, Prompt};

const SHOTS: [(&str, &str); 20] = [
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

const QUESTIONS: [&str; 8] = [
    "What is the capital of France?",
    "Who discovered penicillin?",
    "How many days are in a leap year?",
    "What is the largest ocean?",
    "Who wrote Faust?",
    "What is the square root of 81?",
    "Which metal is liquid at room temperature?",
    "What is the capital of Canada?",
];

fn prompt(q: &str) -> Prompt {
    let mut text = String::from(
        "Answer each question with a short fact. Think about what the question asks, \
         then give the answer after 'Answer:'.\n\n",
    );
    for (sq, a) in SHOTS {
        text.push_str(&format!("Question: {sq}\nAnswer: {a}\n\n"));
    }
    text.push_str(&format!("Question: {q}\nAnswer:"));
    Prompt::Raw(text)
}

fn main() -> anyhow::Result<()> {
    let models = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models"));
    let resolved = model_source::resolve("smollm2-135m-instruct", models)?;
    let params = GenParams {
        stop: vec!["\n".into()],
        ..GenParams::greedy(16)
    };
    let mut outputs = Vec::new();
    for (label, bytes) in [("no prefix cache", 0), ("prefix cache", 256 << 20)] {
        let opts = CandleOptions {
            threads: 2,
            prefix_cache_bytes: bytes,
            ..CandleOptions::default()
        };
        let mut b = CandleBackend::load(&resolved, opts)?;
        let (mut prompt_tokens, mut cached, mut prefill_ms, mut decode_ms) = (0u32, 0u32, 0.0, 0.0);
        let start = Instant::now();
        let mut texts = Vec::new();
        for q in QUESTIONS {
            let g = b.generate(&prompt(q), &params)?;
            prompt_tokens += g.prompt_tokens;
            cached += g.cached_prompt_tokens;
            prefill_ms += g.prefill_ms;
            decode_ms += g.decode_ms;
            texts.push(g.text);
        }
        let wall = start.elapsed().as_secs_f64();
        println!(
            "{label:>16}: {} questions, {prompt_tokens} prompt tokens ({} per prompt), {cached} from cache \
             ({:.0}% of prefill work saved); prefill {prefill_ms:.0} ms, decode {decode_ms:.0} ms, wall {wall:.2} s",
            QUESTIONS.len(),
            prompt_tokens / QUESTIONS.len() as u32,
            100.0 * cached as f64 / prompt_tokens as f64,
        );
        outputs.push((wall, prefill_ms, texts));
    }
    println!(
        "speedup: end-to-end {:.2}x, prefill {:.2}x; outputs identical: {}",
        outputs[0].0 / outputs[1].0,
        outputs[0].1 / outputs[1].1,
        outputs[0].2 == outputs[1].2
    );
    Ok(())
}
