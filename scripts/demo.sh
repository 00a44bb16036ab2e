#!/usr/bin/env bash
# demo.sh: the main job. Sets everything up, then runs the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
exec node "$ROOT/dist/src/demo/main.js" "$@"
