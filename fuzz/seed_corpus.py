#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ (gitignored) from real
inputs: the repository's data/, slices of ../shared/data (SST-2, Banking77) when present, the
offline model's config.json and tokenizer.json, and small safetensors checkpoints (a random one
of the tiny fuzz config, and the real header and first tensors of all-MiniLM-L6-v2's).

Usage: python3 fuzz/seed_corpus.py   (from the repository root; stdlib only)
"""
import json
import os
import random
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = ROOT / "tests" / "data" / "fuzz" / "fixtures"
SHARED = ROOT.parent / "shared" / "data"
MODEL = ROOT / "models" / "all-MiniLM-L6-v2"


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def head_lines(path, start, count):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    header = lines[0] + "\n" if start > 0 else ""
    return header + "\n".join(lines[start:start + count]) + "\n"


def seed_data():
    for path in sorted((ROOT / "data").glob("*.[tc]sv")):
        write("data", path.name, path.read_bytes())
        text = path.read_text()
        write("data", path.stem + "-with-validation", text + "\0" + text)
        write("data", path.stem + ".csv", "\n".join(l.replace("\t", ",") for l in text.split("\n")))
    for sub, name, start, count in [
        ("sst2", "train.tsv", 0, 40), ("sst2", "dev.tsv", 0, 40), ("sst2", "train.tsv", 5000, 40),
        ("banking", "train.tsv", 0, 60), ("banking", "test.tsv", 0, 60),
    ]:
        path = SHARED / sub / name
        if path.is_file():
            write("data", f"{sub}-{Path(name).stem}-{start}", head_lines(path, start, count))
    banking = SHARED / "banking" / "train.tsv"
    if banking.is_file():
        # The records that span lines (quoted fields with line breaks), with some context.
        text = banking.read_text(encoding="utf-8")
        at = text.find('"', text.find("\n"))
        if at > 0:
            begin = text.rfind("\n", 0, max(0, at - 300)) + 1
            write("data", "banking-multiline", text.split("\n", 1)[0] + "\n" + text[begin:at + 1500])
    sst_dev = SHARED / "sst2" / "dev.tsv"
    if sst_dev.is_file():
        dev = head_lines(sst_dev, 0, 20)
        write("data", "sst2-train-and-dev", head_lines(sst_dev, 20, 30) + "\0" + dev)
    for name, text in {
        "headerless": "1\tgood\n0\tbad\n1\tfine\n",
        "quoted": 'text,label\n"a, b ""c""\nd",1\nplain,0\n',
        "unterminated": 'text\tlabel\n"open\t1\nx\t0\n',
        "named-labels": "sentence\tlabel\nhi\tgreet\nbye\tpart\nhey\tgreet\n",
        "bom-crlf": "\ufefftext\tlabel\r\nok\t1\r\nno\t0\r\n",
    }.items():
        write("data", name, text)


def seed_json_files():
    write("config", "tiny", (FIXTURES / "config.json").read_bytes())
    write("tokenizer", "tiny", (FIXTURES / "tokenizer.json").read_bytes())
    if (MODEL / "config.json").is_file():
        write("config", "all-MiniLM-L6-v2", (MODEL / "config.json").read_bytes())
    bert_base = {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
                 "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
                 "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
                 "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute", "type_vocab_size": 2,
                 "vocab_size": 30522, "id2label": {"0": "neg", "1": "pos"}, "classifier_dropout": None}
    write("config", "bert-base-uncased", json.dumps(bert_base, indent=2))
    tiny = json.loads((FIXTURES / "tokenizer.json").read_text())
    tiny["post_processor"] = {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]}
    write("tokenizer", "tiny-bert-processing", json.dumps(tiny))
    tiny["post_processor"] = None
    write("tokenizer", "tiny-no-post-processor", json.dumps(tiny))
    tiny["truncation"] = {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0}
    write("tokenizer", "tiny-truncation", json.dumps(tiny))
    if (MODEL / "tokenizer.json").is_file():
        # The real file with its vocabulary cut to the first 1,000 ids ([PAD], [UNK], [CLS],
        # [SEP], [MASK] included): all of it (466 KB) would slow fuzzing to a few runs a second.
        real = json.loads((MODEL / "tokenizer.json").read_text())
        real["model"]["vocab"] = {t: i for t, i in real["model"]["vocab"].items() if i < 1000}
        write("tokenizer", "all-MiniLM-L6-v2-vocab-1000", json.dumps(real))
    for name, options in {
        "empty": {},
        "notebook": {"epochs": 4, "learning_rate": 2e-5, "batch_size": 2, "max_len": 128, "seed": 0},
        "page": {"epochs": 1, "learning_rate": 2e-5, "head_learning_rate": 0.01, "batch_size": 2, "max_len": 16,
                 "pad_to_max_len": True, "seed": 3, "weight_decay": 0.01, "schedule": "linear", "warmup_ratio": 0.1,
                 "max_grad_norm": 1.0, "train_eval_sample": 0},
        "lora": {"epochs": 1, "lora": {"alpha": 16, "dropout": 0.1, "targets": ["query", "key", "value",
                 "attention_output", "intermediate", "output"], "learning_rate": 1e-3}},
    }.items():
        write("options", name, json.dumps(options))
    record = json.loads((FIXTURES / "record.json").read_text())
    write("record", "cli-frozen", json.dumps(record))
    write("record", "head-only", json.dumps({k: v for k, v in record.items() if k != "events"}))
    record["options"]["lora"]["targets"] = ["query", "value", "intermediate"]
    record["strategies"] = ["frozen", "lora:4"]
    write("record", "lora-options", json.dumps(record, indent=1))


def safetensors(tensors, dtype="F32"):
    """tensors: [(name, shape, values)] → safetensors bytes."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, shape, values in tensors:
        if dtype == "F32":
            blob = struct.pack(f"<{len(values)}f", *values)
        else:  # F16
            blob = struct.pack(f"<{len(values)}e", *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def tiny_tensors(config, prefix, rng):
    h, i = config["hidden_size"], config["intermediate_size"]
    shapes = [("embeddings.word_embeddings.weight", [config["vocab_size"], h]),
              ("embeddings.position_embeddings.weight", [config["max_position_embeddings"], h]),
              ("embeddings.token_type_embeddings.weight", [config["type_vocab_size"], h]),
              ("embeddings.LayerNorm.weight", [h]), ("embeddings.LayerNorm.bias", [h])]
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for proj in ("query", "key", "value"):
            shapes += [(p + f"attention.self.{proj}.weight", [h, h]), (p + f"attention.self.{proj}.bias", [h])]
        shapes += [(p + "attention.output.dense.weight", [h, h]), (p + "attention.output.dense.bias", [h]),
                   (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                   (p + "intermediate.dense.weight", [i, h]), (p + "intermediate.dense.bias", [i]),
                   (p + "output.dense.weight", [h, i]), (p + "output.dense.bias", [h]),
                   (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h])]
    shapes += [("pooler.dense.weight", [h, h]), ("pooler.dense.bias", [h])]
    out = []
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        if name.endswith("LayerNorm.weight"):
            values = [1.0] * n
        elif name.endswith("bias"):
            values = [0.0] * n
        else:
            values = [rng.gauss(0, 0.02) for _ in range(n)]
        out.append((prefix + name, shape, values))
    return out


def seed_checkpoints():
    config = json.loads((FIXTURES / "config.json").read_text())
    rng = random.Random(0)
    bert = tiny_tensors(config, "bert.", rng)
    write("checkpoint", "tiny-bert-prefix", safetensors(bert))
    write("checkpoint", "tiny-f16", safetensors(tiny_tensors(config, "", rng), "F16"))
    write("checkpoint", "tiny-no-pooler", safetensors([t for t in bert if "pooler" not in t[0]]))
    head = [("classifier.weight", [2, config["hidden_size"]], [0.01] * 2 * config["hidden_size"]), ("classifier.bias", [2], [0.0, 0.0])]
    write("checkpoint", "tiny-with-head", safetensors(bert + head))
    deeper = dict(config, num_hidden_layers=2)
    write("checkpoint", "tiny-two-layers", safetensors(tiny_tensors(deeper, "bert.", rng)))
    real = MODEL / "model.safetensors"
    if real.is_file():
        # The real header, cut to the first few tensors (offsets rewritten), and their data.
        with open(real, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            start = 8 + n
            kept, blobs, offset = {"__metadata__": header.get("__metadata__", {})}, [], 0
            small = sorted((v["data_offsets"][1] - v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")[:6]
            for size, name in small:
                entry = header[name]
                f.seek(start + entry["data_offsets"][0])
                blobs.append(f.read(size))
                kept[name] = dict(entry, data_offsets=[offset, offset + size])
                offset += size
        text = json.dumps(kept).encode()
        write("checkpoint", "all-MiniLM-L6-v2-first-tensors", struct.pack("<Q", len(text)) + text + b"".join(blobs))


if __name__ == "__main__":
    seed_data()
    seed_json_files()
    seed_checkpoints()
    for target in sorted(os.listdir(CORPUS)):
        files = list((CORPUS / target).iterdir())
        print(f"{target}: {len(files)} seeds, {sum(p.stat().st_size for p in files)} bytes", file=sys.stderr)
