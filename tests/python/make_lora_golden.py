"""Golden reference for webtune's LoRA strategy (src/lora.rs, src/encoder.rs): forward and
gradients of Hugging Face PEFT on all-MiniLM-L6-v2 with rank-4 adapters on every layer's query,
value, intermediate and output projections, pooler and classifier trained (modules_to_save).

Writes tests/data/lora_golden.safetensors with the inputs (the adapters' A and B under PEFT's
names without `base_model.model.`, the classifier, token ids, attention mask, labels) and the
outputs (logits, loss, and the gradients of every adapter, the pooler and the classifier, each
under its tensor's name + `.grad`). B is set to small random values (PEFT starts it at zero,
which would make every gradient of A zero and the check blind). Dropout is off (eval mode), so
webtune's training step without dropout must give the same numbers.

Run from the repository with the python test venv (tests/python/requirements.txt):
    target/python-venv/bin/python tests/python/make_lora_golden.py
"""
import os

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertForSequenceClassification

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
SENTENCES = ["I love this movie, it is wonderful.", "The plot was dull and far too long.", "Not bad at all.", "meh"]
LABELS = [1, 0, 1, 0]
TARGETS = r".*encoder\.layer\.\d+\.(attention\.self\.query|attention\.self\.value|intermediate\.dense|output\.dense)"

torch.manual_seed(0)
model = BertForSequenceClassification.from_pretrained(MODEL, num_labels=2)
model.eval()  # no dropout: the reference is deterministic
config = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, modules_to_save=["pooler"])
model = get_peft_model(model, config)
generator = torch.Generator().manual_seed(1)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
        if "modules_to_save.default" in name and "classifier.weight" in name:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)

tokenizer = AutoTokenizer.from_pretrained(MODEL)
enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
labels = torch.tensor(LABELS)
out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels)
out.loss.backward()


def short(name: str) -> str:
    """PEFT's parameter name → the name in PEFT's saved adapter, without `base_model.model.`."""
    name = name.removeprefix("base_model.model.")
    return name.replace(".default", "").replace(".modules_to_save", "").replace(".original_module", "")


tensors = {
    "input_ids": enc["input_ids"].to(torch.int64).contiguous(),
    "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
    "labels": labels.to(torch.int64),
    "logits": out.logits.detach().contiguous(),
    "loss": out.loss.detach().reshape(1),
}
for name, p in model.named_parameters():
    if p.requires_grad:
        tensors[short(name)] = p.detach().contiguous()
        tensors[short(name) + ".grad"] = p.grad.detach().contiguous()
path = os.path.join(ROOT, "tests", "data", "lora_golden.safetensors")
save_file(tensors, path, metadata={"peft": peft.__version__, "torch": torch.__version__, "transformers": transformers.__version__})
print("wrote", path, "with", len(tensors), "tensors; loss", out.loss.item())
