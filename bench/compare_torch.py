"""webtune's native training step vs PyTorch + transformers, case by case, in ONE run (the
machines are noisy: only ratios measured together mean something).

Usage (needs a venv with torch + transformers, see tests/python/requirements.txt):
  python bench/compare_torch.py [--rounds N] [--cases minilm:12:full,...]
Runs `target/release/webtune bench` and ../shared/bench/torch_reference.py for each case,
alternating them, and prints both medians and the ratio webtune / PyTorch.
"""
import argparse, json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_REF = os.path.join(ROOT, "..", "shared", "bench", "torch_reference.py")
MODELS = {
    "minilm": ("models/all-MiniLM-L6-v2", "models/all-MiniLM-L6-v2"),
    "bert-base": ("models/bert-base-random", "bert-base-shape"),
}
DEFAULT_CASES = [f"{m}:{s}:{t}" for m in MODELS for s in (12, 128) for t in ("frozen", "full")]


def run_json(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES))
    args = ap.parse_args()
    rows = []
    for case in args.cases.split(","):
        model, seq, strategy = case.split(":")
        ours_dir, torch_src = MODELS[model]
        ours = run_json([os.path.join(ROOT, "target/release/webtune"), "bench", "--json", "--model", ours_dir,
                         "--seq", seq, "--strategy", strategy, "--rounds", str(args.rounds)])
        theirs = run_json([sys.executable, TORCH_REF, torch_src, seq, strategy, str(args.rounds)])
        rows.append((case, ours, theirs))
        print(json.dumps({"case": case, "webtune": ours, "torch": theirs}), file=sys.stderr)
    print(f"{'case':<22} {'webtune ms':>10} {'(fwd/bwd/opt)':>20} {'torch ms':>9} {'(fwd/bwd/opt)':>20} {'ratio':>6} {'RSS MiB':>8}")
    for case, o, t in rows:
        split = lambda r: f"{r['forward_ms']:.0f}/{r['backward_ms']:.0f}/{r['optimizer_ms']:.0f}"
        print(f"{case:<22} {o['step_ms']:>10.1f} {split(o):>20} {t['step_ms']:>9.1f} {split(t):>20} "
              f"{o['step_ms'] / t['step_ms']:>6.2f} {o['peak_rss_mib']:>8.0f}")


if __name__ == "__main__":
    main()
