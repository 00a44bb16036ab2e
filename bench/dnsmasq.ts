// What every dnsmasq reference of the DHCP benches runs with: no config file, no DNS,
// in the foreground, serving the bench bridge br0 only.

/** dnsmasq's flags for a DHCP-only server bound to br0; the caller adds its ranges and hosts. */
export const DNSMASQ_DHCP_ON_BR0: readonly string[] = [
  '--conf-file=/dev/null',
  '--keep-in-foreground',
  '--no-resolv',
  '--no-hosts',
  '--port=0',
  '--interface=br0',
  '--bind-interfaces',
];
