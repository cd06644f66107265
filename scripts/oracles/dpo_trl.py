#!/usr/bin/env python3
"""Reference oracle for forge's DPO trainer: Hugging Face TRL's `DPOTrainer` + PEFT LoRA on CPU.

Two modes:

  fixture  tokenizes the first N non-empty preference pairs, writes them as token ids
           (`pairs.tokens.jsonl`, the contract: forge consumes these ids as-is), creates the
           initial LoRA adapter with PEFT (`initial_adapter/`, PEFT's own layout, f32), writes
           `hparams.json`, then runs TRL's real `DPOTrainer` from that adapter and writes what
           TRL logged at every optimizer step (`trl_steps.jsonl`) and a `README.md`.

  bench    runs the same trainer on pairs of fixed lengths and prints one JSON line with
           pairs/s, tokens/s (over the timed steps, the first step excluded) and peak RSS: the
           peer numbers for forge's DPO throughput benchmark.

Nothing is overridden in TRL except dataset preparation (the columns are already tokenized,
so `_prepare_dataset` passes them through) and a wrapper around `compute_loss` that only
records which pairs each step saw and then calls TRL's own `compute_loss`. The loss, the
reference log-probs, the optimizer, the scheduler, clipping and logging are TRL's and
transformers' own.

  python3 scripts/oracles/dpo_trl.py fixture \
      --gguf models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf \
      --data /work/shared/data/hh_harmless.train.jsonl --n 16 --out host/tests/golden/dpo

  python3 scripts/oracles/dpo_trl.py bench --gguf ... --data ... --pairs 32 \
      --prompt-len 256 --completion-len 128 --batch-size 2 --steps 8 --threads 2

See scripts/oracles/README.md for the install line and what each output means.
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
STEP_KEYS = [
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
    "grad_norm",
    "learning_rate",
]


def set_threads(threads):
    # Before torch is imported, so the OpenMP pool is sized once.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    torch.set_num_threads(threads)
    return torch


def load_model(gguf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf).resolve()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    # This transformers' GGUF loader dequantizes llama to plain f32 `nn.Linear` weights (its packed-blocks path is
    # not used for this architecture); check that, then drop the leftover quantizer marker, which would otherwise
    # make `Trainer` refuse to train ("GGUF does not support training") although nothing is quantized any more.
    for name, module in model.named_modules():
        if name.endswith(tuple(TARGET_MODULES)):
            if type(module) is not torch.nn.Linear or module.weight.dtype != torch.float32:
                sys.exit(f"{name} is {type(module).__name__} ({module.weight.dtype}), expected a dequantized f32 nn.Linear")
    if getattr(model, "hf_quantizer", None) is not None:
        if getattr(model.hf_quantizer, "packed_modules", None):
            sys.exit("the GGUF loader kept packed (quantized) modules; this oracle needs the dequantized f32 model")
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    # No dropout anywhere: the base config's own dropouts to 0 as well (TRL's disable_dropout does the modules).
    for key in ("attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
        if hasattr(model.config, key):
            setattr(model.config, key, 0.0)
    return tok, model


def end_of_turn_id(tok):
    eos = tok.eos_token
    if eos is None or eos not in (tok.chat_template or ""):
        sys.exit(f"the tokenizer's eos {eos!r} is not the chat template's end-of-turn token")
    return tok.convert_tokens_to_ids(eos)


def split_transcript(prompt):
    """HH transcript "\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nAssistant:" -> chat messages.

    Each turn is stripped; the final empty "Assistant:" is the generation prompt and is dropped."""
    parts = re.split(r"\n\n(Human|Assistant):", prompt)
    if parts[0].strip():
        sys.exit(f"transcript does not start with a turn: {prompt[:80]!r}")
    messages = []
    for role, text in zip(parts[1::2], parts[2::2]):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": text.strip()})
    if not messages or messages[-1] != {"role": "assistant", "content": ""}:
        sys.exit(f"transcript does not end with an empty Assistant turn: {prompt[-80:]!r}")
    return messages[:-1]


def tokenize_pairs(tok, data, n, max_prompt_tokens, max_completion_tokens, skip=0):
    """The first `n` pairs (after `skip`) whose chosen and rejected are both non-empty, as token ids."""
    eot = end_of_turn_id(tok)
    pairs = []
    with open(data) as f:
        for line in f:
            if len(pairs) == n:
                break
            row = json.loads(line)
            if not row["chosen"].strip() or not row["rejected"].strip():
                continue
            if skip > 0:
                skip -= 1
                continue
            messages = split_transcript(row["prompt"])
            rendered = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            prompt_ids = tok(rendered, add_special_tokens=False)["input_ids"]
            chosen_ids = tok(row["chosen"].strip(), add_special_tokens=False)["input_ids"] + [eot]
            rejected_ids = tok(row["rejected"].strip(), add_special_tokens=False)["input_ids"] + [eot]
            pairs.append(
                {
                    "id": row["id"],
                    "prompt_ids": prompt_ids[-max_prompt_tokens:],
                    "chosen_ids": chosen_ids[:max_completion_tokens],
                    "rejected_ids": rejected_ids[:max_completion_tokens],
                    # kept for the fixture README only
                    "_untruncated": (len(prompt_ids), len(chosen_ids), len(rejected_ids)),
                }
            )
    if len(pairs) < n:
        sys.exit(f"{data} has only {len(pairs)} usable pairs, asked for {n}")
    return pairs


def make_trainer_class():
    from trl import DPOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        """TRL's DPOTrainer fed already-tokenized `prompt_ids`/`chosen_ids`/`rejected_ids` columns.

        `_prepare_dataset` would re-tokenize from text (extract prompt, add EOS, apply the chat
        template); here the columns are passed through unchanged, which is exactly what its
        tokenize step would produce for them. `compute_loss` only records the pairs a step saw,
        by matching each chosen row of the batch against the known pairs, then defers to TRL."""

        def __init__(self, *args, pair_lookup=None, **kwargs):
            self._pair_lookup = pair_lookup or {}
            self.seen = []
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            needed = {"prompt_ids", "chosen_ids", "rejected_ids"}
            missing = needed - set(dataset.column_names)
            if missing:
                raise ValueError(f"{dataset_name} dataset lacks the tokenized columns {sorted(missing)}")
            return dataset

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.model.training and self._pair_lookup:
                ids = inputs["input_ids"]
                mask = inputs["attention_mask"]
                half = ids.shape[0] // 2
                seen = []
                for row in range(half):  # first half: prompt + chosen
                    n = int(mask[row].sum())
                    seen.append(self._pair_lookup.get(tuple(ids[row, :n].tolist()), "?"))
                self.seen.append(seen)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return PretokenizedDPOTrainer


def dpo_config(hp, output_dir, precompute):
    from trl import DPOConfig

    return DPOConfig(
        output_dir=output_dir,
        beta=hp["beta"],
        loss_type=[hp["loss_type"]],
        learning_rate=hp["learning_rate"],
        max_steps=hp["max_steps"],
        per_device_train_batch_size=hp["per_device_train_batch_size"],
        gradient_accumulation_steps=hp["gradient_accumulation_steps"],
        lr_scheduler_type=hp["lr_scheduler_type"],
        warmup_steps=hp["warmup_steps"],
        max_grad_norm=hp["max_grad_norm"],
        weight_decay=hp["weight_decay"],
        adam_beta1=hp["adam_beta1"],
        adam_beta2=hp["adam_beta2"],
        adam_epsilon=hp["adam_epsilon"],
        optim=hp["optim"],
        seed=hp["seed"],
        data_seed=hp["seed"],
        # order: sequential, no shuffling, epoch after epoch
        train_sampling_strategy="sequential",
        dataloader_num_workers=0,
        dataloader_drop_last=False,
        # f32 on CPU, no mixed precision (TRL defaults bf16 to True), no gradient checkpointing
        # (TRL defaults it to True; it only trades memory for time)
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        # the ids are final: no truncation, no padding to a multiple
        max_length=None,
        pad_to_multiple_of=None,
        precompute_ref_log_probs=precompute,
        disable_dropout=True,
        logging_steps=1,
        logging_first_step=True,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )


def build_trainer(tok, base, adapter_dir, pairs, hp, output_dir, precompute, lookup=True, peft_config=None):
    from datasets import Dataset
    from peft import PeftModel
    from transformers import TrainerCallback

    if peft_config is None:
        policy = PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=True)
    else:
        policy = base
    dataset = Dataset.from_list(
        [{"prompt_ids": p["prompt_ids"], "chosen_ids": p["chosen_ids"], "rejected_ids": p["rejected_ids"]} for p in pairs]
    )
    pair_lookup = {tuple(p["prompt_ids"] + p["chosen_ids"]): p["id"] for p in pairs} if lookup else None

    class Record(TrainerCallback):
        def __init__(self):
            self.logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "rewards/chosen" in logs:
                self.logs.append({"step": state.global_step, **logs})

    record = Record()
    Trainer = make_trainer_class()
    trainer = Trainer(
        model=policy,
        ref_model=None,
        args=dpo_config(hp, output_dir, precompute),
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[record],
        pair_lookup=pair_lookup,
        peft_config=peft_config,
    )
    return trainer, record


def versions():
    from importlib.metadata import version

    names = ["torch", "transformers", "trl", "peft", "accelerate", "datasets", "gguf", "safetensors", "numpy"]
    return {name: version(name) for name in names} | {"python": platform.python_version()}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores visible, {platform.system()} {platform.release()}"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def greedy_sanity(tok, model, question="What is the capital of France?", new_tokens=16):
    import torch

    rendered = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False)
    ids = tok(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
        out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False)
    logp = torch.log_softmax(logits.float(), -1)
    top = torch.topk(logp, 5)
    return {
        "question": question,
        "greedy": tok.decode(out[0, ids.shape[1] :]),
        "first_token_top5": [(tok.decode([int(i)]), round(float(v), 4)) for v, i in zip(top.values, top.indices)],
    }


def llamacpp_check(tok, model, path, n=5):
    """Compare with llama.cpp's golden greedy outputs (shared/data/golden/smollm2_greedy.jsonl): the rendered
    prompt and its ids must be identical; the log-probs of llama.cpp's greedy tokens only close (its Q4_1 kernels
    quantize the activations too)."""
    import torch

    out = []
    with open(path) as f:
        rows = [json.loads(line) for line in f][:n]
    for r in rows:
        rendered = tok.apply_chat_template(r["messages"], add_generation_prompt=True, tokenize=False)
        ids = tok(rendered, add_special_tokens=False)["input_ids"]
        gen = [s["id"] for s in r["steps"]]
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([ids + gen])).logits[0].float(), -1)
        diffs, agree = [], 0
        for j, step in enumerate(r["steps"]):
            row = lp[len(ids) - 1 + j]
            diffs.append(abs(float(row[step["id"]]) - step["logprob"]))
            agree += int(int(row.argmax()) == step["id"])
        out.append(
            {
                "text_equal": rendered == r["rendered_prompt"],
                "ids_equal": ids == r["prompt_ids"],
                "greedy_agree": f"{agree}/{len(gen)}",
                "max_abs_dlogp": round(max(diffs), 4),
                "mean_abs_dlogp": round(sum(diffs) / len(diffs), 4),
            }
        )
    if not all(o["text_equal"] and o["ids_equal"] for o in out):
        sys.exit(f"chat template or tokenizer differs from llama.cpp's: {out}")
    return out


def fixture(args):
    torch = set_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tok, model = load_model(args.gguf)
    print(f"loaded {args.gguf} in {time.time() - t0:.1f} s", file=sys.stderr)

    sanity = greedy_sanity(tok, model)
    print(f"sanity: {json.dumps(sanity, ensure_ascii=False)}", file=sys.stderr)
    if args.golden_greedy:
        sanity["llamacpp"] = llamacpp_check(tok, model, args.golden_greedy)
        print(f"llama.cpp golden: {sanity['llamacpp']}", file=sys.stderr)

    # 1. the pairs, as token ids
    pairs = tokenize_pairs(tok, args.data, args.n, args.max_prompt_tokens, args.max_completion_tokens)
    with open(out / "pairs.tokens.jsonl", "w") as f:
        for p in pairs:
            row = {k: p[k] for k in ("id", "prompt_ids", "chosen_ids", "rejected_ids")}
            f.write(json.dumps(row, separators=(",", ":")) + "\n")

    # 2. the initial adapter, created by PEFT on a copy of the base (get_peft_model wraps in place)
    import copy

    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open

    lora = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=0.0,
        target_modules=TARGET_MODULES,
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(args.seed)
    init_model = get_peft_model(copy.deepcopy(model), lora)
    # the file's metadata names the model as given, not this machine's absolute path
    init_model.peft_config["default"].base_model_name_or_path = args.gguf
    adapter_dir = out / "initial_adapter"
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    init_model.save_pretrained(str(adapter_dir))
    del init_model
    # PEFT also writes a boilerplate model card naming this machine's model path; the adapter is the two files
    (adapter_dir / "README.md").unlink(missing_ok=True)
    tensors = {}
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            if t.dtype != torch.float32:
                sys.exit(f"{name} is {t.dtype}, expected float32")
            tensors[name] = (list(t.shape), float(t.abs().max()))
    b_max = max(v[1] for k, v in tensors.items() if ".lora_B." in k)
    if b_max != 0.0:
        sys.exit(f"the initial lora_B is not zero (max |B| = {b_max})")

    # 3. the hyperparameters
    hp = {
        "beta": 0.1,
        "loss_type": "sigmoid",
        "learning_rate": args.lr,
        "max_steps": args.steps,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "weight_decay": 0.0,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "optim": "adamw_torch",
        "lora_r": args.rank,
        "lora_alpha": args.alpha,
        "lora_dropout": 0.0,
        "seed": args.seed,
        "threads": args.threads,
        # beyond the trainer's own arguments
        "lora_target_modules": TARGET_MODULES,
        "max_prompt_tokens": args.max_prompt_tokens,
        "max_completion_tokens": args.max_completion_tokens,
        "n_pairs": args.n,
        "order": "sequential",
        "precompute_ref_log_probs": True,
    }
    (out / "hparams.json").write_text(json.dumps(hp, indent=2) + "\n")

    # 4. TRL's DPOTrainer from the initial adapter
    with tempfile.TemporaryDirectory() as tmp:
        trainer, record = build_trainer(tok, model, adapter_dir, pairs, hp, tmp, precompute=True)
        trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
        if any(".lora_" not in n or ".default." not in n for n in trainable) or len(trainable) != len(tensors):
            sys.exit(f"unexpected trainable parameters: {len(trainable)}, e.g. {trainable[:3]}")
        ref_adapter = "ref" in trainer.model.peft_config
        # TRL's own per-pair reference log-probs (precompute_ref_log_probs=True), in dataset order
        ref_chosen = trainer.train_dataset["ref_chosen_logps"]
        ref_rejected = trainer.train_dataset["ref_rejected_logps"]
        initial_ref = {
            n: p.detach().clone() for n, p in trainer.model.named_parameters() if ".ref." in n
        }
        t1 = time.time()
        with contextlib.redirect_stdout(sys.stderr):
            trainer.train()
        train_s = time.time() - t1
        # the reference adapter must not have moved
        for n, p in trainer.model.named_parameters():
            if n in initial_ref and not torch.equal(initial_ref[n], p.detach()):
                sys.exit(f"the reference adapter moved: {n}")
        if args.save_final:
            trainer.model.save_pretrained(args.save_final, selected_adapters=["default"])

    steps = record.logs
    if len(steps) != args.steps or len(trainer.seen) != args.steps:
        sys.exit(f"expected {args.steps} logged steps, got {len(steps)} logs and {len(trainer.seen)} batches")
    bs = hp["per_device_train_batch_size"]
    by_id = {p["id"]: i for i, p in enumerate(pairs)}
    rows = []
    for k, (log, seen) in enumerate(zip(steps, trainer.seen)):
        expected = [pairs[(k * bs + j) % len(pairs)]["id"] for j in range(bs)]
        if seen != expected:
            sys.exit(f"step {k + 1} saw {seen}, expected the sequential order {expected}")
        row = {"step": log["step"]}
        row.update({key: log[key] for key in STEP_KEYS})
        row["epoch"] = log.get("epoch")
        row["pair_ids"] = seen
        row["pair_indices"] = [by_id[i] for i in seen]
        row["ref_chosen_logps"] = [ref_chosen[by_id[i]] for i in seen]
        row["ref_rejected_logps"] = [ref_rejected[by_id[i]] for i in seen]
        rows.append(row)
    with open(out / "trl_steps.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")

    # the checks: B = 0 => policy = reference at step 1
    first = rows[0]
    ok_loss = abs(first["loss"] - math.log(2)) < 1e-6
    ok_rewards = first["rewards/chosen"] == 0.0 and first["rewards/rejected"] == 0.0
    print(
        f"step 1: loss {first['loss']:.7f} (ln 2 = {math.log(2):.7f}) {'ok' if ok_loss else 'MISMATCH'}; "
        f"rewards {first['rewards/chosen']}, {first['rewards/rejected']} {'ok' if ok_rewards else 'MISMATCH'}",
        file=sys.stderr,
    )
    for row in rows:
        print(
            f"{row['step']:>3} loss {row['loss']:.6f} r_c {row['rewards/chosen']:+.6f} r_r {row['rewards/rejected']:+.6f} "
            f"acc {row['rewards/accuracies']:.2f} gn {row['grad_norm']:.6f} lr {row['learning_rate']:.3e} {row['pair_indices']}",
            file=sys.stderr,
        )

    write_fixture_readme(out, args, pairs, tensors, hp, rows, sanity, trainable, ref_adapter, train_s)
    if not (ok_loss and ok_rewards):
        sys.exit("step-1 check failed")


def fmt(x):
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def write_fixture_readme(out, args, pairs, tensors, hp, rows, sanity, trainable, ref_adapter, train_s):
    v = versions()
    gguf = Path(args.gguf).resolve()
    n_total = sum(len(p["prompt_ids"]) + len(p["chosen_ids"]) + len(p["rejected_ids"]) for p in pairs)
    truncated = []
    for p in pairs:
        cut = [
            f"{part} {full} → {len(p[key])}"
            for part, key, full in zip(("prompt", "chosen", "rejected"), ("prompt_ids", "chosen_ids", "rejected_ids"), p["_untruncated"])
            if full > len(p[key])
        ]
        if cut:
            truncated.append(f"`{p['id']}` ({', '.join(cut)})")
    bs = hp["per_device_train_batch_size"]
    cmd = (
        f"python3 scripts/oracles/dpo_trl.py fixture --gguf {args.gguf} --data {args.data} "
        f"--n {args.n} --out {args.out} --rank {args.rank} --alpha {args.alpha} --seed {args.seed}"
    )
    if args.lr != 1e-4:
        cmd += f" --lr {args.lr}"
    if args.steps != 20:
        cmd += f" --steps {args.steps}"
    if args.golden_greedy:
        cmd += f" --golden-greedy {args.golden_greedy}"
    lines = []
    w = lines.append
    w("# DPO golden fixture: TRL `DPOTrainer` + PEFT LoRA on SmolLM2-135M-Instruct")
    w("")
    w("Produced by `scripts/oracles/dpo_trl.py` (see `scripts/oracles/README.md`); rerun it only to change the")
    w("fixture on purpose, then update the test that asserts against it.")
    w("")
    w("```")
    w(cmd)
    w("```")
    w("")
    w(f"- model: `{gguf.name}` (sha256 `{sha256(gguf)}`), loaded by transformers' GGUF loader, dequantized to f32")
    w("  (tied embeddings: `lm_head` is `embed_tokens`)")
    w(f"- data: the first {args.n} pairs of `{Path(args.data).name}` whose chosen and rejected are both non-empty")
    w(f"- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    w(f"- machine: {machine()}; torch threads {hp['threads']}, float32, CPU; training took {train_s:.0f} s")
    w("")
    w("## Files")
    w("")
    w(f"- `pairs.tokens.jsonl`: {len(pairs)} lines, in training order, `{{\"id\", \"prompt_ids\", \"chosen_ids\", \"rejected_ids\"}}`")
    w(f"  ({n_total} ids in all). These ids are the contract: consume them as-is, do not retokenize.")
    w("  - `prompt_ids`: the HH transcript split into user/assistant turns (each stripped, the final empty")
    w("    `Assistant:` dropped), rendered by the model's chat template with `add_generation_prompt=True` (the template")
    w("    inserts its default system message), tokenized with no extra special tokens; truncated from the left to")
    w(f"    {hp['max_prompt_tokens']} tokens.")
    w("  - `chosen_ids` / `rejected_ids`: `completion.strip()` tokenized with no special tokens, then the end-of-turn")
    w(f"    token `<|im_end|>` (id {pairs[0]['chosen_ids'][-1] if pairs else '?'}) appended; truncated from the right to {hp['max_completion_tokens']} tokens")
    w("    (a completion cut there loses its end-of-turn token).")
    w(f"  - Cut by these limits in this fixture: {', '.join(truncated) if truncated else 'nothing'}.")
    w("- `initial_adapter/`: `adapter_config.json` + `adapter_model.safetensors`, written by PEFT's `save_pretrained`")
    w(f"  after `torch.manual_seed({args.seed})` and `get_peft_model` (A: kaiming-uniform(a=√5), B: zeros), f32.")
    w(f"  r = {args.rank}, lora_alpha = {args.alpha}, so the LoRA scale is alpha/r = {args.alpha / args.rank:g}; no dropout, no bias.")
    if args.rank != 8:
        w(f"  Rank {args.rank}, not 8, to keep the fixture under 3 MB: each rank costs 30 layers × (4,992 A + 5,184 B)")
        w("  f32 values ≈ 1.22 MB, so rank 8 would be 9.8 MB and rank 4 4.9 MB.")
    w("  The tensors are in Hugging Face layout: transformers' GGUF loader un-permutes llama.cpp's Q/K row order, so")
    w("  the `lora_B` rows of `q_proj`/`k_proj` index the *un-permuted* (HF) output rows; a trainer working in GGUF")
    w("  layout must permute those rows when reading and writing this file. A and B of the other modules, and the")
    w("  `lora_A` of q/k (indexed by input features), need no conversion.")
    w(f"  {len(tensors)} tensors, `base_model.model.model.layers.{{0..29}}.{{self_attn|mlp}}.<module>.lora_{{A|B}}.weight`:")
    w("")
    w("  | module | lora_A shape | lora_B shape |")
    w("  |---|---|---|")
    for mod in TARGET_MODULES:
        part = "self_attn" if mod.endswith("proj") and mod[0] in "qkvo" else "mlp"
        a = tensors[f"base_model.model.model.layers.0.{part}.{mod}.lora_A.weight"][0]
        b = tensors[f"base_model.model.model.layers.0.{part}.{mod}.lora_B.weight"][0]
        w(f"  | `{part}.{mod}` | {a} | {b} |")
    w("")
    w("- `hparams.json`: the trainer's arguments (`DPOConfig`), plus what the data and LoRA steps above used.")
    w("- `trl_steps.jsonl`: one line per optimizer step, the values TRL logged for that step (`logging_steps=1`):")
    w("  `loss`, `rewards/chosen`, `rewards/rejected`, `rewards/margins`, `rewards/accuracies`, `logps/chosen`,")
    w("  `logps/rejected` (each the mean over the step's pairs), `grad_norm` (the total L2 norm of the LoRA gradients")
    w("  *before* clipping), `learning_rate` (the lr *used by this step's* update: transformers reads it after")
    w("  `optimizer.step()` and before `lr_scheduler.step()`), `epoch`; plus `pair_ids`/`pair_indices` (the pairs the step")
    w("  saw, identified from the batch's own token rows) and `ref_chosen_logps`/`ref_rejected_logps` (TRL's per-pair")
    w("  reference log-probs, from `precompute_ref_log_probs=True`).")
    w("")
    w("## Order")
    w("")
    w(f"Sequential, no shuffling, epoch after epoch: step k (1-based) trains on pairs {bs}(k−1) mod {len(pairs)} and")
    w(f"{bs}(k−1)+1 mod {len(pairs)} (0-based lines of `pairs.tokens.jsonl`): 0,1 | 2,3 | … | 14,15 | 0,1 | …;")
    w(f"{hp['max_steps']} steps × {bs} pairs = {hp['max_steps'] * bs} pair-visits = {hp['max_steps'] * bs / len(pairs):g} epochs. The script checks the order")
    w("by matching each batch's rows against the pairs.")
    w("")
    w("## What TRL computes (TRL " + v["trl"] + ")")
    w("")
    w("- Batch: the 2 pairs become 4 rows `[prompt+chosen₀, prompt+chosen₁, prompt+rejected₀, prompt+rejected₁]`,")
    w("  right-padded with `<|im_end|>` (id 2), attention mask 0 on padding; no BOS/EOS added, no truncation.")
    w("- log π(y|x) = Σ over completion tokens t of log softmax(logits at position t−1)[token t] (label shift by one;")
    w("  prompt and padding positions masked out; a sum, not a mean).")
    if ref_adapter:
        w("- Reference: the same network with the initial adapter. Given a `PeftModel` and `ref_model=None`, this TRL")
        w("  copies the loaded adapter into a second, frozen adapter named `ref` and switches to it for the reference")
        w("  pass; with B = 0 its LoRA term adds exact zeros, so the reference is the base model (adapter disabled).")
        w("  The reference log-probs were precomputed once per pair before training (`precompute_ref_log_probs=True`,")
        w("  in batches of 2 in training order, same padding as training).")
    else:
        w("- Reference: the base model with the adapter disabled (`precompute_ref_log_probs=True`).")
    w("- loss = mean over the pairs of −log σ(β·((log π_θ(y_c) − log π_ref(y_c)) − (log π_θ(y_r) − log π_ref(y_r)))),")
    w("  β = 0.1; rewards = β·(log π_θ − log π_ref); accuracy = mean of [reward_c > reward_r] (strict).")
    w("- Step: backward; clip the total L2 norm of all LoRA grads to 1.0 (grads × min(1, 1/(norm + 1e-6)));")
    w("  `torch.optim.AdamW` (β₁ 0.9, β₂ 0.999, ε 1e-8 added to √v̂ after bias correction, weight decay 0);")
    w("  then the linear scheduler: lr at step k = lr₀·(N − (k−1))/N with N = max_steps.")
    w(f"- Trainable parameters: {len(trainable)} tensors (the `default` adapter's lora_A/lora_B). With B = 0 the")
    w("  gradient of every lora_A is exactly zero at step 1, so step 1 moves only the B matrices (AdamW turns a zero")
    w("  gradient into a zero update), and step 1's `grad_norm` is the norm of the B gradients alone. The zero")
    w("  gradient still counts as a step for AdamW: the A matrices' moments are updated (with zeros) and their step")
    w("  count, and so the bias corrections, advance with every step like B's.")
    w("- At step 1 policy = reference, so loss = ln 2, every reward 0 and `rewards/accuracies` 0 (the comparison")
    w("  is strict).")
    w("")
    w("## Reproducibility")
    w("")
    w("Three runs of the command above on this machine wrote identical `pairs.tokens.jsonl`, `hparams.json`,")
    w("`adapter_model.safetensors` and `trl_steps.jsonl` (byte for byte; `adapter_config.json` lists")
    w("`target_modules` in set order, which varies). The base here is the GGUF dequantized to f32 and run in f32; a forward")
    w("pass with quantized activations (as llama.cpp's) moves per-token log-probs by up to ~0.2 (see Sanity), so")
    w("a tight comparison needs the base run in f32 from the dequantized weights, as here.")
    w("")
    w("## Sanity")
    w("")
    w(f"- Greedy continuation of the chat prompt {sanity['question']!r}: {sanity['greedy']!r}; first-token top-5")
    w(f"  log-probs {sanity['first_token_top5']}.")
    if "llamacpp" in sanity:
        ll = sanity["llamacpp"]
        w(f"- Against llama.cpp's golden greedy outputs (`{Path(args.golden_greedy).name}`, first {len(ll)} prompts): the")
        w("  rendered prompts and their ids are identical; the log-probs of llama.cpp's greedy tokens differ by at most")
        w(f"  {max(o['max_abs_dlogp'] for o in ll)} (mean {sum(o['mean_abs_dlogp'] for o in ll) / len(ll):.4f}), greedy argmax agreement")
        w(f"  {', '.join(o['greedy_agree'] for o in ll)} (llama.cpp's Q4_1 kernels also quantize the activations; HF runs f32).")
    w(f"- Step 1: loss {rows[0]['loss']:.7f} = ln 2 ({math.log(2):.7f}); rewards {rows[0]['rewards/chosen']}, {rows[0]['rewards/rejected']}.")
    w("")
    w("## The run")
    w("")
    w("| step | pairs | loss | rewards/chosen | rewards/rejected | margins | accuracies | logps/chosen | logps/rejected | grad_norm | learning_rate |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        w(
            f"| {r['step']} | {','.join(map(str, r['pair_indices']))} | {r['loss']:.6f} | {r['rewards/chosen']:.6f} | "
            f"{r['rewards/rejected']:.6f} | {r['rewards/margins']:.6f} | {r['rewards/accuracies']:.2f} | "
            f"{r['logps/chosen']:.4f} | {r['logps/rejected']:.4f} | {r['grad_norm']:.6f} | {r['learning_rate']:.4e} |"
        )
    (out / "README.md").write_text("\n".join(lines) + "\n")


def fixed_length(ids, length):
    """Repeat the sequence's own tokens cyclically (or cut it) to exactly `length` real tokens."""
    return [ids[i % len(ids)] for i in range(length)]


def bench(args):
    torch = set_threads(args.threads)
    load_start = os.getloadavg()
    prompt_len = args.prompt_len if args.max_len is None else args.max_len - args.completion_len
    if prompt_len <= 0:
        sys.exit("--max-len must exceed --completion-len")
    tok, model = load_model(args.gguf)
    raw = tokenize_pairs(tok, args.data, args.pairs, 10**9, 10**9)
    pairs = []
    for p in raw:
        pairs.append(
            {
                "id": p["id"],
                # the prompt's last tokens, so the template's assistant header stays at the end
                "prompt_ids": fixed_length(p["prompt_ids"][::-1], prompt_len)[::-1],
                "chosen_ids": fixed_length(p["chosen_ids"], args.completion_len),
                "rejected_ids": fixed_length(p["rejected_ids"], args.completion_len),
            }
        )
    from peft import LoraConfig, get_peft_model

    hp = {
        "beta": 0.1,
        "loss_type": "sigmoid",
        "learning_rate": 1e-4,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": 1,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "weight_decay": 0.0,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "optim": "adamw_torch",
        "seed": args.seed,
    }
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self):
            self.t = []

        def on_step_begin(self, args_, state, control, **kwargs):
            self.t.append(time.perf_counter())

        def on_step_end(self, args_, state, control, **kwargs):
            self.t.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        # A fresh adapter given to TRL as `peft_config` (the usual TRL setup: the reference is the base with the
        # adapter disabled), so no second copy of the model inflates the peak RSS.
        lora = LoraConfig(
            r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=TARGET_MODULES, bias="none", task_type="CAUSAL_LM"
        )
        timer = Timer()
        trainer, _ = build_trainer(tok, model, None, pairs, hp, tmp, precompute=args.precompute_ref, lookup=False, peft_config=lora)
        trainer.add_callback(timer)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # transformers prints each step's logs; stdout is the JSON line
            trainer.train()
        total = time.perf_counter() - t0
    steps = [(timer.t[2 * i + 1] - timer.t[2 * i]) for i in range(len(timer.t) // 2)]
    timed = steps[1:]
    secs = sum(timed)
    n_pairs = len(timed) * args.batch_size
    seq = prompt_len + args.completion_len
    result = {
        "mode": "bench",
        "impl": "trl",
        "pairs/s": round(n_pairs / secs, 4),
        "tokens/s": round(n_pairs * 2 * seq / secs, 1),
        "step_s": [round(s, 3) for s in steps],
        "timed_steps": len(timed),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_load_mib": round(rss_loaded / 1024, 1),
        "prompt_len": prompt_len,
        "completion_len": args.completion_len,
        "seq_len": seq,
        "batch_size": args.batch_size,
        "pairs": args.pairs,
        "threads": args.threads,
        "lora_r": args.rank,
        "precompute_ref_log_probs": args.precompute_ref,
        "train_wall_s": round(total, 2),
        # other processes on the machine skew the numbers: the 1-minute load average before and after
        "loadavg_1m": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "versions": versions(),
    }
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)

    def common(p):
        p.add_argument("--gguf", required=True, help="path to the GGUF model file")
        p.add_argument("--data", required=True, help="preference pairs JSONL {id, prompt, chosen, rejected, meta}")
        p.add_argument("--rank", type=int, default=8)
        p.add_argument("--alpha", type=float, default=16)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=2)

    f = sub.add_parser("fixture", help="write the golden fixture")
    common(f)
    f.add_argument("--n", type=int, default=16, help="number of pairs")
    f.add_argument("--out", required=True)
    f.add_argument("--lr", type=float, default=1e-4)
    f.add_argument("--steps", type=int, default=20)
    f.add_argument("--max-prompt-tokens", type=int, default=256)
    f.add_argument("--max-completion-tokens", type=int, default=128)
    f.add_argument("--golden-greedy", help="llama.cpp's smollm2_greedy.jsonl: check template, ids and log-probs against it")
    f.add_argument("--save-final", help="also save the trained adapter (PEFT layout) here, outside the fixture")

    b = sub.add_parser("bench", help="throughput of TRL's DPO step on fixed-length pairs")
    common(b)
    b.add_argument("--pairs", type=int, default=32)
    b.add_argument("--prompt-len", type=int, default=256)
    b.add_argument("--completion-len", type=int, default=128)
    b.add_argument("--max-len", type=int, help="total length prompt+completion; sets prompt-len = max-len - completion-len")
    b.add_argument("--batch-size", type=int, default=2)
    b.add_argument("--steps", type=int, default=8)
    b.add_argument("--precompute-ref", action="store_true", help="precompute reference log-probs (untimed) instead of a reference forward each step")

    args = ap.parse_args()
    if args.alpha == int(args.alpha):
        args.alpha = int(args.alpha)
    fixture(args) if args.mode == "fixture" else bench(args)


if __name__ == "__main__":
    main()
