#!/usr/bin/env bash
# LoRA's accuracy next to frozen and full (issue 10's closing numbers), MiniLM, seed 0:
#   1. the notebook's ten sentences (training accuracy, the notebook's settings);
#   2. SST-2 few-shot: 64 training sentences (the first 32 of each class in
#      ../shared/data/sst2/train.tsv with at least 6 words — GLUE's train split also holds short
#      phrases), validated on the whole GLUE dev split (872 sentences).
# Usage: bench/lora_accuracy.sh [extra `webtune train` options]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/webtune
model=models/all-MiniLM-L6-v2
few=$(mktemp --suffix=.tsv)
trap 'rm -f "$few"' EXIT
python3 - "$few" <<'PY'
import csv, sys
rows = {"0": [], "1": []}
with open("../shared/data/sst2/train.tsv", encoding="utf-8") as f:
    for text, label in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
        if label in rows and len(text.split()) >= 6 and len(rows[label]) < 32:
            rows[label].append(text.strip())
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("text\tlabel\n")
    for label, texts in rows.items():
        out.writelines(f"{t}\t{label}\n" for t in texts)
PY
echo "== notebook (10 sentences, 4 epochs, batch 2)"
"$bin" train --model "$model" --data data/notebook.tsv --strategy frozen,lora:8,full "$@" 2>/dev/null
echo "== SST-2 few-shot (64 training sentences, dev 872; 5 epochs, batch 8)"
"$bin" train --model "$model" --data "$few" --val-data ../shared/data/sst2/dev.tsv --strategy frozen,lora:8,full --epochs 5 --batch-size 8 "$@" 2>/dev/null
