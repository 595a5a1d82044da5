"""Banking77: webtune vs PyTorch + transformers, same recipes, case by case in ONE run.

Usage (from the repository root; any python3 runs this driver, the PyTorch side runs in the venv
of tests/python/requirements.txt):
  python3 bench/banking.py [--recipes frozen,full] [--threads 1] [--python PY] [--out FILE]

For each recipe it runs `target/release/webtune train ... --json` (RAYON_NUM_THREADS=threads)
and then bench/banking_torch.py (torch.set_num_threads(threads)) and prints test accuracy
webtune / PyTorch / difference in points, and wall time webtune / PyTorch / ratio, with the
load average before and after each side (the machine is shared: times are only indicative
when it is busy; accuracies do not depend on it).

Recipes (see bench/banking_torch.py for the PyTorch side):
  frozen: --strategy frozen --head-lr 1e-2 --batch-size 32 --epochs 10
  full:   --strategy full --lr 5e-5 --head-lr 1e-3 --batch-size 16 --epochs 1 --schedule linear --warmup-ratio 0.1
Times compared: frozen = encoding (the cache of train + test) + head epochs; full = the training
epoch and the evaluation (test + a 1000-sentence training sample on both sides). Model loading
and tokenization are outside both clocks.
"""
import argparse, datetime, json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = {
    "frozen": ["--strategy", "frozen", "--head-lr", "1e-2", "--batch-size", "32", "--epochs", "10"],
    "full": ["--strategy", "full", "--lr", "5e-5", "--head-lr", "1e-3", "--batch-size", "16", "--epochs", "1",
             "--schedule", "linear", "--warmup-ratio", "0.1"],
}


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def default_python():
    for p in (os.path.join(ROOT, "target/python-venv/bin/python"), "/work/core/target/python-venv/bin/python"):
        if os.path.exists(p):
            return p
    return sys.executable


def run_webtune(args, recipe):
    cmd = [args.webtune, "train", "--model", args.model, "--data", args.train, "--val-data", args.test,
           *RECIPES[recipe], "--seed", "0", "--json"]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    print(f"$ RAYON_NUM_THREADS={args.threads} {' '.join(cmd)}", file=sys.stderr, flush=True)
    load0, t0 = loadavg(), time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    events = []
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        events.append(ev)
        if ev["type"] == "step" and ev["step"] % 100 == 0:
            print(f"[webtune {recipe}] step {ev['step']} loss {ev['loss']:.4f} {ev['elapsed_ms'] / 1000:.0f}s",
                  file=sys.stderr, flush=True)
        elif ev["type"] in ("epoch", "error"):
            print(f"[webtune {recipe}] {json.dumps(ev)}", file=sys.stderr, flush=True)
    if proc.wait() != 0 or not any(e["type"] == "done" for e in events):
        sys.exit(f"webtune {recipe} failed (status {proc.returncode})")
    wall = time.perf_counter() - t0
    done = next(e for e in events if e["type"] == "done")
    steps = [e for e in events if e["type"] == "step"]
    cache = [e for e in events if e["type"] == "progress" and e.get("phase") == "cache"]
    epochs = [e for e in events if e["type"] == "epoch"]
    start = next((e for e in events if e["type"] == "start"), {})
    r = {"side": "webtune", "recipe": recipe, "threads": start.get("threads"), "steps": done["steps"],
         "test_accuracy": done["val_accuracy"], "total_s": done["elapsed_ms"] / 1000, "process_wall_s": wall,
         "epochs": [{k: e[k] for k in ("epoch", "train_loss", "train_accuracy", "val_accuracy", "elapsed_ms")} for e in epochs],
         "peak_bytes": done.get("peak_bytes"), "load_before": load0, "load_after": loadavg()}
    if recipe == "frozen":
        r["encode_s"] = cache[-1]["elapsed_ms"] / 1000 if cache else 0.0
        r["head_s"] = r["total_s"] - r["encode_s"]
    else:
        r["train_s"] = steps[-1]["elapsed_ms"] / 1000
        r["eval_s"] = r["total_s"] - r["train_s"]
    print(json.dumps(r), file=sys.stderr, flush=True)
    return r


def run_torch(args, recipe):
    cmd = [args.python, os.path.join(ROOT, "bench/banking_torch.py"), "--recipe", recipe, "--threads", str(args.threads),
           "--model", args.model, "--train", args.train, "--test", args.test]
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    load0, t0 = loadavg(), time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    r = next(json.loads(l) for l in out.splitlines() if l.startswith("{"))
    r.update(process_wall_s=time.perf_counter() - t0, load_before=load0, load_after=loadavg())
    print(json.dumps(r), file=sys.stderr, flush=True)
    return r


def split(r):
    if r["recipe"] == "frozen":
        return f"{r['encode_s']:.0f} + {r['head_s']:.1f}"
    return f"{r['train_s']:.0f} + {r['eval_s']:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="frozen,full")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--python", default=default_python())
    ap.add_argument("--webtune", default=os.path.join(ROOT, "target/release/webtune"))
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--train", default="../shared/data/banking/train.tsv")
    ap.add_argument("--test", default="../shared/data/banking/test.tsv")
    ap.add_argument("--out", help="also write the results as JSON here")
    args = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    rows = []
    for recipe in args.recipes.split(","):
        rows.append((recipe, run_webtune(args, recipe), run_torch(args, recipe)))

    print(f"Banking77, all-MiniLM-L6-v2, {args.threads} thread(s), commit {commit}, {started}")
    print(f"{'recipe':<7} {'acc webtune':>11} {'acc torch':>9} {'diff pts':>8}   {'time webtune (s)':>17} "
          f"{'time torch (s)':>15} {'ratio':>6}  {'load avg (wt / torch)':>22}")
    for recipe, w, t in rows:
        diff = 100 * (w["test_accuracy"] - t["test_accuracy"])
        print(f"{recipe:<7} {100 * w['test_accuracy']:>10.2f}% {100 * t['test_accuracy']:>8.2f}% {diff:>+8.2f}   "
              f"{w['total_s']:>6.0f} ({split(w):>8}) {t['total_s']:>5.0f} ({split(t):>7}) {w['total_s'] / t['total_s']:>6.2f}  "
              f"{w['load_before'][0]:>5.2f}-{w['load_after'][0]:<5.2f}/ {t['load_before'][0]:.2f}-{t['load_after'][0]:.2f}")
    print("(times: frozen = encoding + head epochs, full = training + evaluation; load avg = 1-min, before-after)")
    ok = all(abs(w["test_accuracy"] - t["test_accuracy"]) <= 0.02 for _, w, t in rows)
    print("accuracy target (within 2 points): " + ("met" if ok else "NOT met"))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"commit": commit, "started": started, "threads": args.threads,
                       "results": [{"recipe": r, "webtune": w, "torch": t} for r, w, t in rows]}, f, indent=1)


if __name__ == "__main__":
    main()
