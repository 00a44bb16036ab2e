#!/usr/bin/env bash
# setup.sh: everything tapwire needs on a fresh Debian 12 machine, as root.
# Idempotent: installs only missing apt packages, runs `npm ci` only when the lockfile
# changed, rebuilds the addon and the TypeScript output, builds tapwire's guest image
# (src/guest/build.ts: cached under /var/cache/tapwire/guest, or $TAPWIRE_CACHE/guest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[setup $(date +%H:%M:%S)] $*" >&2; }

[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (apt, namespaces, taps)" >&2; exit 1; }
command -v node >/dev/null || { echo "setup.sh: node (>= 20) is required" >&2; exit 1; }
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
  { echo "setup.sh: node >= 20 is required, found $(node -v)" >&2; exit 1; }

PKGS=(iproute2 iputils-ping nftables ebtables tcpdump busybox isc-dhcp-client dhcpcd-base containernetworking-plugins
  dnsmasq-base qemu-system-x86 python3 make g++ libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils
  containerd runc prometheus systemd lintian docker-registry debootstrap dpkg-repack passt)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
  # the critest test runs a docker-registry of its own; the package's service (on :5000) is not used
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry.service >&2 || true
  fi
fi
# br_netfilter is not loaded: it turns on bridge-nf-call-iptables for every bridge on the host, and the fence
# filters in nftables' bridge family, which needs no such module.
for m in tun bridge veth nf_tables; do modprobe -q "$m" 2>/dev/null || true; done

cd "$ROOT"
stamp=node_modules/.tapwire-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2   # builds the addon (install script: scripts/build-native.sh, local headers)
  echo "$want" > "$stamp"
  cat binding.gyp native/* | sha256sum | cut -d' ' -f1 > build/.tapwire-native.sha
else
  log "npm dependencies up to date"
fi
# the addon again when its sources changed since it was built (npm ci builds it too)
native_stamp=build/.tapwire-native.sha
native_want=$(cat binding.gyp native/* | sha256sum | cut -d' ' -f1)
if [ ! -f build/Release/tapwire.node ] || [ "$(cat "$native_stamp" 2>/dev/null)" != "$native_want" ]; then
  log "native addon"
  npm run build:native >&2
  echo "$native_want" > "$native_stamp"
fi
log "tsc"
npx tsc -p tsconfig.json >&2

log "guest image"
node dist/src/guest/build.js >/dev/null
log "ready"
