#!/usr/bin/env bash
# Builds {{name}} into {{name}}.wasm and runs it in test/pipeline.yaml with `autoflow run`
# ($AUTOFLOW, default `autoflow` on the PATH): it passes when the output is the expected one.
set -euo pipefail
cd "$(dirname "$0")"
{{build}}
rm -rf test/out && mkdir -p test/out
"${AUTOFLOW:-autoflow}" run test/pipeline.yaml --log-level info 2>&1 | tee test/run.log
{{check}}
echo "{{name}}: test passed"
