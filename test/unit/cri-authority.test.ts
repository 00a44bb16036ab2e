// tapwire-cri serves gRPC clients that send the Unix socket's path as the HTTP/2 :authority
// (grpc-go before 1.52: crictl/critest v1.26.1, kubelets of that era) as well as those that send
// "localhost" (issue 14 item 9). Node's HTTP/2 server (nghttp2) refuses an :authority with '/'
// with RST_STREAM PROTOCOL_ERROR; the server now passes each connection through an HPACK
// rewriter. Here a raw Node HTTP/2 client speaks exactly as the old client does, with no
// ../shared needed; the real crictl v1.26.1 runs too when ../shared has it. Then the rewriter
// alone, fed hostile bytes.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as hpack from 'hpack.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptableAuthority, AuthorityRewriter, H2ProtocolError, MAX_FRAME } from '../../src/cri/authority';
import { SandboxService } from '../../src/cri/sandboxes';
import { CriServer } from '../../src/cri/server';
import { FakeTapmanager } from '../fixtures/cni/cri-harness';

const SHARED = process.env.TAPWIRE_SHARED ?? path.resolve(__dirname, '../../../shared');
const CRICTL = path.join(SHARED, 'cri-tools', 'crictl');

let tmp: string;
let server: CriServer;
let sock: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-criauth-'));
  fs.mkdirSync(path.join(tmp, 'net.d'));
  const sandboxes = new SandboxService({
    cniConfDir: path.join(tmp, 'net.d'),
    cniBinDirs: [path.join(tmp, 'bin')],
    stateDir: path.join(tmp, 'state'),
    netnsDir: path.join(tmp, 'netns'),
    tapmanager: new FakeTapmanager(),
  });
  await sandboxes.start();
  server = new CriServer({ sandboxes });
  sock = path.join(tmp, 'cri.sock');
  await server.listen(sock);
});

afterAll(async () => {
  await server?.close(1000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A gRPC message: not compressed, 4-byte length, the protobuf bytes. */
function grpcFrame(msg: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/** runtime.v1.VersionRequest{version: "v1"} */
const VERSION_REQUEST = grpcFrame(Buffer.from([0x0a, 0x02, 0x76, 0x31]));

interface Answer {
  status?: number;
  grpcStatus?: string;
  body: Buffer;
  rstCode?: number;
}

/** One Version call on a session, with the given :authority and extra headers. */
function version(session: http2.ClientHttp2Session, authority: string, extra: object = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = session.request({
      ':method': 'POST',
      ':path': '/runtime.v1.RuntimeService/Version',
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extra,
    });
    const a: Answer = { body: Buffer.alloc(0) };
    req.on('response', (h) => (a.status = Number(h[':status'])));
    req.on('trailers', (h) => (a.grpcStatus = String(h['grpc-status'])));
    req.on('data', (d: Buffer) => (a.body = Buffer.concat([a.body, d])));
    req.on('error', () => {});
    req.on('close', () => resolve({ ...a, rstCode: req.rstCode }));
    req.end(VERSION_REQUEST);
  });
}

function connect(): http2.ClientHttp2Session {
  const s = http2.connect('http://localhost', { createConnection: () => net.connect(sock) });
  s.on('error', () => {});
  return s;
}

describe('tapwire-cri and the :authority an old gRPC client sends', () => {
  it('answers Version to a client whose :authority is the socket path, again and again on one connection', async () => {
    const session = connect();
    try {
      for (let i = 0; i < 3; i++) {
        // the client's HPACK context indexes the authority: later requests send only its index
        const a = await version(session, sock);
        expect(a).toMatchObject({ status: 200, grpcStatus: '0', rstCode: 0 });
        expect(a.body.toString('latin1')).toContain('tapwire');
      }
    } finally {
      session.close();
    }
  });

  it('answers the same to "localhost", and to metadata that needs CONTINUATION frames', async () => {
    const session = connect();
    try {
      expect(await version(session, 'localhost')).toMatchObject({ status: 200, grpcStatus: '0' });
      const big = { 'x-pad': 'p'.repeat(3 * MAX_FRAME) };
      expect(await version(session, sock, big)).toMatchObject({ status: 200, grpcStatus: '0' });
      expect(await version(session, `${sock}-other`)).toMatchObject({ status: 200, grpcStatus: '0' });
    } finally {
      session.close();
    }
  });

  it('closes a connection that is not HTTP/2 and keeps serving others', async () => {
    const closed = await new Promise<boolean>((resolve) => {
      const c = net.connect(sock, () => c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      c.on('error', () => {});
      c.on('close', () => resolve(true));
      c.resume();
    });
    expect(closed).toBe(true);
    const session = connect();
    expect(await version(session, sock)).toMatchObject({ grpcStatus: '0' });
    session.close();
  });

  it('the unmodified crictl v1.26.1 (grpc-go 1.51) talks to it', async (ctx) => {
    if (!fs.existsSync(CRICTL)) return ctx.skip(`${CRICTL} is absent (../shared/cri-tools is an external judge)`);
    const run = (...args: string[]) =>
      promisify(execFile)(CRICTL, ['--runtime-endpoint', `unix://${sock}`, '--timeout', '10s', ...args]);
    const v = await run('version');
    expect(v.stdout).toMatch(/RuntimeName:\s+tapwire/);
    const info = JSON.parse((await run('info')).stdout);
    expect(info.status.conditions[0]).toMatchObject({ type: 'RuntimeReady', status: true });
    expect((await run('pods', '-q')).stdout.trim()).toBe('');
  });
});

describe('AuthorityRewriter', () => {
  const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  /** Literal without indexing, indexed name 1 (:authority), raw value. */
  const authority = (v: string): Buffer => Buffer.concat([Buffer.from([0x01, v.length]), Buffer.from(v)]);
  const feed = (...chunks: Buffer[]): Buffer => {
    const r = new AuthorityRewriter();
    return Buffer.concat(chunks.flatMap((c) => r.push(c)));
  };

  it('accepts what nghttp2 accepts as an authority and nothing else', () => {
    for (const ok of ['localhost', 'localhost:80', '[::1]:80', 'a.b-c_d~e', 'u@h', '%2Frun']) {
      expect(acceptableAuthority(ok)).toBe(true);
    }
    for (const bad of ['/run/x/cri.sock', '', 'a b', 'a/b', 'é', 'a\tb']) expect(acceptableAuthority(bad)).toBe(false);
  });

  it("agrees with Node's own HTTP/2 server on every printable character", async () => {
    const plainSock = path.join(tmp, 'plain.sock');
    const plain = http2.createServer();
    plain.on('stream', (st) => {
      st.respond({ ':status': 200 });
      st.end();
    });
    await new Promise<void>((r) => plain.listen(plainSock, r));
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(plainSock) });
    session.on('error', () => {});
    const accepted = (authority: string): Promise<boolean> =>
      new Promise((resolve) => {
        const req = session.request({ ':authority': authority, ':path': '/' });
        req.on('response', () => resolve(true));
        req.on('error', () => resolve(false));
        req.on('close', () => resolve(false));
        req.resume();
        req.end();
      });
    try {
      for (let c = 0x20; c < 0x7f; c++) {
        const a = `a${String.fromCharCode(c)}b`;
        expect(acceptableAuthority(a), JSON.stringify(a)).toBe(await accepted(a));
      }
    } finally {
      session.close();
      plain.close();
    }
  });

  it('passes other frames byte for byte, split anywhere, and re-frames a padded, prioritized HEADERS', () => {
    const settings = frame(0x4, 0, 0, Buffer.alloc(6));
    const data = frame(0x0, 0x1, 1, Buffer.from('hello'));
    const padded = Buffer.concat([
      Buffer.from([3]),
      Buffer.from([0x80, 0, 0, 0, 16]),
      authority('/x'),
      Buffer.alloc(3),
    ]);
    const headers = frame(0x1, 0x8 | 0x20 | 0x4 | 0x1, 1, padded);
    const all = Buffer.concat([PREFACE, settings, headers, data]);
    const r = new AuthorityRewriter();
    const out = Buffer.concat([...all].flatMap((b) => r.push(Buffer.from([b])))); // one byte at a time
    const expected = Buffer.concat([
      PREFACE,
      settings,
      frame(
        0x1,
        0x20 | 0x4 | 0x1,
        1,
        Buffer.concat([
          Buffer.from([0x80, 0, 0, 0, 16]),
          Buffer.from([0x00, 10]),
          Buffer.from(':authority'),
          Buffer.from([9]),
          Buffer.from('localhost'),
        ]),
      ),
      data,
    ]);
    expect(out.toString('hex')).toBe(expected.toString('hex'));
    expect(r.rewritten).toBe(1);
  });

  it("follows the client's dynamic table: two requests in one chunk, the second naming the first's entries", () => {
    const enc = hpack.compressor.create({ table: { maxSize: 4096 } });
    const block = (fields: { name: string; value: string }[]): Buffer => {
      enc.write(fields);
      return enc.read() as Buffer;
    };
    const b1 = block([
      { name: ':authority', value: '/run/x/cri.sock' },
      { name: ':path', value: '/a' },
      { name: 'x-keep', value: 'same' },
    ]);
    const b2 = block([
      { name: ':authority', value: '/run/x/cri.sock' },
      { name: ':path', value: '/b' },
      { name: 'x-keep', value: 'same' },
    ]);
    expect(b2.length).toBeLessThan(b1.length); // the second refers to the table
    const out = feed(PREFACE, Buffer.concat([frame(0x1, 0x4, 1, b1), frame(0x1, 0x4, 3, b2)]));
    const dec = hpack.decompressor.create({ table: { maxSize: 4096 } });
    const blocks: string[][] = [];
    for (let off = PREFACE.length; off < out.length;) {
      const len = out.readUIntBE(off, 3);
      dec.write(out.subarray(off + 9, off + 9 + len));
      dec.execute();
      const fields: string[] = [];
      for (let h = dec.read(); h !== null; h = dec.read()) fields.push(`${h.name}=${h.value}`);
      blocks.push(fields);
      off += 9 + len;
    }
    expect(blocks).toEqual([
      [':authority=localhost', ':path=/a', 'x-keep=same'],
      [':authority=localhost', ':path=/b', 'x-keep=same'],
    ]);
  });

  it('refuses what nghttp2 would end the connection for, without throwing anything else', () => {
    const bad = (...chunks: Buffer[]): unknown => {
      try {
        feed(...chunks);
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(bad(Buffer.from('GET / HTTP/1.1\r\n'))).toBeInstanceOf(H2ProtocolError);
    // a frame of another type inside a header block
    const open = frame(0x1, 0, 1, authority('x'));
    expect(bad(PREFACE, open, frame(0x0, 0, 1, Buffer.alloc(1)))).toMatchObject({
      message: 'frame type 0 inside the header block of stream 1',
    });
    expect(bad(PREFACE, open, frame(0x9, 0x4, 3, Buffer.alloc(0)))).toBeInstanceOf(H2ProtocolError);
    expect(bad(PREFACE, frame(0x9, 0x4, 1, Buffer.alloc(0)))).toBeInstanceOf(H2ProtocolError);
    // oversized header frame, padding past the end, HPACK garbage, an index past the table
    expect(bad(PREFACE, frame(0x1, 0x4, 1, Buffer.alloc(MAX_FRAME + 1)))).toBeInstanceOf(H2ProtocolError);
    expect(bad(PREFACE, frame(0x1, 0x4 | 0x8, 1, Buffer.from([9, 0x82])))).toBeInstanceOf(H2ProtocolError);
    expect(bad(PREFACE, frame(0x1, 0x4 | 0x8, 1, Buffer.alloc(0)))).toBeInstanceOf(H2ProtocolError);
    expect(bad(PREFACE, frame(0x1, 0x4, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])))).toBeInstanceOf(
      H2ProtocolError,
    );
    expect(bad(PREFACE, frame(0x1, 0x4, 1, Buffer.from([0xbf])))).toMatchObject({
      message: expect.stringMatching(/^bad HPACK header block/),
    });
    // a table size update past what the server allows
    expect(bad(PREFACE, frame(0x1, 0x4, 1, Buffer.from([0x3f, 0xe1, 0x3f])))).toBeInstanceOf(H2ProtocolError);
  });

  it('stops an HPACK bomb: one 4 KB table entry referenced thousands of times', () => {
    const value = 'v'.repeat(4000);
    // literal with incremental indexing, new name "x", 4000-byte value: 0x40, name len 1 "x", value len (7-bit prefix)
    const lit = Buffer.concat([
      Buffer.from([0x40, 0x01]),
      Buffer.from('x'),
      Buffer.from([0x7f, ((4000 - 127) % 128) | 0x80, Math.floor((4000 - 127) / 128)]),
      Buffer.from(value),
    ]);
    const refs = Buffer.alloc(MAX_FRAME - lit.length, 0xbe); // indexed field 62: the entry just added
    expect(() => feed(PREFACE, frame(0x1, 0x4, 1, Buffer.concat([lit, refs])))).toThrow(
      'a header list exceeds 65536 bytes',
    );
  });
});
