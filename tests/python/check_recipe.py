#!/usr/bin/env python3
"""Check that an exported recipe (`webtune train --export-script DIR`, the page's "Export
recipe") trains the same recipe as webtune, with PyTorch + transformers + PEFT.

Usage: target/python-venv/bin/python tests/python/check_recipe.py [--skip-seeds] [--skip-processes]

Every webtune side is the real CLI (target/release/webtune train … --json) on
models/all-MiniLM-L6-v2 and data/notebook.tsv; every script side is the exported train.py, run
as a person runs it. Checks:

  same steps   dropout off (a copy of the model whose config.json sets the dropout
               probabilities to 0), seed 0, 4 epochs, for `full` (lr 2e-5), `frozen` (head rate
               1e-2) and `lora:4`: the script's per-step losses are within 1e-4 (relative) of
               webtune's, its learning rates and per-epoch training accuracies are the same
  outputs      the script's record.json has every field www/record.schema.json requires (the
               page's Load results opens it); its model/ loads in webtune (`predict`) and
               transformers, and classifies new sentences as webtune's own export of the same
               run does (probabilities within 1e-3: the two runs' weights differ by float
               rounding only)
  seeds        dropout on (the model as it is), seeds 0-4, `full` and `frozen` at 2e-5: the
               script's training accuracies after the last epoch agree with webtune's within
               the spread of the five seeds, and both show the notebook's pattern (full
               ≥ 90 % on average, frozen ≤ 60 %)
  processes    two processes on this CPU — `accelerate launch --multi_gpu --num_processes 2
               train.py`, the `full` recipe, dropout off; without a GPU the script trains on the
               CPU with gloo — run to the end, write one set of events (one start, one done, as
               many steps as webtune), and the losses match webtune's within 1e-4 (the global
               batch of 2 is split one sentence per process). Not `accelerate launch --cpu
               --num_processes 2`: accelerate 1.16 starts one process for it (its multi-CPU
               mode needs MPI's mpirun).

Prints one line per check and ends with `N passed, N failed`; exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEBTUNE = ROOT / "target/release/webtune"
MODEL = ROOT / "models/all-MiniLM-L6-v2"
DATA = ROOT / "data/notebook.tsv"
LOSS_TOL = 1e-4
PROB_TOL = 1e-3
SEEDS = 5
SENTENCES = ["I love this product!", "Worst experience ever.", "The delivery was quick and the staff were friendly.", "meh"]
SAME_STEP_CASES = [("full", []), ("frozen", ["--head-lr", "1e-2"]), ("lora:4", [])]
THREADS = "2"  # webtune's; the scripts run on one thread each (OMP_NUM_THREADS)


class Checks:
    def __init__(self) -> None:
        self.passed = self.failed = 0

    def record(self, name: str, ok: bool, detail: str) -> bool:
        print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)
        self.passed += ok
        self.failed += not ok
        return ok


def run(cmd: list, env: dict | None = None) -> subprocess.CompletedProcess:
    print("$ " + " ".join(map(str, cmd)), flush=True)
    started = time.monotonic()
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    print(f"  (exit {proc.returncode} in {time.monotonic() - started:.1f} s)", flush=True)
    if proc.returncode != 0:
        print("  " + (proc.stdout[-3000:] + proc.stderr[-3000:]).replace("\n", "\n  "))
    return proc


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e.get("type") == kind]


def model_without_dropout(tmp: Path) -> Path:
    """The offline model with every dropout probability 0 in config.json (weights linked)."""
    folder = tmp / "model-no-dropout"
    folder.mkdir()
    for item in MODEL.iterdir():
        if item.name != "config.json":
            (folder / item.name).symlink_to(item.resolve())
    config = json.loads((MODEL / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=None)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def webtune_train(model: Path, strategy: str, extra: list, seed: int, script_dir: Path, export: Path | None = None) -> list[dict] | None:
    cmd = [WEBTUNE, "train", "--model", model, "--data", DATA, "--strategy", strategy, "--seed", seed, "--threads", THREADS,
           "--json", "--export-script", script_dir, *extra]
    if export:
        cmd += ["--export", export]
    proc = run(cmd)
    return json_lines(proc.stdout) if proc.returncode == 0 else None


def run_script(script_dir: Path, out: Path, launcher: list | None = None, env: dict | None = None) -> tuple[list[dict] | None, subprocess.CompletedProcess]:
    proc = run([*(launcher or [sys.executable]), script_dir / "train.py", "--out", out], env={"OMP_NUM_THREADS": "1", **(env or {})})
    return (json_lines(proc.stdout) if proc.returncode == 0 else None), proc


def compare_steps(ours: list[dict], theirs: list[dict]) -> tuple[bool, str]:
    """Per-step losses (relative), learning rates and per-epoch training accuracies."""
    a, b = of_type(ours, "step"), of_type(theirs, "step")
    if len(a) != len(b) or not a:
        return False, f"{len(b)} steps in the script, {len(a)} in webtune"
    worst, worst_step = 0.0, 0
    for x, y in zip(a, b):
        rel = abs(x["loss"] - y["loss"]) / max(abs(x["loss"]), 1e-12)
        if rel > worst:
            worst, worst_step = rel, x["step"]
    rates = all(abs(x[k] - y[k]) <= 1e-12 + 1e-9 * abs(x[k]) for x, y in zip(a, b) for k in ("lr", "head_lr"))
    acc_a = [e["train_accuracy"] for e in of_type(ours, "epoch")]
    acc_b = [e["train_accuracy"] for e in of_type(theirs, "epoch")]
    same_acc = len(acc_a) == len(acc_b) and all(abs(x - y) < 1e-9 for x, y in zip(acc_a, acc_b))
    ok = worst <= LOSS_TOL and rates and same_acc
    detail = (f"{len(a)} steps, largest relative loss difference {worst:.1e} (step {worst_step}; tolerance {LOSS_TOL:g}), "
              f"losses {a[0]['loss']:.5f} … {a[-1]['loss']:.5f} / {b[0]['loss']:.5f} … {b[-1]['loss']:.5f}, "
              f"learning rates {'equal' if rates else 'DIFFERENT'}, training accuracy per epoch webtune {acc_a} / script {acc_b}")
    return ok, detail


def record_problems(record: dict) -> list[str]:
    """Fields www/record.schema.json requires that the record lacks (top level, model, data,
    options and each event of a listed type)."""
    schema = json.loads((ROOT / "www/record.schema.json").read_text())
    problems = [f"record.{k}" for k in schema["required"] if k not in record]
    for part in ("model", "data", "options"):
        problems += [f"record.{part}.{k}" for k in schema["properties"][part]["required"] if k not in record.get(part, {})]
    problems += [f"record.model.info.{k}" for k in schema["properties"]["model"]["properties"]["info"]["required"] if k not in (record.get("model", {}).get("info") or {})]
    if record.get("format") != "webtune-record" or record.get("version") != 1:
        problems.append("format/version")
    for i, event in enumerate(record.get("events", [])):
        definition = schema["$defs"].get(event.get("type"))
        if definition is None:
            problems.append(f"events[{i}] has an unknown type {event.get('type')!r}")
            continue
        problems += [f"events[{i}] ({event['type']}).{k}" for k in definition["required"] if k not in event]
    return problems


def predict_probabilities(folder: Path) -> tuple[list[list[float]] | None, list[list[float]] | None]:
    """(webtune predict, transformers) probabilities of SENTENCES with the model in `folder`."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    proc = run([WEBTUNE, "predict", "--model", folder, "--json", *SENTENCES])
    ours = [p["probabilities"] for p in json_lines(proc.stdout)] if proc.returncode == 0 else None
    model = BertForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        logits = model(**tokenizer(SENTENCES, padding=True, return_tensors="pt")).logits
    return ours, torch.softmax(logits.double(), dim=-1).tolist()


def max_difference(a, b) -> float:
    return max(abs(x - y) for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b))


def check_same_steps(checks: Checks, tmp: Path, no_dropout: Path) -> dict:
    """The three dropout-off cases; returns webtune's events per strategy (for the process check)."""
    webtune_events = {}
    for strategy, extra in SAME_STEP_CASES:
        name = strategy.replace(":", "-")
        script_dir, export, out = tmp / f"recipe-{name}", tmp / f"export-{name}", tmp / f"out-{name}"
        ours = webtune_train(no_dropout, strategy, extra, 0, script_dir, export)
        if not checks.record(f"same steps: {strategy} webtune train --export-script", ours is not None and script_dir.joinpath("train.py").is_file(),
                             f"{len(of_type(ours or [], 'step'))} steps, recipe in {script_dir}"):
            continue
        webtune_events[strategy] = ours
        theirs, proc = run_script(script_dir, out)
        if not checks.record(f"same steps: {strategy} train.py runs", theirs is not None, f"{len(theirs or [])} events" if theirs else proc.stderr[-500:]):
            continue
        checks.record(f"same steps: {strategy}, dropout off", *compare_steps(ours, theirs))
        record = json.loads((out / "record.json").read_text())
        problems = record_problems(record)
        same_events = record.get("events") == [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()] == theirs
        checks.record(f"outputs: {strategy} record.json", not problems and same_events,
                      f"every field the schema requires, {len(record['events'])} events = events.jsonl = stdout" if not problems and same_events
                      else f"missing {problems[:6]}; events equal: {same_events}")
        script_webtune, script_hf = predict_probabilities(out / "model")
        export_webtune, _ = predict_probabilities(export)
        ok = None not in (script_webtune, export_webtune)
        d_tools = max_difference(script_webtune, script_hf) if ok else float("nan")
        d_runs = max_difference(script_webtune, export_webtune) if ok else float("nan")
        lora_adapter = strategy.startswith("lora:") and (out / "model/adapter/adapter_config.json").is_file()
        checks.record(f"outputs: {strategy} model/", ok and d_tools <= 1e-4 and d_runs <= PROB_TOL and (lora_adapter or not strategy.startswith("lora:")),
                      f"webtune predict vs transformers on it: max |Δp| {d_tools:.1e}; vs webtune's own export of the run: {d_runs:.1e} "
                      f"(tolerance {PROB_TOL:g})" + ("; PEFT adapter in model/adapter" if lora_adapter else ""))
    return webtune_events


def check_seeds(checks: Checks, tmp: Path) -> None:
    finals = {s: {"webtune": [], "script": []} for s in ("full", "frozen")}
    scripts = []
    for seed in range(SEEDS):
        folder = tmp / f"seed-{seed}"
        ours = webtune_train(MODEL, "frozen,full", [], seed, folder)
        if ours is None:
            checks.record(f"seeds: webtune seed {seed}", False, "webtune train failed")
            return
        for strategy in finals:
            finals[strategy]["webtune"].append(next(e["train_accuracy"] for e in of_type(ours, "done") if e["strategy"] == strategy))
            scripts.append((seed, strategy))
    # Each script runs on one thread (OMP_NUM_THREADS=1), so they run side by side, one per core.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda job: run_script(tmp / f"seed-{job[0]}" / job[1], tmp / f"seed-{job[0]}-out-{job[1]}"), scripts))
    for (seed, strategy), (theirs, proc) in zip(scripts, results):
        if theirs is None:
            checks.record(f"seeds: train.py {strategy} seed {seed}", False, proc.stderr[-500:])
            return
        finals[strategy]["script"].append(of_type(theirs, "done")[0]["train_accuracy"])
    for strategy, sides in finals.items():
        w, s = sides["webtune"], sides["script"]
        spread = max(max(w) - min(w), max(s) - min(s), 0.1)  # 0.1: one sentence of ten
        gap = abs(statistics.mean(w) - statistics.mean(s))
        pattern = all(statistics.mean(x) >= 0.9 for x in (w, s)) if strategy == "full" else all(statistics.mean(x) <= 0.6 for x in (w, s))
        checks.record(f"seeds: {strategy} at 2e-5, dropout on, seeds 0-{SEEDS - 1}", gap <= spread and pattern,
                      f"final training accuracy webtune {w} (mean {statistics.mean(w):.2f}), script {s} (mean {statistics.mean(s):.2f}); "
                      f"means differ by {gap:.2f}, spread {spread:.2f}; notebook pattern ({'full ≥ 0.9' if strategy == 'full' else 'frozen ≤ 0.6'}): {pattern}")


def check_processes(checks: Checks, tmp: Path, webtune_events: dict) -> None:
    ours = webtune_events.get("full")
    if ours is None:
        checks.record("processes", False, "no webtune full run to compare with")
        return
    out = tmp / "out-full-2proc"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]
    theirs, proc = run_script(tmp / "recipe-full", out, launcher)
    started = [line for line in proc.stderr.splitlines() if line.startswith("train.py:")]
    if not checks.record("processes: accelerate launch --multi_gpu --num_processes 2 train.py (CPU)",
                         theirs is not None and len(started) == 1 and "on 2 process(es)" in started[0],
                         started[0] if theirs is not None and started else proc.stderr[-800:]):
        return
    written = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    counts = {kind: (len(of_type(theirs, kind)), len(of_type(written, kind))) for kind in ("start", "step", "epoch", "done")}
    one_set = counts["start"] == (1, 1) and counts["done"] == (1, 1) and counts["step"] == (len(of_type(ours, "step")),) * 2
    checks.record("processes: one set of events", one_set, f"(printed, events.jsonl) per type: {counts}")
    checks.record("processes: same steps as webtune, two processes", *compare_steps(ours, theirs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-seeds", action="store_true", help="leave out the five-seed dropout-on check")
    ap.add_argument("--skip-processes", action="store_true", help="leave out the two-process accelerate check")
    args = ap.parse_args()
    if not WEBTUNE.exists():
        print(f"{WEBTUNE} is missing: cargo build --release --bin webtune")
        return 2
    checks = Checks()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="webtune-recipe-") as tmp_name:
        tmp = Path(tmp_name)
        webtune_events = check_same_steps(checks, tmp, model_without_dropout(tmp))
        print(f"  (same steps and outputs: {time.monotonic() - started:.0f} s so far)", flush=True)
        if not args.skip_processes:
            check_processes(checks, tmp, webtune_events)
            print(f"  (processes: {time.monotonic() - started:.0f} s so far)", flush=True)
        if not args.skip_seeds:
            check_seeds(checks, tmp)
    print(f"  (check_recipe.py took {time.monotonic() - started:.0f} s)")
    print(f"\n{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
