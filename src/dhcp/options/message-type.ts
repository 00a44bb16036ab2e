// RFC 2132 9.6: DHCP message type, one byte (1 DISCOVER .. 8 INFORM).
import { MESSAGE_TYPE_NAMES } from '../constants';
import { checkOption } from '../errors';
import type { OptionValue } from './option';

export class MessageTypeOption implements OptionValue {
  constructor(readonly type: number) {}

  static decode(value: Buffer): MessageTypeOption {
    checkOption(value.length === 1, 53, `message type needs 1 byte, got ${value.length}`);
    return new MessageTypeOption(value[0]!);
  }

  encode(): Buffer {
    return Buffer.from([this.type]);
  }

  toString(): string {
    return MESSAGE_TYPE_NAMES[this.type] ?? `unknown(${this.type})`;
  }
}
