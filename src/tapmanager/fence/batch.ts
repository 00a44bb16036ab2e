// The fence as one nf_tables netlink batch (pure): the same transaction the nft script
// of ruleset.ts makes, encoded here instead of by libnftables, so a setup spends no time
// parsing and evaluating nft syntax or fetching nft's cache (6 kernel round trips) and
// the kernel receives exactly the expressions nft would give it: adjacent byte-aligned
// equality matches merged into one load, as nft does, bit fields masked with bitwise,
// ranges as two comparisons, the VLAN set with nft's own typeof description. A test
// applies both forms and compares the kernel's listings.
import { NFPROTO_BRIDGE, NftBatchWriter, NLM_F_APPEND, NLM_F_CREATE, type Batch } from '../../net/nfnl';
import { fenceModel, type FenceModel, type Match, type Rule, type Value, VLAN_SET } from './model';
import type { FenceNic } from './types';
import { checkNics, checkTable } from './validate';

// nf_tables.h
const MSG = { NEWTABLE: 0, NEWCHAIN: 3, NEWRULE: 6, DELRULE: 8, NEWSET: 9, NEWSETELEM: 12, NEWOBJ: 18 };
const NF_BR_PRE_ROUTING = 0;
const NF_BR_POST_ROUTING = 4;
const NF_BR_PRI_FILTER_BRIDGED = -200; // "priority filter" in the bridge family
const NF_ACCEPT = 1;
const NF_DROP = 0;
const NFT_JUMP = -3;
const NFT_OBJECT_COUNTER = 1;
const REG_VERDICT = 0;
const REG_1 = 1;
const META = { IIFNAME: 6, OIFNAME: 7, L4PROTO: 16 };
const BASE = { LL: 0, TRANSPORT: 2 };
const CMP = { EQ: 0, NEQ: 1, LTE: 3, GTE: 5 };
const IPPROTO_UDP = 17;
const SET_ID = 1;
const TYPE_INTEGER = 4; // nft's datatype of a raw payload

/** libnftables' description of the set's key (NFTNL_UDATA_SET_*): `typeof @ll,96,16`, so nft lists it as declared. */
const SET_USERDATA = ((): Buffer => {
  const tlv = (type: number, v: Buffer): Buffer => Buffer.concat([Buffer.from([type, v.length]), v]);
  const le = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n, 0);
    return b;
  };
  const payloadDesc = [0 /* desc */, 0 /* type */, 1 /* base: link layer */, 96 /* offset */, VLAN_SET.bits];
  return Buffer.concat([
    tlv(0 /* KEYBYTEORDER */, le(2 /* big endian */)),
    tlv(
      3 /* KEY_TYPEOF */,
      Buffer.concat([
        tlv(0 /* expr */, le(7 /* EXPR_PAYLOAD */)),
        tlv(1 /* data */, Buffer.concat(payloadDesc.map((v, i) => tlv(i, le(v))))),
      ]),
    ),
  ]);
})();

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

/** Writes nf_tables expressions into the rule being written. */
class Exprs {
  constructor(
    private readonly w: NftBatchWriter,
    /** told where each interface name and MAC address landed in the batch */
    private readonly placed: (value: string, offset: number) => void,
  ) {}

  /** Opens NFTA_LIST_ELEM { NAME, DATA { ...: the expression's attributes follow. */
  private open(name: string): [number, number] {
    const e = this.w.nest(1 /* NFTA_LIST_ELEM */);
    this.w.str(1 /* NFTA_EXPR_NAME */, name);
    return [e, this.w.nest(2 /* NFTA_EXPR_DATA */)];
  }

  private shut([e, d]: [number, number]): void {
    this.w.nestEnd(d);
    this.w.nestEnd(e);
  }

  meta(key: number): void {
    const h = this.open('meta');
    this.w.u32(2 /* KEY */, key);
    this.w.u32(1 /* DREG */, REG_1);
    this.shut(h);
  }

  payload(base: number, offset: number, len: number): void {
    const h = this.open('payload');
    this.w.u32(1 /* DREG */, REG_1);
    this.w.u32(2 /* BASE */, base);
    this.w.u32(3 /* OFFSET */, offset);
    this.w.u32(4 /* LEN */, len);
    this.shut(h);
  }

  /** cmp with `value` as `n` big-endian bytes (a number), or these bytes (an array), or an interface name. */
  cmp(op: number, value: number | readonly number[] | { ifname: string } | { mac: string }, n = 0): void {
    const h = this.open('cmp');
    this.w.u32(1 /* SREG */, REG_1);
    this.w.u32(2 /* OP */, op);
    const data = this.w.nest(3 /* DATA */);
    if (typeof value === 'number') this.w.beInt(1 /* NFTA_DATA_VALUE */, value, n);
    else if ('ifname' in value) this.placed(value.ifname, this.w.ifname(1, value.ifname));
    else if ('mac' in value) this.placed(value.mac, this.w.bytes(1, macBytes(value.mac)));
    else this.w.bytes(1, value);
    this.w.nestEnd(data);
    this.shut(h);
  }

  bitwise(mask: number, n: number): void {
    const h = this.open('bitwise');
    this.w.u32(1 /* SREG */, REG_1);
    this.w.u32(2 /* DREG */, REG_1);
    this.w.u32(6 /* OP: NFT_BITWISE_BOOL */, 0);
    this.w.u32(3 /* LEN */, n);
    const m = this.w.nest(4 /* MASK */);
    this.w.beInt(1 /* NFTA_DATA_VALUE */, mask, n);
    this.w.nestEnd(m);
    const x = this.w.nest(5 /* XOR */);
    this.w.beInt(1, 0, n);
    this.w.nestEnd(x);
    this.shut(h);
  }

  lookup(set: string): void {
    const h = this.open('lookup');
    this.w.u32(2 /* SREG */, REG_1);
    this.w.str(1 /* SET */, set);
    this.w.u32(4 /* SET_ID */, SET_ID);
    this.shut(h);
  }

  objref(counter: string): void {
    const h = this.open('objref');
    this.w.u32(1 /* IMM_TYPE */, NFT_OBJECT_COUNTER);
    this.w.str(2 /* IMM_NAME */, counter);
    this.shut(h);
  }

  verdict(code: number, chain?: string): void {
    const h = this.open('immediate');
    this.w.u32(1 /* DREG */, REG_VERDICT);
    const d = this.w.nest(2 /* DATA */);
    const v = this.w.nest(2 /* VERDICT */);
    this.w.u32(1 /* CODE */, code);
    if (chain) this.w.str(2 /* CHAIN */, chain);
    this.w.nestEnd(v);
    this.w.nestEnd(d);
    this.shut(h);
  }

  /** The comparisons of a loaded field of `n` bytes with `value`, multiplied by `scale` (a left shift). */
  compare(value: Value, neq: boolean, n: number, scale = 1): void {
    if (typeof value !== 'number' && (neq || scale !== 1)) {
      // the model has none; encoding one would need an inverted lookup or shifted bounds
      throw new Error(`fence batch: cannot encode a ${neq ? 'negated' : 'bit-field'} set or range match`);
    }
    if (value === 'vlan_types') this.lookup(VLAN_SET.name);
    else if (typeof value === 'object') {
      this.cmp(CMP.GTE, value.lo * scale, n);
      this.cmp(CMP.LTE, value.hi * scale, n);
    } else this.cmp(neq ? CMP.NEQ : CMP.EQ, value * scale, n);
  }
}

/** A rule's matches as expressions; consecutive byte-aligned link-layer equalities share one load. */
function writeMatches(x: Exprs, matches: readonly Match[]): void {
  let runOffset = -1;
  const run: number[] = []; // the bytes compared so far, big-endian
  const endRun = (): void => {
    if (runOffset < 0) return;
    x.payload(BASE.LL, runOffset, run.length);
    x.cmp(CMP.EQ, run);
    runOffset = -1;
    run.length = 0;
  };
  for (const m of matches) {
    if (m.kind === 'raw' && m.bit % 8 === 0 && m.len % 8 === 0 && typeof m.value === 'number' && !m.neq) {
      const offset = m.bit / 8;
      const n = m.len / 8;
      if (runOffset < 0 || runOffset + run.length !== offset || run.length + n > 16) {
        endRun();
        runOffset = offset;
      }
      for (let i = n - 1; i >= 0; i--) run.push(Math.floor(m.value / 256 ** i) % 256);
      continue;
    }
    endRun();
    switch (m.kind) {
      case 'ifname':
        x.meta(m.dir === 'iif' ? META.IIFNAME : META.OIFNAME);
        x.cmp(CMP.EQ, { ifname: m.name });
        break;
      case 'ether_saddr':
        x.payload(BASE.LL, 6, 6);
        x.cmp(m.neq ? CMP.NEQ : CMP.EQ, { mac: m.mac });
        break;
      case 'udp':
        x.meta(META.L4PROTO);
        x.cmp(CMP.EQ, IPPROTO_UDP, 1);
        x.payload(BASE.TRANSPORT, m.field === 'dport' ? 2 : 0, 2);
        x.compare(m.value, false, 2);
        break;
      case 'raw': {
        const offset = Math.floor(m.bit / 8);
        const n = Math.ceil(((m.bit % 8) + m.len) / 8);
        x.payload(BASE.LL, offset, n);
        if (m.bit % 8 === 0 && m.len % 8 === 0) {
          x.compare(m.value, m.neq, n);
        } else {
          const scale = 2 ** (n * 8 - (m.bit % 8) - m.len);
          x.bitwise((2 ** m.len - 1) * scale, n);
          x.compare(m.value, m.neq, n, scale);
        }
        break;
      }
    }
  }
  endRun();
}

function writeRule(w: NftBatchWriter, table: string, r: Rule, placed: (v: string, at: number) => void): void {
  const what = `add rule to chain ${r.chain} (${r.jump ? `jump ${r.jump}` : `counter ${r.counter!}`})`;
  w.begin(MSG.NEWRULE, NLM_F_CREATE | NLM_F_APPEND, what);
  w.str(1 /* TABLE */, table);
  w.str(2 /* CHAIN */, r.chain);
  const list = w.nest(4 /* EXPRESSIONS */);
  const x = new Exprs(w, placed);
  writeMatches(x, r.matches);
  if (r.jump) x.verdict(NFT_JUMP, r.jump);
  else {
    x.objref(r.counter!);
    x.verdict(NF_DROP);
  }
  w.nestEnd(list);
  w.close();
}

/** A batch for some number of NICs, and where each NIC's names and MAC go in it. */
interface Template {
  batch: Batch;
  slots: { offset: number; nic: number; field: 'veth' | 'tap' | 'guestMac' }[];
}

const TEMPLATES = new Map<string, Template>();

/**
 * The batch that (re)defines the fence, as `nft -f` of fenceRuleset(table, nics) would:
 * the table added if missing and its rules flushed, then the chains, counters (kept if
 * they exist), the VLAN set and the rules. Only the NICs' interface names and MACs vary
 * between sandboxes, each in a fixed-size field (IFNAMSIZ bytes, 6 bytes), so the batch
 * is encoded once per table and NIC count and copied with those fields written in.
 */
export function fenceBatch(table: string, nics: FenceNic[]): Batch {
  const t = checkTable(table);
  const checked = checkNics(nics);
  const key = `${t}/${checked.length}`;
  let tpl = TEMPLATES.get(key);
  if (!tpl) {
    tpl = encodeTemplate(t, checked.length);
    if (TEMPLATES.size < 64) TEMPLATES.set(key, tpl);
  }
  const buf = Buffer.from(tpl.batch.buf);
  for (const s of tpl.slots) {
    const nic = checked[s.nic]!;
    if (s.field === 'guestMac') buf.set(macBytes(nic.guestMac), s.offset);
    else {
      buf.fill(0, s.offset, s.offset + 16);
      buf.write(nic[s.field], s.offset, 15, 'latin1');
    }
  }
  return { buf, seqs: tpl.batch.seqs, beginSeq: tpl.batch.beginSeq };
}

/** Encodes the batch for `count` placeholder NICs, noting where their fields landed. */
function encodeTemplate(t: string, count: number): Template {
  const fields = new Map<string, { nic: number; field: Template['slots'][number]['field'] }>();
  const nics: FenceNic[] = Array.from({ length: count }, (_n, i) => {
    const nic = {
      bridge: `b${i}`,
      veth: `v${i}`,
      tap: `t${i}`,
      guestMac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
    };
    fields.set(nic.veth, { nic: i, field: 'veth' });
    fields.set(nic.tap, { nic: i, field: 'tap' });
    fields.set(nic.guestMac, { nic: i, field: 'guestMac' });
    return nic;
  });
  const slots: Template['slots'] = [];
  const placed = (value: string, offset: number): void => {
    const f = fields.get(value);
    if (!f) throw new Error(`fence batch: ${value} is no placeholder`);
    slots.push({ offset, ...f });
  };
  const model = fenceModel(nics);
  const w = new NftBatchWriter(NFPROTO_BRIDGE);
  try {
    writeFence(w, t, model, placed);
  } catch (e) {
    w.abandon();
    throw e;
  }
  return { batch: w.finish(), slots };
}

function writeFence(w: NftBatchWriter, t: string, model: FenceModel, placed: (v: string, at: number) => void): void {
  w.begin(MSG.NEWTABLE, NLM_F_CREATE, `add table bridge ${t}`);
  w.str(1 /* NAME */, t);
  w.u32(2 /* FLAGS */, 0);
  w.close();
  w.begin(MSG.DELRULE, 0, `flush table bridge ${t}`);
  w.str(1 /* TABLE */, t);
  w.close();
  for (const c of model.chains) {
    w.begin(MSG.NEWCHAIN, NLM_F_CREATE, `add chain ${c.name}`);
    w.str(1 /* TABLE */, t);
    w.str(3 /* NAME */, c.name);
    if (c.hook) {
      w.str(7 /* TYPE */, 'filter');
      w.u32(5 /* POLICY */, NF_ACCEPT);
      const hook = w.nest(4 /* HOOK */);
      w.u32(1 /* HOOKNUM */, c.hook === 'prerouting' ? NF_BR_PRE_ROUTING : NF_BR_POST_ROUTING);
      w.u32(2 /* PRIORITY */, NF_BR_PRI_FILTER_BRIDGED);
      w.nestEnd(hook);
    }
    w.close();
  }
  for (const c of model.counters) {
    w.begin(MSG.NEWOBJ, NLM_F_CREATE, `add counter ${c}`);
    w.str(1 /* TABLE */, t);
    w.str(2 /* NAME */, c);
    w.u32(3 /* TYPE */, NFT_OBJECT_COUNTER);
    const data = w.nest(4 /* DATA */);
    w.u64(1 /* BYTES */, 0n);
    w.u64(2 /* PACKETS */, 0n);
    w.nestEnd(data);
    w.close();
  }
  w.begin(MSG.NEWSET, NLM_F_CREATE, `add set ${VLAN_SET.name}`);
  w.str(1 /* TABLE */, t);
  w.str(2 /* NAME */, VLAN_SET.name);
  w.u32(3 /* FLAGS */, 0);
  w.u32(4 /* KEY_TYPE */, TYPE_INTEGER);
  w.u32(5 /* KEY_LEN */, VLAN_SET.bits / 8);
  w.u32(10 /* ID */, SET_ID);
  w.bytes(13 /* USERDATA */, SET_USERDATA);
  w.close();
  w.begin(MSG.NEWSETELEM, NLM_F_CREATE, `add elements to set ${VLAN_SET.name}`);
  w.str(1 /* TABLE */, t);
  w.str(2 /* SET */, VLAN_SET.name);
  w.u32(4 /* SET_ID */, SET_ID);
  const elems = w.nest(3 /* ELEMENTS */);
  for (const e of VLAN_SET.elements) {
    const el = w.nest(1 /* NFTA_LIST_ELEM */);
    const key = w.nest(1 /* NFTA_SET_ELEM_KEY */);
    w.beInt(1 /* NFTA_DATA_VALUE */, e, VLAN_SET.bits / 8);
    w.nestEnd(key);
    w.nestEnd(el);
  }
  w.nestEnd(elems);
  w.close();
  for (const r of model.rules) writeRule(w, t, r, placed);
}
