// RFC 8415 21.13: Status Code, a 16-bit code and a UTF-8 message (not NUL-terminated).
import { Opt6, STATUS_NAMES } from '../constants';
import { checkOption } from '../errors';
import type { Option6Value } from './option';

export class StatusCodeOption implements Option6Value {
  constructor(
    readonly status: number,
    readonly message = '',
  ) {}

  static decode(value: Buffer): StatusCodeOption {
    checkOption(value.length >= 2, Opt6.STATUS_CODE, `a status code needs at least 2 bytes, got ${value.length}`);
    return new StatusCodeOption(value.readUInt16BE(0), value.toString('utf8', 2));
  }

  encode(): Buffer {
    const msg = Buffer.from(this.message, 'utf8');
    const b = Buffer.alloc(2 + msg.length);
    b.writeUInt16BE(this.status, 0);
    msg.copy(b, 2);
    return b;
  }

  toString(): string {
    const name = STATUS_NAMES[this.status] ?? String(this.status);
    return this.message ? `${name} ${JSON.stringify(this.message)}` : name;
  }
}
