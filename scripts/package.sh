#!/usr/bin/env bash
# package.sh: builds tapwire_<version>_<arch>.deb with dpkg-deb from this checkout's build
# (run scripts/setup.sh, or npm ci + build:native + tsc, first). Usage:
#   scripts/package.sh [OUT_DIR]        (default: ./build/deb)
# TAPWIRE_DEB_VERSION overrides the version (default: package.json's).
#
# Layout: /usr/lib/tapwire (dist/src, the addon, vendor/cri-api, production node_modules),
# /usr/bin wrappers (deploy/bin), /lib/systemd/system units, /etc/tapwire/tapwire.env
# (a conffile), /usr/share/doc/tapwire (README, the CNI config example, the Kubernetes
# manifests). Runtime: the system's node, >= 20 ("nodejs (>= 20)": Debian 13's, or
# NodeSource's on Debian 12), not a bundled one: node's security fixes then come with the
# system's updates, and the addon uses Node-API only, so one build runs on any node >= 20.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/build/deb}" && cd "${1:-$ROOT/build/deb}" && pwd)"
cd "$ROOT"
for f in dist/src/tapmanager/main.js build/Release/tapwire.node node_modules; do
  [ -e "$f" ] || { echo "package.sh: $f is missing: build first (scripts/setup.sh)" >&2; exit 1; }
done
VERSION="${TAPWIRE_DEB_VERSION:-$(node -p 'require("./package.json").version')}"
ARCH="$(dpkg --print-architecture)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
P="$STAGE/tapwire"
LIB="$P/usr/lib/tapwire"

install -d "$LIB/build/Release" "$LIB/vendor" "$P/usr/bin" "$P/lib/systemd/system" "$P/etc/tapwire" \
  "$P/usr/share/doc/tapwire/examples/cni" "$P/usr/share/doc/tapwire/examples/kubernetes" "$P/DEBIAN"
cp -a dist/src "$LIB/dist-src.tmp" && install -d "$LIB/dist" && mv "$LIB/dist-src.tmp" "$LIB/dist/src"
find "$LIB/dist" -name '*.map' -delete
install -m 644 build/Release/tapwire.node "$LIB/build/Release/"
strip --strip-unneeded "$LIB/build/Release/tapwire.node"
cp -a vendor/cri-api "$LIB/vendor/"
install -D -m 755 deploy/libvirt/vmwrapper "$LIB/deploy/libvirt/vmwrapper"
install -m 644 package.json package-lock.json "$LIB/"
# production node_modules: this checkout's, less the dev dependencies (nothing is fetched or built)
cp -a node_modules "$LIB/"
(cd "$LIB" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --offline >/dev/null)
rm -f "$LIB/package-lock.json" "$LIB/node_modules/.package-lock.json" "$LIB/node_modules/.tapwire-lock.sha"
# not needed to run: typescript (valibot's optional peer, for its types), node-addon-api
# (the addon's build-time headers), docs, npm's ignore files, other architectures' prebuilds
rm -rf "$LIB/node_modules/typescript" "$LIB/node_modules/node-addon-api"
find "$LIB/node_modules" \( -name '*.md' -o -name '.npmignore' -o -name '*.map' \) -type f -delete
NODE_ARCH="$(node -p process.arch)"
find "$LIB/node_modules" -path '*/prebuilds/*' -mindepth 1 -maxdepth 4 -type d -name 'linux-*' ! -name "linux-$NODE_ARCH" \
  -prune -exec rm -rf {} +
find "$LIB/node_modules" -path '*/prebuilds/*' -type d ! -name 'linux-*' ! -name prebuilds -prune -exec rm -rf {} +
find "$LIB/node_modules" -type d -empty -delete
find "$LIB/node_modules" -type f -exec chmod 644 {} +
grep -rlI '^#!' "$LIB/node_modules" | xargs -r chmod 755
find "$LIB/node_modules" -name '*.node' -type f -exec strip --strip-unneeded {} +
# the entry points keep their shebangs: executable, as lintian expects of them
grep -rl --include='*.js' '^#!' "$LIB/dist/src" | xargs -r chmod 755
for b in deploy/bin/*; do install -m 755 "$b" "$P/usr/bin/"; done
install -m 644 deploy/systemd/*.service "$P/lib/systemd/system/"
install -m 644 deploy/config/tapwire.env "$P/etc/tapwire/tapwire.env"
install -m 644 README.md "$P/usr/share/doc/tapwire/"
install -m 644 deploy/cni/10-tapwire.conflist deploy/cni/README.md "$P/usr/share/doc/tapwire/examples/cni/"
if [ -d deploy/kubernetes ]; then
  find deploy/kubernetes -maxdepth 1 -type f -exec install -m 644 {} "$P/usr/share/doc/tapwire/examples/kubernetes/" \;
fi
# man pages: each command's own --help (vmwrapper passes its arguments to QEMU: a summary)
install -d "$P/usr/share/man/man8" "$P/usr/share/man/man1"
manpage() { # NAME SECTION SUMMARY HELP_TEXT
  { printf '.TH %s %s "" "tapwire %s" "tapwire"\n.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' \
      "$(echo "$1" | tr a-z A-Z)" "$2" "$VERSION" "$1" "$3"
    printf '%s\n' "$4" | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./'
    printf '.fi\n.SH SEE ALSO\n/usr/share/doc/tapwire/README.md\n'; } | gzip -9n > "$P/usr/share/man/man$2/$1.$2.gz"
}
manpage tapmanager 8 'wires pod CNI veths to guest taps' "$(node dist/src/tapmanager/main.js --help)"
manpage tapwire-cri 8 'CRI pod-sandbox service and proxy for VM pods' "$(node dist/src/cri/main.js --help)"
manpage tapctl 8 "the operator's view of tapmanager" "$(node dist/src/tapmanager/tapctl.js --help)"
manpage vmwrapper 1 'runs QEMU with the tap fds of a sandbox' \
  'Run as the emulator by libvirt or a runtime, with TAPWIRE_NET_KEY and TAPWIRE_FD_SOCKET set: fetches the
sandbox tap fds from tapmanager and execs QEMU with its own arguments plus the netdevs.
See /usr/share/doc/tapwire/README.md.'
install -m 644 deploy/debian/copyright "$P/usr/share/doc/tapwire/copyright"
MAINTAINER="${TAPWIRE_DEB_MAINTAINER:-tapwire maintainers <maintainers@tapwire.example.org>}"
printf 'tapwire (%s) unstable; urgency=medium\n\n  * Built from the tapwire repository by scripts/package.sh.\n\n -- %s  %s\n' \
  "$VERSION" "$MAINTAINER" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" |
  gzip -9n > "$P/usr/share/doc/tapwire/changelog.gz"
for s in postinst prerm postrm; do install -m 755 "deploy/debian/$s" "$P/DEBIAN/$s"; done
echo /etc/tapwire/tapwire.env > "$P/DEBIAN/conffiles"
SIZE="$(du -sk --exclude=DEBIAN "$P" | cut -f1)"
cat > "$P/DEBIAN/control" <<EOF
Package: tapwire
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: nodejs (>= 20), nftables, iproute2, libc6 (>= 2.34), libstdc++6 (>= 12), libgcc-s1
Recommends: qemu-system-x86 | qemu-system, passt
Suggests: containernetworking-plugins, prometheus, libvirt-daemon-driver-qemu
Section: net
Priority: optional
Description: Linux VM networking for Kubernetes pods
 tapwire gives a virtual machine inside a Kubernetes pod the pod's own network
 identity: tapmanager wires the pod's CNI veth to a tap on a bridge and serves
 the guest the pod's address by DHCP, fenced from the pod network; vmwrapper
 hands the tap to QEMU; tapwire-cri serves the CRI pod-sandbox calls; tapctl
 shows what tapmanager holds. systemd units are installed but not enabled.
EOF
find "$P" -type d -exec chmod 755 {} +
DEB="$OUT/tapwire_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$P" "$DEB" >/dev/null
echo "$DEB"
