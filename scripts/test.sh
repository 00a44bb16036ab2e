#!/usr/bin/env bash
# test.sh: set everything up (setup.sh) and run every test: lint, type check and
# vitest (unit and privileged). Ends with one plain line "N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
step() {  # step NAME CMD...: a non-vitest check counts as one test
  if "${@:2}"; then passed=$((passed + 1)); echo "[test] $1: ok" >&2
  else failed=$((failed + 1)); echo "[test] $1: FAILED" >&2; fi
}
step eslint npx eslint .
step prettier npx prettier --check .
step typecheck npx tsc -p tsconfig.check.json

results="$ROOT/.vitest-results.json"
rm -f "$results"
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
if [ -f "$results" ]; then
  read -r vp vf < <(node -e 'const r=require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + (r.numTotalTestSuites && !r.success && r.numFailedTests===0 ? 1 : 0))' "$results")
  passed=$((passed + vp)); failed=$((failed + vf))
else
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
