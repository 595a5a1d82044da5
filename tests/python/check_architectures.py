#!/usr/bin/env python3
"""Check webtune's DistilBERT and RoBERTa against transformers and PEFT, on small random checkpoints.

No checkpoint of these architectures is downloaded: for each one this builds, from a fixed seed,
a 2-layer, hidden-32 checkpoint with transformers (every weight, bias and LayerNorm perturbed so a
misplaced tensor shows; dropout off) named as the real base checkpoints are (`distilbert.…`,
`roberta.…`, no classification head), and a real tokenizer.json trained with the `tokenizers`
library on the sentences below (WordPiece for DistilBERT, byte-level BPE for RoBERTa). Then:

  ids        `webtune probe`'s padded batch (token ids, attention mask) is what transformers'
             PreTrainedTokenizerFast gives for the same tokenizer.json
  forward    the last hidden state (every position), what the classifier reads (DistilBERT:
             ReLU(pre_classifier(first token)); RoBERTa: tanh(classifier.dense(first token))),
             the logits and the mean cross-entropy agree within 1e-5 with the same drawn head
  gradients  every parameter's gradient (`full`), element by element, within 1e-4
  full       3 `full` steps (full batch, Adam, lr 1e-3) give the losses transformers +
             torch.optim.Adam give from the same initial head (the recipe's init.safetensors),
             within 1e-5
  lora:2     the same with `lora:2` (PEFT's default targets: q_lin/v_lin, query/value) and PEFT
  export     the `full` export loads as DistilBertForSequenceClassification /
             RobertaForSequenceClassification with no missing or unexpected keys, and its
             probabilities match `webtune predict` within 1e-5
  adapter    the `lora:2` adapter folder loads in PEFT on the base checkpoint (every adapter
             tensor used), and its probabilities match `webtune predict` on the merged export
             within 1e-5
  recipe     the exported recipe's train.py (`full`, `lora:2`, `frozen`) gives webtune's per-step
             losses within 1e-5

Usage: target/python-venv/bin/python tests/python/check_architectures.py [--keep DIR]
Prints one line per check and ends with `N passed, N failed`; exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEBTUNE = ROOT / "target/release/webtune"
FORWARD_TOL = 1e-5
GRADIENT_TOL = 1e-4
GRADIENT_RELATIVE_TOL = 1e-3
LOSS_TOL = 1e-5
STEPS = 3
LR = 1e-3
CORPUS = [
    "I love this product!", "Worst experience ever.", "The delivery was quick and the staff were friendly.",
    "I'm not sure how I feel about it, honestly...", "Café crème, naïve résumé — 10/10 would buy again!!",
    "great value for the money", "it broke after two days", "would not recommend to anyone",
    "absolutely wonderful service", "the worst purchase I have made this year",
]
DATA = [(s, "pos" if i in (0, 2, 5, 8) else "neg") for i, s in enumerate(CORPUS)]
PROBE_TEXTS = CORPUS[:4] + ["meh"]
PROBE_LABELS = [1, 0, 1, 0, 2]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print("$ " + " ".join(cmd), proc.stdout[-2000:], proc.stderr[-2000:], sep="\n")
    return proc


# ------------------------------------------------------------------------------ checkpoints

def wordpiece_tokenizer(path: Path) -> None:
    """BERT's uncased WordPiece pipeline over a vocabulary from the corpus: its words and every
    character alone and as a continuation (a fixed list — WordPieceTrainer breaks ties between
    equally frequent pieces differently from run to run)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = sorted({w for s in CORPUS for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(s))})
    chars = sorted({c for w in words for c in w})
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars] + [w for w in words if len(w) > 1]
    tok = Tokenizer(models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.save(str(path))


def byte_bpe_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(CORPUS * 3, trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    tok.save(str(path))


def build_checkpoint(arch: str, out: Path) -> None:
    """A random base checkpoint of `arch` named as the real one is, with its tokenizer.json."""
    import torch
    from safetensors.torch import save_file
    from transformers import DistilBertConfig, DistilBertModel, RobertaConfig, RobertaModel
    out.mkdir(parents=True, exist_ok=True)
    if arch == "distilbert":
        wordpiece_tokenizer(out / "tokenizer.json")
        vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
        config = DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64,
                                  dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0, pad_token_id=0)
        model_class, prefix = DistilBertModel, "distilbert."
    else:
        byte_bpe_tokenizer(out / "tokenizer.json")
        vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
        config = RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                               max_position_embeddings=66, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                               layer_norm_eps=1e-5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        model_class, prefix = RobertaModel, "roberta."
    torch.manual_seed(0)
    model = model_class(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tensors = {prefix + k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out)


def classification_model(arch_dir: Path, num_labels: int, drawn: dict):
    """transformers' model of the base checkpoint with webtune's drawn tensors (head, dense)."""
    import torch
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(arch_dir, num_labels=num_labels)
    missing = set(drawn) - set(model.state_dict())
    assert not missing, f"webtune drew tensors transformers does not have: {missing}"
    model.load_state_dict({k: torch.as_tensor(v) for k, v in drawn.items()}, strict=False)
    return model


def tokenizer_of(arch_dir: Path):
    from transformers import PreTrainedTokenizerFast
    pad = "[PAD]" if "distilbert" in arch_dir.name else "<pad>"
    return PreTrainedTokenizerFast(tokenizer_file=str(arch_dir / "tokenizer.json"), pad_token=pad)


# ------------------------------------------------------------------------------ checks

def check_probe(arch: str, arch_dir: Path, record) -> None:
    import torch
    proc = run([str(WEBTUNE), "probe", "--model", str(arch_dir), "--labels", ",".join(map(str, PROBE_LABELS)), *PROBE_TEXTS])
    if proc.returncode != 0:
        record(f"{arch} probe", False, "webtune probe failed")
        return
    probe = json.loads(proc.stdout)
    drawn = {d["name"]: torch.tensor(d["values"]).reshape(d["shape"]) for d in probe["drawn"]}
    model = classification_model(arch_dir, 3, drawn)
    model.eval()
    enc = tokenizer_of(arch_dir)(PROBE_TEXTS, padding=True, return_tensors="pt")
    same_ids = enc["input_ids"].tolist() == probe["input_ids"] and enc["attention_mask"].tolist() == probe["attention_mask"]
    record(f"{arch} ids", same_ids, f"{enc['input_ids'].shape[0]}×{enc['input_ids'].shape[1]} padded batch" + ("" if same_ids else f": transformers {enc['input_ids'].tolist()[:1]}, webtune {probe['input_ids'][:1]}"))
    base = getattr(model, arch)
    hidden = base(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    first = hidden[:, 0]
    pooled = torch.relu(model.pre_classifier(first)) if arch == "distilbert" else torch.tanh(model.classifier.dense(first))
    logits = model(**enc).logits
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(PROBE_LABELS))
    diffs = {
        "last hidden": (hidden - torch.tensor(probe["last_hidden"])).abs().max().item(),
        "pooled": (pooled - torch.tensor(probe["pooled"])).abs().max().item(),
        "logits": (logits - torch.tensor(probe["logits"])).abs().max().item(),
        "loss": abs(loss.item() - probe["loss"]),
    }
    record(f"{arch} forward", max(diffs.values()) <= FORWARD_TOL, ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    loss.backward()
    params = dict(model.named_parameters())
    ours = {g["name"]: torch.tensor(g["values"]).reshape(g["shape"]) for g in probe["gradients"]}
    theirs = {n for n, p in params.items() if p.requires_grad}
    # Absolute (the 1e-4) and relative to the tensor's largest gradient (1e-3): the
    # gradients of a small random model can be small enough for an absolute bound alone to pass
    # a wrong one.
    worst, worst_relative, where = 0.0, 0.0, ""
    for name, grad in ours.items():
        ref = params[name].grad if name in params else None
        diff = float("inf") if ref is None or ref.shape != grad.shape else (ref - grad).abs().max().item()
        relative = diff / max(ref.abs().max().item(), 1e-6) if ref is not None and diff != float("inf") else float("inf")
        worst = max(worst, diff)
        if relative > worst_relative:
            worst_relative, where = relative, name
    names_match = set(ours) == theirs
    record(f"{arch} gradients", worst <= GRADIENT_TOL and worst_relative <= GRADIENT_RELATIVE_TOL and names_match,
           f"{len(ours)} tensors, max |Δ| {worst:.1e}, max |Δ| / max |g| {worst_relative:.1e} ({where})" + ("" if names_match else f"; only webtune: {sorted(set(ours) - theirs)[:3]}, only transformers: {sorted(theirs - set(ours))[:3]}"))


def webtune_steps(arch_dir: Path, data: Path, strategy: str, work: Path):
    """A `strategy` run of STEPS full-batch steps: its per-step losses, recipe and export dirs."""
    recipe, export = work / f"recipe-{strategy}", work / f"export-{strategy}"
    proc = run([str(WEBTUNE), "train", "--model", str(arch_dir), "--data", str(data), "--strategy", strategy, "--epochs", str(STEPS),
                "--batch-size", str(len(DATA)), "--max-len", "64", "--lr", str(LR), "--head-lr", str(LR), "--lora-lr", str(LR),
                "--schedule", "constant", "--lora-dropout", "0", "--json", "--export-script", str(recipe), "--export", str(export)])
    if proc.returncode != 0:
        return None, recipe, export
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    losses = [e["loss"] for e in events if e.get("type") == "step"]
    return losses, recipe, export


def reference_steps(arch: str, arch_dir: Path, strategy: str, recipe: Path) -> list[float]:
    import torch
    from safetensors.torch import load_file
    rec = json.loads((recipe / "recipe.json").read_text())
    labels = rec["labels"]
    init = load_file(recipe / "init.safetensors")
    head = {k: v for k, v in init.items() if "lora_" not in k}
    model = classification_model(arch_dir, len(labels), head)
    if strategy.startswith("lora:"):
        from peft import LoraConfig, TaskType, get_peft_model
        modules = ["pre_classifier", "classifier"] if arch == "distilbert" else ["classifier"]
        config = LoraConfig(task_type=TaskType.SEQ_CLS, r=int(strategy.split(":")[1]), lora_alpha=rec["options"]["lora"]["alpha"],
                            lora_dropout=0.0, target_modules=rec["lora_target_modules"], modules_to_save=modules)
        model = get_peft_model(model, config)
        state = {f"base_model.model.{k.replace('.lora_A.weight', '.lora_A.default.weight')}": v for k, v in init.items() if "lora_A" in k}
        missing = [k for k in state if k not in dict(model.named_parameters())]
        assert not missing, f"PEFT has no {missing[:2]}"
        model.load_state_dict(state, strict=False)
    model.train()
    adam = rec["optimizer"]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LR, betas=tuple(adam["betas"]), eps=adam["eps"])
    rows = [line.split("\t") for line in (recipe / "data/train.tsv").read_text().splitlines()[1:]]
    enc = tokenizer_of(arch_dir)([r[0] for r in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
    target = torch.tensor([labels.index(r[1]) for r in rows])
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(**enc).logits, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def check_export(arch: str, export: Path, record) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification
    model, info = AutoModelForSequenceClassification.from_pretrained(export, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    expected_class = {"distilbert": "DistilBertForSequenceClassification", "roberta": "RobertaForSequenceClassification"}[arch]
    predicted = [json.loads(l) for l in run([str(WEBTUNE), "predict", "--model", str(export), "--json", *PROBE_TEXTS]).stdout.splitlines() if l.startswith("{")]
    model.eval()
    with torch.no_grad():
        got = torch.softmax(model(**tokenizer_of_export(export)(PROBE_TEXTS, padding=True, return_tensors="pt")).logits.double(), dim=-1)
    diff = (got - torch.tensor([p["probabilities"] for p in predicted], dtype=torch.float64)).abs().max().item() if predicted else float("inf")
    record(f"{arch} export", not problems and type(model).__name__ == expected_class and diff <= FORWARD_TOL,
           f"{type(model).__name__}, loading info {problems or 'clean'}, max |Δp| {diff:.1e}")


def tokenizer_of_export(export: Path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(export)


def check_adapter(arch: str, arch_dir: Path, export: Path, record) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification
    config = json.loads((export / "config.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(arch_dir, num_labels=len(config["id2label"]))
    adapter_keys = set(load_file(export / "adapter" / "adapter_model.safetensors"))
    peft_model = PeftModel.from_pretrained(base, export / "adapter")
    peft_model.eval()
    loaded = {n.replace(".default", "").replace(".modules_to_save", "").replace(".original_module", "") for n, _ in peft_model.named_parameters()}
    unused = sorted(k for k in adapter_keys if k not in loaded)
    predicted = [json.loads(l) for l in run([str(WEBTUNE), "predict", "--model", str(export), "--json", *PROBE_TEXTS]).stdout.splitlines() if l.startswith("{")]
    with torch.no_grad():
        got = torch.softmax(peft_model(**tokenizer_of_export(export)(PROBE_TEXTS, padding=True, return_tensors="pt")).logits.double(), dim=-1)
    diff = (got - torch.tensor([p["probabilities"] for p in predicted], dtype=torch.float64)).abs().max().item() if predicted else float("inf")
    record(f"{arch} adapter", not unused and diff <= FORWARD_TOL,
           f"{len(adapter_keys)} adapter tensors{f', unused {unused[:3]}' if unused else ''}; max |Δp| vs merged export {diff:.1e}")


def quiet_transformers() -> None:
    """transformers' load reports (a base checkpoint has no head: expected here) off."""
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()


def recipe_steps(recipe: Path, out: Path) -> tuple[list[float] | None, str]:
    """The exported recipe's train.py run (one thread): its per-step losses, or its error."""
    proc = subprocess.run([sys.executable, str(recipe / "train.py"), "--out", str(out)], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        return None, proc.stderr[-800:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return [e["loss"] for e in events if e.get("type") == "step"], ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="build the checkpoints and runs in this folder and keep it")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(1)
    quiet_transformers()
    if not WEBTUNE.exists():
        subprocess.run(["cargo", "build", "--release", "--bin", "webtune"], cwd=ROOT, check=True)
    failures, passes = 0, 0

    def record(name: str, ok: bool, detail: str) -> None:
        nonlocal failures, passes
        print(f"[{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)
        failures, passes = failures + (not ok), passes + ok

    with tempfile.TemporaryDirectory(prefix="webtune-arch-") as tmp:
        work = args.keep or Path(tmp)
        data = work / "data.tsv"
        work.mkdir(parents=True, exist_ok=True)
        data.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in DATA))
        recipes = []  # (name, webtune's losses, recipe folder): each train.py runs once, at the end
        for arch in ("distilbert", "roberta"):
            arch_dir = work / arch
            build_checkpoint(arch, arch_dir)
            check_probe(arch, arch_dir, record)
            for strategy in ("full", "lora:2", "frozen"):
                losses, recipe, export = webtune_steps(arch_dir, data, strategy, work / arch_dir.name)
                if losses is None:
                    record(f"{arch} {strategy}", False, "webtune train failed")
                    continue
                recipes.append((f"{arch} {strategy}", losses, recipe))
                if strategy == "frozen":
                    continue
                reference = reference_steps(arch, arch_dir, strategy, recipe)
                worst = max((abs(a - b) for a, b in zip(losses, reference)), default=float("inf"))
                record(f"{arch} {strategy}", len(losses) == STEPS and worst <= LOSS_TOL,
                       f"losses webtune {[round(l, 6) for l in losses]}, transformers {[round(l, 6) for l in reference]}, max |Δ| {worst:.1e}")
                if strategy == "full":
                    check_export(arch, export, record)
                else:
                    check_adapter(arch, arch_dir, export, record)
        # The exported recipes' train.py (one thread each, two at a time) against webtune's steps.
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(pool.map(lambda job: recipe_steps(job[2], job[2] / "out"), recipes))
        for (name, losses, _), (theirs, error) in zip(recipes, runs):
            worst = max((abs(a - b) for a, b in zip(losses, theirs or [])), default=float("inf"))
            record(f"{name} recipe train.py", theirs is not None and len(theirs) == len(losses) and worst <= LOSS_TOL,
                   f"losses webtune {[round(l, 6) for l in losses]}, train.py {[round(l, 6) for l in theirs or []]}, max |Δ| {worst:.1e}"
                   if theirs is not None else error)
    print(f"\n{passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
