#!/usr/bin/env bash
# reference-plumber.sh setup|teardown: the bench's reference row. The pod-side plumbing that
# tapmanager does, done the way an administrator would with third-party tools only:
# iproute2 (links, addresses, routes, a persistent tap), nft (the DHCP fence, as a script)
# and dnsmasq (one DHCP server process per sandbox, one static lease).
#
# Interface: the plumber contract of the e2e harness (../shared/e2e/README.md), so this
# script can also be judged by reference-topology.sh --plumber when ../shared is present:
#   env   E2E_PODNS       pod netns name (ip netns), holding eth0 as CNI ADD left it
#         E2E_CNI_RESULT  file with the CNI ADD result (JSON)
#         E2E_RUN_DIR     scratch dir for this sandbox (created here, removed at teardown)
#         E2E_ID          optional, names the guest's hostname
#   setup prints GUEST_MAC=, TAP_NAME=, PLUMBING_MS=, DNSMASQ_MS= lines and exits 0.
#   teardown leaves the pod netns with lo and eth0 only, eth0 as CNI ADD left it.
set -uo pipefail

: "${E2E_PODNS:?E2E_PODNS (pod netns name) is required}"
: "${E2E_RUN_DIR:?E2E_RUN_DIR (scratch dir) is required}"
run=$E2E_RUN_DIR
in_pod() { ip netns exec "$E2E_PODNS" "$@"; }
pip() { ip -n "$E2E_PODNS" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
die() {
  echo "reference-plumber: $*" >&2
  exit 1
}

for tool in ip nft dnsmasq ss python3; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done

# The CNI result as shell assignments: first IPv4 address, its network, gateway, IPv4
# routes (dst,gw pairs for option 121), DNS servers and search domains.
cni_vars() {
  python3 - "$1" <<'PY'
import ipaddress, json, shlex, sys

res = json.load(open(sys.argv[1]))
v4 = next(a for a in res.get("ips", []) if ipaddress.ip_interface(a["address"]).version == 4)
net = ipaddress.ip_interface(v4["address"])
gw = v4.get("gateway", "")
pairs = []
for r in res.get("routes", []):
    if ipaddress.ip_network(r["dst"]).version == 4:
        pairs += [r["dst"], r.get("gw") or gw]
dns = res.get("dns") or {}
out = {
    "ip": net.ip,
    "network": net.network.network_address,
    "netmask": net.netmask,
    "gateway": gw,
    "routes121": ",".join(pairs),
    "nameservers": ",".join(dns.get("nameservers", [])),
    "search": ",".join(dns.get("search", [])),
}
for k, v in out.items():
    print(f"cni_{k}={shlex.quote(str(v))}")
PY
}

random_mac() { # locally administered, unicast
  printf '0a:%02x:%02x:%02x:%02x:%02x\n' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)) \
    $((RANDOM % 256)) $((RANDOM % 256))
}

setup() {
  [ -n "${E2E_CNI_RESULT:-}" ] || die "E2E_CNI_RESULT (CNI result file) is required"
  local vars t0 mtu='' guest_mac=''
  vars=$(cni_vars "$E2E_CNI_RESULT") || die "cannot read the CNI result $E2E_CNI_RESULT"
  eval "$vars"
  mkdir -p "$run"
  trap 'teardown' EXIT # a failed setup undoes what it did (everything below is put back)
  t0=$(now_ms)

  # what teardown puts back: eth0's addresses, its routes other than the kernel's, its MAC
  pip -4 -o addr show dev eth0 | awk '{ print $4 }' >"$run/addrs"
  pip -4 route show | grep -v ' proto kernel ' >"$run/routes" || true
  local link
  link=$(pip -o link show dev eth0) || die "no eth0 in $E2E_PODNS"
  [[ $link =~ link/ether\ ([0-9a-f:]{17}) ]] && guest_mac=${BASH_REMATCH[1]}
  [[ $link =~ \ mtu\ ([0-9]+) ]] && mtu=${BASH_REMATCH[1]}
  [ -n "${guest_mac:-}" ] && [ -n "${mtu:-}" ] || die "cannot read eth0's MAC and MTU: $link"
  echo "$guest_mac" >"$run/mac"

  # the guest takes eth0's MAC; eth0 becomes a bridge port with a fresh one
  pip addr flush dev eth0 || die "flush eth0"
  pip link set dev eth0 down
  pip link set dev eth0 address "$(random_mac)" || die "new MAC on eth0"
  pip link add name br0 mtu "$mtu" type bridge stp_state 0 forward_delay 0 || die "create br0"
  pip addr add 169.254.254.2/24 dev br0 || die "address br0"
  pip tuntap add dev tap0 mode tap || die "create tap0"
  pip link set dev tap0 mtu "$mtu" master br0 up || die "tap0 into br0"
  pip link set dev eth0 master br0 up || die "eth0 into br0"
  pip link set dev br0 up || die "br0 up"

  # no DHCP crosses eth0, in either direction, nor reaches or leaves the bridge through it
  in_pod nft -f - <<'EOF' || die "nft fence"
table bridge twref {
  chain forward {
    type filter hook forward priority filter; policy accept;
    meta protocol ip udp dport 67-68 iifname "eth0" drop
    meta protocol ip udp dport 67-68 oifname "eth0" drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    meta protocol ip udp dport 67-68 iifname "eth0" drop
  }
  chain output {
    type filter hook output priority filter; policy accept;
    meta protocol ip udp sport 67-68 oifname "eth0" drop
  }
}
EOF
  echo "PLUMBING_MS=$(($(now_ms) - t0))"

  t0=$(now_ms)
  local opts=(
    --conf-file=/dev/null --keep-in-foreground --no-resolv --no-hosts --port=0 --no-ping
    --interface=br0 --bind-interfaces --except-interface=lo --dhcp-authoritative
    "--shared-network=br0,$cni_network"
    "--dhcp-range=$cni_network,static,$cni_netmask,1h"
    "--dhcp-host=$guest_mac,$cni_ip,guest-${E2E_ID:-0},1h"
    "--dhcp-option=option:mtu,$mtu"
    "--dhcp-leasefile=$run/leases" --pid-file= "--log-facility=$run/dnsmasq.log" --log-dhcp
  )
  [ -n "$cni_gateway" ] && opts+=("--dhcp-option=option:router,$cni_gateway")
  [ -n "$cni_routes121" ] && opts+=("--dhcp-option=option:classless-static-route,$cni_routes121")
  [ -n "$cni_nameservers" ] && opts+=("--dhcp-option=option:dns-server,$cni_nameservers")
  [ -n "$cni_search" ] && opts+=("--dhcp-option=option:domain-search,$cni_search")
  # ip netns exec execs dnsmasq, so $! is dnsmasq's own pid
  ip netns exec "$E2E_PODNS" dnsmasq "${opts[@]}" </dev/null >/dev/null 2>"$run/dnsmasq.err" &
  echo $! >"$run/dnsmasq.pid"
  local i
  for ((i = 0; i < 250; i++)); do
    [ -n "$(in_pod ss -H -lun 'sport = :67')" ] && break
    alive "$(cat "$run/dnsmasq.pid")" || die "dnsmasq exited: $(head -c 300 "$run/dnsmasq.err")"
    sleep 0.02
  done
  [ "$i" -lt 250 ] || die "dnsmasq is not listening on :67 after 5 s"
  echo "DNSMASQ_MS=$(($(now_ms) - t0))"
  echo "GUEST_MAC=$guest_mac"
  echo "TAP_NAME=tap0"
  trap - EXIT
}

# alive PID: PID exists and has not exited (an orphaned dnsmasq is reaped by init, maybe
# late, and kill -0 still succeeds on the zombie)
alive() {
  local state
  read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}
running_dnsmasq() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = dnsmasq ] && alive "$1"; }

teardown() {
  local pid i
  if [ -f "$run/dnsmasq.pid" ]; then
    pid=$(cat "$run/dnsmasq.pid") # only the dnsmasq this script started
    if running_dnsmasq "$pid"; then
      kill "$pid" 2>/dev/null
      for ((i = 0; i < 500; i++)); do running_dnsmasq "$pid" || break; sleep 0.01; done
      running_dnsmasq "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
  fi
  in_pod nft delete table bridge twref 2>/dev/null
  pip link del dev tap0 2>/dev/null
  pip link del dev br0 2>/dev/null # releases eth0
  if [ -s "$run/mac" ]; then
    pip link set dev eth0 down
    pip link set dev eth0 address "$(cat "$run/mac")"
    pip link set dev eth0 up
    local a r
    while read -r a; do [ -n "$a" ] && pip addr replace "$a" dev eth0; done <"$run/addrs"
    # shellcheck disable=SC2086 # a saved route is a list of words for ip
    while read -r r; do [ -n "$r" ] && pip route replace $r; done <"$run/routes"
  fi
  rm -rf "$run"
  return 0
}

case "${1:-}" in
  setup) setup ;;
  teardown) teardown ;;
  *)
    echo "usage: $0 setup|teardown (env E2E_PODNS, E2E_CNI_RESULT, E2E_RUN_DIR, optional E2E_ID)" >&2
    exit 2
    ;;
esac
