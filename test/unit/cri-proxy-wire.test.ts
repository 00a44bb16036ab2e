// The proxy's wire-level protobuf edits (src/cri/proxy/wire.ts): fields read as encoded,
// malformed input refused with the byte it broke at, embedded messages merged and changed in
// place with every other field (unknown ones included) kept, and the results decoded by the
// official proto as intended.
import { describe, expect, it } from 'vitest';
import { loadCriServices } from '../../src/cri/proto';
import {
  embedded,
  lenField,
  mapEntry,
  readFields,
  replaceField,
  stringField,
  varint,
  WireError,
  withEmbedded,
} from '../../src/cri/proxy/wire';

const { runtime } = loadCriServices();
const run = runtime.RunPodSandbox!;

describe('wire', () => {
  it('reads every wire type CRI uses, with field numbers past one byte', () => {
    const msg = Buffer.concat([
      Buffer.from([0x08, 0x96, 0x01]), // 1: varint 150
      Buffer.from([0x11, 1, 2, 3, 4, 5, 6, 7, 8]), // 2: i64
      Buffer.from([0x1d, 1, 2, 3, 4]), // 3: i32
      stringField(4, 'abc'),
      stringField(1000, 'x'), // a field no CRI message has
    ]);
    expect(readFields(msg).map((f) => [f.field, f.wireType, f.end - f.start])).toEqual([
      [1, 0, 3],
      [2, 1, 9],
      [3, 5, 5],
      [4, 2, 5],
      [1000, 2, 4],
    ]);
    expect(readFields(msg)[3]!.payload!.toString()).toBe('abc');
    expect(varint(300)).toEqual(Buffer.from([0xac, 0x02]));
  });

  it('refuses malformed messages naming where they break', () => {
    expect(() => readFields(Buffer.from([0x08, 0x80]))).toThrow(/truncated varint at byte 1/);
    expect(() => readFields(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/field 1 at byte 0 runs past/);
    expect(() => readFields(Buffer.from([0x0b]))).toThrow(/wire type 3/);
    expect(() => readFields(Buffer.from([0x00, 0x00]))).toThrow(WireError);
    expect(() => readFields(Buffer.from([0x11, 1, 2]))).toThrow(/runs past/);
  });

  it('merges an embedded message given twice and changes it in place, keeping every other field', () => {
    const unknown = stringField(99, 'keep me');
    const msg = Buffer.concat([lenField(1, stringField(2, 'a')), unknown, lenField(1, stringField(3, 'b'))]);
    expect(embedded(msg, 1)).toEqual(Buffer.concat([stringField(2, 'a'), stringField(3, 'b')]));
    const out = withEmbedded(msg, 1, (p) => Buffer.concat([p, stringField(4, 'c')]));
    expect(out).toEqual(
      Buffer.concat([
        lenField(1, Buffer.concat([stringField(2, 'a'), stringField(3, 'b'), stringField(4, 'c')])),
        unknown,
      ]),
    );
    expect(withEmbedded(unknown, 1, (p) => Buffer.concat([p, stringField(4, 'c')]))).toEqual(
      Buffer.concat([unknown, lenField(1, stringField(4, 'c'))]),
    );
  });

  it('a RunPodSandboxRequest changed on the wire decodes as meant, its unknown fields still there', () => {
    const original = Buffer.concat([
      run.requestSerialize({
        config: { metadata: { name: 'vm', uid: 'u', namespace: 'n', attempt: 1 }, annotations: { a: '1' } },
        runtime_handler: 'tapwire',
      }),
      stringField(77, 'from a newer kubelet'),
    ]);
    const changed = replaceField(
      withEmbedded(original, 1, (p) => Buffer.concat([p, mapEntry(7, 'tapwire.io/vm-pod', 'true')])),
      2,
      stringField(2, ''),
    );
    const req = run.requestDeserialize(changed) as {
      config: { metadata: { name: string }; annotations: Record<string, string> };
      runtime_handler: string;
    };
    expect(req.config.metadata.name).toBe('vm');
    expect(req.config.annotations).toEqual({ a: '1', 'tapwire.io/vm-pod': 'true' });
    expect(req.runtime_handler).toBe('');
    expect(changed.includes(stringField(77, 'from a newer kubelet'))).toBe(true);
  });
});
