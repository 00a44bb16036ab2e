// The CNI result as tapwire reads it, and the DNS settings that go with it: the CNI
// layer owns these; the daemon's protocol carries them.

/** CNI result, cniVersion 0.4.0 or 1.x (only the fields tapwire reads). */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string; mtu?: number }[];
  ips?: { version?: '4' | '6'; address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string; mtu?: number; advmss?: number; priority?: number }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

/** CRI DNSConfig. When present it wins over the CNI result's dns. */
export interface DnsConfig {
  servers?: string[];
  searches?: string[];
  options?: string[];
}
