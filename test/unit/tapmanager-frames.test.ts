// The framing and reply bounds of tapmanager's sockets: FrameDecoder keeps only what
// arrived, encodeReply never throws, quote() bounds what an error echoes, list pages and
// status caps fit a frame, connection caps per uid and in total with root apart.
import { describe, expect, it } from 'vitest';
import { ConnLimits } from '../../src/tapmanager/conn-limits';
import { badInput } from '../../src/tapmanager/errors';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME, type ListEntry } from '../../src/tapmanager/protocol';
import { boundStatus, encodeReply, listPage, listPaging, wholeList } from '../../src/tapmanager/reply-bounds';
import type { SandboxStatus } from '../../src/tapmanager/sandboxes';

const frameOf = (buf: Buffer): unknown => JSON.parse(buf.subarray(4).toString());

describe('FrameDecoder', () => {
  it('decodes frames split anywhere and back to back', () => {
    const bytes = Buffer.concat([encodeFrame({ a: 1 }), encodeFrame({ b: 'x'.repeat(1000) }), encodeFrame([3])]);
    for (const step of [1, 3, 7, 100, bytes.length]) {
      const d = new FrameDecoder();
      const out: unknown[] = [];
      for (let i = 0; i < bytes.length; i += step) out.push(...d.push(bytes.subarray(i, i + step)));
      expect(out).toEqual([{ a: 1 }, { b: 'x'.repeat(1000) }, [3]]);
      expect(d.pending).toBe(0);
    }
  });

  it('holds only the bytes that came for an announced frame, and refuses one over its bound on the header', () => {
    const d = new FrameDecoder();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_FRAME);
    expect(d.push(Buffer.concat([head, Buffer.from('{"a"')]))).toEqual([]);
    expect(d.pending).toBe(8); // not MAX_FRAME
    const small = new FrameDecoder(16);
    head.writeUInt32BE(17);
    expect(() => small.push(head)).toThrow(new FrameError('frame length 17 exceeds 16'));
  });

  it('a frame that is not JSON is an error with a short message', () => {
    const body = Buffer.from(`{${'x'.repeat(5000)}`);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    expect(() => new FrameDecoder().push(Buffer.concat([head, body]))).toThrow(FrameError);
    try {
      new FrameDecoder().push(Buffer.concat([head, body]));
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(250);
    }
  });
});

describe('bounded replies', () => {
  it('badInput does not echo a 1 MB value', () => {
    expect(badInput('sandboxId', 'y'.repeat(1 << 20), 'bad').message.length).toBeLessThan(200);
  });

  it('encodeReply: an oversized reply becomes a short E2BIG error; a long error message is cut', () => {
    const big = { v: 1, id: 9, ok: true as const, result: 'z'.repeat(MAX_FRAME) };
    expect(frameOf(encodeReply(big))).toEqual({
      v: 1,
      id: 9,
      ok: false,
      error: {
        code: 'E2BIG',
        message: `the reply of ${JSON.stringify(big).length} bytes exceeds the ${MAX_FRAME}-byte frame`,
      },
    });
    const err = encodeReply({ v: 1, id: 2, ok: false, error: { code: 'EIO', message: 'm'.repeat(MAX_FRAME * 2) } });
    expect(err.length).toBeLessThan(3000);
    expect((frameOf(err) as { error: { message: string } }).error.message).toMatch(/m…\(2097152 bytes\)$/);
  });

  const entry = (i: number, pad = 0): ListEntry => ({
    sandboxId: `sb-${String(i).padStart(5, '0')}`,
    state: 'ready',
    netnsPath: `/run/netns/${'p'.repeat(pad)}`,
    ips: ['10.0.0.1/24'],
    createdAt: '2026-01-01T00:00:00.000Z',
  });

  it('listPage: id order, after a cursor, limit and frame-sized pages that add up to everything', () => {
    const all = Array.from({ length: 7000 }, (_, i) => entry(6999 - i, 200));
    expect(() => wholeList(all)).toThrow(expect.objectContaining({ code: 'E2BIG', field: 'limit' }));
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const p = listPage(all, 5000, after);
      pages++;
      expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThan(MAX_FRAME);
      seen.push(...p.sandboxes.map((s) => s.sandboxId));
      if (!p.next) break;
      after = p.next;
    }
    expect(pages).toBeGreaterThan(1);
    expect(seen).toEqual(all.map((e) => e.sandboxId).sort());
    expect(listPage(all, 2).sandboxes.map((s) => s.sandboxId)).toEqual(['sb-00000', 'sb-00001']);
    expect(listPage([], 10)).toEqual({ sandboxes: [] });
    expect(() => listPaging({ limit: 0 })).toThrow(expect.objectContaining({ field: 'limit' }));
    expect(() => listPaging({ after: 'x' })).toThrow(expect.objectContaining({ field: 'after' }));
    expect(listPaging({})).toBeUndefined();
  });

  it('boundStatus: cuts long lists, counts the rest, and fits the frame', () => {
    const nic = {
      routes: [],
      unexpressible: [],
      unrestorable: [],
      warnings: Array.from({ length: 20_000 }, (_, i) => `warning ${i} ${'w'.repeat(100)}`),
    };
    const s = { sandboxId: 's', nics: [nic, nic], drift: ['a', 'b'] } as unknown as SandboxStatus;
    const b = boundStatus(s);
    expect(b.nics[0]!.warnings).toHaveLength(100);
    expect(b.nics[0]!.omitted).toEqual({ warnings: 19_900 });
    expect(b.drift).toEqual(['a', 'b']);
    expect(b.omitted).toBeUndefined();
    const tight = boundStatus(s, 100, 5000);
    expect(Buffer.byteLength(JSON.stringify(tight))).toBeLessThanOrEqual(5000);
    expect(tight.nics[1]!.warnings.length + tight.nics[1]!.omitted!.warnings!).toBe(20_000);
  });
});

describe('ConnLimits', () => {
  it('caps each non-root uid and all together; root has its own allowance', () => {
    const l = new ConnLimits({ perUid: 2, total: 3, root: 1 });
    expect(l.admit(1000)).toBeUndefined();
    expect(l.admit(1000)).toBeUndefined();
    expect(l.admit(1000)).toMatch(/uid 1000 holds 2 connections/);
    expect(l.admit(1001)).toBeUndefined();
    expect(l.admit(1002)).toMatch(/3 connections are open/);
    expect(l.admit(0)).toBeUndefined(); // not counted against the total
    expect(l.admit(0)).toMatch(/root holds 1/);
    l.release(1000);
    expect(l.admit(1002)).toBeUndefined();
    expect(l.counts()).toEqual({ total: 3, byUid: { 0: 1, 1000: 1, 1001: 1, 1002: 1 } });
  });
});
