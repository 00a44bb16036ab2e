// The masquerade binding's NAT table (family ip), as one nf_tables netlink batch the
// way the fence goes in (fence/batch.ts): the table added if missing and flushed, its
// four base chains, its rules; the kernel commits all of it or none. Per NIC, in the
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
// Removal and the existence check go through nft (fence/nft.ts), as the fence's do.
import { ip4ToNum } from '../../../net/ipv4';
import { NftBatchWriter, NLM_F_APPEND, NLM_F_CREATE, type Batch } from '../../../net/nfnl';
import { TapError } from '../../errors';
import { applyBatchInNetns } from '../../fence/apply';
import { netnsState, nftInNetns } from '../../fence/nft';

const NFPROTO_IPV4 = 2;
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
  const each = (m: Match[]): Match[][] =>
    n.ports.length ? n.ports.map((port) => [...m, { kind: 'port', port }]) : [m];
  return [
    ...each([{ kind: 'iif', name: n.podInterface }]).map((matches) => ({
      chain: 'prerouting' as const,
      matches,
      action: { kind: 'dnat' as const, ip: n.guestIp },
    })),
    ...each([{ kind: 'daddr', ip: LOOPBACK }]).map((matches) => ({
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
    ...each([
      { kind: 'oif', name: n.bridge },
      { kind: 'saddr', ip: LOOPBACK },
    ]).map((matches) => ({
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
  const m = r.matches.map((x) => {
    switch (x.kind) {
      case 'iif':
        return `iifname "${x.name}"`;
      case 'oif':
        return `oifname "${x.name}"`;
      case 'saddr':
      case 'daddr':
        return `ip ${x.kind} ${x.neq ? '!= ' : ''}${x.ip}`;
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
  constructor(private readonly w: NftBatchWriter) {}

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
      this.w.beInt(1 /* VALUE */, ip4ToNum(ip)!, 4);
      this.w.nestEnd(d);
    });
  }

  nat(type: number): void {
    this.expr('nat', () => {
      this.w.u32(1 /* TYPE */, type);
      this.w.u32(2 /* FAMILY */, NFPROTO_IPV4);
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
        this.payload(BASE.NETWORK, m.kind === 'saddr' ? 12 : 16, 4);
        this.cmp(m.neq ? CMP.NEQ : CMP.EQ, (w) => w.beInt(1, ip4ToNum(m.ip)!, 4));
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

/** The batch that (re)defines a NIC's NAT table; safe to repeat (the table is flushed first). */
export function natBatch(table: string, n: MasqNat): Batch {
  const t = checkTable(table);
  for (const ip of [n.guestIp, n.gatewayIp])
    if (ip4ToNum(ip) === undefined) throw new TapError('EINVAL', `invalid NAT address "${ip}"`, 'guestCidr');
  const w = new NftBatchWriter(NFPROTO_IPV4);
  try {
    w.begin(MSG.NEWTABLE, NLM_F_CREATE, `add table ip ${t}`);
    w.str(1 /* NAME */, t);
    w.u32(2 /* FLAGS */, 0);
    w.close();
    w.begin(MSG.DELRULE, 0, `flush table ip ${t}`);
    w.str(1 /* TABLE */, t);
    w.close();
    for (const c of Object.keys(HOOK) as Chain[]) {
      w.begin(MSG.NEWCHAIN, NLM_F_CREATE, `add chain ${c}`);
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
      w.begin(MSG.NEWRULE, NLM_F_CREATE | NLM_F_APPEND, `add rule ${natRuleText(r)}`);
      w.str(1 /* TABLE */, t);
      w.str(2 /* CHAIN */, r.chain);
      const list = w.nest(4 /* EXPRESSIONS */);
      const x = new Writer(w);
      r.matches.forEach((m) => x.match(m));
      if (r.action.kind === 'masquerade') x.masq();
      else if (r.action.kind === 'drop') x.drop();
      else {
        x.immediateIp(r.action.ip);
        x.nat(r.action.kind === 'dnat' ? NAT.DNAT : NAT.SNAT);
      }
      w.nestEnd(list);
      w.close();
    }
  } catch (e) {
    w.abandon();
    throw e;
  }
  return w.finish();
}

/** Puts the NIC's NAT table in place in one transaction. */
export async function applyNat(netnsPath: string, table: string, n: MasqNat): Promise<void> {
  await applyBatchInNetns(netnsPath, natBatch(table, n), `apply NAT table "${table}"`);
}

/** Deletes the table; already gone, or its netns gone, counts as done. */
export async function removeNat(netnsPath: string, table: string): Promise<void> {
  const t = checkTable(table);
  if (netnsState(netnsPath) !== 'ok') return;
  await nftInNetns(netnsPath, { script: `add table ip ${t}\ndelete table ip ${t}\n` }, `remove NAT table "${t}"`);
}

/** Whether the table exists. */
export async function natExists(netnsPath: string, table: string): Promise<boolean> {
  const t = checkTable(table);
  if (netnsState(netnsPath) !== 'ok') return false;
  const { stdout } = await nftInNetns(netnsPath, { script: 'list tables ip', json: true }, 'list tables');
  const items = (JSON.parse(stdout) as { nftables?: { table?: { name?: unknown } }[] }).nftables ?? [];
  return items.some((it) => it.table?.name === t);
}
