// The option area on the wire (RFC 2132 2): code, length, value; 0 is PAD, 255 is END.
// RFC 3396: a value longer than 255 bytes travels as consecutive instances of the same
// code, and a decoder joins every instance of a code, across the options, file and sname
// areas in that order. RFC 3046 2.1: option 82 goes last.
import { Opt } from '../constants';
import { DecodeError } from '../errors';

/**
 * Reads options from buf[start, end) into out, joining repeated codes. Returns true if an
 * END was found (a missing END is tolerated: the area simply ends).
 */
export function readOptionArea(buf: Buffer, start: number, end: number, out: Map<number, Buffer>): boolean {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return true;
    if (i + 1 >= end) throw new DecodeError('truncated', `option ${code} at ${i} has no length byte`, code);
    const len = buf[i + 1]!;
    const vStart = i + 2;
    if (vStart + len > end) {
      throw new DecodeError('truncated', `option ${code} at ${i} claims ${len} bytes, ${end - vStart} left`, code);
    }
    const value = buf.subarray(vStart, vStart + len);
    const prev = out.get(code);
    out.set(code, prev ? Buffer.concat([prev, value]) : value);
    i = vStart + len;
  }
  return false;
}

/**
 * Codes in wire order: the order they were set in (the handler sets them in the client's
 * parameter request list order, RFC 2132 9.8), except that 53 goes first (as most servers
 * do), the subnet mask goes before the router (RFC 2132 3.3) and 82 goes last (RFC 3046 2.1).
 */
export function wireOrder(codes: Iterable<number>): number[] {
  const out: number[] = [];
  let relay = false;
  let type = false;
  for (const c of codes) {
    if (c === Opt.PAD || c === Opt.END) continue;
    if (c === Opt.MESSAGE_TYPE) type = true;
    else if (c === Opt.RELAY_AGENT_INFO) relay = true;
    else out.push(c);
  }
  const mask = out.indexOf(Opt.SUBNET_MASK);
  const router = out.indexOf(Opt.ROUTER);
  if (mask > router && router >= 0) {
    out.splice(mask, 1);
    out.splice(router, 0, Opt.SUBNET_MASK);
  }
  if (type) out.unshift(Opt.MESSAGE_TYPE);
  if (relay) out.push(Opt.RELAY_AGENT_INFO);
  return out;
}

/** Bytes the options take on the wire, END included. */
export function optionAreaSize(options: Map<number, Buffer>): number {
  let n = 1;
  // keys and get, not entries: an entry is an array per option (this runs for every reply)
  for (const code of options.keys()) {
    if (code === Opt.PAD || code === Opt.END) continue;
    const len = options.get(code)!.length;
    n += len === 0 ? 2 : len + 2 * Math.ceil(len / 255);
  }
  return n;
}

/** Writes one option (split per RFC 3396) at buf[o]; returns the offset after it. */
function writeOption(buf: Buffer, o: number, code: number, v: Buffer): number {
  let off = 0;
  do {
    const chunk = Math.min(255, v.length - off);
    buf[o++] = code;
    buf[o++] = chunk;
    v.copy(buf, o, off, off + chunk);
    o += chunk;
    off += chunk;
  } while (off < v.length);
  return o;
}

/**
 * Writes every option in wireOrder (split per RFC 3396) and END at buf[at]; returns the
 * offset after END. The order is made while writing (no list of codes per reply): 53, then
 * the rest in order with the mask moved before the router, then 82.
 */
export function writeOptionArea(options: Map<number, Buffer>, buf: Buffer, at: number): number {
  let o = at;
  const type = options.get(Opt.MESSAGE_TYPE);
  if (type !== undefined) o = writeOption(buf, o, Opt.MESSAGE_TYPE, type);
  const mask = options.get(Opt.SUBNET_MASK);
  let maskDone = false;
  for (const code of options.keys()) {
    if (code === Opt.PAD || code === Opt.END || code === Opt.MESSAGE_TYPE || code === Opt.RELAY_AGENT_INFO) continue;
    if (code === Opt.SUBNET_MASK) {
      if (maskDone) continue;
      maskDone = true;
    } else if (code === Opt.ROUTER && mask !== undefined && !maskDone) {
      o = writeOption(buf, o, Opt.SUBNET_MASK, mask);
      maskDone = true;
    }
    o = writeOption(buf, o, code, options.get(code)!);
  }
  const relay = options.get(Opt.RELAY_AGENT_INFO);
  if (relay !== undefined) o = writeOption(buf, o, Opt.RELAY_AGENT_INFO, relay);
  buf[o++] = Opt.END;
  return o;
}
