"""PyTorch + transformers reference timings of one training step for a checkpoint of any
architecture webtune trains (BERT, DistilBERT, RoBERTa): ../shared/bench/torch_reference.py with
AutoModelForSequenceClassification in place of BertForSequenceClassification, same arguments,
same measurement, same JSON line.

Usage:
  python bench/torch_reference_auto.py MODEL_DIR SEQ_LEN STRATEGY [ROUNDS] [BATCH] [THREADS]
    MODEL_DIR: a HF model folder (e.g. `webtune random-checkpoint --arch distilbert --out DIR`)
    STRATEGY: full | frozen (frozen: only the classification head trains)
"""
import json, statistics, sys, time
import torch
from transformers import AutoModelForSequenceClassification

src, seq, strategy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 20
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 2
threads = int(sys.argv[6]) if len(sys.argv) > 6 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=2)
if strategy == "frozen":
    for p in model.base_model.parameters():
        p.requires_grad = False
opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-5)
vocab = model.config.vocab_size
ids = torch.randint(1000, vocab, (batch, seq))
ids[:, 0], ids[:, -1] = 101, 102
mask = torch.ones_like(ids)
labels = torch.arange(batch) % 2
model.train()
rows = []
for i in range(rounds + 3):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model(ids, attention_mask=mask, labels=labels).loss
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    if i >= 3:
        rows.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
med = lambda k: round(statistics.median(r[k] for r in rows) * 1000, 1)
print(json.dumps({"source": src, "model_type": model.config.model_type, "seq_len": seq, "batch": batch, "threads": threads,
                  "strategy": strategy, "step_ms": med(0), "forward_ms": med(1), "backward_ms": med(2),
                  "optimizer_ms": med(3), "rounds": rounds, "torch": torch.__version__}))
