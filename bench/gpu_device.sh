#!/usr/bin/env bash
# Issue 26's GPU targets on a lent GPU machine (the `device` tool), in one short run (about 2–4
# minutes of a machine's time; it stops itself after 7):
#   1. the WGSL kernels of a step on bert-base's shapes (8 × 128 tokens): each product's GFLOPS
#      and its share of the GPU's f32 peak (target: the products reach ≥ 25 %);
#   2. a bert-base 8 × 128 `full` step on the GPU and on the CPU with all the machine's cores, in
#      the same run (target: the GPU step ≥ 10× faster), each split forward / backward /
#      optimizer; the same for MiniLM (all-MiniLM-L6-v2's shape) at 16 × 64.
# Both models are random checkpoints of the real shapes (`webtune random-checkpoint`): the real
# MiniLM weights (87 MB) do not fit in what a call carries, and speed does not depend on values.
#
# Prepare once, here, from the repository root:
#   nice cargo build --release --bin webtune          # or ./build.sh build
#   echo /.gl/ >>.git/info/exclude; mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1)
# Then one device call (run):
#   command: bash bench/gpu_device.sh
#   carry:   [".gl", "target/release/webtune", "models/all-MiniLM-L6-v2/config.json",
#             "models/all-MiniLM-L6-v2/tokenizer.json"]
#   timeout_s: 480
# The JSON rows and this output land in $OUT (gpu_bench.jsonl, gpu_device.log) when it is set.
# PEAK_GFLOPS=… overrides the f32 peak worked out below from nvidia-smi; ROUNDS=… the timed
# steps per case (default 5). DRY_RUN=1 runs the same plumbing on 2 × 8 tokens, 1 round (for a
# check on lavapipe, where the full shapes take too long; its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_device}
mkdir -p "$out"
exec > >(tee "$out/gpu_device.log") 2>&1

webtune=target/release/webtune
[ -x "$webtune" ] || { echo "no $webtune: build it here and name it in carry"; exit 1; }
[ -f models/all-MiniLM-L6-v2/tokenizer.json ] || { echo "carry models/all-MiniLM-L6-v2/{config,tokenizer}.json"; exit 1; }

# The Vulkan loader (unpacked from the carried .deb), NVIDIA's driver manifest, a runtime dir.
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
ldconfig -p | grep -q 'libvulkan.so.1' || { echo "no Vulkan loader: carry .gl (see the comment at the top)"; exit 1; }
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export XDG_RUNTIME_DIR=$(mktemp -d)
chmod 700 "$XDG_RUNTIME_DIR"

# The GPU's f32 peak: SMs × 128 FP32 lanes (Hopper, Ada, Ampere GA10x) × 2 × the top SM clock.
name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 || true)
mhz=$(nvidia-smi --query-gpu=clocks.max.sm --format=csv,noheader,nounits | head -1 || true)
case "$name" in
  *H100*PCIe*) sms=114 lanes=128 ;;
  *H100*|*H200*|*GH200*) sms=132 lanes=128 ;;
  *A100*) sms=108 lanes=64 ;;
  *) sms= lanes= ;;
esac
if [ -z "${PEAK_GFLOPS:-}" ] && [ -n "$sms" ] && [ -n "$mhz" ]; then
  PEAK_GFLOPS=$(( sms * lanes * 2 * mhz / 1000 ))
fi
peak=()
[ -n "${PEAK_GFLOPS:-}" ] && peak=(--peak-gflops "$PEAK_GFLOPS")
cores=$(nproc)
echo "GPU: ${name:-unknown} (${sms:-?} SMs, ${mhz:-?} MHz): f32 peak ${PEAK_GFLOPS:-unknown} GFLOPS; CPU: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"

models=/tmp/webtune-models
"$webtune" random-checkpoint --out "$models/bert-base-random" --tokenizer-from models/all-MiniLM-L6-v2
"$webtune" random-checkpoint --config models/all-MiniLM-L6-v2/config.json --out "$models/minilm-random" --tokenizer-from models/all-MiniLM-L6-v2

rounds=${ROUNDS:-5}
limit=200
bert_shape=(--batch 8 --seq 128)
minilm_shape=(--batch 16 --seq 64)
if [ -n "${DRY_RUN:-}" ]; then
  rounds=1 limit=1200 bert_shape=(--batch 2 --seq 8) minilm_shape=(--batch 2 --seq 8)
fi
json=$out/gpu_bench.jsonl
: >"$json"
bench() {
  timeout "$limit" "$webtune" bench --device gpu "${peak[@]}" --threads "$cores" --rounds "$rounds" --strategy full "$@" --json >>"$json"
}
bench --model "$models/bert-base-random" "${bert_shape[@]}"
bench --model "$models/minilm-random" "${minilm_shape[@]}"

# Side by side, and the targets.
python3 - "$json" "${PEAK_GFLOPS:-0}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peak = float(sys.argv[2])
for model in dict.fromkeys(r["model"] for r in rows):
    kernels = [r for r in rows if r["model"] == model and r.get("row") == "gpu_kernel"]
    steps = [r for r in rows if r["model"] == model and r.get("row") is None]
    if kernels:
        k0 = kernels[0]
        print(f"\n{model}: WGSL kernels at {k0['batch']} × {k0['seq_len']} on {k0['device']}")
        print(f"{'kernel':<36} {'m × n × k':>18} {'ms':>8} {'GFLOPS':>8} {'% peak':>7} {'GB/s':>7}")
        for k in kernels:
            dims = f"{k['m']}×{k['n']}×{k['k']}" + (f" ×{k['count']}" if k['count'] > 1 else "") if k.get("gflops") is not None else f"{k['m']}×{k['n']}"
            share = f"{k['percent_of_peak']:.2f}" if k.get("percent_of_peak") is not None else "-"
            gflops = f"{k['gflops']:.1f}" if k.get("gflops") is not None else "-"
            gbs = f"{k['gb_per_s']:.0f}" if k.get("gb_per_s") is not None else "-"
            print(f"{k['kernel']:<36} {dims:>18} {k['ms']:>8.3f} {gflops:>8} {share:>7} {gbs:>7}")
        linear = [k for k in kernels if k.get("gflops") is not None and "attention" not in k["kernel"]]
        if peak and linear:
            worst = min(k["gflops"] for k in linear)
            weighted = sum(2 * k["m"] * k["n"] * k["k"] * k["per_full_step"] for k in linear) / sum(k["ms"] * 1e6 * k["per_full_step"] for k in linear)
            print(f"{model}: Linear products, % of f32 peak: slowest {100 * worst / peak:.1f} %, over a full step's mix {100 * weighted / peak:.1f} % (target ≥ 25 %)")
    for o in (r for r in rows if r["model"] == model and r.get("row") == "gpu_launch_overhead"):
        print(f"{model}: one launch costs {o['us_per_launch']:.1f} µs beyond its kernel's work, {o['cpu_us_per_launch']:.1f} µs of them on the CPU")
    cpu = [s for s in steps if s["device"] == "cpu"]
    gpu = [s for s in steps if s["device"].startswith("gpu")]
    print(f"\n{model}: full step, median of the timed steps (ms)")
    print(f"{'device':<44} {'step':>9} {'forward':>9} {'backward':>9} {'optim':>9}")
    for s in cpu + gpu:
        label = f"cpu, {s['threads']} threads" if s["device"] == "cpu" else s["device"]
        print(f"{label:<44} {s['step_ms']:>9.1f} {s['forward_ms']:>9.1f} {s['backward_ms']:>9.1f} {s['optimizer_ms']:>9.1f}")
    if cpu and gpu:
        print(f"{model}: GPU step {cpu[0]['step_ms'] / gpu[0]['step_ms']:.2f}× faster than the CPU's (target for bert-base: ≥ 10×)")
PY
