// The fence as one nf_tables netlink batch (pure): the same transaction the nft script
// of ruleset.ts makes, encoded here instead of by libnftables, so a setup spends no time
// parsing and evaluating nft syntax or fetching nft's cache (6 kernel round trips). The
// messages (table, flush, chains, counters, the VLAN set with nft's own typeof
// description, rules) are framed here; each rule's expressions come from exprs.ts. A test
// applies both forms and compares the kernel's listings.
import { NFPROTO_BRIDGE, NftBatchWriter, NLM_F_APPEND, NLM_F_CREATE, type Batch } from '../../net/nfnl';
import { macBytes, NFT_OBJECT_COUNTER, SET_ID, writeRuleExprs } from './exprs';
import { fenceModel, type FenceModel, type Rule, VLAN_SET } from './model';
import type { FenceNic } from './types';
import { checkNics, checkTable } from './validate';

// nf_tables.h
const MSG = { NEWTABLE: 0, NEWCHAIN: 3, NEWRULE: 6, DELRULE: 8, NEWSET: 9, NEWSETELEM: 12, NEWOBJ: 18 };
const NF_BR_PRE_ROUTING = 0;
const NF_BR_POST_ROUTING = 4;
const NF_BR_PRI_FILTER_BRIDGED = -200; // "priority filter" in the bridge family
const NF_ACCEPT = 1;
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

function writeRule(w: NftBatchWriter, table: string, r: Rule, placed: (v: string, at: number) => void): void {
  const what = `add rule to chain ${r.chain} (${r.jump ? `jump ${r.jump}` : `counter ${r.counter!}`})`;
  w.begin(MSG.NEWRULE, NLM_F_CREATE | NLM_F_APPEND, what);
  w.str(1 /* TABLE */, table);
  w.str(2 /* CHAIN */, r.chain);
  writeRuleExprs(w, r, placed);
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
