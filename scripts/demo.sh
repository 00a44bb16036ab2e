#!/usr/bin/env bash
# demo.sh: the main job. Sets everything up, then (until the CRI-driven demo lands)
# wires a real CNI pod through tapmanager and boots the e2e guest on its tap, judged by
# the e2e harness: prints each step, the guest's DHCP lease and the checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${TAPWIRE_SHARED:-$ROOT/../shared}"
bash "$ROOT/scripts/setup.sh"
if [ -f "$ROOT/dist/src/demo/main.js" ]; then exec node "$ROOT/dist/src/demo/main.js" "$@"; fi
echo "== tapwire demo: CNI bridge pod -> tapmanager -> QEMU guest (TCG) =="
out=$(VMNET_E2E_QUIET=1 bash "$SHARED/e2e/reference-topology.sh" --plumber "$ROOT/scripts/e2e-plumber" \
  --cni "${1:-bridge}" --dhcp udhcpc 2>"${TMPDIR:-/tmp}/tapwire-demo.console") || rc=$?
echo "$out" | grep -E '^(CHECK|E2E-TIMING|E2E-REFERENCE)' | sed 's/^/  /'
echo "== guest lease (from its console) =="
grep -o 'DHCP-BOUND.*' "${TMPDIR:-/tmp}/tapwire-demo.console" | head -1 | tr ' ' '\n' | sed 's/^/  /'
exit "${rc:-0}"
