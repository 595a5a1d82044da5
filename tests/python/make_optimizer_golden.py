"""Golden reference for webtune's optimizer: a few steps of torch's Adam and AdamW, with
gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and transformers'
get_linear_schedule_with_warmup, on small parameters with fixed gradients.

Writes tests/data/optimizer_golden.json, which tests/optimizer.rs replays through webtune's
Adam. Rerun (it is deterministic) with the venv of tests/python/requirements.txt:
  target/python-venv/bin/python tests/python/make_optimizer_golden.py
"""
import json, math, os

import torch
import transformers
from transformers import get_linear_schedule_with_warmup

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "optimizer_golden.json")

# name, shape, is_head (the head has its own learning rate, as webtune's classifier + pooler)
PARAMS = [("body.weight", (3, 4), False), ("body.bias", (5,), False), ("head.weight", (2, 3), True)]

SCENARIOS = [
    # The notebook's optimizer: Adam, constant learning rate, separate head rate.
    dict(name="adam_constant", lr=1e-3, head_lr=5e-3, weight_decay=0.0, max_grad_norm=None,
         schedule="constant", warmup_ratio=0.0, steps=5, skip={}),
    # AdamW with clipping and warm-up/decay; body.bias gets no gradient in steps 2 and 3 (torch
    # skips it: no update, and its own step count does not advance).
    dict(name="adamw_linear_warmup_clip", lr=1e-3, head_lr=1e-2, weight_decay=0.01, max_grad_norm=1.0,
         schedule="linear", warmup_ratio=0.3, steps=6, skip={"body.bias": [2, 3]}),
    # Clipping that does not trigger (norm below the maximum) and a warm-up of exactly one step.
    dict(name="adam_linear_noclip", lr=2e-3, head_lr=2e-3, weight_decay=0.0, max_grad_norm=100.0,
         schedule="linear", warmup_ratio=0.1, steps=4, skip={}),
]


def run(sc):
    gen = torch.Generator().manual_seed(1234)
    params = [torch.nn.Parameter(torch.randn(shape, generator=gen)) for _, shape, _ in PARAMS]
    initial = [p.detach().clone() for p in params]
    body = [p for p, (_, _, head) in zip(params, PARAMS) if not head]
    head = [p for p, (_, _, h) in zip(params, PARAMS) if h]
    groups = [{"params": body, "lr": sc["lr"]}, {"params": head, "lr": sc["head_lr"]}]
    if sc["weight_decay"] > 0:
        opt = torch.optim.AdamW(groups, weight_decay=sc["weight_decay"], foreach=False)
    else:
        opt = torch.optim.Adam(groups, foreach=False)
    sched = None
    if sc["schedule"] == "linear":
        warmup = math.ceil(sc["warmup_ratio"] * sc["steps"])  # as TrainingArguments.get_warmup_steps
        sched = get_linear_schedule_with_warmup(opt, warmup, sc["steps"])
    grads, lrs = [], []
    for step in range(sc["steps"]):
        step_grads = {}
        for p, (name, shape, _) in zip(params, PARAMS):
            g = torch.randn(shape, generator=gen) * (3.0 if name == "head.weight" else 0.5)
            if step in sc["skip"].get(name, []):
                p.grad = None
                step_grads[name] = None
            else:
                p.grad = g.clone()
                step_grads[name] = g.flatten().tolist()
        grads.append(step_grads)
        if sc["max_grad_norm"] is not None:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], sc["max_grad_norm"])
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if sched is not None:
            sched.step()
    return {
        **{k: v for k, v in sc.items() if k != "skip"},
        "params": [{"name": n, "shape": list(s), "is_head": h, "initial": p0.flatten().tolist(),
                    "final": p.detach().flatten().tolist()}
                   for (n, s, h), p0, p in zip(PARAMS, initial, params)],
        "grads": grads,
        "learning_rates": lrs,
    }


def main():
    out = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "note": "written by tests/python/make_optimizer_golden.py; do not edit",
        "scenarios": [run(sc) for sc in SCENARIOS],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
