// The HTTP/2 :authority of a Unix-socket gRPC client, made acceptable to Node's HTTP/2 server.
//
// gRPC clients of one era (grpc-go before 1.52: crictl/critest 1.26 and the kubelets of that
// time) send the socket path as :authority, e.g. "/run/tapwire/cri.sock". Node's HTTP/2 server is
// nghttp2 with HTTP messaging enforced (Node has no option to turn it off); nghttp2 checks a
// request's :authority and host with nghttp2_check_authority, which allows only the characters of
// an RFC 3986 authority - no '/' - and answers a bad pseudo-header with RST_STREAM PROTOCOL_ERROR,
// so the call never reaches grpc-js. Newer clients send "localhost".
//
// AuthorityRewriter sits on the client-to-server bytes of a connection: it splits them into
// HTTP/2 frames, HPACK-decodes every request header block (HEADERS + CONTINUATION) in the client's
// compression context and encodes it again - literals without indexing, so the server's context
// stays empty - with an :authority (or host) nghttp2 would refuse replaced by "localhost". Every
// other frame passes unchanged, and so does everything the server sends. A connection whose bytes
// are not HTTP/2 the rewriter can follow throws H2ProtocolError (the caller closes it): nghttp2
// would end such a connection too.
import * as hpack from 'hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** SETTINGS_MAX_FRAME_SIZE of Node's server (the protocol default): no frame in either direction is larger. */
export const MAX_FRAME = 16384;
/** SETTINGS_HEADER_TABLE_SIZE of Node's server: the largest dynamic table a client may use. */
const HEADER_TABLE_SIZE = 4096;
/** Header list size (HPACK's accounting, name + value + 32 per field) past which the connection is closed. */
export const MAX_HEADER_LIST = 65536;
/** A header block's encoded bytes, over all its frames. */
const MAX_BLOCK = 65536;

/** What replaces an :authority nghttp2 would refuse (newer gRPC clients send it for Unix sockets). */
export const LOCALHOST = 'localhost';

/** nghttp2_check_authority: ALPHA DIGIT - . _ ~ ! $ & ' ( ) * + , ; = : @ [ ] % (and not empty, nor only spaces). */
const AUTHORITY_RE = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]+$/;

export function acceptableAuthority(v: string): boolean {
  return AUTHORITY_RE.test(v);
}

export class H2ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'H2ProtocolError';
  }
}

interface PendingBlock {
  streamId: number;
  endStream: boolean;
  priority: Buffer | undefined;
  fragments: Buffer[];
  size: number;
}

export class AuthorityRewriter {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  /** Payload bytes still to pass of a frame that needs no rewriting. */
  private passing = 0;
  private block: PendingBlock | undefined;
  private readonly decoder = hpack.decompressor.create({ table: { maxSize: HEADER_TABLE_SIZE } });
  /** How many :authority/host values were replaced. */
  rewritten = 0;

  /** Takes bytes from the client; returns the bytes to hand to the server. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (!this.prefaceSeen) {
        const n = Math.min(this.buf.length, PREFACE.length);
        if (!this.buf.subarray(0, n).equals(PREFACE.subarray(0, n))) {
          throw new H2ProtocolError('not an HTTP/2 connection (no client preface)');
        }
        if (n < PREFACE.length) break;
        out.push(this.take(PREFACE.length));
        this.prefaceSeen = true;
      } else if (this.passing > 0) {
        if (this.buf.length === 0) break;
        const piece = this.take(Math.min(this.passing, this.buf.length));
        this.passing -= piece.length;
        out.push(piece);
      } else {
        if (this.buf.length < FRAME_HEADER) break;
        const length = this.buf.readUIntBE(0, 3);
        const type = this.buf[3]!;
        if (type !== HEADERS && type !== CONTINUATION) {
          if (this.block) {
            throw new H2ProtocolError(`frame type ${type} inside the header block of stream ${this.block.streamId}`);
          }
          out.push(this.take(FRAME_HEADER));
          this.passing = length;
          continue;
        }
        if (length > MAX_FRAME) throw new H2ProtocolError(`a header frame of ${length} bytes exceeds ${MAX_FRAME}`);
        if (this.buf.length < FRAME_HEADER + length) break;
        const header = this.take(FRAME_HEADER);
        const payload = this.take(length);
        const flags = header[4]!;
        const streamId = header.readUInt32BE(5) & 0x7fffffff;
        const frames =
          type === HEADERS ? this.headers(flags, streamId, payload) : this.continuation(flags, streamId, payload);
        out.push(...frames);
      }
    }
    return out;
  }

  private take(n: number): Buffer {
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  private headers(flags: number, streamId: number, payload: Buffer): Buffer[] {
    if (this.block) throw new H2ProtocolError(`HEADERS inside the header block of stream ${this.block.streamId}`);
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      if (payload.length === 0) throw new H2ProtocolError(`HEADERS of stream ${streamId}: padded but empty`);
      start = 1;
      end -= payload[0]!;
    }
    let priority: Buffer | undefined;
    if (flags & PRIORITY) {
      priority = payload.subarray(start, start + 5);
      start += 5;
    }
    if (start > end)
      throw new H2ProtocolError(`HEADERS of stream ${streamId}: padding and priority exceed the payload`);
    this.block = { streamId, endStream: (flags & END_STREAM) !== 0, priority, fragments: [], size: 0 };
    return this.fragment(flags, payload.subarray(start, end));
  }

  private continuation(flags: number, streamId: number, payload: Buffer): Buffer[] {
    if (this.block?.streamId !== streamId) throw new H2ProtocolError(`CONTINUATION of stream ${streamId} out of place`);
    return this.fragment(flags, payload);
  }

  private fragment(flags: number, data: Buffer): Buffer[] {
    const block = this.block!;
    block.fragments.push(data);
    block.size += data.length;
    if (block.size > MAX_BLOCK) throw new H2ProtocolError(`a header block exceeds ${MAX_BLOCK} bytes`);
    if (!(flags & END_HEADERS)) return [];
    this.block = undefined;
    const fields = this.decode(Buffer.concat(block.fragments)).map((h) => {
      let value = h.value;
      if ((h.name === ':authority' || h.name === 'host') && !acceptableAuthority(value)) {
        value = LOCALHOST;
        this.rewritten++;
      }
      return literal(h.name, value, h.neverIndex);
    });
    return headerFrames(block, Buffer.concat(fields));
  }

  private decode(data: Buffer): hpack.Header[] {
    this.decoder.write(data);
    try {
      this.decoder.execute(); // throws on bad HPACK (no 'error' listener)
    } catch (e) {
      throw new H2ProtocolError(`bad HPACK header block: ${(e as Error).message}`);
    }
    const headers: hpack.Header[] = [];
    let size = 0;
    for (let h = this.decoder.read(); h !== null; h = this.decoder.read()) {
      size += h.name.length + h.value.length + 32;
      if (size > MAX_HEADER_LIST) throw new H2ProtocolError(`a header list exceeds ${MAX_HEADER_LIST} bytes`);
      headers.push(h);
    }
    return headers;
  }
}

/** An HPACK integer with an n-bit prefix (RFC 7541 5.1), the prefix's other bits set from `first`. */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1'); // hpack.js hands over each octet as one char
  return Buffer.concat([Buffer.from(hpackInt(bytes.length, 7, 0)), bytes]);
}

/** A literal header field without indexing (never indexed when the client said so), new name. */
function literal(name: string, value: string, neverIndex: boolean): Buffer {
  return Buffer.concat([Buffer.from([neverIndex ? 0x10 : 0x00]), hpackString(name), hpackString(value)]);
}

/** The block as HEADERS and as many CONTINUATION frames as MAX_FRAME needs (padding dropped). */
function headerFrames(b: PendingBlock, block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  let first = true;
  do {
    const prefix = first && b.priority ? b.priority : Buffer.alloc(0);
    const piece = block.subarray(offset, offset + MAX_FRAME - prefix.length);
    offset += piece.length;
    let flags = offset >= block.length ? END_HEADERS : 0;
    if (first) flags |= (b.endStream ? END_STREAM : 0) | (b.priority ? PRIORITY : 0);
    const header = Buffer.alloc(FRAME_HEADER);
    header.writeUIntBE(prefix.length + piece.length, 0, 3);
    header[3] = first ? HEADERS : CONTINUATION;
    header[4] = flags;
    header.writeUInt32BE(b.streamId, 5);
    out.push(header, prefix, piece);
    first = false;
  } while (offset < block.length);
  return out;
}
