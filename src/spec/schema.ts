// The spec's fields, each checked on its own (type, range, format) with valibot; every
// problem is collected, one issue per field. What needs several fields at once (one
// binding, one network kind, names that match) is rules.ts. Objects are strict: a field
// tapwire does not know is refused, so a typo (`macaddress`) or a KubeVirt field tapwire
// does not implement (`pciAddress`) is reported instead of silently ignored. valibot's
// strictObject stops at the first unknown key, so the objects here are plain and
// unknownFields() reports every unknown key from the same entry lists.
import * as v from 'valibot';
import { isDnsLabel, isDnsName } from '../net/dns-name';
import { isIpv4, isNetworkAddress, parseCidr4 } from '../net/ipv4';
import { isUnicastMac, parseMac } from '../net/mac';
import { guestNetwork6Problem } from '../net/prefix6';
import { BINDINGS, NIC_MODELS, SPEC_API_VERSIONS, SPEC_LIMITS as L } from './types';

/** A JSON object (valibot's object schemas also take arrays). */
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function strict<E extends v.ObjectEntries>(entries: E, what: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isObject, `is not an object (${what})`),
    v.object(entries, `is not an object (${what})`),
  );
}

function text(max: number, what: string) {
  return v.pipe(
    v.string(`is not a string (${what})`),
    v.minLength(1, `is empty (${what})`),
    v.check((s) => Buffer.byteLength(s) <= max, `is longer than ${max} bytes (${what})`),
  );
}

function list<T extends v.GenericSchema>(item: T, max: number, what: string) {
  return v.pipe(
    v.array(item, `is not a list (${what})`),
    v.maxLength(max, (i) => `has ${String(i.received)} entries, more than ${max}`),
  );
}

function int(min: number, max: number, what: string) {
  const m = `is not an integer ${min}-${max} (${what})`;
  return v.pipe(v.number(m), v.integer(m), v.minValue(min, m), v.maxValue(max, m));
}

/** An interface or network name: a DNS label (KubeVirt's rule) that fits a link name. */
export function isSpecName(s: string): boolean {
  return s.length <= L.name && isDnsLabel(s);
}
const name = v.pipe(
  v.string('is not a string (a name)'),
  v.check(isSpecName, `is not a name: 1-${L.name} letters, digits and inner "-" (it must fit a Linux interface name)`),
);

/** A Linux interface name as the kernel takes it (dev_valid_name): 1-15 bytes, no "/", ":", space. */
export function isIfName(s: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(s) && s !== '.' && s !== '..';
}
const ifName = v.pipe(
  v.string('is not a string (an interface name)'),
  v.check(isIfName, 'is not an interface name: 1-15 characters of letters, digits, "_", "." and "-"'),
);

const macAddress = v.pipe(
  v.string('is not a MAC address'),
  v.check((s) => parseMac(s) !== undefined, 'is not a MAC address (like de:ad:00:00:be:af or DE-AD-00-00-BE-AF)'),
  v.check((s) => isUnicastMac(parseMac(s)!), 'is not a unicast MAC address (the group bit is set or it is all zeros)'),
);

/** IANA service name, as Kubernetes checks a port's name: 1-15 of [a-z0-9-], a letter, no "--". */
export function isPortName(s: string): boolean {
  return /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

const port = strict(
  {
    name: v.optional(
      v.pipe(
        v.string('is not a string (a port name)'),
        v.check(isPortName, 'is not a port name: 1-15 of a-z, 0-9 and inner "-", with a letter, no "--"'),
      ),
    ),
    port: int(1, 65535, 'a port'),
    endPort: v.optional(int(1, 65535, 'a port')),
    protocol: v.optional(v.picklist(['TCP', 'UDP'], 'is not TCP or UDP'), 'TCP'),
  },
  'a port: name, port, endPort, protocol',
);

/** Options 66 and 67 are NVT ASCII (RFC 2132 2): printable characters only. */
const optionAscii = v.pipe(
  text(L.optionBytes, 'a DHCP option value'),
  v.regex(/^[\x20-\x7e]*$/, 'is not printable ASCII (NVT ASCII, RFC 2132 2)'),
);

const privateOption = strict(
  {
    option: int(L.privateOptionMin, L.privateOptionMax, 'a private DHCP option code'),
    value: v.pipe(
      text(L.optionBytes, 'a DHCP option value'),
      v.check((s) => !s.includes('\0'), 'contains a NUL character'),
    ),
  },
  'a private option: option, value',
);

const dhcpOptions = strict(
  {
    bootFileName: v.optional(optionAscii),
    tftpServerName: v.optional(optionAscii),
    ntpServers: v.optional(
      list(
        v.pipe(
          v.string('is not an IPv4 address'),
          v.check((s: string) => isIpv4(s), 'is not an IPv4 address'),
        ),
        L.ntpServers,
        'NTP servers',
      ),
    ),
    privateOptions: v.optional(list(privateOption, L.privateOptionMax - L.privateOptionMin + 1, 'private options')),
  },
  'DHCP options: bootFileName, tftpServerName, ntpServers, privateOptions',
);

const empty = strict({}, 'a binding takes no fields: {}');
const bindings = Object.fromEntries(BINDINGS.map((b) => [b, v.optional(empty)])) as Record<
  (typeof BINDINGS)[number],
  v.OptionalSchema<typeof empty, undefined>
>;

export const interfaceSchema = strict(
  {
    name,
    model: v.optional(v.picklist(NIC_MODELS, `is not a NIC model (${NIC_MODELS.join(', ')})`), 'virtio'),
    macAddress: v.optional(macAddress),
    ports: v.optional(list(port, L.ports, 'ports'), []),
    queues: v.optional(int(1, L.queues, 'queues')),
    dhcpOptions: v.optional(dhcpOptions),
    ...bindings,
  },
  'an interface: name, model, macAddress, ports, queues, dhcpOptions and one binding',
);

/** `name` or `namespace/name`: a namespace is a DNS label, a NAD name a DNS subdomain. */
export function isNadRef(s: string): boolean {
  const parts = s.split('/');
  if (parts.length > 2) return false;
  const nadName = parts.at(-1)!;
  const ns = parts.length === 2 ? parts[0]! : undefined;
  const lower = (x: string): boolean => x === x.toLowerCase();
  return isDnsName(nadName) && lower(nadName) && (ns === undefined || (isDnsLabel(ns) && lower(ns)));
}

/** A Kubernetes extended resource name: `domain/name` (intel.com/sriov_netdevice). */
export function isResourceName(s: string): boolean {
  const [domain, res, ...rest] = s.split('/');
  return (
    rest.length === 0 &&
    res !== undefined &&
    isDnsName(domain) &&
    /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(res)
  );
}

export const networkSchema = strict(
  {
    name,
    pod: v.optional(
      strict(
        {
          vmNetworkCIDR: v.optional(
            v.pipe(
              v.string('is not a string (an IPv4 CIDR)'),
              v.check((x: string) => {
                const c = parseCidr4(x);
                return c !== undefined && c.len <= 30 && isNetworkAddress(c.ip, c.len);
              }, 'is not an IPv4 network of at most /30 in CIDR form, host bits clear (e.g. 10.0.2.0/24)'),
            ),
          ),
          vmIPv6NetworkCIDR: v.optional(
            v.pipe(
              v.string('is not a string (an IPv6 CIDR)'),
              v.check(
                (x: string) => guestNetwork6Problem(x) === undefined,
                'is not a unicast IPv6 network of at most /126 in CIDR form, host bits clear (e.g. fd10:0:2::/120)',
              ),
            ),
          ),
        },
        'the pod network takes vmNetworkCIDR and vmIPv6NetworkCIDR only',
      ),
    ),
    multus: v.optional(
      strict(
        {
          networkName: v.pipe(
            v.string('is not a string (a NetworkAttachmentDefinition)'),
            v.check(isNadRef, 'is not a NetworkAttachmentDefinition name: "name" or "namespace/name", lower case'),
          ),
        },
        'multus: networkName',
      ),
    ),
    resource: v.optional(
      strict(
        {
          resourceName: v.pipe(
            v.string('is not a string (a resource name)'),
            v.check(isResourceName, 'is not a resource name like vendor.com/device'),
          ),
          interfaceName: ifName,
        },
        'resource: resourceName, interfaceName',
      ),
    ),
    l2: v.optional(strict({ interfaceName: ifName }, 'l2: interfaceName')),
  },
  'a network: name and one of pod, multus, resource, l2',
);

export const specSchema = strict(
  {
    apiVersion: v.picklist(SPEC_API_VERSIONS, `is not a supported apiVersion (${SPEC_API_VERSIONS.join(', ')})`),
    interfaces: v.optional(list(interfaceSchema, L.interfaces, 'interfaces'), []),
    networks: v.optional(list(networkSchema, L.interfaces, 'networks'), []),
    autoattachPodInterface: v.optional(v.boolean('is not true or false'), true),
  },
  'a network spec: apiVersion, interfaces, networks, autoattachPodInterface',
);

export type SpecShape = v.InferOutput<typeof specSchema>;
export type InterfaceShape = v.InferOutput<typeof interfaceSchema>;
export type NetworkShape = v.InferOutput<typeof networkSchema>;

type Raw = Record<string, unknown>;
type ObjSchema = ReturnType<typeof strict>;

/** The keys an object schema made by strict() takes. */
function keysOf(s: ObjSchema): Set<string> {
  return new Set(Object.keys(s.pipe[1].entries));
}

const KEYS = {
  spec: keysOf(specSchema as unknown as ObjSchema),
  iface: keysOf(interfaceSchema as unknown as ObjSchema),
  port: keysOf(port as unknown as ObjSchema),
  dhcp: keysOf(dhcpOptions as unknown as ObjSchema),
  privateOption: keysOf(privateOption as unknown as ObjSchema),
  network: keysOf(networkSchema as unknown as ObjSchema),
  multus: new Set(['networkName']),
  resource: new Set(['resourceName', 'interfaceName']),
  l2: new Set(['interfaceName']),
  pod: new Set(['vmNetworkCIDR', 'vmIPv6NetworkCIDR']),
  none: new Set<string>(),
};

/** Every key the spec has that no schema takes: `interfaces[0].macaddress` with its value. */
export function unknownFields(raw: unknown): { path: string; value: unknown }[] {
  const out: { path: string; value: unknown }[] = [];
  const at = (o: unknown, keys: Set<string>, path: string): o is Raw => {
    if (!isObject(o)) return false;
    for (const k of Object.keys(o)) {
      if (!keys.has(k)) out.push({ path: path ? `${path}.${k}` : k, value: o[k] });
    }
    return true;
  };
  const each = (x: unknown, fn: (o: unknown, path: string) => void, path: string): void => {
    if (Array.isArray(x)) x.slice(0, L.ports + 1).forEach((o, i) => fn(o, `${path}[${i}]`));
  };
  if (!at(raw, KEYS.spec, '')) return out;
  each(
    raw.interfaces,
    (it, p) => {
      if (!at(it, KEYS.iface, p)) return;
      for (const b of BINDINGS) at(it[b], KEYS.none, `${p}.${b}`);
      each(it.ports, (o, q) => at(o, KEYS.port, q), `${p}.ports`);
      if (at(it.dhcpOptions, KEYS.dhcp, `${p}.dhcpOptions`)) {
        each(it.dhcpOptions.privateOptions, (o, q) => at(o, KEYS.privateOption, q), `${p}.dhcpOptions.privateOptions`);
      }
    },
    'interfaces',
  );
  each(
    raw.networks,
    (n, p) => {
      if (!at(n, KEYS.network, p)) return;
      at(n.pod, KEYS.pod, `${p}.pod`);
      at(n.multus, KEYS.multus, `${p}.multus`);
      at(n.resource, KEYS.resource, `${p}.resource`);
      at(n.l2, KEYS.l2, `${p}.l2`);
    },
    'networks',
  );
  return out;
}
