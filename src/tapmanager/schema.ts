// The shape of a setup request, checked in one place before anything else looks at it:
// types, bounded sizes, address formats. The first problem found is an EINVAL naming
// the field by its path (e.g. `cniResult.dns.nameservers[0]`) and quoting the value.
// What needs more than the request itself (the netns on disk, interfaces against the
// netns, queues times NICs) is checked after this, in validate.ts.
//
// The request's own fields and the CRI dns are strict: an unknown field is refused.
// The CNI result is read the way CNI runtimes read it (Go's decoder skips fields it does
// not know): fields the CNI spec (0.4.0, 1.x) does not define are dropped, not refused,
// so a plugin that adds one still works; what tapwire keeps is only what it reads.
import { isIP } from 'node:net';
import * as v from 'valibot';
import { parseCidr } from '../net/addr-text';
import { IFNAME_RULE, isIfname } from '../net/ifname';
import { quote } from '../util/quote';
import { isUnicastMac, parseMac } from '../net/mac';
import { BINDING_NAMES, NIC_NAME_RE } from './bindings/names';
import { SPEC_MODELS } from './bindings/models';
import { TapError } from './errors';
import { MAX_NICS, MAX_QUEUES } from './protocol';

/** Size bounds: far above any real pod, far below what costs the daemon anything. */
export const LIMITS = {
  /** cniResult.interfaces: host-side and pod-side together */
  interfaces: 64,
  ips: 64,
  /**
   * cniResult.routes: pods with thousands of routes exist (routed fabrics that push a route
   * per peer subnet); the 1 MB frame allows ~25,000, and status pages what it reports
   */
  routes: 16384,
  nameservers: 32,
  searches: 64,
  dnsOptions: 64,
  /** a path (PATH_MAX) */
  path: 4096,
  /** a DNS name (RFC 1035) */
  name: 253,
  /** an address or prefix text */
  address: 64,
  /** any other text */
  text: 256,
} as const;

export const SANDBOX_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function text(max: number) {
  return v.pipe(v.string('must be a string'), v.maxLength(max, `must be at most ${max} characters`));
}

function list<T extends v.GenericSchema>(item: T, max: number) {
  return v.pipe(v.array(item, 'must be a list'), v.maxLength(max, `must have at most ${max} entries`));
}

function int(min: number, max: number) {
  return v.pipe(
    v.number('must be a number'),
    v.integer(`must be an integer ${min}-${max}`),
    v.minValue(min, `must be an integer ${min}-${max}`),
    v.maxValue(max, `must be an integer ${min}-${max}`),
  );
}

/** A JSON object (valibot's object schemas also take arrays). */
const jsonObject = v.custom<Record<string, unknown>>(
  (x) => typeof x === 'object' && x !== null && !Array.isArray(x),
  'must be an object',
);

function obj<E extends v.ObjectEntries>(entries: E) {
  return v.pipe(jsonObject, v.object(entries, 'must be an object'));
}

function strictObj<E extends v.ObjectEntries>(entries: E) {
  return v.pipe(jsonObject, v.strictObject(entries, 'must be an object'));
}

const ipAddress = v.pipe(
  text(LIMITS.address),
  v.check((s) => isIP(s) !== 0, 'must be an IP address'),
);
const cidr = v.pipe(
  text(LIMITS.address),
  v.check((s) => parseCidr(s) !== undefined, 'must be an address/prefix-length'),
);
const absolutePath = v.pipe(
  text(LIMITS.path),
  v.check((s) => s.startsWith('/') && !s.includes('\0'), 'must be an absolute path'),
);

const cniInterface = obj({
  name: text(LIMITS.text),
  mac: v.optional(text(LIMITS.address)),
  sandbox: v.optional(
    v.pipe(
      text(LIMITS.path),
      v.check((s) => !s.includes('\0'), 'must not contain NUL'),
    ),
  ),
  mtu: v.optional(int(0, 65535)),
  socketPath: v.optional(text(LIMITS.path)),
  pciID: v.optional(text(LIMITS.text)),
});

const cniIp = obj({
  version: v.optional(v.picklist(['4', '6'], 'must be "4" or "6"')),
  address: cidr,
  gateway: v.optional(ipAddress),
  interface: v.optional(int(0, LIMITS.interfaces - 1)),
});

const cniRoute = obj({
  dst: cidr,
  gw: v.optional(ipAddress),
  mtu: v.optional(int(0, 65535)),
  advmss: v.optional(int(0, 65535)),
  priority: v.optional(int(0, 0xffffffff)),
  table: v.optional(int(0, 0xffffffff)),
  scope: v.optional(int(0, 255)),
});

const cniDns = obj({
  nameservers: v.optional(list(ipAddress, LIMITS.nameservers)),
  domain: v.optional(text(LIMITS.name)),
  search: v.optional(list(text(LIMITS.name), LIMITS.searches)),
  options: v.optional(list(text(LIMITS.text), LIMITS.dnsOptions)),
});

const cniResult = obj({
  cniVersion: v.pipe(
    text(LIMITS.text),
    v.regex(/^(0\.4\.0|1\.\d{1,3}\.\d{1,3})$/, 'supported versions are 0.4.0 and 1.x'),
  ),
  interfaces: v.optional(list(cniInterface, LIMITS.interfaces)),
  ips: list(cniIp, LIMITS.ips),
  routes: v.optional(list(cniRoute, LIMITS.routes)),
  dns: v.optional(cniDns),
});

/** CRI DNSConfig */
const criDns = strictObj({
  servers: v.optional(list(ipAddress, LIMITS.nameservers)),
  searches: v.optional(list(text(LIMITS.name), LIMITS.searches)),
  options: v.optional(list(text(LIMITS.text), LIMITS.dnsOptions)),
});

/** A guest MAC: `de:ad:00:00:be:af` or `DE-AD-00-00-BE-AF`, unicast; handed on canonical. */
const guestMac = v.pipe(
  text(LIMITS.address),
  v.check((s) => parseMac(s) !== undefined, 'is not a MAC address (de:ad:00:00:be:af or DE-AD-00-00-BE-AF)'),
  v.transform((s) => parseMac(s)!),
  v.check(isUnicastMac, 'must be a unicast MAC address (the first octet even, not all zeros)'),
);

const ipv4Address = v.pipe(
  text(LIMITS.address),
  v.check((s) => isIP(s) === 4, 'must be an IPv4 address'),
);

/** Option 66/67 text: NVT ASCII (RFC 2132 2), one option's worth. */
const optionAscii = v.pipe(
  text(255),
  v.regex(/^[\x20-\x7e]{1,255}$/, 'must be 1-255 printable ASCII characters (NVT ASCII, RFC 2132 2)'),
);

/** KubeVirt's dhcpOptions; each value fits one DHCP option (255 bytes). A private option's code once (validate.ts). */
const nicDhcpOptions = strictObj({
  bootFileName: v.optional(optionAscii),
  tftpServerName: v.optional(optionAscii),
  ntpServers: v.optional(list(ipv4Address, 63)),
  privateOptions: v.optional(
    list(
      strictObj({
        option: int(224, 254),
        value: v.pipe(
          text(255),
          v.check((s) => {
            const b = Buffer.from(s, 'utf8');
            return b.length >= 1 && b.length <= 255 && !b.includes(0);
          }, 'must be a string of 1-255 bytes (UTF-8), no NUL'),
        ),
      }),
      31,
    ),
  ),
});

const nicPort = strictObj({
  name: v.optional(
    v.pipe(text(15), v.regex(/^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/, 'must be a port name (IANA_SVC_NAME)')),
  ),
  port: int(1, 65535),
  endPort: v.optional(int(1, 65535)),
  protocol: v.optional(v.picklist(['TCP', 'UDP'], 'must be "TCP" or "UDP"'), 'TCP'),
});

/** One guest NIC of a request with `nics` (docs/protocol.md). */
const nicRequest = strictObj({
  name: v.pipe(
    text(63),
    v.regex(NIC_NAME_RE, 'must be 1-63 characters of [A-Za-z0-9_.-], starting with a letter or digit'),
  ),
  binding: v.picklist(BINDING_NAMES, `must be one of ${BINDING_NAMES.join(', ')}`),
  podInterface: v.pipe(
    text(15),
    v.check((s: string) => isIfname(s), `must be ${IFNAME_RULE}`),
  ),
  cniResult: v.optional(cniResult),
  macAddress: v.optional(guestMac),
  model: v.optional(v.picklist(SPEC_MODELS, `must be one of ${SPEC_MODELS.join(', ')}`)),
  queues: v.optional(int(1, MAX_QUEUES)),
  dhcpOptions: v.optional(nicDhcpOptions),
  ports: v.optional(list(nicPort, 256)),
  guestCidr: v.optional(text(18)),
  guestCidr6: v.optional(text(43)),
  macvtapMode: v.optional(v.picklist(['bridge', 'passthru'], 'must be "bridge" or "passthru"')),
});

export type NicRequestShape = v.InferOutput<typeof nicRequest>;

export const setupSchema = strictObj({
  // the envelope (checked by the server) rides along in the same object
  v: v.optional(v.number('must be a number')),
  id: v.optional(v.number('must be a number')),
  op: v.optional(v.literal('setup', 'must be "setup"')),
  sandboxId: v.pipe(
    text(128),
    v.regex(SANDBOX_ID_RE, 'must be 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit'),
  ),
  netnsPath: absolutePath,
  /** absent exactly when `nics` is given (validate.ts) */
  cniResult: v.optional(cniResult),
  nics: v.optional(v.pipe(list(nicRequest, MAX_NICS), v.minLength(1, 'must have at least one NIC'))),
  dns: v.optional(criDns),
  hostname: v.optional(text(LIMITS.name)),
  podName: v.optional(text(LIMITS.name)),
  podNamespace: v.optional(text(LIMITS.name)),
  nicModel: v.optional(v.pipe(text(64), v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a QEMU device model name'))),
  queues: v.optional(int(1, MAX_QUEUES)),
});

export type SetupShape = v.InferOutput<typeof setupSchema>;

/** `a.b[0].c` from a valibot issue path; a key that is no identifier is quoted, bounded. */
export function fieldPath(path: readonly { key: unknown }[] | undefined, root = 'request'): string {
  let out = '';
  for (const { key } of path ?? []) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${quote(key, 40)}]`;
  }
  return out || root;
}

/** The request's shape, or EINVAL naming the first field that is wrong. */
export function parseSetup(raw: unknown): SetupShape {
  const r = v.safeParse(setupSchema, raw, { abortEarly: true });
  if (r.success) {
    const out = r.output;
    if (out.nics) {
      // with `nics`, each NIC has its own CNI result, model and queues
      for (const k of ['cniResult', 'nicModel', 'queues'] as const) {
        if (out[k] !== undefined) fail(k, out[k], 'cannot be given with nics (give it per NIC)');
      }
    } else if (!out.cniResult) fail('cniResult', undefined, 'is required (or give nics)');
    return out;
  }
  const issue = r.issues[0];
  const field = fieldPath(issue.path);
  // an unknown field's issue carries its name as input; the value is what matters
  const unknownKey = issue.type === 'strict_object' && issue.expected === 'never';
  const value = unknownKey ? issue.path?.at(-1)?.value : issue.input;
  const why = unknownKey ? 'is not a known field' : issue.message;
  return fail(field, value, why);
}

function fail(field: string, value: unknown, why: string): never {
  throw new TapError('EINVAL', `invalid ${field} ${quote(value)}: ${why}`, field);
}
