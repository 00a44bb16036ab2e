// The masquerade binding's NAT tables (family ip, and ip6 for a dual-stack or IPv6-only
// pod, both named for the NIC's bridge), as one nf_tables netlink batch the way the fence
// goes in (fence/batch.ts): each table added if missing and flushed, its four base
// chains, its rules; the kernel commits all of it or none. Per NIC and family, in the
// pod netns:
//   prerouting  (dstnat): from the pod interface, each listed port (or every packet when
//                         none is listed) -> dnat to the guest
//   output      (dstnat): to 127.0.0.1, each listed port (or all) -> dnat to the guest
//   postrouting (srcnat): from the guest out of the pod interface -> masquerade;
//                         from 127.0.0.1 out of the bridge (a port-forward into the pod
//                         reaching the guest), each listed port (or all) -> snat to the
//                         bridge address (route_localnet on the bridge lets it out)
//   forward     (filter): from the bridge with a source other than the guest's -> drop
//                         (a guest sends anything: a forged source never leaves the pod)
// The ip6 table has no loopback rules: IPv6 has no route_localnet, and although a
// connection to [::1]:port DNATed to the guest does leave (its source snat-ed to the
// bridge's address on the way out), the guest's reply, de-NATed back to ::1 on arrival
// at the bridge, is dropped by the kernel (a loopback destination is looked up strictly
// on its arrival interface: no route from br0; a "local ::1 dev br0" route only moves the
// drop to Ip6InHdrErrors; kernel 6.18, tried in a netns). Such rules would only turn a
// pod-local [::1]:port into a black hole, so there are none; the port-forward path
// (containerd dials tcp4 localhost in the pod netns) is the ip table's 127.0.0.1 rules.
// Each table carries a comment (its NFTA_TABLE_USERDATA) saying what the setup found of
// forwarding, so that the orphan collector can put it back without the record.
// Removal and the existence check go through nft (fence/nft.ts), as the fence's do.
import { isIPv6 } from 'node:net';
import { ipToBuffer } from '../../../net/addr-text';
import { ip4ToNum } from '../../../net/ipv4';
import { NftBatchWriter, NLM_F_APPEND, NLM_F_CREATE, type Batch } from '../../../net/nfnl';
import { TapError } from '../../errors';
import { applyBatchInNetns } from '../../fence/apply';
import { netnsState, nftInNetns } from '../../fence/nft';

const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;
/** nftnl's table comment TLV (NFTNL_UDATA_TABLE_COMMENT) in NFTA_TABLE_USERDATA */
const NFTA_TABLE_USERDATA = 6;
const UDATA_TABLE_COMMENT = 0;
// nf_tables.h
const MSG = { NEWTABLE: 0, NEWCHAIN: 3, NEWRULE: 6, DELRULE: 8 };
const HOOK = { prerouting: 0, output: 3, postrouting: 4, forward: 2 } as const;
const PRIORITY = { prerouting: -100, output: -100, postrouting: 100, forward: 0 } as const;
const NF_ACCEPT = 1;
const NF_DROP = 0;
const REG_1 = 1;
const META = { IIFNAME: 6, OIFNAME: 7, L4PROTO: 16 };
const BASE = { NETWORK: 1, TRANSPORT: 2 };
const CMP = { EQ: 0, NEQ: 1, LTE: 3, GTE: 5 };
const NAT = { SNAT: 0, DNAT: 1 };
const IPPROTO = { TCP: 6, UDP: 17 } as const;
const LOOPBACK = '127.0.0.1';

export interface NatPort {
  protocol: 'TCP' | 'UDP';
  port: number;
  /** the last port of a range (inclusive); absent: just `port` */
  endPort?: number;
}

export interface MasqNat {
  /** the table's family: ip (absent) or ip6 */
  family?: 4 | 6;
  /** the table's comment (what the setup found of forwarding), at most 127 bytes */
  comment?: string;
  /** the pod interface (eth0): its traffic is masqueraded, its inbound DNATed */
  podInterface: string;
  bridge: string;
  guestIp: string;
  /** the bridge's address: loopback connections reach the guest from it */
  gatewayIp: string;
  /** empty: every port (and every protocol) is forwarded */
  ports: readonly NatPort[];
}

type Chain = keyof typeof HOOK;

/** One rule: its matches, then dnat/snat/masquerade. */
type Match =
  | { kind: 'iif' | 'oif'; name: string }
  | { kind: 'saddr' | 'daddr'; ip: string; neq?: boolean }
  | { kind: 'port'; port: NatPort };
type Action = { kind: 'dnat' | 'snat'; ip: string } | { kind: 'masquerade' } | { kind: 'drop' };
export interface NatRule {
  chain: Chain;
  matches: Match[];
  action: Action;
}

/** The rules of a NIC's table, in order (pure). */
export function natRules(n: MasqNat): NatRule[] {
  const lo = n.family === 6 ? undefined : LOOPBACK;
  const each = (m: Match[]): Match[][] =>
    n.ports.length ? n.ports.map((port) => [...m, { kind: 'port', port }]) : [m];
  return [
    ...each([{ kind: 'iif', name: n.podInterface }]).map((matches) => ({
      chain: 'prerouting' as const,
      matches,
      action: { kind: 'dnat' as const, ip: n.guestIp },
    })),
    ...(lo ? each([{ kind: 'daddr', ip: lo }]) : []).map((matches) => ({
      chain: 'output' as const,
      matches,
      action: { kind: 'dnat' as const, ip: n.guestIp },
    })),
    {
      chain: 'postrouting',
      matches: [
        { kind: 'saddr', ip: n.guestIp },
        { kind: 'oif', name: n.podInterface },
      ],
      action: { kind: 'masquerade' },
    },
    ...(lo
      ? each([
          { kind: 'oif', name: n.bridge },
          { kind: 'saddr', ip: lo },
        ])
      : []
    ).map((matches) => ({
      chain: 'postrouting' as const,
      matches,
      action: { kind: 'snat' as const, ip: n.gatewayIp },
    })),
    {
      chain: 'forward',
      matches: [
        { kind: 'iif', name: n.bridge },
        { kind: 'saddr', ip: n.guestIp, neq: true },
      ],
      action: { kind: 'drop' },
    },
  ];
}

/** The same rules as nft text (for describe and the logs). */
export function natRuleText(r: NatRule): string {
  const fam = r.matches.some((x) => (x.kind === 'saddr' || x.kind === 'daddr') && x.ip.includes(':')) ? 'ip6' : 'ip';
  const m = r.matches.map((x) => {
    switch (x.kind) {
      case 'iif':
        return `iifname "${x.name}"`;
      case 'oif':
        return `oifname "${x.name}"`;
      case 'saddr':
      case 'daddr':
        return `${fam} ${x.kind} ${x.neq ? '!= ' : ''}${x.ip}`;
      case 'port':
        return `${x.port.protocol.toLowerCase()} dport ${x.port.port}${x.port.endPort ? `-${x.port.endPort}` : ''}`;
    }
  });
  const a =
    r.action.kind === 'masquerade' || r.action.kind === 'drop' ? r.action.kind : `${r.action.kind} to ${r.action.ip}`;
  return `${r.chain}: ${[...m, a].join(' ')}`;
}

function checkTable(t: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(t)) throw new TapError('EINVAL', `invalid NAT table name "${t}"`, 'table');
  return t;
}

class Writer {
  constructor(
    private readonly w: NftBatchWriter,
    private readonly family: 4 | 6,
  ) {}

  private expr(name: string, body: () => void): void {
    const e = this.w.nest(1 /* NFTA_LIST_ELEM */);
    this.w.str(1 /* NFTA_EXPR_NAME */, name);
    const d = this.w.nest(2 /* NFTA_EXPR_DATA */);
    body();
    this.w.nestEnd(d);
    this.w.nestEnd(e);
  }

  meta(key: number): void {
    this.expr('meta', () => {
      this.w.u32(2 /* KEY */, key);
      this.w.u32(1 /* DREG */, REG_1);
    });
  }

  payload(base: number, offset: number, len: number): void {
    this.expr('payload', () => {
      this.w.u32(1 /* DREG */, REG_1);
      this.w.u32(2 /* BASE */, base);
      this.w.u32(3 /* OFFSET */, offset);
      this.w.u32(4 /* LEN */, len);
    });
  }

  cmp(op: number, data: (w: NftBatchWriter) => void): void {
    this.expr('cmp', () => {
      this.w.u32(1 /* SREG */, REG_1);
      this.w.u32(2 /* OP */, op);
      const d = this.w.nest(3 /* DATA */);
      data(this.w);
      this.w.nestEnd(d);
    });
  }

  immediateIp(ip: string): void {
    this.expr('immediate', () => {
      this.w.u32(1 /* DREG */, REG_1);
      const d = this.w.nest(2 /* DATA */);
      this.w.bytes(1 /* VALUE */, ipToBuffer(ip));
      this.w.nestEnd(d);
    });
  }

  nat(type: number): void {
    this.expr('nat', () => {
      this.w.u32(1 /* TYPE */, type);
      this.w.u32(2 /* FAMILY */, this.family === 6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
      this.w.u32(3 /* REG_ADDR_MIN */, REG_1);
    });
  }

  masq(): void {
    this.expr('masq', () => undefined);
  }

  drop(): void {
    this.expr('immediate', () => {
      this.w.u32(1 /* DREG: the verdict register */, 0);
      const d = this.w.nest(2 /* DATA */);
      const v = this.w.nest(2 /* VERDICT */);
      this.w.u32(1 /* CODE */, NF_DROP);
      this.w.nestEnd(v);
      this.w.nestEnd(d);
    });
  }

  match(m: Match): void {
    switch (m.kind) {
      case 'iif':
      case 'oif':
        this.meta(m.kind === 'iif' ? META.IIFNAME : META.OIFNAME);
        this.cmp(CMP.EQ, (w) => w.ifname(1, m.name));
        return;
      case 'saddr':
      case 'daddr':
        // IPv4: saddr at 12, daddr at 16; IPv6: at 8 and 24
        if (this.family === 6) this.payload(BASE.NETWORK, m.kind === 'saddr' ? 8 : 24, 16);
        else this.payload(BASE.NETWORK, m.kind === 'saddr' ? 12 : 16, 4);
        this.cmp(m.neq ? CMP.NEQ : CMP.EQ, (w) => w.bytes(1, ipToBuffer(m.ip)));
        return;
      case 'port': {
        const p = m.port;
        this.meta(META.L4PROTO);
        this.cmp(CMP.EQ, (w) => w.beInt(1, IPPROTO[p.protocol], 1));
        this.payload(BASE.TRANSPORT, 2, 2);
        if (p.endPort === undefined || p.endPort === p.port) this.cmp(CMP.EQ, (w) => w.beInt(1, p.port, 2));
        else {
          this.cmp(CMP.GTE, (w) => w.beInt(1, p.port, 2));
          this.cmp(CMP.LTE, (w) => w.beInt(1, p.endPort!, 2));
        }
      }
    }
  }
}

const familyName = (f: 4 | 6 | undefined): 'ip' | 'ip6' => (f === 6 ? 'ip6' : 'ip');

function checkAddress(ip: string, family: 4 | 6): void {
  const ok = family === 6 ? isIPv6(ip) : ip4ToNum(ip) !== undefined;
  if (!ok) throw new TapError('EINVAL', `invalid NAT address "${ip}"`, family === 6 ? 'guestCidr6' : 'guestCidr');
}

/**
 * The batch that (re)defines a NIC's NAT tables, one per family in `nats` (all named
 * `table`); safe to repeat (each table is flushed first).
 */
export function natBatch(table: string, nats: MasqNat | readonly MasqNat[]): Batch {
  const t = checkTable(table);
  const list = Array.isArray(nats) ? (nats as readonly MasqNat[]) : [nats as MasqNat];
  for (const n of list) {
    for (const ip of [n.guestIp, n.gatewayIp]) checkAddress(ip, n.family ?? 4);
    if (n.comment !== undefined && (Buffer.byteLength(n.comment) > 127 || n.comment.includes('\0')))
      throw new TapError('EINVAL', `invalid NAT table comment "${n.comment}"`, 'table');
  }
  const w = new NftBatchWriter(NFPROTO_IPV4);
  try {
    for (const n of list) {
      const family = n.family ?? 4;
      const nfproto = family === 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
      const fam = familyName(family);
      w.begin(MSG.NEWTABLE, NLM_F_CREATE, `add table ${fam} ${t}`, nfproto);
      w.str(1 /* NAME */, t);
      w.u32(2 /* FLAGS */, 0);
      if (n.comment !== undefined) {
        const c = Buffer.from(`${n.comment}\0`);
        w.bytes(NFTA_TABLE_USERDATA, [UDATA_TABLE_COMMENT, c.length, ...c]);
      }
      w.close();
      w.begin(MSG.DELRULE, 0, `flush table ${fam} ${t}`, nfproto);
      w.str(1 /* TABLE */, t);
      w.close();
      for (const c of Object.keys(HOOK) as Chain[]) {
        w.begin(MSG.NEWCHAIN, NLM_F_CREATE, `add chain ${fam} ${c}`, nfproto);
        w.str(1 /* TABLE */, t);
        w.str(3 /* NAME */, c);
        w.str(7 /* TYPE */, c === 'forward' ? 'filter' : 'nat');
        w.u32(5 /* POLICY */, NF_ACCEPT);
        const hook = w.nest(4 /* HOOK */);
        w.u32(1 /* HOOKNUM */, HOOK[c]);
        w.u32(2 /* PRIORITY */, PRIORITY[c] >>> 0);
        w.nestEnd(hook);
        w.close();
      }
      for (const r of natRules(n)) {
        w.begin(MSG.NEWRULE, NLM_F_CREATE | NLM_F_APPEND, `add rule ${fam} ${natRuleText(r)}`, nfproto);
        w.str(1 /* TABLE */, t);
        w.str(2 /* CHAIN */, r.chain);
        const exprs = w.nest(4 /* EXPRESSIONS */);
        const x = new Writer(w, family);
        r.matches.forEach((m) => x.match(m));
        if (r.action.kind === 'masquerade') x.masq();
        else if (r.action.kind === 'drop') x.drop();
        else {
          x.immediateIp(r.action.ip);
          x.nat(r.action.kind === 'dnat' ? NAT.DNAT : NAT.SNAT);
        }
        w.nestEnd(exprs);
        w.close();
      }
    }
  } catch (e) {
    w.abandon();
    throw e;
  }
  return w.finish();
}

/** Puts the NIC's NAT tables in place in one transaction. */
export async function applyNat(netnsPath: string, table: string, nats: MasqNat | readonly MasqNat[]): Promise<void> {
  await applyBatchInNetns(netnsPath, natBatch(table, nats), `apply NAT table "${table}"`);
}

/** Deletes the table of both families; already gone, or its netns gone, counts as done. */
export async function removeNat(netnsPath: string, table: string): Promise<void> {
  const t = checkTable(table);
  if (netnsState(netnsPath) !== 'ok') return;
  await nftInNetns(
    netnsPath,
    { script: `add table ip ${t}\ndelete table ip ${t}\nadd table ip6 ${t}\ndelete table ip6 ${t}\n` },
    `remove NAT table "${t}"`,
  );
}

/** Which families (4, 6) have the table. */
export async function natFamilies(netnsPath: string, table: string): Promise<(4 | 6)[]> {
  const t = checkTable(table);
  if (netnsState(netnsPath) !== 'ok') return [];
  const { stdout } = await nftInNetns(netnsPath, { script: 'list tables', json: true }, 'list tables');
  const items =
    (JSON.parse(stdout) as { nftables?: { table?: { name?: unknown; family?: unknown } }[] }).nftables ?? [];
  const out: (4 | 6)[] = [];
  if (items.some((it) => it.table?.name === t && it.table.family === 'ip')) out.push(4);
  if (items.some((it) => it.table?.name === t && it.table.family === 'ip6')) out.push(6);
  return out;
}

/** Whether the table exists (family ip, or the one given). */
export async function natExists(netnsPath: string, table: string, family: 4 | 6 = 4): Promise<boolean> {
  return (await natFamilies(netnsPath, table)).includes(family);
}

/** The comment of the table of that family (what the setup found of forwarding), if any. */
export async function natComment(netnsPath: string, table: string, family: 4 | 6): Promise<string | undefined> {
  const t = checkTable(table);
  if (!(await natExists(netnsPath, t, family))) return undefined;
  const { stdout } = await nftInNetns(netnsPath, { script: `list table ${familyName(family)} ${t}` }, 'list table');
  return /^\s*comment "([^"]*)"$/m.exec(stdout)?.[1];
}
