#!/usr/bin/env python3
"""Check a webtune LoRA run's two exports in Python.

Trains `lora:4` (adapters on query, value and the feed-forward output) on the notebook data with
the CLI and exports it, then checks:

  merged   tests/python/check_export.py on the merged export (files, load, labels, tokenizer,
           encoder, probabilities within 1e-4 of `webtune predict`)
  peft     PeftModel.from_pretrained(base model, DIR/adapter) loads with no missing or
           unexpected adapter keys, and its probabilities match `webtune predict` on the merged
           export within 1e-4 (so the adapter, the merge and webtune agree)
  base     the adapter run left the base weights alone: PEFT's base layers are the source
           checkpoint's tensors, bit for bit (and the merged export differs from the base only in
           the adapted projections, the pooler and the classifier)

Usage: target/python-venv/bin/python tests/python/check_lora_export.py
Exits 1 when a check fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-4
SENTENCES = ["I love this product!", "Worst experience ever.", "The delivery was quick and the staff were friendly.", "meh"]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def main() -> int:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import BertForSequenceClassification

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    webtune = ROOT / "target/release/webtune"
    base = ROOT / "models/all-MiniLM-L6-v2"
    failures = 0

    def record(name: str, ok: bool, detail: str) -> None:
        nonlocal failures
        print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)
        failures += 0 if ok else 1

    with tempfile.TemporaryDirectory(prefix="webtune-lora-") as tmp:
        export = Path(tmp) / "lora"
        proc = run([str(webtune), "train", "--model", str(base), "--data", str(ROOT / "data/notebook.tsv"), "--strategy", "lora:4",
                    "--lora-targets", "query,value,output", "--epochs", "2", "--json", "--export", str(export)])
        if proc.returncode != 0:
            record("train", False, "webtune train failed")
            return 1
        proc = run([sys.executable, str(ROOT / "tests/python/check_export.py"), "--export", str(export)])
        record("merged", proc.returncode == 0, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "no output")

        predicted = [json.loads(l) for l in run([str(webtune), "predict", "--model", str(export), "--json", *SENTENCES]).stdout.splitlines() if l.startswith("{")]
        want = torch.tensor([p["probabilities"] for p in predicted], dtype=torch.float64)
        config = json.loads((export / "config.json").read_text())
        labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        model = BertForSequenceClassification.from_pretrained(base, num_labels=len(labels))
        adapter_keys = set(load_file(export / "adapter" / "adapter_model.safetensors"))
        peft_model = PeftModel.from_pretrained(model, export / "adapter")
        peft_model.eval()
        loaded = {n for n, _ in peft_model.named_parameters()}
        unused = [k for k in adapter_keys if not any(k.replace(".weight", "").replace(".bias", "") in n.replace(".default", "").replace(".modules_to_save", "") for n in loaded)]
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(export)
        with torch.no_grad():
            got = torch.softmax(peft_model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits.double(), dim=-1)
        diff = (got - want).abs().max().item()
        record("peft", diff <= TOL and not unused and got.shape == want.shape,
               f"max |Δp| {diff:.2e} over {len(SENTENCES)} sentences; {len(adapter_keys)} adapter tensors" + (f"; unused keys {unused[:3]}" if unused else ""))

        source = load_file(base / "model.safetensors")
        merged = load_file(export / "model.safetensors")
        changed, identical_base = [], True
        for name, tensor in peft_model.named_parameters():
            if ".base_layer." in name:
                key = name.split("base_model.model.bert.", 1)[1].replace(".base_layer", "")
                key = key if key in source else "bert." + key
                identical_base &= torch.equal(tensor.detach(), source[key] if key in source else source[key.removeprefix("bert.")])
        for name, tensor in merged.items():
            src = source.get(name, source.get(name.removeprefix("bert.")))
            if src is not None and not torch.equal(src, tensor):
                changed.append(name)
        adapted = ("attention.self.query", "attention.self.value", ".output.dense", "pooler.")
        unexpected = [n for n in changed if not any(a in n for a in adapted) or "attention.output.dense" in n]
        record("base", identical_base and not unexpected and changed,
               f"PEFT base layers identical to the source: {identical_base}; merged export changed {len(changed)} tensors"
               + (f", unexpected: {unexpected[:3]}" if unexpected else ""))
    print(f"\n{'all passed' if failures == 0 else f'{failures} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
