// NVT ASCII text options: RFC 2132 3.14 host name, 3.17 domain name, 9.9 message.
// RFC 2132 2: strings are not NUL-terminated; trailing NULs some clients send are dropped
// on decode.
import { checkOption } from '../errors';
import type { OptionValue } from './option';

export class TextOption implements OptionValue {
  constructor(readonly text: string) {}

  static decode(value: Buffer): TextOption {
    let end = value.length;
    while (end > 0 && value[end - 1] === 0) end--;
    checkOption(end > 0, undefined, 'a text option must not be empty');
    return new TextOption(value.toString('latin1', 0, end));
  }

  encode(): Buffer {
    return Buffer.from(this.text, 'latin1');
  }

  toString(): string {
    return JSON.stringify(this.text);
  }
}
