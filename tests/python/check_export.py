#!/usr/bin/env python3
"""Check that Hugging Face transformers loads a webtune export and agrees with webtune on it.

Usage (from anywhere; paths default to the repository this file is in):

    python tests/python/check_export.py                  # train + export with the CLI, then check
    python tests/python/check_export.py --export DIR     # check an existing export (no training)
    python tests/python/check_export.py --keep DIR       # train into DIR and keep it

By default it runs

    target/release/webtune train --model models/all-MiniLM-L6-v2 --data data/notebook.tsv \
        --strategy top:2 --epochs 1 --export <tmpdir>

(building the binary with `cargo build --release --bin webtune` first if it is missing, or always
with --build), then checks, in this order:

  files        the export folder has config.json, tokenizer.json and model.safetensors
  load         BertForSequenceClassification.from_pretrained(DIR, output_loading_info=True)
               reports no missing / unexpected / mismatched keys and no error messages
  frozen       (top:K only) the weights top:K must not train are bit-identical to the source
               checkpoint's, and the ones it trains changed, by no more than Adam can move them
               (10 × lr × steps: a weight written transposed or misplaced fails this even when
               transformers and webtune agree on the file)
  labels       config.id2label / label2id / num_labels are consistent with each other, with the
               training data's labels and with the `labels` `webtune predict` reports
  tokenizer    AutoTokenizer.from_pretrained(DIR) and PreTrainedTokenizerFast(tokenizer_file=…)
               load, and give the same token ids as `webtune encode --json`
  encoder      transformers' [CLS] last hidden state and pooler output match `webtune encode`
               within 1e-4
  probs        softmax(logits) of transformers (fp32, eval mode, one padded batch and each
               sentence alone) match `webtune predict --json` within 1e-4, and the argmax labels
               are the same

Prints one line per check and ends with `N passed, N failed`; exits 1 when a check fails
(2 when it could not run at all). Requirements: tests/python/requirements.txt — on Linux PyPI's
torch wheel pulls the CUDA runtime: `pip install -r tests/python/requirements.txt` into a fresh
venv downloaded ≈3.0 GB (5.6 GB installed) and took ≈2 min 20 s on the 2-core dev machine.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-4
SENTENCES = [
    "I love this product!",                       # training sentences
    "Worst experience ever.",
    "The delivery was quick and the staff were friendly.",  # unseen
    "I'm not sure how I feel about it, honestly...",
    "Café crème, naïve résumé — 10/10 would buy again!!",  # accents, punctuation, digits
    "meh",
    "This is by far the most disappointing purchase I have made in years, and the support team "
    "never answered a single one of my four emails about the broken hinge.",  # longer
]


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.failures: list[str] = []

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        status = "PASS" if ok else "FAIL"
        print(f"[{status}] {name}" + (f": {detail}" if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(name)
        return ok


def run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    print(f"$ {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    print(f"  ({what}: exit {proc.returncode} in {time.monotonic() - t0:.1f} s)", flush=True)
    return proc


def tail(text: str, n: int = 20) -> str:
    lines = text.strip().splitlines()
    return "\n    ".join(lines[-n:])


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def data_labels(path: Path) -> list[str]:
    """Distinct labels of a labelled TSV (header `text<TAB>label`), in webtune's id order:
    numeric when every label is an integer, else by string."""
    labels = set()
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if line.strip():
            labels.add(line.rsplit("\t", 1)[1].strip())
    try:
        return sorted(labels, key=lambda l: (int(l), l))
    except ValueError:
        return sorted(labels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webtune", type=Path, default=ROOT / "target/release/webtune", help="the webtune binary")
    ap.add_argument("--model", type=Path, default=ROOT / "models/all-MiniLM-L6-v2", help="source model folder")
    ap.add_argument("--data", type=Path, default=ROOT / "data/notebook.tsv")
    ap.add_argument("--strategy", help="strategy to train with (default top:2); with --export, the strategy the "
                    "export was trained with (enables the frozen-weights check)")
    ap.add_argument("--steps", type=int, default=5, help="with --export: optimizer steps it was trained for (5)")
    ap.add_argument("--lr", type=float, default=2e-5, help="with --export: its learning rate (2e-5)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--export", type=Path, help="check this existing export instead of training one")
    ap.add_argument("--keep", type=Path, help="train into this folder and keep it (default: a temp folder)")
    ap.add_argument("--build", action="store_true", help="run `cargo build --release --bin webtune` first")
    args = ap.parse_args()

    checks = Checks()
    try:
        return check(args, checks)
    finally:
        print(f"\n{checks.passed} passed, {checks.failed} failed", flush=True)


def check(args: argparse.Namespace, checks: Checks) -> int:
    # transformers and torch are imported late so that --help works without them.
    import numpy as np
    import torch
    import transformers
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer, BertForSequenceClassification, PreTrainedTokenizerFast

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}")

    webtune = args.webtune
    if args.build or not webtune.exists():
        proc = run(["cargo", "build", "--release", "--bin", "webtune"], "build")
        if not checks.record("build", proc.returncode == 0, "" if proc.returncode == 0 else tail(proc.stderr)):
            return 2

    cleanup = None
    if args.export is not None:
        export = args.export.resolve()
        strategy = args.strategy  # None: unknown, the frozen-weights check is skipped
    else:
        if args.keep:
            export = args.keep.resolve()
            if export.exists():
                shutil.rmtree(export)
        else:
            cleanup = tempfile.mkdtemp(prefix="webtune-export-")
            export = Path(cleanup) / "export"
        strategy = args.strategy or "top:2"
        proc = run([str(webtune), "train", "--model", str(args.model), "--data", str(args.data),
                    "--strategy", strategy, "--epochs", str(args.epochs), "--json", "--export", str(export)], "train")
        events = json_lines(proc.stdout) if proc.returncode == 0 else []
        done = [e for e in events if e.get("type") == "done"]
        args.steps = done[0]["steps"] if done else 0
        args.lr = max([e["lr"] for e in events if e.get("type") == "step"] or [2e-5])
        detail = (f"{strategy}, {args.epochs} epoch(s): {done[0]['steps']} steps, train accuracy "
                  f"{done[0]['train_accuracy']:.2f}, {done[0]['elapsed_ms'] / 1000:.1f} s → {export}") if done else tail(proc.stderr + proc.stdout)
        if not checks.record("train + export (webtune CLI)", proc.returncode == 0 and len(done) == 1, detail):
            return 2
    try:
        return check_export(args, checks, webtune, export, strategy, np, torch, load_file,
                            AutoTokenizer, BertForSequenceClassification, PreTrainedTokenizerFast)
    finally:
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)


def check_export(args, checks, webtune, export, strategy, np, torch, load_file,
                 AutoTokenizer, BertForSequenceClassification, PreTrainedTokenizerFast) -> int:
    files = ["config.json", "tokenizer.json", "model.safetensors"]
    sizes = {f: (export / f).stat().st_size for f in files if (export / f).is_file()}
    if not checks.record("files", len(sizes) == 3, ", ".join(f"{f} {s} B" for f, s in sizes.items())
                         + ("" if len(sizes) == 3 else f"; missing {[f for f in files if f not in sizes]}")):
        return 1

    # --- load -----------------------------------------------------------------------------------
    # transformers' own warnings (e.g. "Some weights … newly initialized") are shown as well.
    log_records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                log_records.append(record.getMessage())

    handler = Collect()
    logging.getLogger("transformers").addHandler(handler)
    try:
        model, info = BertForSequenceClassification.from_pretrained(str(export), output_loading_info=True)
    except Exception as e:  # noqa: BLE001 — any failure to load is the finding
        checks.record("load: BertForSequenceClassification.from_pretrained", False, f"{type(e).__name__}: {e}")
        return 1
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    problems = {k: sorted(map(str, v)) for k, v in info.items() if v}
    detail = "missing/unexpected/mismatched keys and error_msgs all empty" if not problems else json.dumps(problems)[:2000]
    checks.record("load: BertForSequenceClassification.from_pretrained(output_loading_info=True)", not problems, detail)
    for msg in log_records:
        print(f"  transformers warning: {msg[:500]}")
    model.eval()
    model.float()
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    print(f"  loaded: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, {n_params} parameters, dtype {next(model.parameters()).dtype}")

    # --- frozen weights untouched (top:K), trained ones changed --------------------------------
    if strategy and strategy.startswith("top:") and (args.model / "model.safetensors").is_file():
        k = int(strategy[4:])
        layers = cfg.num_hidden_layers
        src = load_file(str(args.model / "model.safetensors"))
        out = load_file(str(export / "model.safetensors"))
        src = {(n[5:] if n.startswith("bert.") else n): v for n, v in src.items()}
        # Adam moves a weight by about lr per step: a trained tensor far from its source was
        # written wrongly (e.g. transposed), even if transformers and webtune agree on the file.
        bound = 10 * args.lr * max(1, args.steps)
        unchanged_bad, changed_bad, moved_bad, compared_frozen, compared_trained = [], [], [], 0, 0
        largest_move = 0.0
        for name, tensor in out.items():
            if not name.startswith("bert."):
                continue
            canon = name[5:]
            if canon not in src:
                continue  # e.g. a pooler the source did not have
            parts = canon.split(".")
            trained = canon.startswith("pooler.") or (
                canon.startswith("encoder.layer.") and int(parts[2]) + k >= layers)
            same = src[canon].shape == tensor.shape and np.array_equal(src[canon].astype(np.float32), tensor)
            if trained:
                compared_trained += 1
                if same:
                    changed_bad.append(canon)
                elif src[canon].shape == tensor.shape:
                    move = float(np.abs(src[canon].astype(np.float32) - tensor).max())
                    largest_move = max(largest_move, move)
                    if move > bound:
                        moved_bad.append(f"{canon} by {move:.3g}")
                else:
                    moved_bad.append(f"{canon} shape {tensor.shape} vs source {src[canon].shape}")
            else:
                compared_frozen += 1
                if not same:
                    unchanged_bad.append(canon)
        ok = not unchanged_bad and not changed_bad and not moved_bad and compared_frozen > 0 and compared_trained > 0
        detail = (f"{compared_frozen} frozen tensors bit-identical to the source, {compared_trained} trained tensors "
                  f"changed by at most {largest_move:.2g} (bound 10 × lr × steps = {bound:.2g})"
                  if ok else f"frozen but changed: {unchanged_bad[:8]}; trained but unchanged: {changed_bad[:8]}; "
                  f"moved too far: {moved_bad[:8]}")
        checks.record(f"frozen: {strategy} left the other weights alone", ok, detail)

    # --- webtune's own view of the export -------------------------------------------------------
    proc = run([str(webtune), "predict", "--model", str(export), "--json", *SENTENCES], "predict")
    preds = json_lines(proc.stdout) if proc.returncode == 0 else []
    if not checks.record("webtune predict --json", proc.returncode == 0 and len(preds) == len(SENTENCES),
                         f"{len(preds)} predictions" if proc.returncode == 0 else tail(proc.stderr)):
        return 1
    proc = run([str(webtune), "encode", "--model", str(export), "--json", *SENTENCES], "encode")
    encodings = json_lines(proc.stdout) if proc.returncode == 0 else []
    checks.record("webtune encode --json", proc.returncode == 0 and len(encodings) == len(SENTENCES),
                  f"{len(encodings)} encodings" if proc.returncode == 0 else tail(proc.stderr))

    # --- labels ---------------------------------------------------------------------------------
    raw_config = json.loads((export / "config.json").read_text(encoding="utf-8"))
    raw_id2label = raw_config.get("id2label", {})
    id2label = {int(i): str(l) for i, l in cfg.id2label.items()}
    label2id = {str(l): int(i) for l, i in cfg.label2id.items()}
    webtune_labels = preds[0]["labels"]
    expected = data_labels(args.data) if args.export is None else webtune_labels
    problems = []
    if [id2label[i] for i in sorted(id2label)] != webtune_labels:
        problems.append(f"model.config.id2label {id2label} vs webtune predict labels {webtune_labels}")
    if {int(i): l for i, l in raw_id2label.items()} != id2label:
        problems.append(f"config.json id2label {raw_id2label} vs model.config.id2label {id2label}")
    if label2id != {l: i for i, l in id2label.items()}:
        problems.append(f"label2id {label2id} is not the inverse of id2label {id2label}")
    if cfg.num_labels != len(id2label) or model.classifier.out_features != len(id2label):
        problems.append(f"num_labels {cfg.num_labels}, classifier outputs {model.classifier.out_features}, {len(id2label)} labels")
    if webtune_labels != expected:
        problems.append(f"labels {webtune_labels} vs the training data's {expected}")
    if raw_config.get("architectures") != ["BertForSequenceClassification"]:
        problems.append(f"architectures {raw_config.get('architectures')}")
    checks.record("labels: config.id2label", not problems,
                  f"id2label {id2label}, label2id {label2id}, num_labels {cfg.num_labels}" if not problems else "; ".join(problems))

    # --- tokenizer ------------------------------------------------------------------------------
    tokenizer = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(export))
        checks.record("tokenizer: AutoTokenizer.from_pretrained", True, f"{type(tokenizer).__name__}, vocab {len(tokenizer)}")
    except Exception as e:  # noqa: BLE001
        checks.record("tokenizer: AutoTokenizer.from_pretrained", False, f"{type(e).__name__}: {e}")
    try:
        fast = PreTrainedTokenizerFast(tokenizer_file=str(export / "tokenizer.json"))
        checks.record("tokenizer: PreTrainedTokenizerFast(tokenizer_file=…)", True, f"vocab {len(fast)}")
    except Exception as e:  # noqa: BLE001
        fast = None
        checks.record("tokenizer: PreTrainedTokenizerFast(tokenizer_file=…)", False, f"{type(e).__name__}: {e}")
    if tokenizer is None:
        tokenizer = fast
    if tokenizer is None:
        return 1
    if encodings:
        mismatched = []
        for text, enc in zip(SENTENCES, encodings):
            for name, tok in (("AutoTokenizer", tokenizer), ("PreTrainedTokenizerFast", fast)):
                if tok is None:
                    continue
                ids = tok(text, truncation=True, max_length=128)["input_ids"]
                if list(ids) != list(enc["input_ids"]):
                    mismatched.append(f"{name} {text!r}: {ids} vs webtune {enc['input_ids']}")
        checks.record("tokenizer: ids equal webtune encode's", not mismatched,
                      f"{len(SENTENCES)} sentences" if not mismatched else "; ".join(mismatched)[:2000])

    # --- encoder outputs (the export's weights, without the classifier) ------------------------
    if encodings:
        worst, worst_text = 0.0, ""
        with torch.no_grad():
            for text, enc in zip(SENTENCES, encodings):
                out = model.bert(**tokenizer([text], truncation=True, max_length=128, return_tensors="pt"))
                pooled = out.pooler_output[0].double().numpy()
                cls = out.last_hidden_state[0, 0].double().numpy()
                d = max(float(np.abs(pooled - np.array(enc["pooled"])).max()), float(np.abs(cls - np.array(enc["cls"])).max()))
                if d > worst:
                    worst, worst_text = d, text
        checks.record("encoder: [CLS] hidden state and pooler output vs webtune encode", worst <= TOL,
                      f"max |Δ| = {worst:.2e} (tolerance {TOL:g})" + (f", worst {worst_text!r}" if worst > TOL else ""))

    # --- probabilities --------------------------------------------------------------------------
    webtune_probs = np.array([p["probabilities"] for p in preds], dtype=np.float64)
    with torch.no_grad():
        batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
        batched = torch.softmax(model(**batch).logits.float(), dim=-1).double().numpy()
        single = np.concatenate([
            torch.softmax(model(**tokenizer([s], truncation=True, max_length=128, return_tensors="pt")).logits.float(), dim=-1).double().numpy()
            for s in SENTENCES])
    print(f"  {'sentence':<52} {'webtune':>22} {'transformers':>22} {'max |Δ|':>9}")
    for text, w, t in zip(SENTENCES, webtune_probs, single):
        short = text if len(text) <= 50 else text[:47] + "..."
        print(f"  {short:<52} {np.array2string(w, precision=6):>22} {np.array2string(t, precision=6):>22} {np.abs(w - t).max():9.2e}")
    for what, theirs in (("each sentence alone", single), ("one padded batch", batched)):
        diff = float(np.abs(theirs - webtune_probs).max())
        same_argmax = bool((theirs.argmax(1) == webtune_probs.argmax(1)).all())
        checks.record(f"probs: transformers ({what}) vs webtune predict", diff <= TOL and same_argmax,
                      f"max |Δp| = {diff:.2e} (tolerance {TOL:g}), argmax {'equal' if same_argmax else 'DIFFERENT'}")
    # Log-odds differences are not damped by softmax saturation or near-uniform outputs.
    logodds = lambda p: np.log(np.clip(p, 1e-300, None)) - np.log(np.clip(p, 1e-300, None)).mean(1, keepdims=True)
    print(f"  (info) max |Δ centred log-probabilities| = {np.abs(logodds(single) - logodds(webtune_probs)).max():.2e}")
    labels_by_webtune = [p["label"] for p in preds]
    labels_by_hf = [model.config.id2label[int(i)] for i in single.argmax(1)]
    checks.record("probs: predicted labels", labels_by_webtune == labels_by_hf,
                  f"webtune {labels_by_webtune} / transformers {labels_by_hf}")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
