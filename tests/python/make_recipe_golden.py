"""Golden reference for a whole training recipe inside a real run: all-MiniLM-L6-v2 as
BertForSequenceClassification (transformers), dropout off, fine-tuned in full on the notebook's
ten sentences (data/notebook.tsv) in one batch per step (so the shuffle does not matter) with
torch.optim.AdamW (every parameter decayed, as webtune does) and
torch.nn.utils.clip_grad_norm_, for a few steps. The classifier starts from webtune's own
initial head (tests/data/recipe_classifier_init.json, written by
`WEBTUNE_WRITE_RECIPE_INIT=1 cargo test --release --test recipe_golden`).

Writes tests/data/recipe_golden.json: per scenario its settings and the loss of every step
(before that step's update). The scenarios with a knob switched off (no weight decay, no
clipping) let tests/recipe_golden.rs check that its tolerance can see each knob. Rerun (it is
deterministic) with the venv of tests/python/requirements.txt:
  target/python-venv/bin/python tests/python/make_recipe_golden.py
"""
import csv, json, os

import torch
import transformers
from transformers import AutoTokenizer, BertForSequenceClassification

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(REPO, "models", "all-MiniLM-L6-v2")
DATA = os.path.join(REPO, "data", "notebook.tsv")
INIT = os.path.join(REPO, "tests", "data", "recipe_classifier_init.json")
OUT = os.path.join(REPO, "tests", "data", "recipe_golden.json")

STEPS = 4
RECIPE = dict(learning_rate=1e-4, weight_decay=0.01, max_grad_norm=0.1)
SCENARIOS = [
    dict(name="adamw_clipped", **RECIPE),
    dict(name="no_weight_decay", **{**RECIPE, "weight_decay": 0.0}),
    dict(name="no_clipping", **{**RECIPE, "max_grad_norm": None}),
    # The same decay large enough to show in a few steps' losses.
    dict(name="adamw_strong_decay_clipped", **{**RECIPE, "weight_decay": 1.0, "learning_rate": 1e-3}),
    dict(name="strong_lr_no_weight_decay", **{**RECIPE, "weight_decay": 0.0, "learning_rate": 1e-3}),
]


def notebook():
    with open(DATA, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def run(scenario, init, texts, labels):
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        MODEL, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        classifier_dropout=0.0, attn_implementation="eager")
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(init["weight"], dtype=torch.float32))
        model.classifier.bias.copy_(torch.tensor(init["bias"], dtype=torch.float32))
    model.train()
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    batch = tokenizer(texts, padding="longest", truncation=True, max_length=128, return_tensors="pt")
    target = torch.tensor(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=scenario["learning_rate"], weight_decay=scenario["weight_decay"], foreach=False)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, target)
        loss.backward()
        if scenario["max_grad_norm"] is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), scenario["max_grad_norm"])))
        opt.step()
        losses.append(loss.item())
    return {**scenario, "steps": STEPS, "losses": losses, "grad_norms_before_clipping": norms}


def main():
    with open(INIT) as f:
        init = json.load(f)
    texts, labels = notebook()
    out = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "note": "written by tests/python/make_recipe_golden.py; do not edit",
        "setup": "all-MiniLM-L6-v2, BertForSequenceClassification(num_labels=2), dropout 0, full fine-tuning, "
                 "data/notebook.tsv in one batch of 10 (dynamic padding), torch AdamW (betas 0.9/0.999, eps 1e-8, "
                 "all parameters decayed), clip_grad_norm_ before each step, constant learning rate",
        "classifier_init": init,
        "scenarios": [run(sc, init, texts, labels) for sc in SCENARIOS],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
    for sc in out["scenarios"]:
        print(sc["name"], sc["losses"], sc["grad_norms_before_clipping"])
    print(f"wrote {os.path.relpath(OUT, REPO)}")


if __name__ == "__main__":
    main()
