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
  for (const [code, v] of options) {
    if (code === Opt.PAD || code === Opt.END) continue;
    n += v.length === 0 ? 2 : v.length + 2 * Math.ceil(v.length / 255);
  }
  return n;
}

/** Writes every option (split per RFC 3396) and END at buf[at]; returns the offset after END. */
export function writeOptionArea(options: Map<number, Buffer>, buf: Buffer, at: number): number {
  let o = at;
  for (const code of wireOrder(options.keys())) {
    const v = options.get(code)!;
    let off = 0;
    do {
      const chunk = Math.min(255, v.length - off);
      buf[o++] = code;
      buf[o++] = chunk;
      v.copy(buf, o, off, off + chunk);
      o += chunk;
      off += chunk;
    } while (off < v.length);
  }
  buf[o++] = Opt.END;
  return o;
}
