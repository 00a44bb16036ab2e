#!/usr/bin/env bash
# demo.sh: the main job. Sets everything up (setup.sh: apt packages, npm ci, build,
# tapwire's guest image), then runs the demo (src/demo/main.ts): a VM pod through
# tapwire-cri --backend in front of a containerd of its own (with containerd installed;
# --standalone: tapwire-cri alone, calling the CNI plugins itself), tapmanager, tapwire's
# guest booted through vmwrapper, its lease, and cleanup.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
exec node "$ROOT/dist/src/demo/main.js" "$@"
