#!/usr/bin/env bash
# fresh-check.sh [--keep] [COMMAND...]: runs COMMAND (default: the demo, then the whole CI
# test run) in a stand-in for a fresh machine, the way contributors check a change before
# they submit it:
#   * a `git clone` of this checkout's HEAD (committed work only) into a new temp dir, with
#     nothing beside it (no ../shared) and TAPWIRE_SHARED and TAPWIRE_CACHE unset;
#   * a private mount namespace with an empty tmpfs over /run (/run/netns and /run/lock made
#     inside it), /var/cache/tapwire and /var/lib/dhcpcd: whatever an earlier run left there
#     is out of sight, and what this run leaves there goes with the namespace.
# The rest of the machine is shared as is (installed packages, the npm cache, /etc, users).
# Exits with COMMAND's status. Needs root. --keep leaves the clone in place for inspection.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keep=0
if [ "${1:-}" = --keep ]; then
  keep=1
  shift
fi
if [ $# -eq 0 ]; then
  set -- bash -c './scripts/demo.sh && CI=true ./scripts/test.sh'
fi
[ "$(id -u)" = 0 ] || { echo "fresh-check.sh: run as root (mount namespace, tmpfs)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "fresh-check.sh: unshare (util-linux) is required" >&2; exit 1; }

head=$(git -C "$ROOT" rev-parse HEAD)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-check.sh: note: uncommitted changes are not part of the check (it clones HEAD $head)" >&2
fi
tmp=$(mktemp -d /tmp/tapwire-fresh.XXXXXX)
cleanup() {
  if [ "$keep" = 1 ]; then echo "fresh-check.sh: clone kept in $tmp/tapwire" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
git clone -q --no-hardlinks "$ROOT" "$tmp/tapwire"
git -C "$tmp/tapwire" checkout -q --detach "$head"
echo "fresh-check.sh: $tmp/tapwire at $(git -C "$tmp/tapwire" log -1 --format='%h %s')" >&2

# mount points that must exist before a tmpfs can cover them (empty directories)
mkdir -p /var/cache/tapwire /var/lib/dhcpcd

# shellcheck disable=SC2016 # expanded by the inner shell
inner='
set -eu
resolv=$(cat /etc/resolv.conf 2>/dev/null || true)  # in case it lives under /run
case "$(readlink -f /etc/resolv.conf)" in /run/*) under_run=$(readlink -f /etc/resolv.conf) ;; *) under_run= ;; esac
mount -t tmpfs -o mode=0755 tapwire-fresh-run /run
mkdir -p /run/netns /run/lock
chmod 1777 /run/lock
if [ -n "$under_run" ]; then mkdir -p "$(dirname "$under_run")"; printf "%s\n" "$resolv" >"$under_run"; fi
mount -t tmpfs -o mode=0755 tapwire-fresh-cache /var/cache/tapwire
mount -t tmpfs -o mode=0755 tapwire-fresh-dhcpcd /var/lib/dhcpcd
cd "$1"
shift
exec "$@"
'
set +e
env -u TAPWIRE_SHARED -u TAPWIRE_CACHE unshare --mount --propagation private bash -c "$inner" fresh-check "$tmp/tapwire" "$@"
rc=$?
set -e
echo "fresh-check.sh: exit status $rc" >&2
exit "$rc"
