"""Banking77 with PyTorch + transformers, with exactly webtune's recipes (the reference side of
bench/banking.py).

Usage (the venv of tests/python/requirements.txt):
  target/python-venv/bin/python bench/banking_torch.py [--recipe frozen|full|both] [--threads 1]
      [--model models/all-MiniLM-L6-v2] [--train ../shared/data/banking/train.tsv]
      [--test ../shared/data/banking/test.tsv] [--seed 0]

Prints one JSON line per recipe (prefixed by nothing, starting with '{') and a readable summary.

The recipe, as webtune does it (src/train.rs, src/run_model.rs, src/optim.rs, src/data.rs):
- classes: label names sorted as strings -> ids (numeric order if every label is an integer);
- BertForSequenceClassification.from_pretrained(model, num_labels) with the checkpoint's pooler
  and a fresh classifier normal(0, 0.02), zero bias; dropout from config.json (0.1) in
  training, none in evaluation; token_type_ids all 0;
- tokenizer.json (no padding of its own, truncation at --max-len 128), dynamic padding to the
  longest sentence of each batch with pad_token_id;
- frozen: pooled outputs of the frozen BertModel computed once, in eval mode, for train and
  test (in webtune's chunks: consecutive sentences up to 4 GFLOP of encoder work padded to the
  chunk's longest); then --frozen-epochs (10) epochs of classifier dropout + classifier on the
  cached rows, torch.optim.Adam lr 1e-2, batch 32, a new shuffle each epoch;
- full: every weight trains, 1 epoch, batch 16, torch.optim.Adam (weight decay 0) with two
  groups: encoder lr 5e-5, "head" = pooler + classifier lr 1e-3, both scaled by
  get_linear_schedule_with_warmup(opt, ceil(0.1 x steps), steps); the last batch may be short
  (webtune: steps = ceil(n / batch));
- evaluation after each epoch, in eval mode, on the test set and, as webtune does
  (--train-eval-sample 1000), on 1000 training sentences (a seeded random sample here,
  stratified in webtune: same work, the training accuracy is only indicative).
Times: model loading and tokenization are not timed (webtune's elapsed_ms starts after them).
"""
import argparse, csv, json, math, os, random, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNK_FLOPS = 4e9  # src/plan.rs


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = [h.strip().lower() for h in rows[0]]
    ti = header.index("text") if "text" in header else header.index("sentence")
    li = header.index("label")
    texts, labels = [], []
    for r in rows[1:]:
        if not r or all(not c.strip() for c in r):
            continue
        texts.append(r[ti].strip())
        labels.append(r[li].strip())
    return texts, labels


def class_names(labels):
    names = sorted(set(labels))
    try:
        return sorted(names, key=lambda l: (int(l), l))
    except ValueError:
        return names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", choices=["frozen", "full", "both"], default="both")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=os.path.join(ROOT, "models/all-MiniLM-L6-v2"))
    ap.add_argument("--train", default=os.path.join(ROOT, "../shared/data/banking/train.tsv"))
    ap.add_argument("--test", default=os.path.join(ROOT, "../shared/data/banking/test.tsv"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--train-eval-sample", type=int, default=1000)
    ap.add_argument("--frozen-epochs", type=int, default=10)
    ap.add_argument("--frozen-lr", type=float, default=1e-2)
    ap.add_argument("--frozen-batch", type=int, default=32)
    ap.add_argument("--full-epochs", type=int, default=1)
    ap.add_argument("--full-lr", type=float, default=5e-5)
    ap.add_argument("--full-head-lr", type=float, default=1e-3)
    ap.add_argument("--full-batch", type=int, default=16)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    args = ap.parse_args()

    import torch
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    torch.set_num_threads(args.threads)
    train_texts, train_labels = read_tsv(args.train)
    test_texts, test_labels = read_tsv(args.test)
    names = class_names(train_labels)
    index = {n: i for i, n in enumerate(names)}
    unknown = set(test_labels) - set(index)
    if unknown:
        sys.exit(f"test labels not in training: {sorted(unknown)[:5]}")
    y_train = [index[l] for l in train_labels]
    y_test = [index[l] for l in test_labels]

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(args.max_len)
    ids_train = [e.ids for e in tok.encode_batch(train_texts)]
    ids_test = [e.ids for e in tok.encode_batch(test_texts)]
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    pad_id = cfg.get("pad_token_id", 0) or 0
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    flops_per_token = cfg["num_hidden_layers"] * (8.0 * h * h + 4.0 * h * inter)
    sample = sorted(random.Random(args.seed).sample(range(len(ids_train)), min(args.train_eval_sample or len(ids_train), len(ids_train))))

    def batch(seqs):
        longest = max(len(s) for s in seqs)
        ids = torch.tensor([s + [pad_id] * (longest - len(s)) for s in seqs], dtype=torch.long)
        mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in seqs], dtype=torch.long)
        return ids, mask

    def chunks(seqs):
        """webtune's Run::chunk_end: consecutive sentences, as many as fit CHUNK_FLOPS padded."""
        start = 0
        while start < len(seqs):
            end, longest = start, 0
            while end < len(seqs):
                cand = max(longest, len(seqs[end]))
                if end > start and (end + 1 - start) * cand * flops_per_token > CHUNK_FLOPS:
                    break
                longest, end = cand, end + 1
            yield seqs[start:end]
            start = end

    def load_model():
        torch.manual_seed(args.seed)
        model, info = BertForSequenceClassification.from_pretrained(
            args.model, num_labels=len(names), output_loading_info=True)
        missing = [k for k in info["missing_keys"] if not k.startswith("classifier.")]
        if missing:
            sys.exit(f"weights missing from the checkpoint (would be random): {missing}")
        with torch.no_grad():
            model.classifier.weight.normal_(0.0, 0.02)
            model.classifier.bias.zero_()
        return model

    @torch.no_grad()
    def pooled_eval(model, seqs):
        model.eval()
        out = []
        for c in chunks(seqs):
            ids, mask = batch(c)
            out.append(model.bert(input_ids=ids, attention_mask=mask).pooler_output)
        return torch.cat(out)

    def accuracy(logits, y):
        return (logits.argmax(-1) == torch.tensor(y)).float().mean().item()

    common = {"threads": args.threads, "torch": torch.__version__, "train_size": len(ids_train),
              "test_size": len(ids_test), "classes": len(names)}
    results = []

    if args.recipe in ("frozen", "both"):
        model = load_model()
        for p in model.bert.parameters():
            p.requires_grad_(False)
        t0 = time.perf_counter()
        cache_train = pooled_eval(model, ids_train)
        cache_test = pooled_eval(model, ids_test)
        t1 = time.perf_counter()
        gen = torch.Generator().manual_seed(args.seed)
        opt = torch.optim.Adam(model.classifier.parameters(), lr=args.frozen_lr)
        yt = torch.tensor(y_train)
        epochs = []
        steps = 0
        for epoch in range(args.frozen_epochs):
            model.train()
            order = torch.randperm(len(ids_train), generator=gen)
            losses = []
            for s in range(0, len(order), args.frozen_batch):
                idx = order[s:s + args.frozen_batch]
                logits = model.classifier(model.dropout(cache_train[idx]))
                loss = torch.nn.functional.cross_entropy(logits, yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                steps += 1
            model.eval()
            with torch.no_grad():
                test_acc = accuracy(model.classifier(cache_test), y_test)
                train_acc = accuracy(model.classifier(cache_train[sample]), [y_train[i] for i in sample])
            epochs.append({"epoch": epoch + 1, "train_loss": sum(losses) / len(losses),
                           "train_accuracy": train_acc, "test_accuracy": test_acc})
        t2 = time.perf_counter()
        results.append({"side": "torch", "recipe": "frozen", **common, "steps": steps,
                        "test_accuracy": epochs[-1]["test_accuracy"], "epochs": epochs,
                        "encode_s": t1 - t0, "head_s": t2 - t1, "total_s": t2 - t0})
        print(json.dumps(results[-1]), flush=True)
        del model, cache_train, cache_test

    if args.recipe in ("full", "both"):
        model = load_model()
        head = [p for n, p in model.named_parameters() if n.startswith(("bert.pooler.", "classifier."))]
        head_ids = {id(p) for p in head}
        body = [p for p in model.parameters() if id(p) not in head_ids]
        opt = torch.optim.Adam([{"params": body, "lr": args.full_lr}, {"params": head, "lr": args.full_head_lr}])
        steps_per_epoch = math.ceil(len(ids_train) / args.full_batch)
        total = steps_per_epoch * args.full_epochs
        sched = get_linear_schedule_with_warmup(opt, math.ceil(args.warmup_ratio * total), total)
        gen = torch.Generator().manual_seed(args.seed)
        yt = torch.tensor(y_train)
        epochs = []
        train_s = eval_s = 0.0
        step = 0
        for epoch in range(args.full_epochs):
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(len(ids_train), generator=gen).tolist()
            losses = []
            for s in range(0, len(order), args.full_batch):
                idx = order[s:s + args.full_batch]
                ids, mask = batch([ids_train[i] for i in idx])
                loss = model(input_ids=ids, attention_mask=mask, labels=yt[idx]).loss
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad()
                losses.append(loss.item())
                step += 1
                if step % 50 == 0:
                    print(f"[torch full] step {step}/{total} loss {sum(losses[-50:]) / 50:.4f} "
                          f"{time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
            t1 = time.perf_counter()
            with torch.no_grad():
                test_acc = accuracy(model.classifier(pooled_eval(model, ids_test)), y_test)
                train_acc = accuracy(model.classifier(pooled_eval(model, [ids_train[i] for i in sample])),
                                     [y_train[i] for i in sample])
            t2 = time.perf_counter()
            train_s += t1 - t0
            eval_s += t2 - t1
            epochs.append({"epoch": epoch + 1, "train_loss": sum(losses) / len(losses),
                           "train_accuracy": train_acc, "test_accuracy": test_acc})
        results.append({"side": "torch", "recipe": "full", **common, "steps": step,
                        "test_accuracy": epochs[-1]["test_accuracy"], "epochs": epochs,
                        "train_s": train_s, "eval_s": eval_s, "total_s": train_s + eval_s})
        print(json.dumps(results[-1]), flush=True)

    for r in results:
        if r["recipe"] == "frozen":
            t = f"encode {r['encode_s']:.1f} s + head {r['head_s']:.1f} s"
        else:
            t = f"train {r['train_s']:.1f} s + eval {r['eval_s']:.1f} s"
        print(f"# torch {r['recipe']:<6} test acc {100 * r['test_accuracy']:.2f}%  ({r['steps']} steps, {t}, "
              f"{r['threads']} thread(s))", file=sys.stderr)


if __name__ == "__main__":
    main()
