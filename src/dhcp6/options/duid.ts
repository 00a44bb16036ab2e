// RFC 8415 11: a DUID, the Client Identifier (21.2) and Server Identifier (21.3) value.
// Kept as its bytes (a client's DUID is compared, never interpreted); decode only checks
// the length: a type (2 bytes) and 1..128 bytes after it (11.1).
import { macFromBuffer } from '../../net/mac';
import { DuidType, MAX_DUID_SIZE } from '../constants';
import { checkOption } from '../errors';
import type { Option6Value } from './option';

export class DuidOption implements Option6Value {
  constructor(readonly bytes: Buffer) {}

  static decode(value: Buffer, code: number): DuidOption {
    checkOption(
      value.length >= 3 && value.length <= MAX_DUID_SIZE,
      code,
      `a DUID needs 3-${MAX_DUID_SIZE} bytes, got ${value.length}`,
    );
    return new DuidOption(Buffer.from(value));
  }

  /** RFC 8415 11.4: DUID-LL, type 3, hardware type 1 (Ethernet), the MAC. */
  static linkLayer(mac: Buffer): DuidOption {
    const b = Buffer.alloc(4 + mac.length);
    b.writeUInt16BE(DuidType.LL, 0);
    b.writeUInt16BE(1, 2);
    mac.copy(b, 4);
    return new DuidOption(b);
  }

  get type(): number {
    return this.bytes.readUInt16BE(0);
  }

  equals(other: Buffer): boolean {
    return this.bytes.equals(other);
  }

  encode(): Buffer {
    return this.bytes;
  }

  toString(): string {
    const t = this.type;
    // DUID-LL/LLT of an Ethernet address print as the MAC, the rest as hex
    if (t === DuidType.LL && this.bytes.length === 10 && this.bytes.readUInt16BE(2) === 1) {
      return `LL ${macFromBuffer(this.bytes.subarray(4))}`;
    }
    if (t === DuidType.LLT && this.bytes.length === 14 && this.bytes.readUInt16BE(2) === 1) {
      return `LLT ${macFromBuffer(this.bytes.subarray(8))}`;
    }
    return this.bytes.toString('hex');
  }
}
