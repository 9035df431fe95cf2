#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks: the wasm32-wasip2 target, the
# toolchains of the plugins in other languages (plugins/build-lang.sh): componentize-py
# (pip), componentize-js (`npm ci` in plugins/js, with Node.js from apt when missing), clang
# with wasi-libc (apt), wit-bindgen-cli and wasm-tools (cargo install); the alert tests' SMTP
# server aiosmtpd (pip); and for the web UI's browser test Debian's chromium (apt) and
# playwright-core (`npm ci` in tests/browser). Each step
# is skipped at once when its tool is already there at the pinned version; the first run takes
# minutes.
#
# The tests' build script (tests/build.rs) runs it, so `cargo test --workspace` does its own
# set-up; AUTOFLOW_SKIP_SETUP=1 skips it. A tool that cannot be installed gives one line on
# stderr saying what to run, and the script goes on with the others; it exits 1 if any failed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
failed=0
# A failed step's output is kept in $LOGS (named in its one line); a step that worked leaves none.
LOGS="${TMPDIR:-/tmp}/autoflow-setup-tools"
mkdir -p "$LOGS"
last_log=""
miss() { echo "setup-tools: $1: run: $2${last_log:+ (what failed: $last_log)}" >&2; failed=1; }
quiet() {
  local log; log="$(mktemp "$LOGS/step-XXXXXX.log")"
  "$@" >"$log" 2>&1; local rc=$?
  if [ $rc = 0 ]; then rm -f "$log"; last_log=""; else last_log="$log"; fi
  return $rc
}
apt() {
  [ "$(id -u)" = 0 ] || return 1
  [ -n "${APT_UPDATED:-}" ] || { quiet apt-get update -qq && APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive quiet apt-get install -y -qq "$@"
}

if ! rustc --print target-libdir --target wasm32-wasip2 2>/dev/null | xargs -r test -d; then
  quiet rustup target add wasm32-wasip2 || miss "the wasm32-wasip2 target is missing" "rustup target add wasm32-wasip2"
fi
if [ "$(componentize-py --version 2>/dev/null | awk '{print $2}')" != 0.25.1 ]; then
  quiet python3 -m pip install --quiet --disable-pip-version-check componentize-py==0.25.1 \
    || miss "componentize-py 0.25.1 is missing" "pip install componentize-py==0.25.1"
fi
# The alert tests' SMTP server (tests/smtp/server.py).
if ! python3 -c 'import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != "1.4.6")' 2>/dev/null; then
  quiet python3 -m pip install --quiet --disable-pip-version-check aiosmtpd==1.4.6 \
    || miss "aiosmtpd 1.4.6 is missing" "pip install aiosmtpd==1.4.6"
fi
if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null || [ ! -d /usr/include/wasm32-wasi ] \
   || ! ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; then
  apt clang lld wasi-libc libclang-rt-dev-wasm32 \
    || miss "clang with wasi-libc is missing" "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
fi
if ! command -v npm >/dev/null; then
  apt nodejs npm || miss "Node.js is missing" "apt-get install nodejs npm"
fi
js="$ROOT/plugins/js"
if command -v npm >/dev/null && { [ ! -x "$js/node_modules/.bin/componentize-js" ] \
   || ! cmp -s "$js/package-lock.json" "$js/node_modules/.package-lock.json.setup"; }; then
  (cd "$js" && quiet npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.package-lock.json.setup) \
    || miss "componentize-js is missing" "(cd plugins/js && npm ci)"
fi
# The web UI's browser test (tests/browser/ui.mjs): Debian's chromium, and playwright-core.
if [ ! -x /usr/bin/chromium ]; then
  apt chromium || miss "chromium is missing" "apt-get install chromium"
fi
browser="$ROOT/tests/browser"
if command -v npm >/dev/null && { [ ! -d "$browser/node_modules/playwright-core" ] \
   || ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.package-lock.json.setup"; }; then
  (cd "$browser" && quiet npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.package-lock.json.setup) \
    || miss "playwright-core is missing" "(cd tests/browser && npm ci)"
fi
cargo_tool() { # binary, crate, version, features (only what build-lang.sh uses: quicker to build)
  if [ "$("$1" --version 2>/dev/null | awk '{print $2}')" != "$3" ]; then
    quiet env -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
      cargo install --quiet --locked "$2" --version "$3" --no-default-features --features "$4" \
      || miss "$1 $3 is missing" "cargo install --locked $2 --version $3"
  fi
}
cargo_tool wit-bindgen wit-bindgen-cli 0.61.1 c
cargo_tool wasm-tools wasm-tools 1.239.0 component
exit $failed
