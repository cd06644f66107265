#!/usr/bin/env python3
"""The Python half of scripts/bench-cuda.sh.

  bench-cuda.py tokenizer --from SmolLM2.gguf --out tok.gguf
      the tokenizer (and chat template) of a GGUF, no tensors: ~2 MB to
      carry to a machine that cannot fetch the model
  bench-cuda.py model --tokenizer tok.gguf --out DIR [--seed 0]
      a random-weight llama of SmolLM2-135M's shape, written as GGUF
      (DIR/model-q8_0.gguf, DIR/model-q4_0.gguf) with the gguf package
  bench-cuda.py peer --out F.json [--seed 0] [--npl 1,8,32,64] ...
      HF transformers' batched greedy `generate` on the SAME weights (bf16
      and f16, static and dynamic KV cache): decode tok/s per batch size,
      prefill tok/s at 512 tokens, peak GPU memory

The weights come from one seeded numpy generator, so `model` and `peer`
build the same network without writing it twice. Magnitudes: embeddings
N(0, 1) (tied output head: logits of a few tens, clear top choices, so
greedy agreement between two engines measures arithmetic, not noise),
matrices N(0, 1/fan_in), the MLPs' output projections x 0.3 (see
weights()). Such a model continues mostly from its last token: agreement
runs on raw prompts (`peer_bench agree --raw`), whose last tokens differ.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

# SmolLM2-135M's shape (what forge's default model is).
SHAPE = dict(
    vocab=49152, d=576, ff=1536, layers=30, heads=9, kv_heads=3,
    rope_base=100000.0, eps=1e-5, ctx=8192,
)


def weights(seed):
    """HF-named f32 arrays, generated layer by layer in a fixed order."""
    s = SHAPE
    rng = np.random.default_rng(seed)
    hd = s["d"] // s["heads"]

    def mat(rows, cols, scale=1.0):
        std = scale / np.sqrt(cols)
        return (rng.standard_normal((rows, cols), dtype=np.float32) * std).astype(np.float32)

    # The MLPs' output projections scaled by 0.3: thirty random blocks at
    # full scale are chaotic (f16 instead of f32 keys moves a logit by
    # nats, and two engines' greedy agreement would measure the chaos, not
    # their arithmetic); smaller still, every prompt gets the same
    # continuation.
    attn_scale, mlp_scale = 1.0, 0.3

    w = {"model.embed_tokens.weight": rng.standard_normal((s["vocab"], s["d"]), dtype=np.float32)}
    for i in range(s["layers"]):
        p = f"model.layers.{i}"
        w[f"{p}.self_attn.q_proj.weight"] = mat(s["heads"] * hd, s["d"])
        w[f"{p}.self_attn.k_proj.weight"] = mat(s["kv_heads"] * hd, s["d"])
        w[f"{p}.self_attn.v_proj.weight"] = mat(s["kv_heads"] * hd, s["d"])
        w[f"{p}.self_attn.o_proj.weight"] = mat(s["d"], s["heads"] * hd, attn_scale)
        w[f"{p}.mlp.gate_proj.weight"] = mat(s["ff"], s["d"])
        w[f"{p}.mlp.up_proj.weight"] = mat(s["ff"], s["d"])
        w[f"{p}.mlp.down_proj.weight"] = mat(s["d"], s["ff"], mlp_scale)
        w[f"{p}.input_layernorm.weight"] = np.ones(s["d"], np.float32)
        w[f"{p}.post_attention_layernorm.weight"] = np.ones(s["d"], np.float32)
    w["model.norm.weight"] = np.ones(s["d"], np.float32)
    return w


def permute(w, heads):
    """HF's rotate-half Q/K rows → GGUF's interleaved pairs (as llama.cpp's
    convert_hf_to_gguf.py does)."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def cmd_tokenizer(a):
    import gguf

    r = gguf.GGUFReader(a.src)
    out = gguf.GGUFWriter(a.out, "llama")
    for k, f in r.fields.items():
        if not k.startswith("tokenizer."):
            continue
        copy_field(out, k, f)
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()


def copy_field(out, key, field):
    import gguf

    T = gguf.GGUFValueType
    add = {
        T.ARRAY: out.add_array, T.STRING: out.add_string, T.BOOL: out.add_bool,
        T.UINT32: out.add_uint32, T.INT32: out.add_int32, T.FLOAT32: out.add_float32,
    }.get(field.types[0])
    if add is None:
        raise SystemExit(f"{key}: unhandled GGUF type {field.types[0]}")
    add(key, field.contents())


def cmd_model(a):
    import gguf

    s = SHAPE
    w = weights(a.seed)
    tok = gguf.GGUFReader(a.tokenizer)
    os.makedirs(a.out, exist_ok=True)
    for name, qtype in [("q8_0", gguf.GGMLQuantizationType.Q8_0), ("q4_0", gguf.GGMLQuantizationType.Q4_0)]:
        path = os.path.join(a.out, f"model-{name}.gguf")
        out = gguf.GGUFWriter(path, "llama")
        out.add_name(f"random SmolLM2-135M shape, seed {a.seed}")
        out.add_context_length(s["ctx"])
        out.add_embedding_length(s["d"])
        out.add_block_count(s["layers"])
        out.add_feed_forward_length(s["ff"])
        out.add_head_count(s["heads"])
        out.add_head_count_kv(s["kv_heads"])
        out.add_rope_dimension_count(s["d"] // s["heads"])
        out.add_rope_freq_base(s["rope_base"])
        out.add_layer_norm_rms_eps(s["eps"])
        out.add_vocab_size(s["vocab"])
        for k, f in tok.fields.items():
            if k.startswith("tokenizer."):
                copy_field(out, k, f)

        def q(gname, arr):
            data = gguf.quants.quantize(arr, qtype)
            out.add_tensor(gname, data, raw_dtype=qtype)

        q("token_embd.weight", w["model.embed_tokens.weight"])
        for i in range(s["layers"]):
            p, b = f"model.layers.{i}", f"blk.{i}"
            out.add_tensor(f"{b}.attn_norm.weight", w[f"{p}.input_layernorm.weight"])
            q(f"{b}.attn_q.weight", permute(w[f"{p}.self_attn.q_proj.weight"], s["heads"]))
            q(f"{b}.attn_k.weight", permute(w[f"{p}.self_attn.k_proj.weight"], s["kv_heads"]))
            q(f"{b}.attn_v.weight", w[f"{p}.self_attn.v_proj.weight"])
            q(f"{b}.attn_output.weight", w[f"{p}.self_attn.o_proj.weight"])
            out.add_tensor(f"{b}.ffn_norm.weight", w[f"{p}.post_attention_layernorm.weight"])
            q(f"{b}.ffn_gate.weight", w[f"{p}.mlp.gate_proj.weight"])
            q(f"{b}.ffn_up.weight", w[f"{p}.mlp.up_proj.weight"])
            q(f"{b}.ffn_down.weight", w[f"{p}.mlp.down_proj.weight"])
        out.add_tensor("output_norm.weight", w["model.norm.weight"])
        out.write_header_to_file()
        out.write_kv_data_to_file()
        out.write_tensors_to_file()
        out.close()
        print(f"wrote {path} ({os.path.getsize(path) >> 20} MiB)", file=sys.stderr)


def hf_model(seed, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    s = SHAPE
    cfg = LlamaConfig(
        vocab_size=s["vocab"], hidden_size=s["d"], intermediate_size=s["ff"],
        num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
        num_key_value_heads=s["kv_heads"], rms_norm_eps=s["eps"],
        rope_theta=s["rope_base"], max_position_embeddings=s["ctx"],
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    state = {k: torch.from_numpy(v) for k, v in weights(seed).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # The tied head is the embedding: nothing else may be left out.
    assert all("lm_head" in k for k in missing) and not unexpected, (missing, unexpected)
    model.tie_weights()
    return model.to(device="cuda", dtype=dtype).eval()


def cmd_peer(a):
    import torch

    results = {"engine": "hf-transformers", "torch": torch.__version__}
    import transformers

    results["transformers"] = transformers.__version__
    results["gpu"] = torch.cuda.get_device_name(0)
    npl = [int(x) for x in a.npl.split(",")]
    g = torch.Generator().manual_seed(0)
    rows = []
    for dtype_name in a.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        model = hf_model(a.seed, dtype)
        for cache in a.caches.split(","):
            # Eager PyTorch, as `generate` runs by default; with the static
            # cache, transformers would otherwise torch.compile the decode
            # step per batch shape (minutes of compilation per shape).
            kw = dict(do_sample=False, pad_token_id=2, disable_compile=True)
            if cache == "static":
                kw["cache_implementation"] = "static"

            def gen(ids, n):
                torch.cuda.synchronize()
                t = time.perf_counter()
                with torch.inference_mode():
                    # min_new_tokens holds the end token back: every row
                    # generates exactly n tokens.
                    def run():
                        return model.generate(ids, attention_mask=torch.ones_like(ids),
                                              max_new_tokens=n, min_new_tokens=n, **kw)
                    try:
                        out = run()
                    except (TypeError, ValueError) as e:
                        if "disable_compile" not in str(e):
                            raise
                        kw.pop("disable_compile")
                        out = run()
                torch.cuda.synchronize()
                assert out.shape[1] == ids.shape[1] + n, out.shape
                return time.perf_counter() - t

            # Prefill: one 512-token sequence, 1 new token.
            ids = torch.randint(3, SHAPE["vocab"], (1, 512), generator=g).cuda()
            gen(ids, 1)
            pp = min(gen(ids, 1) for _ in range(3))
            for b in npl:
                ids = torch.randint(3, SHAPE["vocab"], (b, a.npp), generator=g).cuda()
                torch.cuda.reset_peak_memory_stats()
                gen(ids, 4)  # warm-up (and the static cache's allocation)
                t1 = min(gen(ids, 1) for _ in range(2))
                tn = min(gen(ids, a.ntg) for _ in range(2))
                tok_s = b * (a.ntg - 1) / (tn - t1)
                rows.append({
                    "dtype": dtype_name, "cache": cache, "npl": b, "npp": a.npp, "ntg": a.ntg,
                    "tg_tok_s": tok_s, "pp512_tok_s": 512 / pp,
                    "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20,
                    "device_used_mib": (lambda f, t: (t - f) / 2**20)(*torch.cuda.mem_get_info()),
                })
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        del model
        torch.cuda.empty_cache()
    results["rows"] = rows
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenizer")
    t.add_argument("--from", dest="src", required=True)
    t.add_argument("--out", required=True)
    m = sub.add_parser("model")
    m.add_argument("--tokenizer", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("peer")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--npl", default="1,8,32,64")
    p.add_argument("--npp", type=int, default=32)
    p.add_argument("--ntg", type=int, default=128)
    p.add_argument("--dtypes", default="bfloat16,float16")
    p.add_argument("--caches", default="static,dynamic")
    a = ap.parse_args()
    {"tokenizer": cmd_tokenizer, "model": cmd_model, "peer": cmd_peer}[a.cmd](a)


if __name__ == "__main__":
    main()
