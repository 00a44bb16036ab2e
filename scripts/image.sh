#!/usr/bin/env bash
# image.sh: builds the tapwire container image offline, as an OCI image layout tar that
# `ctr images import` takes (no registry, no base image): the same contents as
# deploy/kubernetes/Containerfile, made from Debian's packages instead of the node image.
#   scripts/image.sh OUT.tar [IMAGE_NAME]     (default name localhost/tapwire:<version>)
# Needs root, debootstrap, dpkg-repack, and this checkout built (scripts/setup.sh).
#
# The base, Debian 12 minbase (debootstrap, from the machine's Debian mirror) with node 20
# (the machine's installed nodejs package, repacked with dpkg-repack: its version is not in
# the archive) and deploy/kubernetes/image-packages, is cached as a tar under
# ${TAPWIRE_CACHE:-/var/cache/tapwire}/image, named for the hash of its inputs, as the guest
# image is (src/guest/cache.ts): made once, in a temp dir, renamed whole, under a lock.
# Each build unpacks it, installs this checkout's .deb (scripts/package.sh) with dpkg, and
# writes one uncompressed layer, its config (the Containerfile's CMD) and a manifest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/image.sh OUT.tar [IMAGE_NAME]}"
VERSION="$(node -p "require('$ROOT/package.json').version")"
NAME="${2:-localhost/tapwire:$VERSION}"
SUITE=bookworm
BASE_VERSION=1 # bump when the base's recipe changes
[ "$(id -u)" = 0 ] || { echo "image.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
for t in debootstrap dpkg-repack sha256sum; do
  command -v "$t" >/dev/null || { echo "image.sh: $t is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
log() { echo "image.sh: $*" >&2; }

# the machine's Debian mirror (deb822 or one-line sources)
MIRROR="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)"
[ -n "$MIRROR" ] || MIRROR="$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
NODE_VERSION="$(dpkg-query -W -f='${Version}' nodejs)"
dpkg --compare-versions "$NODE_VERSION" ge 20 || { echo "image.sh: nodejs $NODE_VERSION installed; >= 20 needed" >&2; exit 1; }
PACKAGES="$(sed -e 's/#.*//' "$ROOT/deploy/kubernetes/image-packages" | xargs)"

CACHE="${TAPWIRE_CACHE:-/var/cache/tapwire}/image"
KEY="$(printf '%s\n' "$BASE_VERSION" "$SUITE" "$MIRROR" "$NODE_VERSION" "$PACKAGES" | sha256sum | cut -c1-16)"
BASE="$CACHE/base-$KEY.tar"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CACHE"

build_base() {
  local r="$WORK/base"
  log "base $KEY: debootstrap --variant=minbase $SUITE from $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$r" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; return 1; }
  log "base $KEY: nodejs $NODE_VERSION (dpkg-repack of the machine's) and $PACKAGES"
  (cd "$WORK" && dpkg-repack nodejs >"$WORK/repack.log" 2>&1) || { tail -20 "$WORK/repack.log" >&2; return 1; }
  cp "$WORK"/nodejs_*.deb "$r/tmp/nodejs.deb"
  # an image build starts no services
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends /tmp/nodejs.deb nftables iproute2 $PACKAGES" \
    >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; return 1; }
  chroot "$r" apt-get clean
  rm -rf "$r/tmp/nodejs.deb" "$r/usr/sbin/policy-rc.d" "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin
  tar -C "$r" --numeric-owner -cf "$WORK/base.tar" .
  mv "$WORK/base.tar" "$BASE"
  rm -rf "$r"
}

(
  flock -x -w 1200 9
  [ -f "$BASE" ] || build_base
) 9>"$CACHE/.lock"

log "tapwire $VERSION onto base $KEY"
R="$WORK/rootfs"
mkdir "$R"
tar -C "$R" -xf "$BASE"
bash "$ROOT/scripts/package.sh" "$WORK/deb" >/dev/null
cp "$WORK"/deb/tapwire_*.deb "$R/tmp/tapwire.deb"
chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg -i /tmp/tapwire.deb >"$WORK/dpkg.log" 2>&1 ||
  { cat "$WORK/dpkg.log" >&2; exit 1; }
rm -f "$R/tmp/tapwire.deb"
chroot "$R" tapctl --help >/dev/null

# the OCI image layout: one uncompressed layer, config, manifest, index
L="$WORK/layout"
mkdir -p "$L/blobs/sha256"
blob() { # FILE -> "DIGEST SIZE", the file moved into blobs/
  local d s
  d="$(sha256sum "$1" | cut -d' ' -f1)"
  s="$(stat -c %s "$1")"
  mv "$1" "$L/blobs/sha256/$d"
  echo "$d $s"
}
tar -C "$R" --numeric-owner -cf "$WORK/layer.tar" .
read -r LAYER LAYER_SIZE < <(blob "$WORK/layer.tar")
CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
printf '%s' "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$CREATED\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"tapmanager\",\"--help\"]},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$LAYER\"]},\
\"history\":[{\"created\":\"$CREATED\",\"created_by\":\"scripts/image.sh (base $KEY, tapwire $VERSION)\"}]}" >"$WORK/config.json"
read -r CONFIG CONFIG_SIZE < <(blob "$WORK/config.json")
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$CONFIG\",\"size\":$CONFIG_SIZE},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$LAYER\",\"size\":$LAYER_SIZE}]}" >"$WORK/manifest.json"
read -r MANIFEST MANIFEST_SIZE < <(blob "$WORK/manifest.json")
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"digest\":\"sha256:$MANIFEST\",\"size\":$MANIFEST_SIZE,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\
\"annotations\":{\"io.containerd.image.name\":\"$NAME\",\"org.opencontainers.image.ref.name\":\"$NAME\"}}]}" >"$L/index.json"
tar -C "$L" -cf "$OUT" oci-layout index.json blobs
log "wrote $OUT ($NAME, layer $((LAYER_SIZE >> 20)) MB)"
echo "$NAME"
