// The DHCP options a VM network spec can ask for (issue 17, an interface's `dhcpOptions`):
// a boot file and a TFTP server for network boot, NTP servers, and site-specific options.
// Checked here (errors name the field and the value) and encoded once, with the lease.
//
// - bootFileName: option 67 (RFC 2132 9.5), and the BOOTP header's `file` field (RFC 2131
//   2: the boot file name of an OFFER/ACK), where firmware that reads no options looks.
// - tftpServerName: option 66 (RFC 2132 9.4), and the header's `sname` field.
//   Both are NVT ASCII text (RFC 2132 2), 1-255 bytes (one option, never split); the header
//   fields take them when they fit with their NUL (128 / 64 bytes), else stay empty.
// - ntpServers: option 42 (RFC 2132 8.3), IPv4 addresses, 4 bytes each.
// - privateOptions: codes 224-254, the site-specific range (RFC 2132 2, RFC 3942), each a
//   string sent as its UTF-8 bytes, 1-255 of them, no NUL; a code at most once.
// Which of these a reply carries is lease-options.ts's rule: only options the client asks
// for (RFC 2131 4.3.1), and the first dropped when a reply would not fit.
import { isPrivateOption, Opt, PRIVATE_OPTIONS } from './constants';
import { DhcpConfigError } from './errors';
import { parseIpv4 } from './ipv4';
import { IpListOption, TextOption } from './options';

/** The lease fields of an interface's `dhcpOptions` (issue 17). */
export interface DhcpLeaseOptions {
  /** option 67, and the header's `file` field when it fits */
  bootFileName?: string;
  /** option 66, and the header's `sname` field when it fits */
  tftpServerName?: string;
  /** option 42, IPv4 addresses */
  ntpServers?: string[];
  /** options 224-254 with text values */
  privateOptions?: { option: number; value: string }[];
}

/** What these options put into a reply besides option values. */
export interface HeaderFields {
  /** the header's `file` field (128 bytes, NUL-padded) */
  file?: Buffer;
  /** the header's `sname` field (64 bytes, NUL-padded) */
  sname?: Buffer;
}

const MAX_OPTION = 255;
const NVT_ASCII_RE = /^[\x20-\x7e]+$/;

function checkAsciiText(field: string, v: unknown): string {
  if (typeof v !== 'string' || !NVT_ASCII_RE.test(v) || v.length > MAX_OPTION) {
    throw new DhcpConfigError(field, v, `must be 1-${MAX_OPTION} printable ASCII characters (NVT ASCII, RFC 2132 2)`);
  }
  return v;
}

/** A NUL-padded header field holding `text` when it fits with its NUL, else undefined. */
function headerField(text: string, size: number): Buffer | undefined {
  if (text.length >= size) return undefined;
  const b = Buffer.alloc(size);
  b.write(text, 'latin1');
  return b;
}

/**
 * Checks the lease's spec options and sets their encoded values into `values` (by option
 * code); returns the header fields they fill. `field` prefixes error names.
 */
export function resolveSpecOptions(l: DhcpLeaseOptions, field: string, values: Map<number, Buffer>): HeaderFields {
  const header: HeaderFields = {};
  if (l.bootFileName !== undefined) {
    const name = checkAsciiText(`${field}.bootFileName`, l.bootFileName);
    values.set(Opt.BOOTFILE_NAME, new TextOption(name).encode());
    const file = headerField(name, 128);
    if (file) header.file = file;
  }
  if (l.tftpServerName !== undefined) {
    const name = checkAsciiText(`${field}.tftpServerName`, l.tftpServerName);
    values.set(Opt.TFTP_SERVER_NAME, new TextOption(name).encode());
    const sname = headerField(name, 64);
    if (sname) header.sname = sname;
  }
  if (l.ntpServers !== undefined) {
    const f = `${field}.ntpServers`;
    if (!Array.isArray(l.ntpServers) || l.ntpServers.length > MAX_OPTION >> 2) {
      throw new DhcpConfigError(f, l.ntpServers, `must be a list of at most ${MAX_OPTION >> 2} IPv4 addresses`);
    }
    l.ntpServers.forEach((a, i) => parseIpv4(a, `${f}[${i}]`));
    if (l.ntpServers.length) values.set(Opt.NTP_SERVERS, new IpListOption(l.ntpServers).encode());
  }
  if (l.privateOptions !== undefined) {
    const f = `${field}.privateOptions`;
    if (!Array.isArray(l.privateOptions)) throw new DhcpConfigError(f, l.privateOptions, 'must be a list');
    const seen = new Set<number>();
    l.privateOptions.forEach((o, i) => {
      const code = (o as { option?: unknown } | null)?.option;
      if (typeof code !== 'number' || !Number.isInteger(code) || !isPrivateOption(code)) {
        const range = `${PRIVATE_OPTIONS.first}-${PRIVATE_OPTIONS.last}`;
        throw new DhcpConfigError(`${f}[${i}].option`, code, `must be a site-specific option code ${range}`);
      }
      if (seen.has(code)) throw new DhcpConfigError(`${f}[${i}].option`, code, 'is given twice');
      seen.add(code);
      const value = o.value as unknown;
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : undefined;
      if (!bytes || bytes.length === 0 || bytes.length > MAX_OPTION || bytes.includes(0)) {
        throw new DhcpConfigError(
          `${f}[${i}].value`,
          value,
          `must be a string of 1-${MAX_OPTION} bytes (UTF-8), no NUL`,
        );
      }
      values.set(code, bytes);
    });
  }
  return header;
}
