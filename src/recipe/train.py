#!/usr/bin/env python3
"""A webtune recipe as a PyTorch script: the training of the webtune run it was exported from —
model, strategy, optimizer, learning rates, schedule, batches, epochs, evaluation — with
PyTorch, transformers and (for lora:R) PEFT, under accelerate, on a CPU, one GPU or many.

    python train.py                                      # CPU, or one GPU when there is one
    accelerate launch --multi_gpu --num_processes 4 train.py   # four GPUs
    torchrun --nproc_per_node 4 train.py                 # the same with torchrun
    torchrun --nproc_per_node 2 train.py                 # no GPU: two processes on the CPU

The recipe's values are in recipe.json beside this file. The choices webtune makes itself —
each epoch's data order, the training sentences accuracy is measured on, the classifier's and
LoRA A's initial weights — are in order.json and init.safetensors, and this script uses them,
so its run can be compared with webtune's step by step. With other data (--train) or more
epochs than the recipe had, it draws its own order from the seed instead.

It prints webtune's events (`webtune train --json`'s JSON lines: start, step, epoch, done) and
writes into --out: events.jsonl, record.json (a results record the page's "Load results" opens)
and model/ (transformers' from_pretrained folder; a LoRA run's merged model, with the PEFT
adapter in model/adapter). README.md has the commands and the details.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="pre-trained model: a folder, or a hub id (default: recipe.json's)")
    ap.add_argument("--revision", help="hub revision of --model (default: recipe.json's, or main)")
    ap.add_argument("--train", type=Path, help="training data (TSV/CSV with text and label columns, or label<TAB>text lines); default: the recipe's")
    ap.add_argument("--validation", type=Path, help="validation data (default: the recipe's, if any)")
    ap.add_argument("--epochs", type=int, help="default: the recipe's")
    ap.add_argument("--batch-size", type=int, help="the global batch, over all processes (default: the recipe's)")
    ap.add_argument("--seed", type=int, help="default: the recipe's")
    ap.add_argument("--own-order", action="store_true", help="draw the data order and initial weights from the seed instead of using webtune's")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where events.jsonl, record.json and model/ go (default: out/ beside this script)")
    ap.add_argument("--quiet", action="store_true", help="do not print the events")
    return ap.parse_args()


# --- data ----------------------------------------------------------------------------------


def read_labelled(path: Path) -> list[tuple[str, str]]:
    """(text, label) rows of a file in webtune's formats: a header naming a text (or sentence)
    and a label column, tab- or comma-separated, or header-less label<TAB>text lines."""
    text = path.read_text(encoding="utf-8-sig")
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        sys.exit(f"{path}: no labelled sentences")
    delimiter = "\t" if "\t" in first else ","
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    header = [c.strip().lower() for c in rows[0]]
    if "label" in header and ("text" in header or "sentence" in header):
        text_at, label_at = header.index("text" if "text" in header else "sentence"), header.index("label")
        rows = rows[1:]
    elif delimiter == "\t":
        text_at, label_at = 1, 0
    else:
        sys.exit(f"{path}: the first line is not a header with text and label columns, nor label<TAB>text")
    out = []
    for number, row in enumerate(rows, start=1):
        if len(row) <= max(text_at, label_at) or not row[text_at].strip() or not row[label_at].strip():
            sys.exit(f"{path}: record {number} has no text or no label: {row!r}")
        out.append((row[text_at].strip(), row[label_at].strip()))
    return out


def class_names(labels: set[str], recipe_labels: list[str]) -> list[str]:
    """The recipe's classes when they cover the data; else webtune's order (numeric when every
    label is an integer, else sorted)."""
    if labels <= set(recipe_labels):
        return list(recipe_labels)
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


# --- the model and the strategy --------------------------------------------------------------

# The head: the dense layer on the first token (BERT's pooler, DistilBERT's pre_classifier,
# RoBERTa's classifier.dense) and the classifier; it trains at the head's learning rate.
HEAD = re.compile(r"(^|\.)(pooler|pre_classifier|classifier)\.")

# What differs between the model families webtune trains (its src/architecture.rs): the base
# model's attribute, the dense layer on the first token, the modules PEFT trains beside the
# adapters, and whether the model reads token types.
FAMILIES = {
    "bert": {"base": "bert", "dense": "bert.pooler.dense", "modules_to_save": ["pooler", "classifier"], "token_types": True},
    "distilbert": {"base": "distilbert", "dense": "pre_classifier", "modules_to_save": ["pre_classifier", "classifier"], "token_types": False},
    "roberta": {"base": "roberta", "dense": "classifier.dense", "modules_to_save": ["classifier"], "token_types": False},
}
FAMILIES["xlm-roberta"] = FAMILIES["roberta"]


def family(model) -> dict:
    return FAMILIES[model.config.model_type]


def load_model(model_ref: str, revision: str | None, labels: list[str], init: dict):
    """The checkpoint's ...ForSequenceClassification with webtune's initial classifier (and the
    dense layer on the first token, where the checkpoint has none)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    kwargs = {} if Path(model_ref).is_dir() or revision is None else {"revision": revision}
    model_type = AutoConfig.from_pretrained(model_ref, **kwargs).model_type
    if model_type not in FAMILIES:
        sys.exit(f"{model_ref}: model_type {model_type!r} is not one webtune trains ({', '.join(FAMILIES)})")
    model, info = AutoModelForSequenceClassification.from_pretrained(
        model_ref, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        output_loading_info=True, **kwargs)
    initial = {name: tensor for name, tensor in init.items() if not name.endswith("lora_A.weight")}
    missing = [k for k in info["missing_keys"] if k not in initial and not HEAD.match(k)]
    if missing:
        sys.exit(f"{model_ref}: the checkpoint lacks {missing[:4]}: not a {model_type} checkpoint webtune trains")
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in initial.items():
            if name in state and state[name].shape == tensor.shape:
                state[name].copy_(tensor)
    return model


def trains(strategy: str, name: str, num_layers: int) -> bool:
    """Does `strategy` train the base model's parameter `name` (webtune's run_model::is_trainable)?
    frozen: nothing (only the classifier trains, on the frozen encoder's and pooler's output);
    top:K: the top K layers and the pooler; full: everything; lora:R: PEFT decides."""
    kind, _, k = strategy.partition(":")
    if kind == "full":
        return True
    if kind == "top":
        if name.startswith("pooler."):
            return True
        parts = name.split(".")
        return name.startswith(("encoder.layer.", "transformer.layer.")) and int(parts[2]) + int(k) >= num_layers
    return False


def apply_strategy(model, strategy: str, recipe: dict, init: dict):
    """Mark what trains; a lora:R run becomes a PEFT model with webtune's LoRA A."""
    import torch

    for name, p in getattr(model, family(model)["base"]).named_parameters():
        p.requires_grad_(trains(strategy, name, model.config.num_hidden_layers))
    # The dense layer on the first token trains like the pooler: with top:K and full.
    for p in model.get_submodule(family(model)["dense"]).parameters():
        p.requires_grad_(strategy.startswith(("top:", "full")))
    if not strategy.startswith("lora:"):
        return model
    from peft import LoraConfig, get_peft_model

    lora = recipe["options"]["lora"]
    alpha = lora["alpha"]
    config = LoraConfig(task_type="SEQ_CLS", r=int(strategy.split(":")[1]), lora_alpha=int(alpha) if float(alpha).is_integer() else alpha,
                        lora_dropout=lora["dropout"], target_modules=recipe["lora_target_modules"],
                        modules_to_save=family(model)["modules_to_save"], bias="none")
    model = get_peft_model(model, config)
    with torch.no_grad():
        for name, module in model.named_modules():
            a = getattr(module, "lora_A", None)
            key = name.removeprefix("base_model.model.") + ".lora_A.weight"
            if a is not None and "default" in a and key in init and a["default"].weight.shape == init[key].shape:
                a["default"].weight.copy_(init[key])
    return model


def first_token_features(model, input_ids, attention_mask):
    """What the classifier's dropout reads, in eval mode: the activated dense layer on the first
    token (BERT's pooled output, DistilBERT's ReLU(pre_classifier), RoBERTa's tanh(dense))."""
    import torch

    kind = model.config.model_type
    if kind == "bert":
        return model.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)).pooler_output
    base = getattr(model, family(model)["base"])
    first = base(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
    if kind == "distilbert":
        return torch.relu(model.pre_classifier(first))
    return torch.tanh(model.classifier.dense(first))


def classify_features(model, features):
    """The classifier's dropout and the classifier on first_token_features."""
    if model.config.model_type in ("bert", "distilbert"):
        return model.classifier(model.dropout(features))
    return model.classifier.out_proj(model.classifier.dropout(features))


def make_classifier(model, frozen: bool):
    import torch
    import torch.nn.functional as F

    base = family(model)["base"]
    token_types = family(model)["token_types"]

    class Classifier(torch.nn.Module):
        """The model as a step sees it: per-sentence losses and logits. A frozen run's encoder
        and pooler run in eval mode without gradients (webtune encodes them once, in eval
        mode); only the classifier's dropout and the classifier train."""

        def __init__(self):
            super().__init__()
            self.model = model
            self.frozen = frozen

        def train(self, mode: bool = True):
            super().train(mode)
            if self.frozen:
                getattr(self.model, base).eval()
            return self

        def forward(self, input_ids, attention_mask, labels):
            if self.frozen:
                with torch.no_grad():
                    features = first_token_features(self.model, input_ids, attention_mask)
                logits = classify_features(self.model, features)
            else:
                types = {"token_type_ids": torch.zeros_like(input_ids)} if token_types else {}
                logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **types).logits
            return F.cross_entropy(logits.float(), labels, reduction="none"), logits

    return Classifier()


# --- batches ---------------------------------------------------------------------------------


def make_loaders(accelerator, train_ids, train_labels, eval_sets, batch_size, pad_id, pad_to, orders, seed):
    """The training loader (each epoch in its order; `sampler.epoch` picks it) and one
    sequential loader per evaluated set. Batches are global: accelerate splits each across the
    processes (split_batches)."""
    import torch
    from torch.utils.data import DataLoader, Sampler

    def collate(items):
        longest = pad_to or max(len(ids) for ids, _ in items)
        ids = torch.tensor([s + [pad_id] * (longest - len(s)) for s, _ in items], dtype=torch.long)
        mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s, _ in items], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([label for _, label in items], dtype=torch.long)}

    class EpochOrder(Sampler):
        """webtune's order of each epoch (order.json); beyond it, a permutation from the seed."""

        def __init__(self, n):
            self.n, self.epoch = n, 0

        def __iter__(self):
            if self.epoch < len(orders):
                return iter(orders[self.epoch])
            generator = torch.Generator().manual_seed(seed * 1000 + self.epoch)
            return iter(torch.randperm(self.n, generator=generator).tolist())

        def __len__(self):
            return self.n

    sampler = EpochOrder(len(train_ids))
    train = DataLoader(list(zip(train_ids, train_labels)), batch_size=batch_size, sampler=sampler, collate_fn=collate)
    eval_batch = 16 * accelerator.num_processes
    evals = [DataLoader(list(zip(ids, labels)), batch_size=eval_batch, shuffle=False, collate_fn=collate) for ids, labels in eval_sets]
    return sampler, train, evals


# --- events ----------------------------------------------------------------------------------


class Events:
    """webtune's wire format (src/events.rs): printed as JSON lines and kept for the record,
    by the main process only."""

    def __init__(self, main: bool, quiet: bool, strategy: str):
        self.main, self.quiet, self.strategy = main, quiet, strategy
        self.events: list[dict] = []
        self.started = time.monotonic()

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000.0

    def emit(self, kind: str, **fields) -> None:
        if not self.main:
            return
        event = {"type": kind, "strategy": self.strategy, **fields}
        self.events.append(event)
        if not self.quiet:
            print(json.dumps(event, separators=(",", ":")), flush=True)


def class_metrics(labels: list[str], truth: list[int], predicted: list[int]):
    """Per-class precision / recall / F1 and the confusion matrix [true][predicted] (webtune's
    metrics::class_metrics)."""
    n = len(labels)
    confusion = [[0] * n for _ in range(n)]
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    per_class = []
    for c in range(n):
        tp, support, predicted_c = confusion[c][c], sum(confusion[c]), sum(confusion[t][c] for t in range(n))
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"label": labels[c], "precision": precision, "recall": recall, "f1": f1, "support": support})
    return per_class, confusion


# --- the run ---------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup

    recipe = json.loads((HERE / "recipe.json").read_text(encoding="utf-8"))
    options = dict(recipe["options"])
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size), ("seed", args.seed)):
        if value is not None:
            options[key] = value
    strategy, seed, batch_size, epochs = recipe["strategy"], options["seed"], options["batch_size"], options["epochs"]
    # cpu: without a GPU, processes started by torchrun still form one run (gloo), as under accelerate launch --cpu.
    # split_batches: the batch is the recipe's global one, each process gets an equal share.
    accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True), cpu=not torch.accelerator.is_available())
    if batch_size % accelerator.num_processes:
        sys.exit(f"batch size {batch_size} is not a multiple of the {accelerator.num_processes} processes: "
                 f"give --batch-size a multiple of {accelerator.num_processes}, or use fewer processes")
    set_seed(seed)

    # Data: the recipe's files (the sentences webtune trained and validated on), or yours.
    own_data = args.train is not None
    train_path = args.train or HERE / recipe["data"]["train"]
    val_path = args.validation or (HERE / recipe["data"]["validation"] if recipe["data"]["validation"] and not own_data else None)
    train_rows = read_labelled(train_path)
    val_rows = read_labelled(val_path) if val_path else []
    labels = class_names({l for _, l in train_rows}, recipe["labels"])
    unknown = sorted({l for _, l in val_rows} - set(labels))
    if unknown:
        sys.exit(f"{val_path}: labels {unknown[:5]} are not training classes")
    label_id = {l: i for i, l in enumerate(labels)}

    # webtune's own choices, where they apply to this data and these settings.
    use_webtune = not own_data and not args.own_order and options["seed"] == recipe["options"]["seed"]
    order = json.loads((HERE / "order.json").read_text()) if use_webtune else {}
    init = load_file(str(HERE / "init.safetensors")) if use_webtune else {}
    orders = order.get("epochs", []) if order.get("train_size") == len(train_rows) else []
    sample = order.get("train_eval_sample") if orders else None
    if sample is None:
        limit = options["train_eval_sample"] or len(train_rows)
        sample = sorted(torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(seed))[:limit].tolist())

    # Tokenizer: the model's tokenizer.json, truncated at max_len, padded by us (as webtune does).
    model_ref = args.model or recipe["model"].get("folder") or recipe["model"].get("hub")
    if not model_ref:
        sys.exit("recipe.json names no model (it was loaded from local files): pass --model FOLDER")
    revision = args.revision or recipe["model"].get("revision")
    if Path(model_ref).is_dir():
        tokenizer_file = Path(model_ref) / "tokenizer.json"
    else:
        from huggingface_hub import hf_hub_download
        tokenizer_file = hf_hub_download(model_ref, "tokenizer.json", revision=revision)
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(options["max_len"])
    encode = lambda rows: [e.ids for e in tokenizer.encode_batch([t for t, _ in rows])]
    train_ids, train_labels = encode(train_rows), [label_id[l] for _, l in train_rows]
    val_ids, val_labels = encode(val_rows), [label_id[l] for _, l in val_rows]

    model = load_model(model_ref, revision, labels, init)
    pad_id = model.config.pad_token_id or 0
    num_parameters = sum(p.numel() for p in getattr(model, family(model)["base"]).parameters())
    model = apply_strategy(model, strategy, recipe, init)
    classifier = make_classifier(model, strategy == "frozen")

    # Adam (AdamW with weight decay) with two learning rates: the body's (a LoRA run's
    # adapters') and the head's (pooler and classifier), on transformers' schedule.
    body_lr = options["lora"]["learning_rate"] if strategy.startswith("lora:") else options["learning_rate"]
    head_lr = options["head_learning_rate"] or body_lr
    trainable = [(n, p) for n, p in classifier.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in trainable if not HEAD.search(n)], "lr": body_lr},
              {"params": [p for n, p in trainable if HEAD.search(n)], "lr": head_lr}]
    groups = [g for g in groups if g["params"]]
    adam = recipe["optimizer"]
    if options["weight_decay"] > 0:
        optimizer = torch.optim.AdamW(groups, betas=tuple(adam["betas"]), eps=adam["eps"], weight_decay=options["weight_decay"])
    else:
        optimizer = torch.optim.Adam(groups, betas=tuple(adam["betas"]), eps=adam["eps"])
    steps_per_epoch = math.ceil(len(train_ids) / batch_size)
    total_steps = steps_per_epoch * epochs
    warmup = math.ceil(options["warmup_ratio"] * total_steps)
    if options["schedule"] == "linear":
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    else:
        scheduler = get_constant_schedule(optimizer)

    eval_sets = [([train_ids[i] for i in sample], [train_labels[i] for i in sample])]
    if val_ids:
        eval_sets.append((val_ids, val_labels))
    pad_to = options["max_len"] if options["pad_to_max_len"] else None
    sampler, train_loader, eval_loaders = make_loaders(accelerator, train_ids, train_labels, eval_sets, batch_size, pad_id, pad_to, orders, seed)
    classifier, optimizer, train_loader, *eval_loaders = accelerator.prepare(classifier, optimizer, train_loader, *eval_loaders)
    trainable_params = [p for _, p in trainable]

    def evaluate(loader):
        """(mean loss, accuracy, truth, predictions) in eval mode over the whole set."""
        classifier.eval()
        logits, truth = [], []
        with torch.no_grad():
            for batch in loader:
                _, out = classifier(**batch)
                out, batch_labels = accelerator.gather_for_metrics((out.float(), batch["labels"]))
                logits.append(out.double().cpu())
                truth.append(batch_labels.cpu())
        logits, truth = torch.cat(logits), torch.cat(truth)
        loss = torch.nn.functional.cross_entropy(logits, truth).item()
        predicted = logits.argmax(dim=1)
        return loss, (predicted == truth).double().mean().item(), truth.tolist(), predicted.tolist()

    if accelerator.is_main_process:
        print(f"train.py: {strategy} on {accelerator.num_processes} process(es) ({accelerator.device}), global batch {batch_size}, "
              f"{total_steps} steps; data order and initial weights: {'webtune' if orders else 'drawn from the seed'}", file=sys.stderr)
    events = Events(accelerator.is_main_process, args.quiet, strategy)
    events.emit("start", epochs=epochs, total_steps=total_steps, train_size=len(train_ids), val_size=len(val_ids),
                train_eval_size=len(sample), labels=labels, threads=torch.get_num_threads(),
                trainable_parameters=sum(p.numel() for p in trainable_params), estimated_peak_bytes=0, work_total=0.0)
    step = 0
    last = None
    for epoch in range(epochs):
        sampler.epoch = epoch
        classifier.train()
        loss_sum, batches = 0.0, 0
        for batch in train_loader:
            factor = scheduler.get_last_lr()[-1] / scheduler.base_lrs[-1]  # this step's schedule factor
            losses, _ = classifier(**batch)
            accelerator.backward(losses.mean())
            if options["max_grad_norm"]:
                accelerator.clip_grad_norm_(trainable_params, options["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss = accelerator.gather_for_metrics(losses.detach()).double().mean().item()
            loss_sum, batches = loss_sum + loss, batches + 1
            events.emit("step", epoch=epoch + 1, step=step, loss=loss if math.isfinite(loss) else None,
                        lr=body_lr * factor, head_lr=head_lr * factor, work_done=0.0, elapsed_ms=events.elapsed_ms())
            if not math.isfinite(loss):
                accelerator.print(json.dumps({"type": "error", "message": f"{strategy} run failed: the loss became {loss} at step {step}: lower the learning rate"}))
                return 1
        train_eval = evaluate(eval_loaders[0])
        val_eval = evaluate(eval_loaders[1]) if len(eval_loaders) > 1 else None
        events.emit("epoch", epoch=epoch + 1, train_loss=loss_sum / max(1, batches), train_accuracy=train_eval[1],
                    train_eval_size=len(sample), val_loss=val_eval[0] if val_eval else None,
                    val_accuracy=val_eval[1] if val_eval else None, elapsed_ms=events.elapsed_ms())
        last = (train_eval, val_eval)
    train_eval, val_eval = last
    reported = val_eval or train_eval
    per_class, confusion = class_metrics(labels, reported[2], reported[3])
    evaluated_on = "validation" if val_eval else "training sample" if len(sample) < len(train_ids) else "training"
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    events.emit("done", train_accuracy=train_eval[1], val_accuracy=val_eval[1] if val_eval else None, per_class=per_class,
                confusion=confusion, evaluated_on=evaluated_on, steps=step, threads=torch.get_num_threads(), peak_bytes=peak,
                retained_bytes=4 * sum(p.numel() for p in trainable_params), elapsed_ms=events.elapsed_ms())

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save(args.out, accelerator.unwrap_model(classifier).model, tokenizer, strategy, events.events, recipe, options, labels,
             model_ref, num_parameters, len(train_ids), len(val_ids), [train_labels.count(c) for c in range(len(labels))], bool(val_path))
    accelerator.end_training()
    return 0


def save(out: Path, model, tokenizer, strategy, events, recipe, options, labels, model_ref, num_parameters, train_size, val_size, class_counts, has_val):
    """events.jsonl, record.json (webtune-record v1) and model/ (from_pretrained's folder)."""
    import torch
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    (out / "events.jsonl").write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events), encoding="utf-8")
    config = (model.base_model.model if strategy.startswith("lora:") else model).config
    validation = recipe["data"]["validation_kind"] if has_val else "none"
    record = {
        "format": "webtune-record", "version": 1,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "producer": f"webtune recipe train.py (torch {torch.__version__}, transformers {transformers.__version__})",
        "model": {"name": str(model_ref), "info": {"num_layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
                  "num_heads": config.num_attention_heads, "vocab_size": config.vocab_size, "num_parameters": num_parameters,
                  "has_pooler": True, "max_len": options["max_len"], "labels": None, "notes": []}},
        "data": {"train_size": train_size, "val_size": val_size, "labels": labels, "class_counts": class_counts, "validation": validation},
        "options": options, "strategies": [strategy], "events": events,
    }
    (out / "record.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
    folder = out / "model"
    if strategy.startswith("lora:"):
        model.save_pretrained(folder / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    tokenizer.save(str(folder / "tokenizer.json"))


if __name__ == "__main__":
    sys.exit(main())
