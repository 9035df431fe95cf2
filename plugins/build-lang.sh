#!/usr/bin/env bash
# Builds the plugins written in Python, JavaScript, C and Rust from source into components.
#
#   plugins/build-lang.sh [--src DIR] [--out DIR] [python|js|c|rust ...]
#
# --src (default: plugins/) holds python/*.py, js/*.js, c/*.c and rust/*/Cargo.toml; each source
# file names its world on its first line (`# world: transform-plugin`, `// world: ...`).
# --out (default: target/lang-plugins) receives OUT/LANG/NAME.wasm. With no language, all four.
# A component newer than its sources (and the helpers and WIT) is not rebuilt.
#
# Tools (`.ci/run` installs them): componentize-py 0.25.1 (pip); componentize-js 0.23.0
# (`npm ci` in plugins/js); clang with wasi-libc, wit-bindgen-cli 0.61.1 and wasm-tools (C), with
# the WASI preview1 reactor adapter at $AUTOFLOW_WASI_ADAPTER or in the cargo registry;
# cargo with the wasm32-wasip2 target (Rust). A missing tool fails with a message naming it.
set -euo pipefail

PLUGINS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$PLUGINS")"
# The Python, JavaScript and C helpers target autoflow:plugin@0.1.0 (the host loads it beside
# 0.2.0, whose only change is `transform`); the Rust SDK targets 0.2.0.
WIT="$ROOT/wit/deps/autoflow-plugin@0.1.0"
SRC="$PLUGINS"
OUT="${CARGO_TARGET_DIR:-$ROOT/target}/lang-plugins"
ADAPTER_VERSION=48.0.8
langs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --src) SRC="$(cd "$2" && pwd)"; shift 2 ;;
    --out) mkdir -p "$2"; OUT="$(cd "$2" && pwd)"; shift 2 ;;
    python|js|c|rust) langs+=("$1"); shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build-lang.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#langs[@]} -gt 0 ] || langs=(python js c rust)

die() { echo "build-lang.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

# The world named on the first line of a source file.
world_of() {
  local w
  w="$(head -n 1 "$1" | sed -n 's/^\(#\|\/\/\) *world: *\([a-z-]*\).*/\2/p')"
  [ -n "$w" ] || die "$1: the first line must name the world, such as '# world: transform-plugin'"
  echo "$w"
}

# True when $1 exists and is newer than every other argument (files or folders' files).
fresh() {
  local out="$1"; shift
  [ -f "$out" ] || return 1
  [ -z "$(find "$@" -newer "$out" -type f -not -path '*/node_modules/*' -not -path '*/target/*' -print -quit 2>/dev/null)" ]
}

build_python() {
  need componentize-py "pip install componentize-py==0.25.1"
  mkdir -p "$OUT/python"
  for src in "$SRC"/python/*.py; do
    local name; name="$(basename "$src" .py)"
    [ "$name" != autoflow_plugin ] || continue
    local out="$OUT/python/$name.wasm"
    fresh "$out" "$src" "$PLUGINS/python/autoflow_plugin.py" "$WIT" && continue
    echo "python: $name"
    componentize-py -d "$WIT" -w "$(world_of "$src")" componentize "$name" \
      -p "$SRC/python" -p "$PLUGINS/python" -o "$out.tmp" >/dev/null
    mv "$out.tmp" "$out"
  done
}

build_js() {
  local cjs="$PLUGINS/js/node_modules/.bin/componentize-js"
  [ -x "$cjs" ] || die "componentize-js not found: run 'npm ci' in plugins/js"
  mkdir -p "$OUT/js"
  for src in "$SRC"/js/*.js; do
    local name; name="$(basename "$src" .js)"
    [ "$name" != autoflow ] || continue
    local out="$OUT/js/$name.wasm"
    fresh "$out" "$src" "$PLUGINS/js/autoflow.js" "$WIT" && continue
    echo "js: $name"
    # No wasi:http in the host: leave out the http and fetch-event features.
    "$cjs" "$src" --wit "$WIT" -n "$(world_of "$src")" -d http fetch-event -o "$out.tmp" >/dev/null
    mv "$out.tmp" "$out"
  done
}

# The WASI preview1 reactor adapter of the wasmtime release the host uses.
adapter() {
  if [ -n "${AUTOFLOW_WASI_ADAPTER:-}" ]; then echo "$AUTOFLOW_WASI_ADAPTER"; return; fi
  local found
  found="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-$ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm 2>/dev/null | head -n 1 || true)"
  if [ -z "$found" ]; then
    cargo fetch --manifest-path "$ROOT/Cargo.toml" >/dev/null 2>&1 || true
    found="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-$ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm 2>/dev/null | head -n 1 || true)"
  fi
  [ -n "$found" ] || die "the WASI preview1 reactor adapter $ADAPTER_VERSION was not found: set AUTOFLOW_WASI_ADAPTER"
  echo "$found"
}

build_c() {
  need clang "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
  need wasm-ld "apt-get install lld"
  need wit-bindgen "cargo install wit-bindgen-cli --version 0.61.1 --locked"
  need wasm-tools "cargo install wasm-tools --version 1.239.0 --locked"
  mkdir -p "$OUT/c"
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  local adapter_file=""
  for src in "$SRC"/c/*.c; do
    local name; name="$(basename "$src" .c)"
    local out="$OUT/c/$name.wasm"
    fresh "$out" "$src" "$WIT" && continue
    [ -n "$adapter_file" ] || adapter_file="$(adapter)"
    echo "c: $name"
    local world; world="$(world_of "$src")"
    local bind="$work/$world"
    if [ ! -d "$bind" ]; then
      wit-bindgen c "$WIT" -w "$world" --out-dir "$bind" >"$work/wit-bindgen.log" 2>&1 \
        || { cat "$work/wit-bindgen.log" >&2; die "wit-bindgen c failed for $world"; }
    fi
    clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -I "$bind" \
      -o "$work/$name.core.wasm" "$src" "$bind"/*.c "$bind"/*_component_type.o
    wasm-tools component new "$work/$name.core.wasm" \
      --adapt "wasi_snapshot_preview1=$adapter_file" -o "$out.tmp"
    mv "$out.tmp" "$out"
  done
}

build_rust() {
  need cargo "install Rust with the wasm32-wasip2 target (rustup target add wasm32-wasip2)"
  mkdir -p "$OUT/rust"
  for manifest in "$SRC"/rust/*/Cargo.toml; do
    local dir; dir="$(dirname "$manifest")"
    local name; name="$(basename "$dir")"
    local out="$OUT/rust/$name.wasm"
    fresh "$out" "$dir/src" "$manifest" "$ROOT/plugin-sdk" "$ROOT/wit" && continue
    echo "rust: $name"
    # Its own target dir: an outer cargo (a build script calling this) holds the shared one.
    env -u CARGO_ENCODED_RUSTFLAGS -u RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_MANIFEST_DIR \
      CARGO_TARGET_DIR="$OUT/rust/target" \
      cargo build --quiet --release --target wasm32-wasip2 --manifest-path "$manifest"
    cp "$OUT/rust/target/wasm32-wasip2/release/${name//-/_}.wasm" "$out"
  done
}

for lang in "${langs[@]}"; do
  [ -d "$SRC/$lang" ] || continue
  "build_$lang"
done
