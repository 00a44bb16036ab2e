// --metrics-address: HOST:PORT or [V6]:PORT. No default: the endpoint is off unless asked
// for, and a host must be named (no ":9464" meaning every address by accident). Port 0:
// one the kernel picks (the "ready" log line names it).
import * as net from 'node:net';

export interface MetricsAddress {
  host: string;
  port: number;
}

export function parseMetricsAddress(text: string): MetricsAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(
      `invalid --metrics-address ${JSON.stringify(text)}: want HOST:PORT or [IPV6]:PORT, e.g. 127.0.0.1:9464`,
    );
  }
  if (m[1] !== undefined && net.isIPv6(host) === false)
    throw new Error(`invalid --metrics-address ${JSON.stringify(text)}: ${host} is not an IPv6 address`);
  return { host, port };
}

/** True for 0.0.0.0 and ::, which serve on every address of the node. */
export function isWildcard(a: MetricsAddress): boolean {
  return a.host === '0.0.0.0' || a.host === '::' || a.host === '[::]';
}
