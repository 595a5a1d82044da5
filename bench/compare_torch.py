"""webtune's native training step vs PyTorch + transformers, case by case, in ONE run (the
machines are noisy: only ratios measured together mean something).

Usage (needs a venv with torch + transformers, see tests/python/requirements.txt):
  python bench/compare_torch.py [--rounds N] [--batch B] [--threads T] [--repeat R] [--gemm]
                                [--cases minilm:12:full,bert-base:128:full:8,...]
A case is MODEL:SEQ:STRATEGY[:BATCH] (BATCH defaults to --batch); MODEL is minilm, bert-base,
distilbert-base or roberta-base (the last two: random checkpoints with the real base models'
configs, written under target/ when missing). For each case it runs
`target/release/webtune bench` and ../shared/bench/torch_reference.py (bench/torch_reference_auto.py
for DistilBERT and RoBERTa) alternately, R times, and
prints both medians (over the repeats of each side's per-run median), the spread, and the ratio
webtune / PyTorch.

--gemm compares the encoder's forward matrix products instead of steps: `webtune bench --gemm`
(kernels::gemm) against torch's `x @ w.T` (MKL; nn.Linear's layout) on the same (m × n × k), in
GFLOPS (STRATEGY is then ignored). `cargo run --release --example fma_peak` gives the ceiling.
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_REF = os.path.join(ROOT, "..", "shared", "bench", "torch_reference.py")
TORCH_REF_AUTO = os.path.join(ROOT, "bench", "torch_reference_auto.py")
# name: (webtune's model folder, the torch reference's source, the torch reference script).
# The DistilBERT and RoBERTa folders are written with `webtune random-checkpoint --arch ARCH`
# when missing; the torch side loads the same folder (AutoModelForSequenceClassification).
MODELS = {
    "minilm": ("models/all-MiniLM-L6-v2", "models/all-MiniLM-L6-v2", TORCH_REF),
    "bert-base": ("models/bert-base-random", "bert-base-shape", TORCH_REF),
    "distilbert-base": ("target/random-distilbert-base", "target/random-distilbert-base", TORCH_REF_AUTO),
    "roberta-base": ("target/random-roberta-base", "target/random-roberta-base", TORCH_REF_AUTO),
}
RANDOM_ARCH = {"distilbert-base": "distilbert", "roberta-base": "roberta"}
DEFAULT_CASES = [f"{m}:{s}:{t}" for m in ("minilm", "bert-base") for s in (12, 128) for t in ("frozen", "full")]


def ensure_model(model):
    """Write a random checkpoint for a DistilBERT- or RoBERTa-shaped case when it is missing."""
    folder = os.path.join(ROOT, MODELS[model][0])
    if model in RANDOM_ARCH and not os.path.exists(os.path.join(folder, "model.safetensors")):
        subprocess.run([os.path.join(ROOT, "target/release/webtune"), "random-checkpoint", "--arch", RANDOM_ARCH[model], "--out", folder], cwd=ROOT, check=True)


def run_json_lines(cmd, env=None):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")]


def run_json(cmd, env=None):
    return run_json_lines(cmd, env)[-1]


def torch_products(shapes, threads, rounds):
    """Median ms and GFLOPS of torch's x (m × k) @ w (n × k).T for each of webtune's shapes."""
    import torch
    torch.set_num_threads(threads)
    results = []
    for shape in shapes:
        m, n, k = shape["m"], shape["n"], shape["k"]
        x, w = torch.randn(m, k), torch.randn(n, k)
        x @ w.T  # warm-up
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            x @ w.T
            times.append(time.perf_counter() - start)
        ms = statistics.median(times) * 1e3
        results.append({"product": shape["product"], "m": m, "n": n, "k": k, "ms": ms, "gflops": 2 * m * n * k / ms / 1e6})
    return results


def compare_products(args, env):
    print(f"{args.threads} thread(s), {args.repeat} alternating run(s) per case: GFLOPS of each forward product, median (min–max over runs)")
    print(f"{'case':<24} {'product':<11} {'m × n × k':>18} {'webtune':>18} {'torch (MKL)':>18} {'webtune ÷ torch, time':>22}")
    for case in args.cases.split(","):
        parts = case.split(":")
        model, seq = parts[:2]
        batch = parts[3] if len(parts) > 3 else str(args.batch)
        ensure_model(model)
        ours_runs, theirs_runs = [], []
        for _ in range(args.repeat):
            ours_runs.append(run_json_lines([os.path.join(ROOT, "target/release/webtune"), "bench", "--gemm", "--json", "--model", MODELS[model][0],
                                             "--seq", seq, "--batch", batch, "--rounds", str(args.rounds), "--threads", str(args.threads)], env))
            theirs_runs.append(torch_products(ours_runs[-1], args.threads, args.rounds))
        for i, shape in enumerate(ours_runs[0]):
            ours = [run[i]["gflops"] for run in ours_runs]
            theirs = [run[i]["gflops"] for run in theirs_runs]
            spread = lambda v: f"{statistics.median(v):.1f} ({min(v):.0f}–{max(v):.0f})"
            ratio = statistics.median(t / o for o, t in zip(ours, theirs))
            dims = f"{shape['m']} × {shape['n']} × {shape['k']}"
            print(f"{model + ':' + batch + 'x' + seq:<24} {shape['product']:<11} {dims:>18} {spread(ours):>18} {spread(theirs):>18} {ratio:>22.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="alternate the two sides this many times per case")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES))
    ap.add_argument("--gemm", action="store_true", help="compare the forward matrix products (GFLOPS), not steps")
    args = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    if args.gemm:
        return compare_products(args, env)
    rows = []
    for case in args.cases.split(","):
        parts = case.split(":")
        model, seq, strategy = parts[:3]
        batch = parts[3] if len(parts) > 3 else str(args.batch)
        ours_dir, torch_src, torch_ref = MODELS[model]
        ensure_model(model)
        ours_runs, theirs_runs = [], []
        for _ in range(args.repeat):
            ours_runs.append(run_json([os.path.join(ROOT, "target/release/webtune"), "bench", "--json", "--model", ours_dir, "--seq", seq,
                                       "--batch", batch, "--strategy", strategy, "--rounds", str(args.rounds), "--threads", str(args.threads)], env))
            theirs_runs.append(run_json([sys.executable, torch_ref, torch_src, seq, strategy, str(args.rounds), batch, str(args.threads)], env))
            print(json.dumps({"case": case, "batch": batch, "webtune": ours_runs[-1], "torch": theirs_runs[-1]}), file=sys.stderr)
        rows.append((f"{model}:{batch}x{seq}:{strategy}", ours_runs, theirs_runs))
    print(f"{args.threads} thread(s), {args.repeat} alternating run(s) per case, median ms per step (min–max over runs)")
    print(f"{'case':<26} {'webtune ms':>18} {'(fwd/bwd/opt)':>16} {'torch ms':>18} {'(fwd/bwd/opt)':>16} {'ratio':>6} {'RSS MiB':>8}")
    for case, ours, theirs in rows:
        med = lambda runs, k: statistics.median(r[k] for r in runs)
        spread = lambda runs: f"{med(runs, 'step_ms'):.1f} ({min(r['step_ms'] for r in runs):.0f}–{max(r['step_ms'] for r in runs):.0f})"
        split = lambda runs: f"{med(runs, 'forward_ms'):.0f}/{med(runs, 'backward_ms'):.0f}/{med(runs, 'optimizer_ms'):.0f}"
        ratios = [o["step_ms"] / t["step_ms"] for o, t in zip(ours, theirs)]
        print(f"{case:<26} {spread(ours):>18} {split(ours):>16} {spread(theirs):>18} {split(theirs):>16} "
              f"{statistics.median(ratios):>6.2f} {max(r['peak_rss_mib'] for r in ours):>8.0f}")


if __name__ == "__main__":
    main()
