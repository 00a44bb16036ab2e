// The guest's console, read as a report. src/guest/rootfs/init prints one line per fact,
// "tapwire-guest EVENT key=value ..." (values hold no spaces, "-" is none, lists are
// comma-separated); everything else on the console (kernel messages) is kept only as
// context for errors. A Report collects the lines into typed facts; verdict() judges it.

export const LINE_PREFIX = 'tapwire-guest';

export interface GuestLine {
  event: string;
  fields: Record<string, string>;
}

export interface GuestLease {
  nic: string;
  family: 4 | 6;
  /** the (first) address */
  ip: string;
  /** every address of the lease (DHCPv6 IA_NA may hold several; IPv4: ip) */
  addrs: string[];
  /** prefix length */
  mask: string;
  router: string[];
  dns: string[];
  domain: string;
  search: string[];
  mtu: string;
  /** option 121 as dst/len:gw */
  routes: string[];
  hostname: string;
  /** seconds (DHCPv6: the first address's valid lifetime) */
  lease: string;
  /** IPv4 server id; DHCPv6 server DUID (hex) */
  server: string;
}

/** What the kernel took from the router advertisements on a NIC with DHCPv6 (tapwire.dhcp6). */
export interface GuestRouter6 {
  nic: string;
  /** the default route's router (link-local), '' when no RA gave one */
  router: string;
  /** the NIC's IPv6 MTU (an RA's MTU option sets it) */
  mtu: number;
}

export interface GuestReport {
  start?: { guest: string; kernel: string; up: number };
  nics: { name: string; mac: string; mtu: number; driver: string }[];
  leases: GuestLease[];
  dhcpFailures: { nic: string; family: string; rc: string }[];
  /** static addresses applied (tapwire.static) */
  statics: { nic: string; addr: string; gateway: string; ok: boolean }[];
  /** the RA's router per NIC with DHCPv6 */
  routers6: GuestRouter6[];
  /** every address the kernel has, after DHCP (IPv6 link-local ones included) */
  addrs: { nic: string; family: string; addr: string }[];
  /** every IPv4 and IPv6 route (main table), after DHCP and the RAs */
  routes: Record<string, string>[];
  resolv?: { nameservers: string[]; search: string[] };
  listens: { port: number; ok: boolean }[];
  accepts: { port: number }[];
  pings: { target: string; sent: number; recv: number; ok: boolean }[];
  tcp: { target: string; ok: boolean; rc: string; got: string }[];
  done?: { status: string; failed: string[]; up: number };
  warnings: string[];
  /** every tapwire-guest line, in order */
  lines: string[];
}

/** One console line as a guest fact, or undefined for any other line. */
export function parseLine(raw: string): GuestLine | undefined {
  const line = raw.replace(/\r$/, '');
  const words = line.split(' ');
  if (words[0] !== LINE_PREFIX || words.length < 2 || !/^[a-z][a-z0-9-]*$/.test(words[1]!)) return undefined;
  const fields: Record<string, string> = {};
  for (const w of words.slice(2)) {
    const eq = w.indexOf('=');
    if (eq > 0) fields[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { event: words[1]!, fields };
}

const list = (v: string | undefined): string[] => (v && v !== '-' ? v.split(',').filter(Boolean) : []);
const val = (v: string | undefined): string => (v === undefined || v === '-' ? '' : v);
const num = (v: string | undefined): number => (v !== undefined && /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN);

export function emptyReport(): GuestReport {
  return {
    nics: [],
    leases: [],
    dhcpFailures: [],
    statics: [],
    routers6: [],
    addrs: [],
    routes: [],
    listens: [],
    accepts: [],
    pings: [],
    tcp: [],
    warnings: [],
    lines: [],
  };
}

/** Adds one parsed line to the report. Unknown events are kept in `lines` only. */
export function addLine(r: GuestReport, l: GuestLine, raw: string): void {
  const f = l.fields;
  r.lines.push(raw.replace(/\r$/, ''));
  switch (l.event) {
    case 'start':
      r.start = { guest: val(f.guest), kernel: val(f.kernel), up: num(f.up) };
      break;
    case 'nic':
      r.nics.push({ name: val(f.name), mac: val(f.mac), mtu: num(f.mtu), driver: val(f.driver) });
      break;
    case 'lease':
      r.leases.push({
        nic: val(f.nic),
        family: f.family === '6' ? 6 : 4,
        ip: val(f.ip),
        addrs: f.addrs === undefined ? list(f.ip) : list(f.addrs),
        mask: val(f.mask),
        router: list(f.router),
        dns: list(f.dns),
        domain: val(f.domain),
        search: list(f.search),
        mtu: val(f.mtu),
        routes: list(f.routes),
        hostname: val(f.hostname),
        lease: val(f.lease),
        server: val(f.server),
      });
      break;
    case 'dhcp-fail':
      r.dhcpFailures.push({ nic: val(f.nic), family: val(f.family), rc: val(f.rc) });
      break;
    case 'static':
      r.statics.push({ nic: val(f.nic), addr: val(f.addr), gateway: val(f.gateway), ok: f.ok === '1' });
      break;
    case 'ra':
      r.routers6.push({ nic: val(f.nic), router: val(f.router), mtu: num(f.mtu) });
      break;
    case 'addr':
      r.addrs.push({ nic: val(f.nic), family: val(f.family), addr: val(f.addr) });
      break;
    case 'route': {
      const { up: _up, ...route } = f;
      r.routes.push(route);
      break;
    }
    case 'resolv':
      r.resolv = { nameservers: list(f.nameservers), search: list(f.search) };
      break;
    case 'listen':
      r.listens.push({ port: num(f.port), ok: f.ok === '1' });
      break;
    case 'accept':
      r.accepts.push({ port: num(f.port) });
      break;
    case 'ping':
      r.pings.push({ target: val(f.target), sent: num(f.sent), recv: num(f.recv), ok: f.ok === '1' });
      break;
    case 'tcp':
      r.tcp.push({ target: val(f.target), ok: f.ok === '1', rc: val(f.rc), got: val(f.got) });
      break;
    case 'warn':
      r.warnings.push(
        Object.entries(f)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
      );
      break;
    case 'done':
      r.done = { status: val(f.status), failed: list(f.failed), up: num(f.up) };
      break;
  }
}

/** A report from a whole console text. */
export function parseConsole(text: string): GuestReport {
  const r = emptyReport();
  for (const raw of text.split('\n')) {
    const l = parseLine(raw);
    if (l) addLine(r, l, raw);
  }
  return r;
}

/** What a caller expects beyond "done with status ok" (each optional). */
export interface Expect {
  /** leases (IPv4) the guest must report, at least (default 1) */
  leases?: number;
  /** DHCPv6 leases the guest must report, at least (default 0) */
  leases6?: number;
  /** fields the first lease must have: ip, router (first), hostname, mtu, mask */
  lease?: Partial<Record<'ip' | 'router' | 'hostname' | 'mtu' | 'mask', string>>;
  /** pings that must have been made, at least (default 1 when the guest pinged its gateway) */
  pings?: number;
}

export interface Verdict {
  ok: boolean;
  /** why not, one line each */
  problems: string[];
}

/** Judges a finished report: done with status ok, the leases and fields expected, every ping and connect ok. */
export function verdict(r: GuestReport, e: Expect = {}): Verdict {
  const problems: string[] = [];
  if (!r.done) problems.push('the guest never said done');
  else if (r.done.status !== 'ok')
    problems.push(`the guest finished with status=${r.done.status} (failed: ${r.done.failed.join(', ') || '-'})`);
  const leases = r.leases.filter((l) => l.family === 4);
  if (leases.length < (e.leases ?? 1))
    problems.push(`the guest reported ${leases.length} lease(s), expected ${e.leases ?? 1}`);
  const leases6 = r.leases.filter((l) => l.family === 6).length;
  if (leases6 < (e.leases6 ?? 0)) problems.push(`the guest reported ${leases6} DHCPv6 lease(s), expected ${e.leases6}`);
  const first = leases[0];
  for (const [k, want] of Object.entries(e.lease ?? {})) {
    const got = first === undefined ? undefined : k === 'router' ? first.router[0] : first[k as 'ip'];
    if (got !== want) problems.push(`lease ${k}=${got ?? '(no lease)'}, expected ${want}`);
  }
  if (e.pings !== undefined && r.pings.length < e.pings)
    problems.push(`the guest made ${r.pings.length} ping check(s), expected ${e.pings}`);
  for (const p of r.pings) if (!p.ok) problems.push(`ping ${p.target} failed (${p.recv}/${p.sent})`);
  for (const t of r.tcp) if (!t.ok) problems.push(`tcp ${t.target} failed (rc ${t.rc})`);
  return { ok: problems.length === 0, problems };
}
