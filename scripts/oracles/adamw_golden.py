"""Golden values for forge-train's optimizer and schedules, from torch and
transformers themselves: torch.optim.AdamW (CPU, float32, default
single-tensor path), torch.nn.utils.clip_grad_norm_, and transformers'
linear / cosine / constant-with-warm-up schedules.

Writes training/tests/golden/adamw.json, asserted by
training/tests/optimizer_golden.rs. Needs torch and transformers
(`pip install torch transformers`, CPU wheels are enough).
"""

import json
import pathlib

import torch
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

OUT = pathlib.Path(__file__).resolve().parents[2] / "training/tests/golden/adamw.json"

# Two parameters and three steps of gradients, fixed numbers (no RNG).
P0 = [[0.5, -0.25, 1.0], [0.125, -1.5, 0.75]]
P1 = [0.3, -0.7, 0.0, 2.0]
GRADS = [
    ([[0.1, -0.2, 0.3], [0.0, 0.5, -0.4]], [1.0, -2.0, 0.5, 0.25]),
    ([[-0.3, 0.1, 0.2], [0.7, -0.1, 0.0]], [0.2, 0.1, -0.3, 0.05]),
    ([[0.05, 0.05, -0.6], [0.2, 0.3, 0.1]], [-1.5, 0.4, 0.9, -0.2]),
]
LR, WD, BETAS, EPS, MAX_NORM = 1e-2, 0.05, (0.9, 0.999), 1e-8, 1.5


def main():
    p0 = torch.nn.Parameter(torch.tensor(P0, dtype=torch.float32))
    p1 = torch.nn.Parameter(torch.tensor(P1, dtype=torch.float32))
    opt = torch.optim.AdamW([p0, p1], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    steps = []
    for g0, g1 in GRADS:
        p0.grad = torch.tensor(g0, dtype=torch.float32)
        p1.grad = torch.tensor(g1, dtype=torch.float32)
        norm = torch.nn.utils.clip_grad_norm_([p0, p1], MAX_NORM)
        opt.step()
        steps.append(
            {
                "grad_norm": norm.item(),
                "p0": p0.detach().tolist(),
                "p1": p1.detach().tolist(),
                "p0_exp_avg": opt.state[p0]["exp_avg"].tolist(),
                "p0_exp_avg_sq": opt.state[p0]["exp_avg_sq"].tolist(),
            }
        )

    def lrs(make, **kw):
        o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        s = make(o, **kw)
        out = []
        for _ in range(12):
            out.append(s.get_last_lr()[0])  # the rate the next update uses
            o.step()
            s.step()
        return out

    schedules = {
        "linear": lrs(get_linear_schedule_with_warmup, num_warmup_steps=3, num_training_steps=10),
        "cosine": lrs(get_cosine_schedule_with_warmup, num_warmup_steps=3, num_training_steps=10),
        "constant": lrs(get_constant_schedule_with_warmup, num_warmup_steps=3),
    }
    golden = {
        "lr": LR,
        "weight_decay": WD,
        "betas": BETAS,
        "eps": EPS,
        "max_grad_norm": MAX_NORM,
        "params": {"p0": P0, "p1": P1},
        "grads": [{"p0": g0, "p1": g1} for g0, g1 in GRADS],
        "steps": steps,
        "schedules": {"base_lr": 1e-3, "warmup_steps": 3, "total_steps": 10, **schedules},
        "torch": torch.__version__,
    }
    OUT.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
