// nf_tables expressions (pure): what a fence rule's matches and verdict become in netlink
// form, written into the rule message being built (batch.ts frames the messages).
// Mirrors what nft 1.0.6 emits for the same rule text, so the kernel holds the same
// bytecode either way: adjacent byte-aligned equality matches merged into one load, bit
// fields masked with bitwise, ranges as two comparisons, sets by name and id.
import type { NftBatchWriter } from '../../net/nfnl';
import { type Match, type Rule, type Value, VLAN_SET } from './model';

// nf_tables.h
const NF_DROP = 0;
const NFT_JUMP = -3;
export const NFT_OBJECT_COUNTER = 1;
const REG_VERDICT = 0;
const REG_1 = 1;
const META = { IIFNAME: 6, OIFNAME: 7, L4PROTO: 16 };
const BASE = { LL: 0, TRANSPORT: 2 };
const CMP = { EQ: 0, NEQ: 1, LTE: 3, GTE: 5 };
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;
/** NFTA_SET_ID of the VLAN set in the batch that defines it, so rules can name it before the commit */
export const SET_ID = 1;

export function macBytes(mac: string): number[] {
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
      case 'icmp6':
        x.meta(META.L4PROTO);
        x.cmp(CMP.EQ, IPPROTO_ICMPV6, 1);
        x.payload(BASE.TRANSPORT, 0, 1);
        x.compare(m.value, false, 1);
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

/** Writes the NFTA_RULE_EXPRESSIONS of `r`; `placed` is told where each interface name and MAC landed. */
export function writeRuleExprs(w: NftBatchWriter, r: Rule, placed: (v: string, at: number) => void): void {
  const list = w.nest(4 /* NFTA_RULE_EXPRESSIONS */);
  const x = new Exprs(w, placed);
  writeMatches(x, r.matches);
  if (r.jump) x.verdict(NFT_JUMP, r.jump);
  else {
    x.objref(r.counter!);
    x.verdict(NF_DROP);
  }
  w.nestEnd(list);
}
