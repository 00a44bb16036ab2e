// Keeping every reply inside one frame (MAX_FRAME). encodeReply never throws: a reply
// that cannot be framed goes out as a short E2BIG error instead, and an error message is
// cut to a bounded length. `status` caps its long per-NIC lists (counting what it left
// out) until it fits; `list` pages (ListRequest).
import { TapError } from './errors';
import { quote } from '../util/quote';
import type { SandboxStatus } from './sandboxes';
import {
  encodeFrame,
  MAX_FRAME,
  MAX_LIST_LIMIT,
  PROTOCOL_VERSION,
  type ListEntry,
  type ListPage,
  type Reply,
} from './protocol';

/** Longest error message a reply carries. */
export const MAX_ERROR_MESSAGE = 2048;
/** What a reply's result may take: the frame less room for the envelope. */
export const REPLY_BUDGET = MAX_FRAME - 1024;

/** The frame of a reply, or of a short error standing in for one that cannot be framed. */
export function encodeReply(r: Reply): Buffer {
  if (!r.ok && r.error.message.length > MAX_ERROR_MESSAGE) {
    const m = r.error.message;
    r = { ...r, error: { ...r.error, message: `${m.slice(0, MAX_ERROR_MESSAGE)}…(${Buffer.byteLength(m)} bytes)` } };
  }
  let bytes: number | string = 'unknown';
  try {
    return encodeFrame(r);
  } catch (e) {
    if (e instanceof RangeError) bytes = /frame of (\d+) bytes/.exec(e.message)?.[1] ?? bytes;
  }
  const message = r.ok
    ? `the reply of ${bytes} bytes exceeds the ${MAX_FRAME}-byte frame`
    : `the error reply (${r.error.code}) of ${bytes} bytes exceeds the ${MAX_FRAME}-byte frame`;
  return encodeFrame({ v: PROTOCOL_VERSION, id: r.id, ok: false, error: { code: 'E2BIG', message } });
}

const NIC_LISTS = ['routes', 'unexpressible', 'unrestorable', 'warnings'] as const;
type NicList = (typeof NIC_LISTS)[number];

/** A status whose lists may be cut: `omitted` counts the entries left out of each. */
export type BoundedStatus = Omit<SandboxStatus, 'nics'> & {
  nics: (SandboxStatus['nics'][number] & { omitted?: Partial<Record<NicList, number>> })[];
  omitted?: { drift?: number };
};

function cut<T>(list: T[], cap: number, omitted: Record<string, number>, name: string): T[] {
  if (list.length <= cap) return list;
  omitted[name] = list.length - cap;
  return list.slice(0, cap);
}

function capStatus(s: SandboxStatus, cap: number): BoundedStatus {
  const top: Record<string, number> = {};
  const out: BoundedStatus = {
    ...s,
    nics: s.nics.map((n) => {
      const omitted: Record<string, number> = {};
      const nic = { ...n };
      for (const k of NIC_LISTS) (nic as Record<NicList, unknown[]>)[k] = cut(n[k] as unknown[], cap, omitted, k);
      return Object.keys(omitted).length ? { ...nic, omitted } : nic;
    }),
    drift: cut(s.drift, cap, top, 'drift'),
  };
  if (Object.keys(top).length) out.omitted = top;
  return out;
}

/**
 * The status with each per-NIC list (routes, unexpressible, unrestorable, warnings) and
 * the drift list cut to `perList` entries, halved until it fits `budget` bytes.
 */
export function boundStatus(s: SandboxStatus, perList = 100, budget = REPLY_BUDGET): BoundedStatus {
  for (let cap = perList; ; cap = Math.floor(cap / 2)) {
    const out = capStatus(s, cap);
    if (cap === 0 || Buffer.byteLength(JSON.stringify(out)) <= budget) return out;
  }
}

/** Checks a list request's paging fields; undefined when it asks for the legacy whole array. */
export function listPaging(msg: Record<string, unknown>): { limit: number; after?: string } | undefined {
  const { limit, after } = msg;
  if (limit === undefined) {
    if (after !== undefined) throw new TapError('EINVAL', 'invalid after: needs limit', 'after');
    return undefined;
  }
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
    throw new TapError('EINVAL', `invalid limit ${quote(limit)}: must be an integer 1-${MAX_LIST_LIMIT}`, 'limit');
  if (after !== undefined && (typeof after !== 'string' || after.length > 256))
    throw new TapError('EINVAL', `invalid after ${quote(after)}: must be a sandbox id`, 'after');
  return { limit, ...(after !== undefined ? { after } : {}) };
}

/**
 * One page of `all`: in sandboxId order, those after `after`, at most `limit` and no
 * more than fit `budget` bytes (always at least one, which fits: ids and paths are bounded).
 */
export function listPage(all: ListEntry[], limit: number, after?: string, budget = REPLY_BUDGET): ListPage {
  const sorted = all
    .filter((e) => after === undefined || e.sandboxId > after)
    .sort((a, b) => (a.sandboxId < b.sandboxId ? -1 : a.sandboxId > b.sandboxId ? 1 : 0));
  const page: ListEntry[] = [];
  let bytes = 64;
  for (const e of sorted) {
    if (page.length >= limit) break;
    const size = Buffer.byteLength(JSON.stringify(e)) + 1;
    if (page.length > 0 && bytes + size > budget) break;
    page.push(e);
    bytes += size;
  }
  const more = page.length < sorted.length;
  return { sandboxes: page, ...(more ? { next: page[page.length - 1]!.sandboxId } : {}) };
}

/** The legacy list reply: the whole array, or E2BIG naming paging when it cannot fit. */
export function wholeList(all: ListEntry[], budget = REPLY_BUDGET): ListEntry[] {
  const bytes = Buffer.byteLength(JSON.stringify(all));
  if (bytes > budget) {
    throw new TapError(
      'E2BIG',
      `the list of ${all.length} sandboxes (${bytes} bytes) does not fit one reply: ask for pages (limit, after)`,
      'limit',
    );
  }
  return all;
}
