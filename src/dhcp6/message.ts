// A DHCPv6 client/server message (RFC 8415 8): msg-type(1) transaction-id(3) options,
// the options kept raw in wire order (a code may repeat) and typed on demand by ./options.
// decode() throws only Dhcp6DecodeError: truncated or oversized input, a malformed option
// area or option of a known type, or a relay message (RFC 8415 9), which this server, alone on its link, never serves.
import { HEADER_SIZE, MAX_MESSAGE_SIZE, MESSAGE_TYPE_NAMES, MessageType } from './constants';
import { Dhcp6DecodeError } from './errors';
import { OPTION6_TYPES, type Option6Type, type Option6Value } from './options';
import { optionsSize, readOptions, writeOptions, type RawOption } from './options/wire';

export class Dhcp6Message {
  /** decode()'s typed values, by option index (its check decodes every known option once) */
  private typed: (Option6Value | undefined)[] | undefined;

  constructor(
    public type: number,
    /** 24 bits */
    public xid: number,
    public options: RawOption[] = [],
  ) {}

  static decode(buf: Buffer): Dhcp6Message {
    if (buf.length < HEADER_SIZE) {
      throw new Dhcp6DecodeError('truncated', `message is ${buf.length} bytes, the header needs ${HEADER_SIZE}`);
    }
    if (buf.length > MAX_MESSAGE_SIZE) {
      throw new Dhcp6DecodeError('oversized', `message is ${buf.length} bytes, more than ${MAX_MESSAGE_SIZE}`);
    }
    const type = buf[0]!;
    if (type === MessageType.RELAY_FORW || type === MessageType.RELAY_REPL) {
      throw new Dhcp6DecodeError('relay', `${MESSAGE_TYPE_NAMES[type]} is a relay message; relays are not served`);
    }
    const msg = new Dhcp6Message(type, buf.readUIntBE(1, 3), readOptions(buf, HEADER_SIZE, buf.length, 'message'));
    // Every option of a known type is checked here, once, so that what decodes can be read
    // by the handler without a second error path; unknown codes stay opaque.
    msg.typed = msg.options.map(({ code, value }) => OPTION6_TYPES[code]?.[1].decode(value, code));
    return msg;
  }

  encodedSize(): number {
    return HEADER_SIZE + optionsSize(this.options);
  }

  encode(): Buffer {
    const buf = Buffer.allocUnsafe(this.encodedSize()); // every byte written below
    buf[0] = this.type;
    buf.writeUIntBE(this.xid & 0xffffff, 1, 3);
    writeOptions(this.options, buf, HEADER_SIZE);
    return buf;
  }

  /** The first option with this code, raw. */
  raw(code: number): Buffer | undefined {
    return this.options.find((o) => o.code === code)?.value;
  }

  has(code: number): boolean {
    return this.options.some((o) => o.code === code);
  }

  /** The first option with this code, decoded; undefined if absent; throws Dhcp6DecodeError if malformed. */
  get<T extends Option6Value>(code: number, type: Option6Type<T>): T | undefined {
    const i = this.options.findIndex((o) => o.code === code);
    return i < 0 ? undefined : this.typedAt(i, type);
  }

  /** Every option with this code, decoded; throws Dhcp6DecodeError if any is malformed. */
  all<T extends Option6Value>(code: number, type: Option6Type<T>): T[] {
    const out: T[] = [];
    this.options.forEach((o, i) => {
      if (o.code === code) out.push(this.typedAt(i, type));
    });
    return out;
  }

  /** Option i as `type`: decode()'s value when it decoded it as that type, else decoded now. */
  private typedAt<T extends Option6Value>(i: number, type: Option6Type<T>): T {
    const o = this.options[i]!;
    const known = this.typed?.[i];
    return known !== undefined && OPTION6_TYPES[o.code]?.[1] === type ? (known as T) : type.decode(o.value, o.code);
  }

  add(code: number, value: Option6Value | Buffer): this {
    this.options.push({ code, value: Buffer.isBuffer(value) ? value : value.encode() });
    this.typed = undefined; // options changed: decode's values no longer line up
    return this;
  }

  toString(): string {
    const head = `${MESSAGE_TYPE_NAMES[this.type] ?? `type ${this.type}`} xid=0x${this.xid.toString(16)}`;
    const opts = this.options.map(({ code, value }) => {
      const known = OPTION6_TYPES[code];
      if (!known) return `${code}=${value.toString('hex')}`;
      try {
        return `${known[0]}(${code})=${known[1].decode(value, code).toString()}`;
      } catch {
        return `${known[0]}(${code})=<malformed ${value.toString('hex')}>`;
      }
    });
    return [head, ...opts].join('\n  ');
  }
}
