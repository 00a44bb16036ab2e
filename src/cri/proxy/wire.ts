// Protocol buffers at the wire level, for the few CRI messages the proxy changes on their way
// (https://protobuf.dev/programming-guides/encoding/). A change is made to the encoded bytes,
// never by decoding and re-encoding, so every field this proxy's proto does not know reaches
// the runtime as the client sent it. Embedded messages that appear more than once are merged
// the way the encoding defines it (their payloads concatenated), so the result never depends
// on a parser's merge rules.

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

export interface WireField {
  field: number;
  wireType: number;
  /** the whole field: tag and value */
  start: number;
  end: number;
  /** a LEN field's payload */
  payload?: Buffer;
}

function readVarint(buf: Buffer, at: number): { value: number; next: number } {
  let value = 0;
  let mul = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * mul;
    if (value > Number.MAX_SAFE_INTEGER) throw new WireError(`varint at byte ${at} is too large`);
    if (b < 0x80) return { value, next: i + 1 };
    mul *= 128;
  }
  throw new WireError(`truncated varint at byte ${at}`);
}

export function varint(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new WireError(`cannot encode ${n} as a varint`);
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The top-level fields of an encoded message, in order; throws WireError on malformed input. */
export function readFields(buf: Buffer): WireField[] {
  const fields: WireField[] = [];
  let at = 0;
  while (at < buf.length) {
    const start = at;
    const tag = readVarint(buf, at);
    const field = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    if (field === 0) throw new WireError(`field number 0 at byte ${start}`);
    at = tag.next;
    let payload: Buffer | undefined;
    switch (wireType) {
      case WIRE.VARINT:
        at = readVarint(buf, at).next;
        break;
      case WIRE.I64:
        at += 8;
        break;
      case WIRE.I32:
        at += 4;
        break;
      case WIRE.LEN: {
        const len = readVarint(buf, at);
        at = len.next + len.value;
        if (at > buf.length) throw new WireError(`field ${field} at byte ${start} runs past the message's end`);
        payload = buf.subarray(len.next, at);
        break;
      }
      default:
        // groups (deprecated) never appear in CRI messages
        throw new WireError(`field ${field} at byte ${start} has wire type ${wireType}, which CRI does not use`);
    }
    if (at > buf.length) throw new WireError(`field ${field} at byte ${start} runs past the message's end`);
    fields.push({ field, wireType, start, end: at, ...(payload ? { payload } : {}) });
  }
  return fields;
}

export function lenField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint(field * 8 + WIRE.LEN), varint(payload.length), payload]);
}

/** A string field, written even when empty (so it overrides an earlier value of the field). */
export function stringField(field: number, value: string): Buffer {
  return lenField(field, Buffer.from(value, 'utf8'));
}

/** One entry of a map<string, string> field. */
export function mapEntry(field: number, key: string, value: string): Buffer {
  return lenField(field, Buffer.concat([stringField(1, key), stringField(2, value)]));
}

/** The payload of embedded message `field`, its occurrences merged (empty when absent). */
export function embedded(buf: Buffer, field: number): Buffer {
  return Buffer.concat(
    readFields(buf)
      .filter((f) => f.field === field)
      .map((f) => {
        if (f.wireType !== WIRE.LEN) throw new WireError(`field ${field} is not an embedded message`);
        return f.payload!;
      }),
  );
}

/**
 * `buf` with embedded message `field` (its occurrences merged) replaced by `change(payload)`,
 * at the place of its first occurrence (or appended); every other field as it was.
 */
export function withEmbedded(buf: Buffer, field: number, change: (payload: Buffer) => Buffer): Buffer {
  const fields = readFields(buf);
  const merged = change(embedded(buf, field));
  const out: Buffer[] = [];
  let placed = false;
  for (const f of fields) {
    if (f.field !== field) out.push(buf.subarray(f.start, f.end));
    else if (!placed) {
      out.push(lenField(field, merged));
      placed = true;
    }
  }
  if (!placed) out.push(lenField(field, merged));
  return Buffer.concat(out);
}

/** `buf` without any occurrence of `field`, then `replacement` appended. */
export function replaceField(buf: Buffer, field: number, replacement: Buffer): Buffer {
  const kept = readFields(buf)
    .filter((f) => f.field !== field)
    .map((f) => buf.subarray(f.start, f.end));
  return Buffer.concat([...kept, replacement]);
}
