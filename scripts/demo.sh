#!/usr/bin/env bash
# demo.sh: the main job. Sets everything up (setup.sh: apt packages, npm ci, build, the
# e2e guest), then runs the demo (src/demo/main.ts): a CRI pod sandbox through real CNI
# plugins and tapmanager, a QEMU guest booted through vmwrapper, its lease, and cleanup.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TAPWIRE_SHARED="${TAPWIRE_SHARED:-$ROOT/../shared}"
bash "$ROOT/scripts/setup.sh"
exec node "$ROOT/dist/src/demo/main.js" "$@"
