#!/usr/bin/env bash
# Runs the fuzz targets one after another, each for SECONDS (default 60), with libFuzzer
# through cargo-fuzz on the stable toolchain, and prints each target's executions, coverage
# and speed. Not part of the tests or of .ci/run.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      targets: pipeline connection_url config_schema plugin_upload
#
# No sanitizer by default (`-s none`: AddressSanitizer is a `-Z` flag); FUZZ_ASAN=1 builds
# with it through RUSTC_BOOTSTRAP=1 (the stable toolchain ships its runtime), into its own
# target dir (see README.md).
#
# The corpora grow in fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET and, for
# plugin_upload, the built-in plugins); a failing input is written to fuzz/artifacts/TARGET/
# and the script exits non-zero after the remaining targets ran. Build output goes to
# $CARGO_TARGET_DIR (default fuzz/target).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(pipeline connection_url config_schema plugin_upload)
fi
if [ "${FUZZ_ASAN:-0}" = 1 ]; then
    export RUSTC_BOOTSTRAP=1
    sanitizer=address
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}-asan
else
    sanitizer=none
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked
fi
cd "$here"
if [ ${#targets[@]} -eq 1 ]; then
    cargo fuzz build -s "$sanitizer" --fuzz-dir "$here" "${targets[0]}"
else
    cargo fuzz build -s "$sanitizer" --fuzz-dir "$here"
fi

failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" logs
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    if [ "$t" = plugin_upload ]; then
        cp -n "$CARGO_TARGET_DIR"/wasm-plugins/wasm32-wasip2/release/*.wasm "corpus/$t/" 2>/dev/null || true
    fi
    # Components are larger than the other inputs (the built-ins are 0.1 to 0.3 MB).
    max_len=65536
    [ "$t" = plugin_upload ] && max_len=1048576
    log="logs/$t.log"
    echo "== $t: ${seconds}s" >&2
    # -timeout: one input taking longer than 10 s is a finding; -rss_limit_mb: so is 4 GiB.
    if ! cargo fuzz run -s "$sanitizer" --fuzz-dir "$here" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len="$max_len" \
        -print_final_stats=1 >"$log" 2>&1; then
        failed+=("$t")
    fi
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
    summary+=("$t: ${runs:-?} executions, ${speed:-?} exec/s, last: ${last:-no status line (see fuzz/$log)}")
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
    exit 1
fi
