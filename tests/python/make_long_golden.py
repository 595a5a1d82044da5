"""Golden reference for inputs longer than 128 tokens: all-MiniLM-L6-v2 in transformers (eval
mode, float32, eager attention) on three texts of exactly 129, 300 and 512 tokens, built from
SST-2 sentences (../shared/data/sst2/dev.tsv) joined in file order.

Writes tests/data/golden_long.json, which tests/long_inputs.rs compares webtune with. Per text:
the token ids; per hidden state (index 0 = the embeddings' output, l = after layer l) a compact
fingerprint — a few full token rows ([CLS], position 128 = the first one past 128, the middle
and the last), the mean over tokens of every hidden unit and every token's L2 norm; and the
pooler output. Rerun (it is deterministic) with the venv of tests/python/requirements.txt:
  target/python-venv/bin/python tests/python/make_long_golden.py
"""
import csv, json, os

import torch
import transformers
from transformers import AutoTokenizer, BertModel

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(REPO, "models", "all-MiniLM-L6-v2")
SST2 = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "sst2", "dev.tsv"))
OUT = os.path.join(REPO, "tests", "data", "golden_long.json")
LENGTHS = [129, 300, 512]


def sst2_words():
    with open(SST2, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return " ".join(r["text"].strip() for r in rows).split()


def text_of_length(tokenizer, words, n):
    """The longest prefix of `words` with at most n tokens (with [CLS] and [SEP]), padded to
    exactly n with single-token "." words."""
    count = lambda ws: len(tokenizer(" ".join(ws), add_special_tokens=True, truncation=False)["input_ids"])
    lo, hi = 1, len(words)
    while lo < hi:  # largest k with count(words[:k]) <= n (the count grows with k)
        mid = (lo + hi + 1) // 2
        if count(words[:mid]) <= n:
            lo = mid
        else:
            hi = mid - 1
    chosen = words[:lo]
    while count(chosen) < n:
        chosen = chosen + ["."]
    assert count(chosen) == n, (n, count(chosen))
    return " ".join(chosen)


def rounded(values):
    return [float(f"{v:.7g}") for v in values]


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = BertModel.from_pretrained(MODEL, attn_implementation="eager").eval()
    words = sst2_words()
    texts = []
    for n in LENGTHS:
        text = text_of_length(tokenizer, words, n)
        enc = tokenizer(text, add_special_tokens=True, truncation=False, return_tensors="pt")
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        ids = enc["input_ids"][0].tolist()
        assert len(ids) == n
        rows = sorted({0, min(128, n - 1), n // 2, n - 1})
        layers = []
        for h in out.hidden_states:
            h = h[0]
            layers.append({
                "rows": {str(r): rounded(h[r].tolist()) for r in rows},
                "column_means": rounded(h.mean(dim=0).tolist()),
                "row_norms": rounded(h.norm(dim=1).tolist()),
            })
        texts.append({
            "text": text,
            "input_ids": ids,
            "hidden_states": layers,
            "pooler_output": rounded(out.pooler_output[0].tolist()),
        })
    result = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "note": "written by tests/python/make_long_golden.py; do not edit",
        "model": "all-MiniLM-L6-v2 (models/all-MiniLM-L6-v2), eval mode, eager attention, float32",
        "texts": texts,
    }
    with open(OUT, "w") as f:
        json.dump(result, f, separators=(",", ":"))
    print(f"wrote {os.path.relpath(OUT, REPO)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
